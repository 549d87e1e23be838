"""`serve --demo`, `check --demo` and `simulate`: the exporter against the simulated tenant.

Everything lives in a fresh temporary directory (CA, fake tctl, identity placeholder, ledger),
and nothing leaves loopback.
"""

from __future__ import annotations

import logging
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import yaml

from exporter.config import ConfigError, Settings
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


def start_simulator(
    scenario: str, agents: int, workdir: Path | None = None, listen: str = "127.0.0.1:0"
) -> tuple[SimulatedTenant, Path]:
    workdir = workdir or Path(tempfile.mkdtemp(prefix="tce-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    state = SimState(
        scenario=scenario,
        jitter=0.03 if scenario == "demo" else 0.0,
        rollout=scenario_rollout(scenario),  # ping answers per group as the fake tctl's rollout
    )
    sim = SimulatedTenant(state, listen=listen, workdir=workdir)
    tctl = write_fake_tctl(workdir, tctl_scenario(scenario, agents))
    return sim, tctl


def run_demo(listen: str) -> int:
    from exporter.app import run_exporter, tune_gc
    from exporter.sla.ledger import Ledger
    from exporter.web.server import bind

    sim, tctl = start_simulator("demo", DEMO_AGENTS)
    settings = Settings(**demo_config(sim, sim.workdir, tctl, listen))
    try:
        sock = bind(settings.listen_address)
    except OSError as exc:
        raise ConfigError(
            f"--web.listen-address: cannot listen on {listen}: {exc.strerror}"
        ) from exc
    ledger = Ledger.open(settings.state_dir)
    log.info("demo: simulated tenant at %s, files in %s", sim.url, sim.workdir)
    print(
        "teleport-cloud-exporter demo: metrics on "
        f"http://{_display(settings.listen_address)}/metrics (Ctrl-C stops)",
        file=sys.stderr,
    )
    tune_gc()
    anyio.run(run_exporter, settings, sock, ledger, None, [sim.serve])
    return 0


def demo_check() -> int:
    from exporter.check.report import run_check

    sim, tctl = start_simulator("demo", DEMO_AGENTS)
    sim.start_in_thread()
    try:
        return run_check(Settings(**demo_config(sim, sim.workdir, tctl, "127.0.0.1:0")))
    finally:
        sim.stop()


def run_simulator(listen: str, scenario: str, agents: int, workdir: Path | None) -> int:
    sim, tctl = start_simulator(scenario, agents, workdir, listen)
    config_file = sim.workdir / "config.yaml"
    config_file.write_text(
        yaml.safe_dump(
            demo_config(sim, sim.workdir, tctl, "127.0.0.1:10437", fast=False), sort_keys=False
        )
    )
    print(
        f"simulated tenant ({scenario}) at {sim.url}\n"
        f"  control:  curl --cacert {sim.ca_file} {sim.url}/_sim/state\n"
        f"  exporter: teleport-cloud-exporter serve --config {config_file}\n",
        flush=True,
    )
    anyio.run(sim.serve)
    return 0


def _display(address: str) -> str:
    return address.replace("0.0.0.0", "localhost", 1)
