"""End to end, one scenario per update mode, schedule and strategy: the simulated tenant and the
fake tctl (fleet versions following the group states), `check` run through every real source,
its text, and the stuck counts it reports against the transcription of Teleport's rules in
tests/unit/rollout/test_update_groups_property.py (fed from tctl's own output, not the
exporter's parsing).
"""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from exporter.check.collect import run_check
from exporter.config import Settings
from exporter.simulator.demo import demo_config, start_simulator
from exporter.simulator.fake_tctl import write_fake_tctl
from tests.unit.rollout.test_update_groups_property import TAgent, TGroup, TRollout, transcribe

STATUS_NAMES = {1: "ok", 2: "disabled", 3: "pinned", 4: "unreadable"}
GROUPS = ["dev", "staging", "prod"]


def _inside_window_hour(now: datetime) -> int:
    """A start hour whose two-hour window holds `now` (today, as Teleport computes it)."""
    return max(now.hour - 1, 0)


def _scenarios() -> dict[str, dict[str, Any]]:
    now = datetime.now(UTC)
    inside = _inside_window_hour(now)
    outside = (now.hour + 12) % 24
    base = {"groups": GROUPS, "states": ["done", "active", "unstarted"]}
    return {
        "enabled-halt-on-error": base,
        "suspended": {**base, "mode": "suspended"},
        "disabled": {**base, "mode": "disabled"},
        "immediate": {**base, "schedule": "immediate"},
        "time-based": {
            **base,
            "states": ["done", "done", "unstarted"],
            "strategy": "time-based",
            "window_duration": "7200s",
            "windows": {"dev": [["*"], inside], "staging": [["*"], outside], "prod": [["*"], 0]},
        },
        "canary": {**base, "states": ["canary", "unstarted", "unstarted"]},
    }


def _tctl(tctl: Path, identity: Path, *args: str) -> Any:
    out = subprocess.run(
        [str(tctl), "--auth-server=x:443", "-i", str(identity), *args, "--format=json"],
        env={"TELEPORT_TOOLS_VERSION": "off", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    return json.loads(out)


def _expected(fleet: list[Any], resource: dict[str, Any]) -> dict[str, int]:
    """Stuck agents per group by the transcription of Teleport's rules."""
    spec = resource["spec"]
    groups = [
        TGroup(
            group["name"],
            group["state"].removeprefix("AUTO_UPDATE_AGENT_GROUP_STATE_").lower(),
            list(group.get("config_days", [])),
            int(group.get("config_start_hour", 0)),
            [],
            [canary["host_id"] for canary in group.get("canaries", [])],
        )
        for group in resource["status"].get("groups", [])
    ]
    rollout = TRollout(
        spec["autoupdate_mode"],
        spec["schedule"],
        spec["strategy"],
        timedelta(seconds=float(spec.get("maintenance_window_duration", "3600s")[:-1])),
        groups or [TGroup("unused", "unstarted", [], 0, [], [])],
    )
    agents = []
    for record in fleet:
        spec_ = record.get("spec") if isinstance(record, dict) else None
        if not isinstance(spec_, dict) or not isinstance(spec_.get("version"), str):
            continue
        if not isinstance(record.get("metadata", {}).get("name"), str):
            continue
        if not isinstance(spec_.get("services"), list) or {"Auth", "Proxy"} & set(
            spec_["services"]
        ):
            continue
        info = spec_.get("UpdaterInfo")
        status = None
        updater_id = ""
        if isinstance(info, dict):
            status = STATUS_NAMES.get(info.get("UpdaterStatus", 0), "unspecified")
            updater_id = str(uuid.UUID(bytes=base64.b64decode(info["UpdateUUID"])))
        version = spec_["version"].removeprefix("v")
        agents.append(
            TAgent(
                record["metadata"]["name"],
                spec_.get("ext_upgrader"),
                status,
                info.get("UpdateGroup", "") if isinstance(info, dict) else "",
                updater_id,
                version,
            )
        )
    result: dict[str, int] = transcribe(rollout, agents, datetime.now(UTC))["stuck"]
    return result


@pytest.mark.parametrize("name", list(_scenarios()))
def test_scenario_end_to_end(tmp_path: Path, name: str) -> None:
    rollout = _scenarios()[name]
    sim, _ = start_simulator("healthy", 1, tmp_path)
    sim.state.apply({"rollout": rollout})
    tctl = write_fake_tctl(
        tmp_path / "bin",
        {
            "inventory": {"size": 150, "mix": "skewed", "seed": 7},
            "rollout": rollout,
            "agent_report": {"auth_servers": [["auth-a", 5.0], ["auth-b", 400.0]]},
            "maintenance_config": {"weekdays": ["Mon", "Wed"], "utc_start_hour": 2},
        },
    )
    settings = Settings(**demo_config(sim, sim.workdir, tctl, "127.0.0.1:0"))
    identity = settings.tenants[0].inventory.identity_file
    fleet = _tctl(tctl, identity, "inventory", "ls")
    (resource,) = _tctl(tctl, identity, "get", "autoupdate_agent_rollout")
    if name == "canary":
        # Teleport samples its canaries from the group's agents: two of dev's, still on the
        # start version, so both are asked for the target and stuck until they update.
        chosen = [
            record
            for record in fleet
            if isinstance(record, dict)
            and (record.get("spec", {}).get("UpdaterInfo") or {}).get("UpdateGroup") == "dev"
            and record["spec"]["UpdaterInfo"].get("UpdaterStatus") == 1
            and record["spec"]["version"].removeprefix("v") == "18.0.2"
        ][:2]
        assert len(chosen) == 2
        resource["status"]["groups"][0]["canaries"] = [
            {"host_id": r["metadata"]["name"], "hostname": r["spec"]["hostname"]} for r in chosen
        ]
        recorded = tmp_path / "rollout.json"
        recorded.write_text(json.dumps([resource], indent=4) + "\n")
        scenario = json.loads((tmp_path / "bin" / "tctl-scenario.json").read_text())
        write_fake_tctl(tmp_path / "bin", {**scenario, "rollout_file": str(recorded)})
    sim.start_in_thread()
    try:
        out = io.StringIO()
        code = run_check(settings, out)
    finally:
        sim.stop()
    report = out.getvalue()
    assert code in (0, 1), report

    expected = _expected(fleet, resource)
    for group, count in expected.items():
        line = re.search(rf"Stuck in {re.escape(group)}: (\d+) agent\(s\) asked to update", report)
        if count:
            assert line and int(line.group(1)) == count, (group, count, report)
        else:
            assert line is None, (group, report)
    lines = report.splitlines()

    def group_line(group: str) -> str:
        return next(line for line in lines if line.strip().startswith(group + " "))

    assert "Upgrade window  Mon, Wed at 02:00 UTC for v1 unit and kube agents" in report
    if name == "enabled-halt-on-error":
        assert "asked to update now" in group_line("dev")  # halt-on-error: done keeps asking
        assert "not started yet: its agents wait" in group_line("prod")
        assert "runs 18.0.2" in group_line("prod") and "(catch-all)" in group_line("prod")
        assert any(expected.values())
    elif name in ("suspended", "disabled"):
        assert f"updates {name}: Teleport asks no agent to update" in report
        assert not any(expected.values()) and "Stuck in" not in report
        version = "18.1.4" if name == "disabled" else "18.0.2"  # disabled answers the target
        assert f"runs {version}" in group_line("prod")
    elif name == "immediate":
        assert "immediate schedule: every agent should run 18.1.4 now (no groups)" in report
        assert sum(expected.values()) > 0
    elif name == "time-based":
        assert "asked to update now" in group_line("dev")  # done, inside its window
        assert "outside its window" in group_line("staging")  # done, outside: waiting
        assert "Stuck in staging" not in report
    elif name == "canary":
        assert "canaries only" in group_line("dev")
        assert "runs 18.0.2" in group_line("dev")
        assert expected["dev"] == 2  # the two canaries, asked for the target


def test_check_compares_teleports_counts_and_reports(tmp_path: Path) -> None:
    """`check` says when the inventory disagrees with the rollout's own counts for the agents
    Teleport counts, and summarises the merged agent reports (the stale one dropped)."""
    rollout = {"groups": GROUPS, "states": ["done", "active", "unstarted"]}
    sim, _ = start_simulator("healthy", 1, tmp_path)
    sim.state.apply({"rollout": rollout})
    scenario: dict[str, Any] = {
        "inventory": {"size": 150, "mix": "skewed", "seed": 7},
        "rollout": rollout,
        "agent_report": {"auth_servers": [["auth-a", 5.0], ["auth-b", 400.0]]},
    }
    tctl = write_fake_tctl(tmp_path / "bin", scenario)
    settings = Settings(**demo_config(sim, sim.workdir, tctl, "127.0.0.1:0"))
    identity = settings.tenants[0].inventory.identity_file
    (resource,) = _tctl(tctl, identity, "get", "autoupdate_agent_rollout")
    honest = {
        g["name"]: (int(g.get("present_count", 0)), int(g.get("up_to_date_count", 0)))
        for g in resource["status"]["groups"]
    }
    # The rollout claims other counts for dev than its agents give (as right after agents join).
    counts = {**honest, "dev": [1, 1]}
    write_fake_tctl(tmp_path / "bin", {**scenario, "rollout": {**rollout, "counts": counts}})
    reports = _tctl(tctl, identity, "get", "autoupdate_agent_report")
    sim.start_in_thread()
    try:
        out = io.StringIO()
        run_check(settings, out)
    finally:
        sim.stop()
    report = out.getvalue()
    present, current = honest["dev"]
    assert present > 1
    assert f"the inventory gives {current}/{present} for the agents Teleport counts" in report
    assert report.count("the inventory gives") == 1  # staging and prod agree
    fresh = sum(
        entry["count"]
        for detail in reports[0]["spec"]["groups"].values()
        for entry in detail["versions"].values()
    )
    assert f"Agent reports   {fresh} agent(s) counted by 1 Auth server(s)" in report
    assert "stale report(s) dropped: auth-b" in report
