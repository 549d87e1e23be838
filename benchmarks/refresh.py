"""Inventory refresh cost: CPU time of parse + derive + families + render + compress (the same
fleet each time, every last_seen moved on, as refreshes at rest find it), and the
resident memory of a process holding that fleet's exposition after a second refresh, with and
without handing freed memory back (malloc_trim, exporter.exposition.memtrim).

Then the exporter's server at the largest fleet size is scraped without pause (OpenMetrics +
gzip, curl on a kept-alive connection) while a whole refresh runs in its worker thread, as the
inventory source runs it: every scrape's time, and the refresh's CPU in that process; and, for
a machine shared with other work, the same scrapes just before the refresh.

Targets (design): at 10,000 agents under 300 ms of CPU and under 100 MB RSS; at 100,000 agents
under 1 s of CPU, under 500 MB RSS and no scrape over 50 ms during the refresh.
    python -m benchmarks.refresh [--quick] [--agents N] [--rounds R]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import subprocess
import sys
import threading
import time

from benchmarks.client import GZIP_OPENMETRICS, Target, curl_times, summary
from benchmarks.fixtures import refresh, rss_mb, tctl_output
from exporter.exposition.body import Exposition


def cpu_per_refresh(agents: int, rounds: int) -> list[float]:
    """Refreshes as at rest: the same fleet, every agent's last_seen a minute on each time."""
    outputs = [tctl_output(agents, later) for later in (0.0, 60.0)]
    exposition = Exposition()
    refresh(outputs[1], exposition)  # warm-up: imports, first rendering
    timings = []
    for round_ in range(rounds):
        gc.collect()
        start = time.process_time()
        refresh(outputs[round_ % 2], exposition)
        timings.append(time.process_time() - start)
    return timings


def resident(agents: int, trim: bool) -> None:
    """Runs in a fresh process: RSS after two refreshes (the second replaces the first, as
    every later refresh does), the input dropped, the exposition held."""
    from exporter.exposition import memtrim

    if not trim:
        memtrim.release = lambda: False
    exposition = Exposition()
    for later in (0.0, 60.0):
        data = tctl_output(agents, later)
        refresh(data, exposition)
        del data
    print(f"{rss_mb():.1f}")


def child_rss(agents: int, trim: bool) -> str:
    command = [sys.executable, "-m", "benchmarks.refresh", "--rss-child", "--agents", str(agents)]
    if not trim:
        command.append("--no-trim")
    result = subprocess.run(command, capture_output=True, text=True, check=True, timeout=600)
    return result.stdout.strip()


def longest_holds(agents: int) -> list[float]:
    """A refresh in a worker thread while this thread wakes every millisecond: for each wake-up
    that came late, the CPU the refresh thread used meanwhile (its own clock, so other work on
    the machine does not count). The largest are the longest the refresh kept the event loop
    from running (holding the GIL in one C call, or between two switch intervals)."""
    data = tctl_output(agents)
    exposition = Exposition()
    refresh(data, exposition)
    ready = threading.Event()
    clock: list[int] = []

    def work() -> None:
        clock.append(time.pthread_getcpuclockid(threading.get_ident()))
        ready.set()
        refresh(data, exposition)

    worker = threading.Thread(target=work)
    worker.start()
    ready.wait()
    holds: list[float] = []
    before = time.clock_gettime(clock[0])
    while worker.is_alive():
        time.sleep(0.001)
        try:
            now = time.clock_gettime(clock[0])
        except OSError:  # the thread ended meanwhile
            break
        holds.append(now - before)
        before = now
    worker.join()
    return sorted(holds, reverse=True)


def scraped_while_refreshing(agents: int) -> None:
    with Target("ours", agents) as target:
        timings: list[float] = []
        done = threading.Event()

        def scrape() -> None:
            deadline = time.monotonic() + 120.0
            while not done.is_set() and time.monotonic() < deadline:
                timings.extend(curl_times(target.url, GZIP_OPENMETRICS, 3))

        quiet = curl_times(target.url, GZIP_OPENMETRICS, 30)  # the same scrapes, no refresh
        target.refresh()
        scraper = threading.Thread(target=scrape)
        scraper.start()
        cpu = target.refreshed()
        done.set()
        scraper.join()
        rss, _ = target.stats()
    print(f"scraped while a {agents}-agent refresh runs in the exporter's server process")
    print(f"  refresh CPU there: {cpu * 1000:.0f} ms; RSS after it: {rss:.0f} MB")
    print(f"  gzip scrapes meanwhile: {summary(timings)}")
    print(f"  the same scrapes just before, no refresh: {summary(quiet)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="10,000 agents, 3 rounds")
    parser.add_argument("--rss-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-trim", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-scrapes", action="store_true", help="skip the scrapes meanwhile")
    args = parser.parse_args()
    if args.rss_child:
        resident(args.agents[0], not args.no_trim)
        return
    if args.quick:
        args.agents, args.rounds = [10_000], 3
    for agents in args.agents:
        rounds = args.rounds if agents <= 20_000 else max(1, args.rounds // 3)
        timings = cpu_per_refresh(agents, rounds)
        print(f"inventory refresh, {agents} agents, {rounds} rounds")
        print(
            f"  CPU per refresh: median {statistics.median(timings) * 1000:.0f} ms, max "
            f"{max(timings) * 1000:.0f} ms"
        )
        print(
            f"  RSS holding the exposition after a second refresh: {child_rss(agents, True)} MB "
            f"(without giving freed memory back: {child_rss(agents, False)} MB)"
        )
    largest = max(args.agents)
    holds = longest_holds(largest)
    print(
        f"longest the event loop waited on a {largest}-agent refresh, in the refresh's own CPU: "
        + ", ".join(f"{hold * 1000:.0f}" for hold in holds[:5])
        + " ms"
    )
    if not args.no_scrapes:
        scraped_while_refreshing(largest)


if __name__ == "__main__":
    main()
