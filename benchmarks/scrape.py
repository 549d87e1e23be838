"""/metrics cost at 10,000 agents (and 100,000), next to prometheus_client doing the same work on
every scrape, both served over HTTP on loopback and scraped one request at a time.

Ours: the exposition rendered once per refresh; a scrape copies bytes.
Peer: a prometheus_client custom collector building the same families from the same fleet on
each scrape, served by prometheus_client's own HTTP server (its usual way of working).
Targets (design): p99 under 5 ms at 10,000 agents, at least 25x faster than the peer.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import anyio
from prometheus_client import start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

from benchmarks.fixtures import derive, families, refresh, tctl_output
from exporter.exposition import Exposition
from exporter.server import App, _Server, bind, build_server

MAX_SECONDS = 120.0
CURL = shutil.which("curl")


class PerScrapeCollector(Collector):
    def __init__(self, build: Callable[[], list[Metric]]) -> None:
        self.build = build

    def collect(self) -> Iterator[Metric]:
        yield from self.build()


def _scrape(url: str, headers: dict[str, str]) -> int:
    """One scrape with a minimal HTTP/1.1 client (a fresh connection, as Prometheus' first
    scrape; the body read raw, never decompressed), so the figure is the server's cost and
    the loopback transfer rather than a Python client's parsing. Returns the body size."""
    parts = urlsplit(url)
    request = f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n"
    request += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    with socket.create_connection((parts.hostname, parts.port), timeout=60) as sock:
        sock.sendall(request.encode())
        received = bytearray()
        while chunk := sock.recv(1 << 20):
            received += chunk
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") or head.startswith(b"HTTP/1.0 200"), head[:100]
    return len(body)


def _curl(url: str, headers: dict[str, str]) -> float:
    """curl's own measure of one scrape (connect to last byte), without its start-up time."""
    command = ["curl", "-s", "-o", "/dev/null", "-w", "%{time_total}", "--max-time", "60"]
    for key, value in headers.items():
        command += ["-H", f"{key}: {value}"]
    result = subprocess.run([*command, url], capture_output=True, text=True, check=True)
    return float(result.stdout)


def scrape_timings(url: str, count: int, headers: dict[str, str]) -> list[float]:
    """Timings of `count` sequential scrapes, with curl (a C client, as close to Prometheus'
    Go client as a shell gets) when installed, else with a minimal Python client."""
    timings: list[float] = []
    deadline = time.monotonic() + MAX_SECONDS
    _scrape(url, headers)  # warm-up
    for _ in range(count):
        if time.monotonic() > deadline:
            break
        if CURL:
            timings.append(_curl(url, headers))
            continue
        start = time.perf_counter()
        _scrape(url, headers)
        timings.append(time.perf_counter() - start)
    return timings


def p(values: list[float], quantile: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]


def serve_ours(exposition: Exposition) -> tuple[_Server, str]:
    sock = bind("127.0.0.1:0")
    server = build_server(App(exposition, lambda: True), None)
    assert isinstance(server, _Server)
    thread = threading.Thread(target=lambda: anyio.run(server.serve, [sock]), daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    return server, f"http://127.0.0.1:{sock.getsockname()[1]}/metrics"


def report(label: str, timings: list[float]) -> None:
    print(
        f"  {label:<38} p50 {statistics.median(timings) * 1000:8.2f} ms   p99 "
        f"{p(timings, 0.99) * 1000:8.2f} ms   ({len(timings)} scrapes)"
    )


def run(agents: int, ours_count: int, peer_count: int) -> None:
    data = tctl_output(agents)
    exposition = Exposition()
    refresh(data, exposition)
    view = derive(data)
    server, url = serve_ours(exposition)
    print(f"client: {'curl' if CURL else 'python socket'}")
    print(
        f"/metrics with {agents} agents ({len(exposition.body()) / 1e6:.1f} MB text, per-agent "
        "series on)"
    )
    ours_text = scrape_timings(url, ours_count, {"Accept": "text/plain"})
    ours_gzip = scrape_timings(
        url, ours_count, {"Accept": "application/openmetrics-text", "Accept-Encoding": "gzip"}
    )
    report("exporter, text", ours_text)
    report("exporter, OpenMetrics + gzip", ours_gzip)
    server.should_exit = True
    if peer_count:
        registry = CollectorRegistry()
        registry.register(PerScrapeCollector(lambda: families(view)))
        peer_server, _ = start_http_server(0, addr="127.0.0.1", registry=registry)
        peer_url = f"http://127.0.0.1:{peer_server.server_port}/metrics"
        peer = scrape_timings(peer_url, peer_count, {"Accept": "text/plain"})
        peer_server.shutdown()
        report("prometheus_client, built per scrape", peer)
        for label, quantile in (("p50", 0.5), ("p99", 0.99)):
            ratio = p(peer, quantile) / p(ours_text, quantile)
            print(
                f"  exporter (text) is {ratio:.0f}x faster than the peer at {label} (target >= 25x)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--scrapes", type=int, default=300)
    parser.add_argument("--peer-scrapes", type=int, default=20)
    args = parser.parse_args()
    for agents in args.agents:
        big = agents > 20_000
        run(agents, args.scrapes // (10 if big else 1), 0 if big else args.peer_scrapes)


if __name__ == "__main__":
    main()
