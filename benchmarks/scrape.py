"""/metrics cost, side by side: the exporter, prometheus_client building the same families on
every scrape (the peer) and a server that only writes pre-built bytes (the floor), each in its
own process, scraped by curl on loopback.

Two ways of scraping:
- as Prometheus does: OpenMetrics + gzip, and the body changed just before each scrape (a probe
  refreshes every 15 s, Prometheus scrapes every 15-60 s, so nearly every scrape is the first
  after a change);
- a tight loop: the same body scraped again and again on a kept-alive connection.

Targets (design): at 10,000 agents p99 under 5 ms, at least 25x faster than the peer, within 3x
of the floor; at 100,000 agents every scrape under 50 ms.
    python -m benchmarks.scrape [--quick] [--agents N ...] [--tenants T]
"""

from __future__ import annotations

import argparse
import time

from benchmarks.client import (
    GZIP_OPENMETRICS,
    TEXT,
    Target,
    after_change,
    curl_times,
    quantile,
    summary,
)

BUDGET_SECONDS = 60.0  # per target and way of scraping: every loop is bounded in time too


def measure(kind: str, agents: int, tenants: int, count: int) -> dict[str, list[float]]:
    started = time.monotonic()
    with Target(kind, agents, tenants) as target:
        start_seconds = time.monotonic() - started
        results = {
            "gzip after change": after_change(target, GZIP_OPENMETRICS, count, BUDGET_SECONDS),
            "gzip tight loop": curl_times(target.url, GZIP_OPENMETRICS, count),
            "text tight loop": curl_times(target.url, TEXT, count),
        }
        changes = [target.change() for _ in range(20)] if kind == "ours" else []
        rss, _ = target.stats()
    extra = (
        f", publish of a probe result p50 {sorted(changes)[10] * 1000:.2f} ms" if changes else ""
    )
    print(f"  {kind}: RSS {rss:.0f} MB, start {start_seconds:.1f} s{extra}")
    return results


def run(agents: int, tenants: int, count: int, peer_count: int) -> None:
    print(f"\n{tenants} tenant(s) x {agents} agents, per-agent series on")
    figures = {"ours": measure("ours", agents, tenants, count)}
    figures["floor"] = measure("floor", agents, tenants, count)
    if peer_count:
        figures["peer"] = measure("peer", agents, tenants, peer_count)
    for way in figures["ours"]:
        print(f"  {way}:")
        for kind, results in figures.items():
            print(f"    {kind:<6} {summary(results[way])}")
        ours = figures["ours"][way]
        for q, name in ((0.5, "p50"), (0.99, "p99")):
            ratios = [f"{quantile(ours, q) / quantile(figures['floor'][way], q):.1f}x the floor"]
            if "peer" in figures:
                ratios.append(
                    f"{quantile(figures['peer'][way], q) / quantile(ours, q):.0f}x faster than "
                    "the peer"
                )
            print(f"    ours at {name}: {', '.join(ratios)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--tenants", type=int, default=1)
    parser.add_argument("--scrapes", type=int, default=300)
    parser.add_argument("--peer-scrapes", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="10,000 agents, fewer scrapes")
    args = parser.parse_args()
    if args.quick:
        args.agents, args.scrapes, args.peer_scrapes = [10_000], 60, 8
    for agents in args.agents:
        big = agents * args.tenants > 20_000
        peer = min(args.peer_scrapes, 3) if big else args.peer_scrapes
        run(agents, args.tenants, args.scrapes // (5 if big else 1), peer)


if __name__ == "__main__":
    main()
