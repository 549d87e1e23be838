"""The simulator and the fake tctl print what Teleport prints (the Teleport facts), checked field
by field on their actual output: tctl's inventory and rollout encodings, `tctl version`, ping per
update group, and the v1 version channel."""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from exporter.fleet.model import parse_inventory
from exporter.simulator.fake_tctl import inventory_text, write_fake_tctl
from exporter.simulator.server import SimulatedTenant

RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.(\d{1,9}))?Z")
# InstanceSpecV1's fields in the Go struct's order; json-iterator keeps that order.
SPEC_ORDER = (
    "version",
    "services",
    "hostname",
    "auth_id",
    "last_seen",
    "control_log",
    "ext_upgrader",
    "ext_upgrader_version",
    "LastMeasurement",
    "UpdaterInfo",
)
GROUP_STATE = re.compile(r"AUTO_UPDATE_AGENT_GROUP_STATE_(UNSTARTED|ACTIVE|DONE|ROLLEDBACK|CANARY)")


def _tctl(tmp_path: Path, scenario: dict[str, Any], *args: str) -> str:
    identity = tmp_path / "identity"
    identity.write_text("identity")
    fake = write_fake_tctl(tmp_path / "bin", scenario)
    command = [str(fake), "--auth-server=proxy.example.test:443", "-i", str(identity), *args]
    env = {**os.environ, "TELEPORT_TOOLS_VERSION": "off"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=True)
    return done.stdout


@pytest.fixture(scope="module")
def inventory(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[dict[str, Any]]]:
    scenario = {"inventory": {"size": 400, "mix": "skewed", "seed": 5}}
    text = _tctl(tmp_path_factory.mktemp("inv"), scenario, "inventory", "ls", "--format=json")
    return text, json.loads(text)


def test_inventory_layout(inventory: tuple[str, list[dict[str, Any]]]) -> None:
    text, records = inventory
    assert text.endswith("}\n]\n") and not text.endswith("\n\n")  # one trailing newline
    assert text.startswith('[\n  {\n    "kind": "instance",\n')  # 2-space indent
    assert len(records) == 403  # 400 agents + Auth + 2 Proxy
    assert inventory_text([]) == "[\n  \n]\n"  # json-iterator's empty array
    assert parse_inventory(inventory_text([]).encode()).instances == []


def test_inventory_records_field_by_field(inventory: tuple[str, list[dict[str, Any]]]) -> None:
    _, records = inventory
    nine_digits = 0
    statuses: set[int] = set()
    for record in records:
        assert list(record)[:4] == ["kind", "version", "metadata", "spec"]
        assert record["kind"] == "instance" and record["version"] == "v1"
        assert RFC3339.fullmatch(record["metadata"]["expires"])
        spec = record["spec"]
        keys = list(spec)
        assert keys == [key for key in SPEC_ORDER if key in spec], keys  # Go's order, no extras
        for key, field in spec.items():  # omitempty: nothing empty is printed
            assert field not in ("", [], {}, None), (key, record)
        seen = RFC3339.fullmatch(spec["last_seen"])
        assert seen, spec["last_seen"]
        fraction = seen.group(2) or ""
        assert not fraction.endswith("0")  # RFC3339Nano drops trailing zeros
        nine_digits += len(fraction) == 9
        if "LastMeasurement" in spec:
            measurement = spec["LastMeasurement"]
            assert set(measurement) <= {
                "controller_system_clock",
                "system_clock",
                "request_duration",
            }
            assert isinstance(measurement["request_duration"], int)
        upgrader = spec.get("ext_upgrader")
        if "UpdaterInfo" in spec:
            # teleport-update and the kube updater report it (the kube one always OK); v1 unit
            # updaters and agents without an upgrader do not.
            assert upgrader in ("binary", "kube")
            info = spec["UpdaterInfo"]
            if upgrader == "kube":
                assert info["UpdaterStatus"] == 1
            assert set(info) <= {"UpdateGroup", "UpdateUUID", "UpdaterStatus"}
            if "UpdaterStatus" in info:
                status = info["UpdaterStatus"]
                assert type(status) is int and 1 <= status <= 4  # a number, omitted at 0
                statuses.add(status)
            else:
                statuses.add(0)
        else:
            assert upgrader not in ("binary", "kube"), "an updater without UpdaterInfo"
        assert upgrader != "updater"  # the v2 kind is `binary`
    assert nine_digits > 0  # Go clocks have nanoseconds
    assert statuses == {0, 1, 2, 3, 4}  # every updater status occurs in the skewed mix


@pytest.mark.parametrize("strategy", ["halt-on-error", "time-based"])
def test_rollout_protojson_field_by_field(tmp_path: Path, strategy: str) -> None:
    scenario = {
        "rollout": {
            "groups": ["dev", "canaries", "staging", "prod"],
            "states": ["done", "canary", "active", "unstarted"],
            "strategy": strategy,
        }
    }
    text = _tctl(tmp_path, scenario, "get", "autoupdate_agent_rollout", "--format=json")
    assert text.startswith('[\n    {\n        "kind": "autoupdate_agent_rollout",\n')  # 4 spaces
    assert text.endswith("}\n]\n")
    (resource,) = json.loads(text)
    spec = resource["spec"]
    assert ("maintenance_window_duration" in spec) == (strategy == "time-based")
    assert spec.get("maintenance_window_duration", "3600s") == "3600s"
    assert re.fullmatch(r"AUTO_UPDATE_AGENT_ROLLOUT_STATE_[A-Z]+", resource["status"]["state"])

    def no_zero_values(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for key, child in node.items():
                assert child not in (0, "", False, [], {}, None, "0"), f"{where}.{key}"
                no_zero_values(child, f"{where}.{key}")
        elif isinstance(node, list):
            for index, child in enumerate(node):
                no_zero_values(child, f"{where}[{index}]")

    no_zero_values(resource, "rollout")
    groups = {group["name"]: group for group in resource["status"]["groups"]}
    for group in groups.values():
        assert GROUP_STATE.fullmatch(group["state"])
        for count in ("initial_count", "present_count", "up_to_date_count", "canary_count"):
            if count in group:  # uint64: a string of digits
                assert isinstance(group[count], str) and group[count].isdigit(), count
        assert isinstance(group.get("config_start_hour", 1), int)  # int32: a number
    assert "config_start_hour" not in groups["dev"]  # hour 0 is omitted
    # Teleport counts each group's agents from their reports: the same fleet tctl lists.
    fleet = json.loads(_tctl(tmp_path, scenario, "inventory", "ls", "--format=json"))
    target = spec["target_version"]
    # Teleport's reports count an agent with an upgrader other than v1 `unit`, a reported group
    # and updater status OK; halt-on-error counts unlisted groups into the last group.
    counted: dict[str, list[dict[str, Any]]] = {}
    for record in fleet:
        agent = record.get("spec") if isinstance(record, dict) else None
        if not isinstance(agent, dict) or {"Auth", "Proxy"} & set(agent.get("services", [])):
            continue
        info = agent.get("UpdaterInfo") or {}
        if agent.get("ext_upgrader", "unit") == "unit" or not info.get("UpdateGroup"):
            continue
        if info.get("UpdaterStatus") != 1:
            continue
        name = info["UpdateGroup"]
        if name not in groups:
            if strategy != "halt-on-error":
                continue
            name = "prod"
        counted.setdefault(name, []).append(agent)
    for name, group in groups.items():
        members = counted.get(name, [])
        on_target = sum(m["version"].removeprefix("v") == target for m in members)
        assert int(group.get("present_count", "0")) == len(members), name
        assert int(group.get("up_to_date_count", "0")) == on_target, name  # 0 is omitted
    assert "present_count" not in groups["canaries"]  # no agent reports that group
    assert "start_time" not in groups["prod"]
    canary = groups["canaries"]
    assert int(canary["canary_count"]) == len(canary["canaries"]) > 0
    for entry in canary["canaries"]:
        assert set(entry) <= {"updater_id", "host_id", "hostname", "success"}
        assert entry.get("success", True) is True  # false is omitted


def test_tctl_version_line(tmp_path: Path) -> None:
    fake = write_fake_tctl(tmp_path, {"tctl_version": "17.5.2"})
    env = {**os.environ, "TELEPORT_TOOLS_VERSION": "off"}
    out = subprocess.run(
        [str(fake), "version"], capture_output=True, text=True, env=env, timeout=60, check=True
    ).stdout
    assert re.fullmatch(
        r"Teleport Enterprise v17\.5\.2 git:v17\.5\.2-0-g[0-9a-f]+ go1\.\d+\.\d+\n", out
    )
    out = subprocess.run(
        [str(fake), "version"],
        capture_output=True,
        text=True,
        env={**env, "FAKE_TCTL_VERSION": "16.4.9"},
        timeout=60,
        check=True,
    ).stdout
    assert out.startswith("Teleport Enterprise v16.4.9 ")


@pytest.fixture
def with_rollout(sim: SimulatedTenant) -> Iterator[httpx.Client]:
    sim.state.apply({"rollout": {"groups": ["dev", "staging", "prod"]}})
    try:
        context = ssl.create_default_context(cafile=str(sim.ca_file))
        with httpx.Client(verify=context, timeout=5) as client:
            yield client
    finally:
        sim.state.apply({"rollout": None, "channel_critical": False})


@pytest.mark.parametrize(
    ("query", "version"),
    [
        ("", "18.0.2"),  # no group: the rollout's last group (prod, unstarted): start version
        ("?group=dev", "18.1.4"),  # done
        ("?group=staging", "18.1.4"),  # active
        ("?group=prod", "18.0.2"),  # unstarted
        ("?group=nosuch", "18.0.2"),  # unknown: answered for the last group
    ],
)
def test_ping_answers_per_update_group(
    sim: SimulatedTenant, with_rollout: httpx.Client, query: str, version: str
) -> None:
    body = with_rollout.get(f"{sim.url}/webapi/ping{query}").json()
    assert body["auto_update"]["agent_version"] == version


def test_version_channel_as_teleport_prints_it(sim: SimulatedTenant) -> None:
    """Without a rollout: the channel's version and critical flag, no trailing newline."""
    context = ssl.create_default_context(cafile=str(sim.ca_file))
    channel = f"{sim.url}/v1/webapi/automaticupgrades/channel/default/"
    with httpx.Client(verify=context, timeout=5) as client:
        assert client.get(channel + "version").content == b"v18.1.4"
        assert client.get(channel + "critical").content == b"no"
        sim.state.apply({"channel_critical": True})
        try:
            assert client.get(channel + "critical").content == b"yes"
        finally:
            sim.state.apply({"channel_critical": False})
        other = f"{sim.url}/v1/webapi/automaticupgrades/channel/staging/version"
        assert client.get(other).status_code == 404  # no such channel without a rollout


@pytest.mark.parametrize(
    ("channel", "version", "critical"),
    [
        ("default", b"v18.0.2", b"no"),  # `default` is not listed: the last group, unstarted
        ("dev", b"v18.1.4", b"yes"),  # done, halt-on-error: still asked
        ("staging", b"v18.1.4", b"yes"),  # active
        ("prod", b"v18.0.2", b"no"),  # unstarted
    ],
)
def test_version_channel_answers_per_group_with_a_rollout(
    sim: SimulatedTenant, with_rollout: httpx.Client, channel: str, version: bytes, critical: bytes
) -> None:
    """With a rollout Teleport reads the channel name as an update group."""
    base = f"{sim.url}/v1/webapi/automaticupgrades/channel/{channel}/"
    assert with_rollout.get(base + "version").content == version
    assert with_rollout.get(base + "critical").content == critical


def test_fleet_versions_follow_group_states(tmp_path: Path) -> None:
    """No agent of an unstarted group (membership as Teleport decides it) runs the target; a
    done group's agents with a working updater have left the start version."""
    rollout = {"groups": ["dev", "staging", "prod"], "states": ["done", "active", "unstarted"]}
    scenario = {"inventory": {"size": 400, "seed": 5}, "rollout": rollout}
    fleet = json.loads(_tctl(tmp_path, scenario, "inventory", "ls", "--format=json"))
    seen: dict[str, set[str]] = {}
    for record in fleet:
        spec = record.get("spec") if isinstance(record, dict) else None
        if not isinstance(spec, dict) or not isinstance(spec.get("version"), str):
            continue
        info = spec.get("UpdaterInfo") or {}
        named = "default" if spec.get("ext_upgrader") == "unit" else info.get("UpdateGroup", "")
        group = named if named in rollout["groups"] else "prod"
        version = spec["version"].removeprefix("v")
        seen.setdefault(group, set()).add(version)
        if group == "dev" and info.get("UpdaterStatus") == 1:
            assert version != "18.0.2"
    assert "18.1.4" not in seen["prod"] and "18.0.2" in seen["prod"]
    assert "18.1.4" in seen["dev"] and "18.1.4" in seen["staging"]


def test_agent_report_as_teleport_prints_it(tmp_path: Path) -> None:
    scenario = {
        "inventory": {"size": 200, "seed": 4},
        "rollout": {"groups": ["dev", "prod"]},
        "agent_report": {"auth_servers": [["auth-a", 1.0], ["auth-b", 2.0]]},
    }
    text = _tctl(tmp_path, scenario, "get", "autoupdate_agent_report", "--format=json")
    assert text.startswith('[\n    {\n        "kind": "autoupdate_agent_report",\n')
    reports = json.loads(text)
    assert [r["metadata"]["name"] for r in reports] == ["auth-a", "auth-b"]
    reasons = set()
    for report in reports:
        assert set(report["spec"]) <= {"timestamp", "groups", "omitted"}
        for detail in report["spec"].get("groups", {}).values():
            for entry in detail["versions"].values():
                assert type(entry["count"]) is int and entry["count"] > 0  # int32
        for entry in report["spec"].get("omitted", []):
            assert isinstance(entry["count"], str) and int(entry["count"]) > 0  # int64
            reasons.add(entry["reason"])
    assert "agent has no updater" in reasons
    assert "managed updates v1 updater does not support agent reports" in reasons
    no_rollout = _tctl(
        tmp_path, {"inventory": {"size": 5}}, "get", "autoupdate_agent_report", "--format=json"
    )
    assert json.loads(no_rollout) == []


def test_maintenance_config_as_tctl_prints_it(tmp_path: Path) -> None:
    scenario = {"maintenance_config": {"weekdays": ["Mon"], "utc_start_hour": 0}}
    text = _tctl(tmp_path, scenario, "get", "cluster_maintenance_config", "--format=json")
    assert text.startswith('[\n  {\n    "kind": "cluster_maintenance_config",')  # 2 spaces
    (resource,) = json.loads(text)
    assert resource["spec"] == {"agent_upgrades": {"weekdays": ["Mon"]}}  # hour 0 omitted
