"""The exporter's probe next to blackbox_exporter's HTTP probe on the same endpoint, phase by phase.

Both probe the simulated tenant's /webapi/ping over TLS on loopback, alternately (who goes
first alternates too), each on a fresh connection, at every server delay asked for. The
simulator runs in a process of its own: in the exporter's process its Python TLS and HTTP work
would compete for the GIL with the exporter's probe and not with blackbox_exporter's.
Target (design): medians agree within 2 ms or 5 %, the total and every phase. Needs Debian's
prometheus-blackbox-exporter.

    python -m benchmarks.probe_vs_blackbox [--quick] [--rounds 100] [--delays 0.02 0.2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

import anyio
import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from exporter.config import Settings
from exporter.core.state import Hub
from exporter.derivations import attach_derivers
from exporter.probe.source import PingSource
from exporter.simulator.scenarios import SimState
from exporter.simulator.server import SimulatedTenant
from exporter.vocab import PROBE_PHASES as PHASES

MAX_SECONDS = 300.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_simulator(workdir: str, delay: float, pipe: Connection) -> None:
    """Child process: run the simulated tenant until the parent says stop."""
    sim = SimulatedTenant(SimState(), workdir=Path(workdir)).start_in_thread()
    sim.state.apply({"ping": {"delay": delay}})
    pipe.send((sim.proxy, str(sim.ca_file)))
    pipe.recv()
    sim.stop()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (clock-tick resolution: sum many probes)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def blackbox_probe(base: str, target: str) -> dict[str, float]:
    response = httpx.get(f"{base}/probe", params={"module": "ping", "target": target}, timeout=10)
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            key = sample.name + (f":{sample.labels['phase']}" if "phase" in sample.labels else "")
            values[key] = sample.value
    return values


class Samples:
    def __init__(self) -> None:
        self.phases: dict[str, list[float]] = {p: [] for p in (*PHASES, "total", "outside")}
        self.cpu = 0.0

    def add(self, total: float, phases: dict[str, float]) -> None:
        self.phases["total"].append(total)
        self.phases["outside"].append(total - sum(phases[p] for p in PHASES))
        for phase in PHASES:
            self.phases[phase].append(phases[phase])


def spread(values: list[float]) -> str:
    """Median with the 10th-90th percentile range, in ms."""
    ms = sorted(v * 1000 for v in values)
    if len(ms) < 2:
        return f"{ms[0]:7.2f}" if ms else "-"
    deciles = statistics.quantiles(ms, n=10)
    return f"{statistics.median(ms):7.2f} ({deciles[0]:6.2f}-{deciles[-1]:6.2f})"


def compare(delay: float, rounds: int, binary: str) -> bool:
    work = Path(tempfile.mkdtemp(prefix="tce-bench-"))
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    simulator = context.Process(target=serve_simulator, args=(str(work), delay, child))
    simulator.start()
    proxy, ca_file = parent.recv()
    config = {
        "modules": {
            "ping": {
                "prober": "http",
                "timeout": "5s",
                "http": {
                    "valid_status_codes": [200],
                    "preferred_ip_protocol": "ip4",
                    "tls_config": {"ca_file": ca_file},
                },
            }
        }
    }
    (work / "blackbox.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    blackbox = subprocess.Popen(
        [
            binary,
            f"--config.file={work / 'blackbox.yml'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    target = f"https://{proxy}/webapi/ping"
    ours, theirs, alone = Samples(), Samples(), Samples()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(base + "/-/healthy", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        settings = Settings(
            state_dir=work,
            tenants=[
                {
                    "proxy": proxy,
                    "name": "bench",
                    "ca_file": ca_file,
                    "inventory": {"enabled": False},
                    "rollout": {"enabled": False},
                }
            ],
        )
        hub = attach_derivers(Hub(settings))

        async def exporter_probe(probe: PingSource, into: Samples) -> None:
            cpu = time.process_time()
            await probe.refresh()
            into.cpu += time.process_time() - cpu
            result = probe.last_result
            assert result is not None and result.success
            into.add(result.duration, result.phases)

        async def their_probe(into: Samples) -> None:
            cpu = cpu_seconds(blackbox.pid)
            values = await anyio.to_thread.run_sync(blackbox_probe, base, target)
            into.cpu += cpu_seconds(blackbox.pid) - cpu
            assert values["probe_success"] == 1, values
            into.add(
                values["probe_duration_seconds"],
                {p: values[f"probe_http_duration_seconds:{p}"] for p in PHASES},
            )

        async def run() -> None:
            probe = PingSource(hub, hub.tenants["bench"])
            warm_up = Samples()  # the first worker thread, the first connection of each
            await exporter_probe(probe, warm_up)
            await their_probe(warm_up)
            stop_at = time.monotonic() + MAX_SECONDS
            for round_ in range(rounds):
                if time.monotonic() > stop_at:
                    break
                if round_ % 2:
                    await exporter_probe(probe, ours)
                    await their_probe(theirs)
                else:
                    await their_probe(theirs)
                    await exporter_probe(probe, ours)
            for _ in range(rounds):  # CPU with nothing else in between (garbage included)
                if time.monotonic() > stop_at:
                    break
                await exporter_probe(probe, alone)
            await probe.aclose()

        anyio.run(run)
    finally:
        blackbox.terminate()
        blackbox.wait(timeout=10)
        parent.send("stop")
        simulator.join(timeout=10)
    count = len(ours.phases["total"])
    print(f"\nserver delay {delay * 1000:.0f} ms, {count} rounds each, {target}")
    print(f"  {'phase':<11} {'exporter':>24} {'blackbox_exporter':>24}  agree")
    print(f"  {'':<11} {'median (p10-p90), ms':>24} {'median (p10-p90), ms':>24}")
    every = True
    for phase in (*PHASES, "total", "outside"):
        mine, bb = (statistics.median(s.phases[phase]) for s in (ours, theirs))
        diff = abs(mine - bb)
        agree = diff <= 0.002 or diff <= 0.05 * bb
        every &= agree or phase == "outside"
        print(
            f"  {phase:<11} {spread(ours.phases[phase]):>24} {spread(theirs.phases[phase]):>24}"
            f"  {'yes' if agree else 'NO'} ({(mine - bb) * 1000:+.2f} ms)"
        )
    print(
        "  (outside: total minus the phases; blackbox_exporter's includes building its client\n"
        "   and reading the CA file on every probe, the exporter does that before the clock)"
    )
    print(
        f"  CPU per probe: exporter {ours.cpu / count * 1000:.2f} ms (its whole process: the"
        f" refresh, parse and publish), {alone.cpu / len(alone.phases['total']) * 1000:.2f} ms"
        f" when probing alone; blackbox_exporter {theirs.cpu / count * 1000:.2f} ms (its"
        " process, /probe included)"
    )
    return every


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="20 rounds")
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument(
        "--delays",
        type=float,
        nargs="+",
        default=[0.02, 0.2],
        help="simulated ping processing delays (s)",
    )
    args = parser.parse_args()
    if args.quick:
        args.rounds = 20
    binary = shutil.which("prometheus-blackbox-exporter") or shutil.which("blackbox_exporter")
    if binary is None:
        sys.exit("prometheus-blackbox-exporter is not installed (Debian package of that name)")
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    results = [compare(delay, args.rounds, binary) for delay in args.delays]
    verdict = "every phase and the total" if all(results) else "NOT every phase"
    print(f"\nmedians within 2 ms or 5 %: {verdict}")


if __name__ == "__main__":
    main()
