"""50 tenants x 1,000 agents on one exporter at the default intervals: the real exporter process
against the simulator and the fake tctl (a real subprocess per refresh), as a user runs it.

Measured once every tenant's fleet is in: the exporter's CPU (its own, not its tctl children's)
over a window in which Prometheus-like scrapes (OpenMetrics + gzip) arrive every 1.3 s, those
scrapes' latency, and RSS. The same 50 fleets are then served by prometheus_client building on
each scrape (the peer) and by the pre-built-bytes server (the floor), scraped the same way.
Targets (design): under 10 % of one core at rest, every scrape under 50 ms, RSS under 400 MB.
    python -m benchmarks.tenants [--quick] [--tenants 50] [--agents 1000] [--window 120]
        [--profile STACKS] [--no-peers]
The CPU figure is also given per quarter of the window (their spread shows how steady it is on
a shared machine). `--profile` records the window with py-spy (benchmarks.profile) and prints
where the CPU went; py-spy samples from outside the process, but run the CPU figure without it.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from benchmarks import profile as profiling
from benchmarks.client import GZIP_OPENMETRICS, Target, after_change, curl_times, summary
from exporter.simulator.demo import demo_config, start_simulator

SCRAPE_EVERY = 1.3
WARMUP_SECONDS = 240.0


def config(tenants: int, agents: int, workdir: Path, port: int) -> tuple[Path, Any]:
    sim, tctl = start_simulator("skewed", agents, workdir)
    sim.start_in_thread()
    base = demo_config(sim, workdir, tctl, f"127.0.0.1:{port}", fast=False)
    template = base["tenants"][0]
    template.pop("ping")  # the defaults: ping 15 s, inventory 60 s, rollout 300 s
    template["inventory"].pop("interval")
    template.pop("rollout")
    base["status_page"].pop("interval")
    base["tenants"] = [{**template, "name": f"t{i:02d}"} for i in range(tenants)]
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(base))
    return path, sim


def own_cpu(pid: int) -> float:
    """utime + stime of the process alone (children's time is not included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_fleets(url: str, tenants: int, process: subprocess.Popen[bytes]) -> float:
    """Seconds until every tenant's inventory has succeeded (bounded)."""
    started = time.monotonic()
    prefix = 'teleport_cloud_source_up{source="inventory"'
    while time.monotonic() - started < WARMUP_SECONDS:
        assert process.poll() is None, "the exporter exited"
        try:
            text = httpx.get(url, timeout=10).text
        except httpx.TransportError:
            text = ""
        lines = text.split("\n")
        if sum(1 for line in lines if line.startswith(prefix) and line.endswith(" 1.0")) >= tenants:
            return time.monotonic() - started
        time.sleep(1.0)
    raise SystemExit(f"fleets not all in after {WARMUP_SECONDS:.0f} s")


def exporter_at_rest(tenants: int, agents: int, window: float, stacks: Path | None) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="tce-bench-"))
    port = free_port()
    path, sim = config(tenants, agents, workdir, port)
    url = f"http://127.0.0.1:{port}/metrics"
    log = (workdir / "exporter.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "exporter.cli", "serve", "--config", str(path)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        warmup = wait_for_fleets(url, tenants, process)
        time.sleep(5.0)  # let the start-up burst of refreshes settle
        spy = profiling.record(process.pid, window, stacks) if stacks else None
        cpu_start, started = own_cpu(process.pid), time.monotonic()
        timings: list[float] = []
        slow: list[str] = []
        quarters: list[float] = []
        quarter_cpu = cpu_start
        while time.monotonic() - started < window:
            at = time.monotonic() - started
            if at >= (len(quarters) + 1) * window / 4:
                now_cpu = own_cpu(process.pid)
                quarters.append(100 * (now_cpu - quarter_cpu) / (window / 4))
                quarter_cpu = now_cpu
            timings += curl_times(url, GZIP_OPENMETRICS, 1)
            if timings[-1] > 0.05:
                slow.append(f"{timings[-1] * 1000:.0f} ms at {at + warmup + 5:.0f} s")
            time.sleep(SCRAPE_EVERY)
        elapsed = time.monotonic() - started
        cpu = own_cpu(process.pid) - cpu_start
        body = httpx.get(url, headers={"Accept-Encoding": "gzip"}, timeout=10)
        print(
            f"exporter, {tenants} tenants x {agents} agents, default intervals "
            f"(all fleets in after {warmup:.0f} s; body {len(body.content) / 1e6:.1f} MB text)"
        )
        print(f"  CPU at rest: {100 * cpu / elapsed:.1f} % of one core over {elapsed:.0f} s")
        if quarters:
            spread = ", ".join(f"{q:.1f}" for q in quarters)
            print(f"  CPU per quarter of the window: {spread} %")
        print(f"  gzip scrape every {SCRAPE_EVERY} s: {summary(timings)}")
        print(f"  RSS: {rss_mb(process.pid):.0f} MB")
        if slow:
            print(f"  scrapes over 50 ms (time since start): {', '.join(slow)}")
        if spy is not None and stacks is not None:
            _, error = spy.communicate(timeout=60)
            if spy.returncode:
                print(f"  py-spy failed: {error.decode(errors='replace').strip()}")
            else:
                print("  where the CPU went (py-spy):")
                print("    " + profiling.breakdown(stacks).replace("\n", "\n    "))
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        sim.stop()


def side_by_side(tenants: int, agents: int, count: int, peer_count: int) -> None:
    print(f"same {tenants} fleets, OpenMetrics + gzip after a body change:")
    for kind, n in (("ours", count), ("floor", count), ("peer", peer_count)):
        with Target(kind, agents, tenants) as target:
            timings = after_change(target, GZIP_OPENMETRICS, n, 60.0)
            rss, _ = target.stats()
        print(f"  {kind:<6} {summary(timings)}; RSS {rss:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--agents", type=int, default=1_000)
    parser.add_argument("--window", type=float, default=120.0)
    parser.add_argument("--quick", action="store_true", help="a 40 s window, fewer scrapes")
    parser.add_argument("--profile", type=Path, help="record the window with py-spy here")
    parser.add_argument("--no-peers", action="store_true", help="the exporter only")
    args = parser.parse_args()
    window, count, peer = (40.0, 20, 3) if args.quick else (args.window, 60, 10)
    exporter_at_rest(args.tenants, args.agents, window, args.profile)
    if not args.no_peers:
        side_by_side(args.tenants, args.agents, count, peer)


if __name__ == "__main__":
    main()
