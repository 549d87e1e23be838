"""What the exporter costs one tenant: requests and bytes an hour per source at the default
intervals, at 1,000 and 10,000 agents.

Each source of a tenant refreshes once through its real code against the simulated tenant (ping,
v1 channel) and the fake tctl printing Teleport's encodings (the inventory with tctl's 2-space
indent, protojson for the rollout and the agent reports, gogo JSON for the maintenance config);
the bytes are what each source measured (`source_response_bytes`), the rate is 3600 / the
interval the source runs at after that refresh (the inventory's stretches with its answer). Side
by side: the naive peer (the inventory every 60 s, as before) and the design's ceiling (50 MB an
hour at 10,000 agents). The status page is not the tenant's and is left out.

    python -m benchmarks.tenant_load [--agents 1000,10000]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import anyio

from exporter.config import Settings
from exporter.core.scheduler import Runtime
from exporter.core.source import Source
from exporter.core.state import Hub
from exporter.derivations import attach_derivers
from exporter.simulator.demo import demo_config, start_simulator, tctl_scenario
from exporter.simulator.fake_tctl import write_fake_tctl
from exporter.sources import build_sources, close_sources

CEILING_MB = 50.0
LOCAL = frozenset({"identity", "tctl_version"})
"""Sources that never reach the tenant: the identity file on disk, `tctl version` (no cluster)."""
NAIVE_INVENTORY_INTERVAL = 60.0


def measure(agents: int) -> list[tuple[str, float, int]]:
    """(source, interval after one refresh, bytes of its answer) for every tenant source."""
    with tempfile.TemporaryDirectory(prefix="tce-load-") as tmp:
        workdir = Path(tmp)
        sim, _ = start_simulator("skewed", agents, workdir)
        # tctl's own formatting (indented), not the compact form the demo uses for speed.
        tctl = write_fake_tctl(workdir, {**tctl_scenario("skewed", agents), "compact": False})
        sim.start_in_thread()
        try:
            raw: dict[str, Any] = demo_config(sim, workdir, tctl, "127.0.0.1:0", fast=False)
            tenant = raw["tenants"][0]
            tenant["inventory"] = {
                key: tenant["inventory"][key] for key in ("tctl", "identity_file")
            }  # default intervals everywhere
            tenant.pop("rollout", None)
            tenant["ping"] = {}
            raw["status_page"]["url"] = ""
            settings = Settings(**raw)
            hub = attach_derivers(Hub(settings))
            sources = build_sources(hub, None)
            runtime = Runtime(hub, sources)
            rows = anyio.run(_refresh_all, runtime, sources)
        finally:
            sim.stop()
    return rows


async def _refresh_all(runtime: Runtime, sources: list[Source]) -> list[tuple[str, float, int]]:
    rows = []
    try:
        for source in sources:  # in order: ping first, as the runtime's first round does
            error = await runtime.refresh_once(source)
            if error is not None and source.kind != "version_channel":
                raise SystemExit(f"{source.kind}: {error.reason}: {error.message}")
            rows.append((source.kind, source.interval, source.response_bytes or 0))
    finally:
        await close_sources(sources)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", default="1000,10000")
    args = parser.parse_args()
    print("Load on one tenant at the default intervals (requests and bytes an hour)")
    for agents in (int(n) for n in args.agents.split(",")):
        rows = measure(agents)
        print(f"\n{agents:,} agents")
        print(f"  {'source':<20} {'interval':>9} {'req/h':>7} {'bytes/answer':>13} {'MB/h':>8}")
        total_requests = total_mb = 0.0
        inventory_bytes = 0
        for kind, interval, size in rows:
            requests = 3600.0 / interval
            megabytes = requests * size / 1e6
            if kind in LOCAL or (kind == "version_channel" and size == 0):
                # Local reads; the channel is polled only while ping carries no auto_update.
                note = "local" if kind in LOCAL else "skipped"
                print(f"  {kind:<20} {interval:>8.0f}s {'-':>7} {note:>13}")
                continue
            if kind == "inventory":
                inventory_bytes = size
            total_requests += requests
            total_mb += megabytes
            print(f"  {kind:<20} {interval:>8.0f}s {requests:>7.1f} {size:>13,} {megabytes:>8.2f}")
        print(f"  {'exporter, total':<20} {'':>9} {total_requests:>7.1f} {'':>13} {total_mb:>8.2f}")
        naive = 3600.0 / NAIVE_INVENTORY_INTERVAL * inventory_bytes / 1e6
        print(f"  {'naive: inventory/60s':<20} {'':>9} {60.0:>7.1f} {'':>13} {naive:>8.2f}")
        print(f"  {'design ceiling':<20} {'':>9} {'':>7} {'':>13} {CEILING_MB:>8.2f}")


if __name__ == "__main__":
    main()
