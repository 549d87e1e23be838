"""Inventory refresh cost at 10,000 agents: CPU time of parse + derive + families + render,
and the resident memory of a process holding that fleet's exposition.

Targets (design): under 300 ms of CPU per refresh, under 150 MB RSS at 10,000 agents.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import subprocess
import sys
import time

from benchmarks.fixtures import refresh, rss_mb, tctl_output
from exporter.exposition import Exposition


def cpu_per_refresh(agents: int, rounds: int) -> list[float]:
    data = tctl_output(agents)
    exposition = Exposition()
    refresh(data, exposition)  # warm-up: imports, pydantic validators
    timings = []
    for _ in range(rounds):
        gc.collect()
        start = time.process_time()
        refresh(data, exposition)
        timings.append(time.process_time() - start)
    return timings


def resident(agents: int) -> None:
    """Runs in a fresh process: RSS after one refresh, exposition held, input dropped."""
    exposition = Exposition()
    data = tctl_output(agents)
    refresh(data, exposition)
    del data
    gc.collect()
    exposition.body(openmetrics=False, gzipped=True)
    print(f"{rss_mb():.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--rss-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        resident(args.agents)
        return
    timings = cpu_per_refresh(args.agents, args.rounds)
    child = subprocess.run(
        [sys.executable, "-m", "benchmarks.refresh", "--rss-child", "--agents", str(args.agents)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    print(f"inventory refresh, {args.agents} agents, {args.rounds} rounds")
    print(
        f"  CPU per refresh: median {statistics.median(timings) * 1000:.0f} ms, max "
        f"{max(timings) * 1000:.0f} ms (target < 300 ms)"
    )
    print(f"  RSS holding the exposition: {child.stdout.strip()} MB (target < 150 MB)")


if __name__ == "__main__":
    main()
