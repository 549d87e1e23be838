"""A scrape target in its own process, so client and server never share a GIL:

- `ours`: the exporter's exposition served by the exporter's ASGI app under uvicorn;
- `peer`: prometheus_client building the same families on every scrape (a custom collector),
  served by prometheus_client's own HTTP server, gzip and OpenMetrics included;
- `floor`: a minimal asyncio server that only writes pre-built bytes (the same bodies, compressed
  once at start), the least any Python server can do per scrape.

It prints `port N`, then answers commands on stdin, one a line: `change` changes the body as a
probe result does (for `ours`: a publish, timed; the peer changes the value it will report;
the floor has nothing to change), `stats` prints RSS and CPU seconds, `quit` ends it. For
`ours`, `refresh` starts a whole inventory refresh of the first tenant in a worker thread, as
the inventory source runs it (parse tctl's output, derive, render, compress, publish), and
`refreshed` waits for it and prints its CPU seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
import time
from collections.abc import Iterator

import anyio
from prometheus_client import start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

from benchmarks.fixtures import derive, rss_mb, tctl_output
from exporter.core import catalogue as m
from exporter.exposition import memtrim
from exporter.exposition.body import Exposition
from exporter.fleet.derive import FleetView
from exporter.fleet.families import fleet_families
from exporter.web.guard import QuietServer
from exporter.web.server import App, bind, build_server


class Fleets:
    """`tenants` fleets of `agents` each, derived once, and a probe value that changes."""

    def __init__(self, tenants: int, agents: int) -> None:
        self.agents = agents
        data = tctl_output(agents)
        view = derive(data)
        del data
        self.views: list[tuple[str, FleetView]] = [(f"t{i:02d}", view) for i in range(tenants)]
        self.probe = 0.0
        self.changes = 0

    def fleet_families(self, tenant: str, view: FleetView, samples: bool = False) -> list[Metric]:
        return fleet_families(tenant, view, per_agent=True, samples=samples)

    def probe_families(self, tenant: str) -> list[Metric]:
        return [m.PROBE_DURATION.single([tenant], self.probe)]

    def change(self) -> str:
        self.changes += 1
        if not self.views:  # the floor: its bytes are fixed
            return ""
        self.probe = 0.01 + self.changes * 1e-6
        return self.views[self.changes % len(self.views)][0]


class PerScrape(Collector):
    def __init__(self, fleets: Fleets) -> None:
        self.fleets = fleets

    def collect(self) -> Iterator[Metric]:
        for tenant, view in self.fleets.views:
            yield from self.fleets.fleet_families(tenant, view, samples=True)
        for tenant, _ in self.fleets.views:
            yield from self.fleets.probe_families(tenant)


def _exposition(fleets: Fleets) -> Exposition:
    exposition = Exposition()
    for tenant, view in fleets.views:
        exposition.update(("fleet", tenant), fleets.fleet_families(tenant, view))
        exposition.update(("probe", tenant), fleets.probe_families(tenant))
    return exposition


def serve_ours(fleets: Fleets) -> tuple[int, Exposition]:
    exposition = _exposition(fleets)
    sock = bind("127.0.0.1:0")
    server = build_server(App(exposition, lambda: True), None)
    assert isinstance(server, QuietServer)
    threading.Thread(target=lambda: anyio.run(server.serve, [sock]), daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    return int(sock.getsockname()[1]), exposition


def serve_peer(fleets: Fleets) -> int:
    registry = CollectorRegistry()
    registry.register(PerScrape(fleets))
    server, _ = start_http_server(0, addr="127.0.0.1", registry=registry)
    return int(server.server_port)


def serve_floor(fleets: Fleets) -> int:
    exposition = _exposition(fleets)
    responses: dict[tuple[bool, bool], bytes] = {}
    for openmetrics in (False, True):
        for gzipped in (False, True):
            body = exposition.body(openmetrics, gzipped)
            head = f"HTTP/1.1 200 OK\r\ncontent-length: {len(body)}\r\n"
            head += "content-encoding: gzip\r\n" if gzipped else ""
            responses[(openmetrics, gzipped)] = head.encode() + b"\r\n" + body
    del exposition
    ready = threading.Event()
    port: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = (await reader.readuntil(b"\r\n\r\n")).lower()
                key = (b"openmetrics" in request, b"gzip" in request)
                writer.write(responses[key])
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=256)
        port.append(server.sockets[0].getsockname()[1])
        ready.set()
        await server.serve_forever()

    threading.Thread(target=lambda: asyncio.run(main()), daemon=True).start()
    ready.wait(30)
    return port[0]


class Refresh:
    """One inventory refresh of the first tenant in a worker thread; its own CPU time."""

    def __init__(self, fleets: Fleets, exposition: Exposition) -> None:
        holder = [tctl_output(fleets.agents)]  # generated before the refresh starts
        tenant = fleets.views[0][0]
        self.cpu = 0.0

        def run() -> None:
            started = time.thread_time()
            with memtrim.collector_paused():
                view = derive(holder.pop())
                exposition.update(("fleet", tenant), fleets.fleet_families(tenant, view))
            self.cpu = time.thread_time() - started

        self.thread = threading.Thread(target=run, name="refresh", daemon=True)
        self.thread.start()


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=["ours", "peer", "floor"])
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--tenants", type=int, default=1)
    args = parser.parse_args()
    fleets = Fleets(args.tenants, args.agents)
    exposition: Exposition | None = None
    if args.kind == "ours":
        port, exposition = serve_ours(fleets)
    elif args.kind == "peer":
        port = serve_peer(fleets)
    else:
        port = serve_floor(fleets)
        fleets.views = []
    print(f"port {port}", flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "change":
            start = time.perf_counter()
            tenant = fleets.change()
            if exposition is not None:
                exposition.update(("probe", tenant), fleets.probe_families(tenant))
            print(f"ok {time.perf_counter() - start:.6f}", flush=True)
        elif command == "refresh" and exposition is not None:
            refresh = Refresh(fleets, exposition)
            print("ok", flush=True)
        elif command == "refreshed":
            refresh.thread.join(600)
            print(f"ok {refresh.cpu:.6f}", flush=True)
        elif command == "stats":
            print(f"stats {rss_mb():.1f} {cpu_seconds():.3f}", flush=True)
        elif command == "quit":
            return


if __name__ == "__main__":
    main()
