"""`serve --demo`, `check --demo`, `sla report --demo` and `simulate`: the exporter against the
simulated tenant.

Everything lives in a fresh temporary directory (CA, fake tctl, identity, ledger), removed when
the command ends, also on Ctrl-C or SIGTERM (`simulate --workdir DIR` keeps DIR), and nothing
leaves loopback.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import anyio
import yaml

from exporter.config import Settings
from exporter.simulator.fake_tctl import write_fake_tctl
from exporter.simulator.scenarios import SimState, scenario_rollout
from exporter.simulator.server import SimulatedTenant

log = logging.getLogger(__name__)

DEMO_AGENTS = 250


def tctl_scenario(scenario: str, agents: int) -> dict[str, Any]:
    """What the fake tctl prints for a simulator scenario."""
    mix = "healthy" if scenario == "healthy" else "skewed"
    return {
        "inventory": {
            "size": agents,
            "mix": mix,
            "control_plane_major": 18,
            "broken": 2 if scenario == "demo" else 0,
        },
        "rollout": scenario_rollout(scenario),
        # Two Auth servers write agent reports (while a rollout exists); the window is the
        # tenant's cluster_maintenance_config.
        "agent_report": {"auth_servers": [["auth-a", 5.0], ["auth-b", 25.0]]},
        "maintenance_config": {"weekdays": ["Tue", "Thu"], "utc_start_hour": 3},
        "compact": True,
    }


def simulated_identity(sim: SimulatedTenant) -> bytes:
    """An identity file's key and TLS certificate from the simulator's CA, valid for a day (the
    fake tctl only checks that the file exists; the identity source reads its expiry)."""
    expiry = datetime.now(UTC) + timedelta(days=1)
    leaf = sim.ca.issue_cert("bot-teleport-cloud-exporter", not_after=expiry)
    return leaf.private_key_pem.bytes() + leaf.cert_chain_pems[0].bytes()


def demo_config(
    sim: SimulatedTenant, workdir: Path, tctl: Path, listen: str, fast: bool = True
) -> dict[str, Any]:
    """A configuration file's content pointing at the simulator."""
    identity = workdir / "identity"
    if not identity.exists():
        identity.write_bytes(simulated_identity(sim))
        identity.chmod(0o600)
    return {
        "listen_address": listen,
        "state_dir": str(workdir / "state"),
        "status_page": {
            "url": sim.url,
            "interval": "15s" if fast else "60s",
            "ca_file": str(sim.ca_file),
        },
        "tenants": [
            {
                "proxy": sim.proxy,
                "name": "demo",
                "ca_file": str(sim.ca_file),
                "ping": {"interval": "5s" if fast else "15s", "timeout": "5s"},
                "inventory": {"tctl": str(tctl), "identity_file": str(identity), "interval": "30s"},
                "rollout": {"interval": "60s"},
            }
        ],
    }


@contextlib.contextmanager
def demo_workdir(workdir: Path | None = None) -> Iterator[Path]:
    """`workdir`, or a temporary directory removed on the way out. SIGTERM is turned into
    SystemExit meanwhile, so a stopped demo unwinds through here instead of leaving a key, an
    identity and a fake tctl behind (SIGINT already unwinds as KeyboardInterrupt)."""
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        yield workdir
        return
    created = Path(tempfile.mkdtemp(prefix="tce-demo-"))

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield created
    finally:
        signal.signal(signal.SIGTERM, previous)
        shutil.rmtree(created, ignore_errors=True)


def start_simulator(
    scenario: str, agents: int, workdir: Path, listen: str = "127.0.0.1:0"
) -> tuple[SimulatedTenant, Path]:
    workdir.mkdir(parents=True, exist_ok=True)
    state = SimState(
        scenario=scenario,
        jitter=0.03 if scenario == "demo" else 0.0,
        rollout=scenario_rollout(scenario),  # ping answers per group as the fake tctl's rollout
    )
    sim = SimulatedTenant(state, listen=listen, workdir=workdir)
    tctl = write_fake_tctl(workdir, tctl_scenario(scenario, agents))
    return sim, tctl


def run_demo(listen: str, web_config: Path | None = None) -> int:
    with demo_workdir() as workdir:
        return _run_demo(workdir, listen, web_config)


def _run_demo(workdir: Path, listen: str, web_config: Path | None) -> int:
    from exporter.app import serve
    from exporter.web.config import load_web_config

    # Read first: a bad web configuration stops the demo before anything starts, as in serve.
    web = load_web_config(web_config) if web_config else None
    sim, tctl = start_simulator("demo", DEMO_AGENTS, workdir)
    settings = Settings(**demo_config(sim, sim.workdir, tctl, listen))

    def listening() -> None:
        log.info("demo: simulated tenant at %s, files in %s", sim.url, sim.workdir)
        scheme = "https" if web is not None and web.tls_server_config is not None else "http"
        auth = " (basic auth on)" if web is not None and web.basic_auth_users else ""
        print(
            "teleport-cloud-exporter demo: metrics on "
            f"{scheme}://{_display(settings.listen_address)}/metrics{auth} (Ctrl-C stops)\n"
            "  switch the simulated tenant's scenario "
            "(healthy, skewed, outage, maintenance, demo):\n"
            f"  {_control_command(sim)}",
            file=sys.stderr,
        )

    # The production serve path, with the simulated tenant as one more task.
    return serve(
        settings, web, [sim.serve], listen_flag="--web.listen-address", listening=listening
    )


def _control_command(sim: SimulatedTenant, change: str = '{"scenario": "outage"}') -> str:
    return f"curl --cacert {sim.ca_file} -d '{change}' {sim.url}/_sim/state"


def demo_check() -> int:
    from exporter.check.collect import run_check

    with demo_workdir() as workdir:
        sim, tctl = start_simulator("demo", DEMO_AGENTS, workdir)
        sim.start_in_thread()
        try:
            return run_check(Settings(**demo_config(sim, sim.workdir, tctl, "127.0.0.1:0")))
        finally:
            sim.stop()


def demo_sla_report(month: str | None, fmt: str, out: TextIO) -> int:
    """`sla report --demo`: the report of a ledger holding the demo tenant's simulated month."""
    from exporter.simulator.history import simulated_history
    from exporter.sla.ledger import Ledger
    from exporter.sla.report import main_report

    now = datetime.now(UTC).timestamp()
    with demo_workdir() as workdir:
        ledger = Ledger.open(workdir / "state")
        try:
            ledger.import_minutes("demo", simulated_history(now))
        finally:
            ledger.close()
        print(
            "teleport-cloud-exporter demo: the SLA report of a simulated month so far "
            "(two outages, one inside a maintenance, and a restart gap)",
            file=sys.stderr,
        )
        return main_report(None, month, fmt, out, now=now, ledgers=[workdir / "state"])


def run_simulator(listen: str, scenario: str, agents: int, workdir: Path | None) -> int:
    with demo_workdir(workdir) as directory:
        try:
            return _run_simulator(listen, scenario, agents, directory)
        except KeyboardInterrupt:
            return 130


def _run_simulator(listen: str, scenario: str, agents: int, workdir: Path) -> int:
    sim, tctl = start_simulator(scenario, agents, workdir, listen)
    config_file = sim.workdir / "config.yaml"
    config_file.write_text(
        yaml.safe_dump(
            demo_config(sim, sim.workdir, tctl, "127.0.0.1:10437", fast=False), sort_keys=False
        )
    )
    print(
        f"simulated tenant ({scenario}) at {sim.url}\n"
        f"  control:  {_control_command(sim)}\n"
        f"  exporter: teleport-cloud-exporter serve --config {config_file}\n",
        flush=True,
    )
    anyio.run(sim.serve)
    return 0


def _display(address: str) -> str:
    return address.replace("0.0.0.0", "localhost", 1)
