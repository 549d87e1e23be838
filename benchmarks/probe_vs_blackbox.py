"""The exporter's probe next to blackbox_exporter's HTTP probe on the same endpoint.

Both probe the simulated tenant's /webapi/ping over TLS on loopback, alternately, each on a
fresh connection. Target (design): medians agree within 2 ms or 5 %. Needs Debian's
prometheus-blackbox-exporter.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from exporter.config import Settings
from exporter.core.state import Hub
from exporter.probe.source import PingSource
from exporter.simulator.scenarios import SimState
from exporter.simulator.server import SimulatedTenant

MAX_SECONDS = 120.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def blackbox_probe(base: str, target: str) -> dict[str, float]:
    response = httpx.get(f"{base}/probe", params={"module": "ping", "target": target}, timeout=10)
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            key = sample.name + (f":{sample.labels['phase']}" if "phase" in sample.labels else "")
            values[key] = sample.value
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument(
        "--delay", type=float, default=0.02, help="simulated ping processing delay (s)"
    )
    args = parser.parse_args()
    binary = shutil.which("prometheus-blackbox-exporter") or shutil.which("blackbox_exporter")
    if binary is None:
        sys.exit("prometheus-blackbox-exporter is not installed (Debian package of that name)")
    work = Path(tempfile.mkdtemp(prefix="tce-bench-"))
    sim = SimulatedTenant(SimState(), workdir=work).start_in_thread()
    sim.state.apply({"ping": {"delay": args.delay}})
    config = {
        "modules": {
            "ping": {
                "prober": "http",
                "timeout": "5s",
                "http": {
                    "valid_status_codes": [200],
                    "preferred_ip_protocol": "ip4",
                    "tls_config": {"ca_file": str(sim.ca_file)},
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
    target = f"{sim.url}/webapi/ping"
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
                    "proxy": sim.proxy,
                    "name": "bench",
                    "ca_file": str(sim.ca_file),
                    "inventory": {"enabled": False},
                    "rollout": {"enabled": False},
                }
            ],
        )
        hub = Hub(settings)
        ours: list[float] = []
        theirs: list[float] = []
        ours_phases: dict[str, list[float]] = {}
        theirs_phases: dict[str, list[float]] = {}

        async def run() -> None:
            probe = PingSource(hub, hub.tenants["bench"])
            stop_at = time.monotonic() + MAX_SECONDS
            for _ in range(args.rounds):
                if time.monotonic() > stop_at:
                    break
                await probe.refresh()
                result = probe.last_result
                assert result is not None and result.success
                ours.append(result.duration)
                for phase, seconds in result.phases.items():
                    ours_phases.setdefault(phase, []).append(seconds)
                values = await anyio.to_thread.run_sync(blackbox_probe, base, target)
                assert values["probe_success"] == 1, values
                theirs.append(values["probe_duration_seconds"])
                for key, seconds in values.items():
                    if key.startswith("probe_http_duration_seconds:"):
                        theirs_phases.setdefault(key.split(":")[1], []).append(seconds)
            await probe.aclose()

        anyio.run(run)
    finally:
        blackbox.terminate()
        blackbox.wait(timeout=10)
        sim.stop()
    mine, bb = statistics.median(ours), statistics.median(theirs)
    print(f"probe of {target} (server delay {args.delay * 1000:.0f} ms), {len(ours)} rounds each")
    print(f"  {'phase':<12} {'exporter':>10} {'blackbox':>10}  (medians, ms)")
    for phase in ("resolve", "connect", "tls", "processing", "transfer"):
        a = statistics.median(ours_phases.get(phase, [0.0])) * 1000
        b = statistics.median(theirs_phases.get(phase, [0.0])) * 1000
        print(f"  {phase:<12} {a:10.2f} {b:10.2f}")
    print(f"  {'total':<12} {mine * 1000:10.2f} {bb * 1000:10.2f}")
    diff = abs(mine - bb)
    agree = diff <= 0.002 or diff <= 0.05 * bb
    print(
        f"  difference {diff * 1000:.2f} ms ({diff / bb:.1%}): "
        f"{'within' if agree else 'outside'} 2 ms or 5 %"
    )


if __name__ == "__main__":
    main()
