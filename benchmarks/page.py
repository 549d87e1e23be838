"""What the page at `/` costs: CPU time of one build (the shared assessment, as `check` makes
it, plus the HTML) at growing fleets, and its size.

The page is built at most once per change of the exporter's state, and only when someone asks
for it (exporter.server.PageCache); a reload without a change costs a memory copy, like a scrape.
The build runs in a worker thread, so its cost is CPU taken from the refreshes, never a stall of
the event loop. No target in the design; the figures say what a person's reload costs.
    python -m benchmarks.page [--quick]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time

from benchmarks.fixtures import CONTROL_PLANE, NOW, tctl_output
from exporter.check.findings import Observation, assess_all
from exporter.check.page import render_page
from exporter.config import Settings, TenantConfig
from exporter.core.state import Hub
from exporter.fleet.derive import derive_fleet
from exporter.fleet.model import parse_inventory
from exporter.rollout.groups import plan_groups
from exporter.rollout.model import parse_rollout
from exporter.simulator.fleetgen import generate_rollout


def observation(agents: int) -> Observation:
    tenant = TenantConfig(
        proxy="bench.example:443",
        name="bench",
        inventory={"enabled": False},
        rollout={"enabled": False},
    )
    settings = Settings(tenants=[tenant], status_page={"url": ""})
    hub = Hub(settings)
    rollout = parse_rollout(json.dumps(generate_rollout(18, now=NOW)).encode())
    instances = parse_inventory(tctl_output(agents)).instances
    state = hub.tenants["bench"]
    state.rollout = rollout
    fleet = derive_fleet(instances, CONTROL_PLANE, CONTROL_PLANE, plan_groups(rollout))
    return Observation(settings, hub, NOW.timestamp(), {}, {}, {}, {"bench": fleet})


def build_cpu(agents: int, rounds: int) -> tuple[list[float], int]:
    seen = observation(agents)
    page = render_page(assess_all(seen), "bench")  # warm-up
    timings = []
    for _ in range(rounds):
        gc.collect()
        start = time.process_time()
        page = render_page(assess_all(seen), "bench")
        timings.append(time.process_time() - start)
    return timings, len(page)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sizes = (1_000, 10_000) if args.quick else (1_000, 10_000, 100_000)
    rounds = 3 if args.quick else 7
    print(f"{'agents':>8}  {'build CPU p50':>14}  {'max':>10}  {'page':>10}")
    for agents in sizes:
        timings, size = build_cpu(agents, rounds if agents < 100_000 else 3)
        print(
            f"{agents:>8}  {statistics.median(timings) * 1000:>11.1f} ms  "
            f"{max(timings) * 1000:>7.1f} ms  {size / 1024:>7.1f} KiB"
        )


if __name__ == "__main__":
    main()
