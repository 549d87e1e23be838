"""Teleport 18's agent reports: merged over Auth servers, stale ones dropped as Teleport drops
them, absent without a rollout, and a tenant that cannot serve them said once, not counted."""

from __future__ import annotations

import json
import logging
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest

from exporter.config import Settings
from exporter.core.scheduler import Runtime
from exporter.core.state import Hub
from exporter.core.versions import normalise
from exporter.derivations import attach_derivers
from exporter.rollout.agent_report_model import merge_reports, parse_agent_reports
from exporter.rollout.agent_report_source import AgentReportSource
from exporter.rollout.source import RolloutSource
from exporter.simulator.fake_tctl import write_fake_tctl
from tests.conftest import parse_samples, series, value

ROLLOUT = {"groups": ["dev", "staging", "prod"], "states": ["done", "active", "unstarted"]}
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC).timestamp()
AGENTS = "teleport_cloud_autoupdate_report_agents"
OMITTED = "teleport_cloud_autoupdate_report_omitted"
STAMP = "teleport_cloud_autoupdate_report_timestamp_seconds"


def _scenario(**extra: Any) -> dict[str, Any]:
    return {
        "inventory": {"size": 120, "seed": 3, "now": NOW},
        "rollout": {**ROLLOUT, "now": NOW},
        "agent_report": {"auth_servers": [["auth-a", 5.0], ["auth-b", 300.0]], "now": NOW},
        **extra,
    }


def _setup(tmp_path: Path, scenario: dict[str, Any]) -> tuple[Hub, Path]:
    identity = tmp_path / "identity"
    identity.write_text("identity")
    tctl = write_fake_tctl(tmp_path / "bin", scenario)
    settings = Settings(
        state_dir=tmp_path,
        tenants=[
            {
                "proxy": "proxy.example.test",
                "name": "t",
                "inventory": {"tctl": str(tctl), "identity_file": str(identity)},
            }
        ],
    )
    return attach_derivers(Hub(settings)), tctl


def _tctl_reports(tctl: Path, tmp_path: Path) -> list[dict[str, Any]]:
    """What tctl prints, read independently of the exporter's parser."""
    out = subprocess.run(
        [
            str(tctl),
            "--auth-server=proxy.example.test:443",
            "-i",
            str(tmp_path / "identity"),
            "get",
            "autoupdate_agent_report",
            "--format=json",
        ],
        env={"TELEPORT_TOOLS_VERSION": "off", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    assert out.startswith('[\n    {\n        "kind": "autoupdate_agent_report"')  # protojson
    reports: list[dict[str, Any]] = json.loads(out)
    return reports


def test_two_auth_servers_one_stale(tmp_path: Path) -> None:
    hub, tctl = _setup(tmp_path, _scenario())
    tenant = hub.tenants["t"]
    anyio.run(RolloutSource(hub, tenant).refresh)
    source = AgentReportSource(hub, tenant)
    anyio.run(source.refresh)

    fresh, stale = _tctl_reports(tctl, tmp_path)
    assert fresh["metadata"]["name"] == "auth-a" and stale["metadata"]["name"] == "auth-b"
    assert fresh["spec"]["groups"] and stale["spec"]["groups"]  # both carry agents
    for entry in fresh["spec"]["omitted"]:
        assert isinstance(entry["count"], str)  # int64 as a string
    samples = parse_samples(hub.exposition.body().decode())
    expected: dict[tuple[str, str], int] = {}
    for group, detail in fresh["spec"]["groups"].items():
        for version, entry in detail["versions"].items():
            assert isinstance(entry["count"], int)  # int32 as a number
            key = (group, normalise(version))
            expected[key] = expected.get(key, 0) + entry["count"]
    got = {
        (labels["group"], labels["version"]): value(samples, AGENTS, **labels)
        for labels in series(samples, AGENTS)
    }
    assert got == expected  # auth-b's report is five minutes old: Teleport ignores it
    omitted = {
        labels["reason"]: value(samples, OMITTED, **labels) for labels in series(samples, OMITTED)
    }
    assert omitted == {e["reason"]: int(e["count"]) for e in fresh["spec"]["omitted"]}
    assert "updater is pinning a specific version" in omitted or "agent has no updater" in omitted
    assert value(samples, STAMP, tenant="t") == NOW - 5.0
    assert source.report is not None and source.report.dropped == ("auth-b",)


def test_two_fresh_auth_servers_are_summed(tmp_path: Path) -> None:
    scenario = _scenario(agent_report={"auth_servers": [["a", 5.0], ["b", 40.0]], "now": NOW})
    hub, tctl = _setup(tmp_path, scenario)
    tenant = hub.tenants["t"]
    anyio.run(RolloutSource(hub, tenant).refresh)
    anyio.run(AgentReportSource(hub, tenant).refresh)
    samples = parse_samples(hub.exposition.body().decode())
    total = sum(value(samples, AGENTS, **labels) for labels in series(samples, AGENTS))
    reports = _tctl_reports(tctl, tmp_path)
    counted = sum(
        entry["count"]
        for report in reports
        for detail in report["spec"]["groups"].values()
        for entry in detail["versions"].values()
    )
    assert total == counted > 0
    # Every agent the reports count runs a binary or kube updater with status OK and a group:
    # the same agents the rollout's present counts cover.
    rollout = tenant.rollout
    assert rollout is not None
    assert sum(group.present_count for group in rollout.status.groups) == counted


def test_absent_without_a_rollout_and_gone_with_it(tmp_path: Path) -> None:
    hub, _ = _setup(tmp_path, _scenario())
    tenant = hub.tenants["t"]
    rollout, reports = RolloutSource(hub, tenant), AgentReportSource(hub, tenant)
    anyio.run(rollout.refresh)
    anyio.run(reports.refresh)
    assert series(parse_samples(hub.exposition.body().decode()), AGENTS)

    write_fake_tctl(tmp_path / "bin", _scenario(rollout=None))
    anyio.run(rollout.refresh)  # the rollout is gone: the report families go at once
    samples = parse_samples(hub.exposition.body().decode())
    assert not series(samples, AGENTS) and not series(samples, STAMP)
    anyio.run(reports.refresh)  # and stay away (the fake prints [] without a rollout)
    assert not series(parse_samples(hub.exposition.body().decode()), AGENTS)


@pytest.mark.parametrize("fault", ["access_denied", "older_teleport"])
def test_unavailable_is_said_once_and_not_counted(
    tmp_path: Path, fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    hub, _ = _setup(tmp_path, _scenario(fault=fault, fault_command="agent_report"))
    tenant = hub.tenants["t"]
    rollout = RolloutSource(hub, tenant)
    source = AgentReportSource(hub, tenant)
    runtime = Runtime(hub, [rollout, source], seed=1)
    anyio.run(rollout.refresh)
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            error = anyio.run(runtime.refresh_once, source)
            assert error is not None and error.retry_after == 3600.0
    lines = [r.getMessage() for r in caplog.records if "agent_report" in r.getMessage()]
    assert len(lines) == 1, lines
    assert "unavailable" in lines[0]
    assert ("has no rule" if fault == "access_denied" else "cannot serve") in lines[0]
    samples = parse_samples(hub.exposition.body().decode())
    assert value(samples, "teleport_cloud_source_up", source="agent_report", target="t") == 0
    errors = [
        value(samples, "teleport_cloud_source_errors_total", **labels)
        for labels in series(samples, "teleport_cloud_source_errors_total")
        if labels["source"] == "agent_report"
    ]
    assert errors and not any(errors)
    assert not series(samples, AGENTS)

    write_fake_tctl(tmp_path / "bin", _scenario())  # the rule was added
    with caplog.at_level(logging.INFO):
        assert anyio.run(runtime.refresh_once, source) is None
    assert any("available again" in r.getMessage() for r in caplog.records)
    samples = parse_samples(hub.exposition.body().decode())
    assert value(samples, "teleport_cloud_source_up", source="agent_report", target="t") == 1
    assert series(samples, AGENTS)


def test_an_ordinary_failure_is_still_counted(tmp_path: Path) -> None:
    hub, _ = _setup(tmp_path, _scenario(fault="expired_cert", fault_command="agent_report"))
    tenant = hub.tenants["t"]
    source = AgentReportSource(hub, tenant)
    runtime = Runtime(hub, [source], seed=1)
    error = anyio.run(runtime.refresh_once, source)
    assert error is not None and error.reason == "auth"  # our expired identity
    samples = parse_samples(hub.exposition.body().decode())
    assert (
        value(
            samples,
            "teleport_cloud_source_errors_total",
            source="agent_report",
            target="t",
            reason="auth",
        )
        == 1
    )


def test_merge_keeps_reports_within_a_minute_of_the_newest() -> None:
    def report(name: str, stamp: str | None, count: int) -> dict[str, Any]:
        spec: dict[str, Any] = {"groups": {"dev": {"versions": {"18.1.4": {"count": count}}}}}
        if stamp:
            spec["timestamp"] = stamp
        return {"metadata": {"name": name}, "spec": spec}

    reports = parse_agent_reports(
        json.dumps(
            [
                report("a", "2026-12-01T12:00:00Z", 3),
                report("b", "2026-12-01T11:59:00Z", 4),  # exactly a minute older: kept
                report("c", "2026-12-01T11:58:59.5Z", 5),  # older: dropped
                report("d", None, 6),  # no timestamp: Teleport rejects such a report
            ]
        ).encode()
    )
    merged = merge_reports(reports)
    assert merged is not None
    assert merged.agents == {("dev", "18.1.4"): 7}
    assert merged.used == ("a", "b") and set(merged.dropped) == {"c", "d"}
    assert merge_reports([]) is None
    assert parse_agent_reports(b"[]") == []


def test_reports_read_before_the_rollout_appear_with_it(tmp_path: Path) -> None:
    """The first round runs the sources in any order: reports read while the rollout is not
    known yet are published as soon as the rollout source sees it, not a minute later."""
    hub, _ = _setup(tmp_path, _scenario())
    tenant = hub.tenants["t"]
    reports, rollout = AgentReportSource(hub, tenant), RolloutSource(hub, tenant)
    anyio.run(reports.refresh)
    assert not series(parse_samples(hub.exposition.body().decode()), AGENTS)
    anyio.run(rollout.refresh)
    assert series(parse_samples(hub.exposition.body().decode()), AGENTS)
