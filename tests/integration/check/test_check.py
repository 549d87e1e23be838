"""The check command: one collection, a readable report, exit 0 / 1 findings / 2 uncollected."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from exporter.check.collect import run_check
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
        _agent(3, "v18.1.4", "binary"),
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
        assert (
            "Fleet size      3 of the 10,000 agents Teleport asks to discuss first (0%)" in report
        )
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


def _binary(index: int, version: str, group: str, status: int) -> dict[str, object]:
    record = _agent(index, version, "binary")
    spec = record["spec"]
    assert isinstance(spec, dict)
    spec["UpdaterInfo"] = {"UpdateGroup": group, "UpdaterStatus": status}
    return record


def test_pinned_disabled_and_stuck_agents_summarised(tmp_path: Path) -> None:
    """Rollout 18.0.2 -> 18.1.4, dev active, prod unstarted. Summaries by version come first,
    then hosts; pinned and disabled agents behind the target are a finding, never stuck; an
    unstarted group is not asked, so nobody in it is stuck."""
    sim, _ = start_simulator("healthy", 1, tmp_path)
    agents = [
        _binary(1, "18.1.4", "dev", 1),
        _binary(2, "17.3.7", "dev", 3),  # pinned, a major behind: blocks, not updating
        _binary(3, "17.3.7", "dev", 2),  # disabled, a major behind: blocks, not updating
        _binary(4, "18.0.2", "dev", 2),  # disabled, behind the target: not updating
        _binary(5, "18.0.2", "prod", 1),  # unstarted group on the start version: waiting
        _binary(6, "18.1.4", "prod", 3),  # pinned but on the target
        _agent(7, "17.3.7", "unit"),  # channel `default`, unlisted: prod, not asked yet
        _binary(8, "18.0.2", "dev", 1),  # asked, able, still on the start: stuck
        _binary(9, "17.3.7", "", 1),  # no group: the last group (prod), waiting
    ]
    recorded = tmp_path / "inventory.json"
    recorded.write_text(json.dumps(agents, indent=2))
    rollout = {"groups": ["dev", "prod"], "states": ["active", "unstarted"]}
    tctl = write_fake_tctl(tmp_path / "t", {"inventory_file": str(recorded), "rollout": rollout})
    sim.state.apply({"rollout": rollout})
    sim.start_in_thread()
    try:
        out = io.StringIO()
        assert run_check(_settings(sim, tctl), out) == 1
    finally:
        sim.stop()
    report = out.getvalue()
    assert "target agent version 18.1.4" in report  # the rollout's, not ping's 18.0.2
    blocked = report[report.index("Next upgrade    BLOCKED by 4 agent(s)") :]
    summary = blocked.splitlines()[1:3]
    assert summary[0].split() == ["VERSION", "BEHIND", "AGENTS", "UPGRADERS"]
    assert summary[1].split() == ["17.3.7", "1", "4", "binary,", "unit"]
    assert (
        "Updater off     4 agent(s) will not update by themselves: disabled 2, pinned 2" in report
    )
    frozen = report[report.index("Updater off     3 of them") :].splitlines()
    assert frozen[2].split() == ["17.3.7", "1", "2", "binary"]
    assert frozen[3].split() == ["18.0.2", "0", "1", "binary"]
    hosts = [line.split()[0] for line in frozen[5:8]]
    assert hosts == ["node-2", "node-3", "node-4"]
    assert [line.split()[3] for line in frozen[5:8]] == ["pinned", "disabled", "disabled"]
    stuck = report[report.index("Stuck in dev: 1 agent(s) asked to update, not on 18.1.4") :]
    assert stuck.splitlines()[2].split() == ["18.0.2", "0", "1", "binary"]
    assert "Stuck in prod" not in report
    assert "Not updating    4: no_upgrader 0, disabled 2, pinned 2, unreadable 0" in report
    # Group lines, without the notes on Teleport's own (here made-up) counts between them.
    rollout_lines = [
        line
        for line in report[report.index("  Rollout ") :].splitlines()
        if "the inventory gives" not in line
    ]
    assert rollout_lines[1].split()[:4] == ["dev", "active", "runs", "18.1.4"]
    assert "asked to update now" in rollout_lines[1]
    assert rollout_lines[2].split()[:5] == ["prod", "(catch-all)", "unstarted", "runs", "18.0.2"]
    assert "4 agent(s) by the inventory; not started yet: its agents wait" in rollout_lines[2]
    findings = report[report.index("Findings:") :]
    assert "3 agent(s) with a disabled or pinned updater are behind the target" in findings
    assert "1 agent(s) of update group dev are asked to update and are not on its version" in (
        findings
    )
