"""The check command: one collection, a readable report, exit 0 / 1 findings / 2 uncollected."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from exporter.check import run_check
from exporter.config import Settings
from exporter.simulator.demo import demo_config, start_simulator
from exporter.simulator.fake_tctl import write_fake_tctl
from exporter.simulator.server import SimulatedTenant


def _settings(sim: SimulatedTenant, tctl: Path) -> Settings:
    return Settings(**demo_config(sim, sim.workdir, tctl, "127.0.0.1:0"))


@pytest.fixture
def skewed(tmp_path: Path) -> Iterator[tuple[SimulatedTenant, Path]]:
    sim, tctl = start_simulator("skewed", 60, tmp_path)
    sim.start_in_thread()
    yield sim, tctl
    sim.stop()


def test_skewed_fleet_is_reported_with_blocking_agents(
    skewed: tuple[SimulatedTenant, Path],
) -> None:
    sim, tctl = skewed
    out = io.StringIO()
    assert run_check(_settings(sim, tctl), out) == 1
    report = out.getvalue()
    blocked = re.search(r"Next upgrade\s+BLOCKED by (\d+) agent", report)
    assert blocked and int(blocked.group(1)) > 0
    table = report[report.index("HOSTNAME") :].splitlines()[1 : 1 + int(blocked.group(1))]
    assert len([row for row in table if row.startswith("    ") and "..." not in row]) == min(
        20, int(blocked.group(1))
    )
    assert "Control plane   18.1.4" in report
    assert "Enrolment" in report and "Rollout" in report
    assert "Findings:" in report and "not enrolled in automatic updates" in report


def _agent(index: int, version: str, upgrader: str) -> dict[str, object]:
    return {
        "kind": "instance",
        "version": "v1",
        "metadata": {"name": f"00000000-0000-4000-8000-{index:012d}"},
        "spec": {
            "version": version,
            "services": ["Node"],
            "hostname": f"node-{index}",
            "last_seen": "2026-11-25T03:00:00Z",
            "ext_upgrader": upgrader,
            "ext_upgrader_version": "v" + version,
        },
    }


def test_healthy_tenant_exits_0(tmp_path: Path) -> None:
    sim, _ = start_simulator("healthy", 1, tmp_path)
    recorded = tmp_path / "inventory.json"
    agents = [
        _agent(1, "18.1.4", "unit"),
        _agent(2, "18.1.4", "kube"),
        _agent(3, "v18.1.4", "updater"),
    ]
    recorded.write_text(json.dumps(agents, indent=2))
    tctl = write_fake_tctl(tmp_path / "healthy", {"inventory_file": str(recorded), "rollout": None})
    sim.start_in_thread()
    try:
        out = io.StringIO()
        assert run_check(_settings(sim, tctl), out) == 0, out.getvalue()
        report = out.getvalue()
        assert "Healthy: no findings." in report
        assert "current 3, one_major_behind 0" in report
        assert "not blocked" in report
    finally:
        sim.stop()


def test_uncollectable_source_exits_2(skewed: tuple[SimulatedTenant, Path], tmp_path: Path) -> None:
    sim, _ = skewed
    broken = write_fake_tctl(tmp_path / "denied", {"fault": "access_denied"})
    out = io.StringIO()
    assert run_check(_settings(sim, broken), out) == 2
    report = out.getvalue()
    failures = report[report.index("Could not collect:") :]
    assert "  - inventory demo: auth: " in failures and "access denied" in failures
