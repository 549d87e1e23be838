"""50 concurrent scrapers at 10,000 agents, some of them slow, while the body changes every
second: the exporter next to prometheus_client building on each scrape (the peer) and the
pre-built-bytes server (the floor), each in its own process.

Each scraper is one curl process scraping once a second (`--rate`) on a kept-alive connection,
all started together so their scrapes collide: fast ones OpenMetrics + gzip, slow ones the text
body at a limited rate (`--limit-rate`), holding their response open while the others scrape.
Target: p99 under 50 ms for the fast scrapers.
    python -m benchmarks.concurrent [--quick] [--scrapers 50] [--slow 10] [--rounds 20]
"""

from __future__ import annotations

import argparse
import subprocess
import threading
import time

from benchmarks.client import GZIP_OPENMETRICS, TEXT, Target, curl_command, quantile, summary

SLOW_RATE = "1M"  # bytes a second: the 4.8 MB text body takes a slow scraper ~5 s


def scrapers(target: Target, fast: int, slow: int, rounds: int) -> tuple[list[float], list[float]]:
    stop = threading.Event()

    def keep_changing() -> None:
        while not stop.wait(1.0):
            target.change()

    changer = threading.Thread(target=keep_changing, daemon=True)
    changer.start()
    processes: list[tuple[bool, subprocess.Popen[str]]] = []
    for index in range(fast + slow):
        is_slow = index >= fast
        # slow scrapers read the uncompressed text: larger than the socket buffers, so the
        # server really has to wait for them
        command = curl_command(TEXT, SLOW_RATE) if is_slow else curl_command(GZIP_OPENMETRICS)
        command += ["--rate", "1/s"]
        for _ in range(max(1, rounds // 5) if is_slow else rounds):
            command += ["-o", "/dev/null", target.url]
        processes.append((is_slow, subprocess.Popen(command, stdout=subprocess.PIPE, text=True)))
    fast_times: list[float] = []
    slow_times: list[float] = []
    deadline = time.monotonic() + 10 * rounds + 60
    for is_slow, process in processes:
        try:
            out, _ = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            out, _ = process.communicate()
        (slow_times if is_slow else fast_times).extend(float(x) for x in out.split())
    stop.set()
    changer.join(5)
    return fast_times, slow_times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--scrapers", type=int, default=50)
    parser.add_argument("--slow", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--peer-rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.peer_rounds = 12, 2
    fast = args.scrapers - args.slow
    print(
        f"{args.scrapers} concurrent scrapers ({args.slow} slow: text at {SLOW_RATE}B/s), "
        f"{args.agents} agents, OpenMetrics + gzip, body changing every second"
    )
    results: dict[str, list[float]] = {}
    for kind, rounds in (("ours", args.rounds), ("floor", args.rounds), ("peer", args.peer_rounds)):
        with Target(kind, args.agents) as target:
            fast_times, slow_times = scrapers(target, fast, args.slow, rounds)
            rss, _cpu = target.stats()
        results[kind] = fast_times
        print(f"  {kind:<6} fast: {summary(fast_times)}")
        print(f"  {'':<6} slow: {summary(slow_times)}; RSS {rss:.0f} MB")
    ours = results["ours"]
    for q, name in ((0.5, "p50"), (0.99, "p99")):
        print(
            f"  ours at {name}: {quantile(ours, q) / quantile(results['floor'], q):.1f}x the floor,"
            f" {quantile(results['peer'], q) / quantile(ours, q):.0f}x faster than the peer"
        )


if __name__ == "__main__":
    main()
