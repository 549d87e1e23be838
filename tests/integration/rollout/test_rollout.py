"""The Managed Updates v2 rollout: protojson parsing, families, and the source against the
fake tctl (present, NotFound = no rollout, failures)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from exporter.config import Settings
from exporter.core.errors import SourceError
from exporter.core.scheduler import Runtime
from exporter.core.state import Hub
from exporter.derivations import attach_derivers
from exporter.exposition.body import Exposition
from exporter.fleet.derive import derive_fleet
from exporter.fleet.model import parse_inventory
from exporter.probe.model import AutoUpdate, PingInfo
from exporter.rollout.families import rollout_families
from exporter.rollout.model import RolloutParseError, parse_rollout
from exporter.rollout.source import RolloutSource
from exporter.simulator.fake_tctl import NOT_FOUND_MESSAGES, write_fake_tctl
from exporter.simulator.fleetgen import generate_rollout
from tests.conftest import Samples, parse_samples, series, value

STATES = ("unstarted", "active", "done", "rolledback", "canary")
ROLLOUT_INFO = "teleport_cloud_autoupdate_rollout_info"
GROUP_VERSION = "teleport_cloud_autoupdate_group_version_info"
STUCK = "teleport_cloud_autoupdate_group_agents_stuck"


def _samples(families: list[Any]) -> Samples:
    exposition = Exposition()
    exposition.update(("rollout", "t"), families)
    return parse_samples(exposition.body().decode())


def test_parses_protojson_with_string_counts() -> None:
    resource = generate_rollout(18, groups=("dev", "staging", "prod"), seed=3)
    rollout = parse_rollout(json.dumps([resource], indent=2).encode())
    assert rollout is not None
    assert rollout.spec.target_version == "18.1.4" and rollout.spec.strategy == "halt-on-error"
    assert rollout.status.state == "active"
    groups = rollout.status.groups
    assert [group.state for group in groups] == ["done", "active", "unstarted"]
    raw = resource["status"]["groups"]
    assert [group.present_count for group in groups] == [int(g["present_count"]) for g in raw]
    assert [group.up_to_date_count for group in groups] == [
        int(g.get("up_to_date_count", 0)) for g in raw
    ]


def test_enum_numbers_and_unknown_states() -> None:
    resource = generate_rollout(18, groups=("a", "b", "c"))
    groups = resource["status"]["groups"]
    groups[0]["state"] = 5  # canary by number
    groups[1]["state"] = "AUTO_UPDATE_AGENT_GROUP_STATE_PAUSED"  # from a future Teleport
    groups[2]["present_count"] = 12  # a number, not a string
    resource["unknown_top_level"] = {"x": 1}
    rollout = parse_rollout(json.dumps([resource]).encode())
    assert rollout is not None
    assert [group.state for group in rollout.status.groups] == ["canary", "paused", "unstarted"]
    assert rollout.status.groups[2].present_count == 12


def test_empty_array_is_no_rollout_and_single_object_is_accepted() -> None:
    assert parse_rollout(b"[]") is None
    assert parse_rollout(b"null") is None
    assert parse_rollout(json.dumps(generate_rollout()).encode()) is not None


@pytest.mark.parametrize("document", [b"{not json", b'[{"status": {"groups": "nope"}}]', b"42"])
def test_bad_documents_fail(document: bytes) -> None:
    with pytest.raises(RolloutParseError):
        parse_rollout(document)


def test_families_state_set_and_counts() -> None:
    resource = generate_rollout(18, groups=("dev", "staging", "prod", "edge"), seed=1)
    resource["status"]["groups"][3]["state"] = "AUTO_UPDATE_AGENT_GROUP_STATE_PAUSED"
    rollout = parse_rollout(json.dumps([resource]).encode())
    samples = _samples(rollout_families("t", rollout))
    info = series(samples, "teleport_cloud_autoupdate_rollout_info")
    assert info == [
        {
            "tenant": "t",
            "start_version": "18.0.2",
            "target_version": "18.1.4",
            "mode": "enabled",
            "strategy": "halt-on-error",
            "schedule": "regular",
        }
    ]
    expected_state = {"dev": "done", "staging": "active", "prod": "unstarted", "edge": "paused"}
    for group, current in expected_state.items():
        for state in (*STATES, current):
            got = value(
                samples,
                "teleport_cloud_autoupdate_group_state",
                tenant="t",
                group=group,
                state=state,
            )
            assert got == (1.0 if state == current else 0.0)
    for raw in resource["status"]["groups"]:
        name = raw["name"]
        assert value(
            samples, "teleport_cloud_autoupdate_group_agents", tenant="t", group=name
        ) == int(raw["present_count"])
        assert value(
            samples, "teleport_cloud_autoupdate_group_agents_up_to_date", tenant="t", group=name
        ) == int(raw.get("up_to_date_count", 0))


def test_no_rollout_no_families() -> None:
    assert rollout_families("t", None) == []


def _source(tmp_path: Path, scenario: dict[str, Any]) -> tuple[Hub, RolloutSource]:
    identity = tmp_path / "identity"
    identity.write_text("identity")
    fake = write_fake_tctl(
        tmp_path / "bin",
        {
            "expect_auth_server": "proxy.example.test:443",
            "expect_identity": str(identity),
            **scenario,
        },
    )
    settings = Settings(
        state_dir=tmp_path,
        tenants=[
            {
                "proxy": "proxy.example.test",  # no port: tctl must still get :443
                "name": "t",
                "inventory": {"tctl": str(fake), "identity_file": str(identity)},
            }
        ],
    )
    hub = attach_derivers(Hub(settings))
    return hub, RolloutSource(hub, hub.tenants["t"])


def _rewrite(tmp_path: Path, scenario: dict[str, Any]) -> None:
    identity = str(tmp_path / "identity")
    write_fake_tctl(
        tmp_path / "bin",
        {"expect_auth_server": "proxy.example.test:443", "expect_identity": identity, **scenario},
    )


def test_source_publishes_rollout_then_not_found_removes_it(tmp_path: Path) -> None:
    hub, source = _source(tmp_path, {"rollout": {"groups": ["dev", "prod"], "seed": 2}})
    anyio.run(source.refresh)
    samples = parse_samples(hub.exposition.body().decode())
    assert {
        labels["group"] for labels in series(samples, "teleport_cloud_autoupdate_group_agents")
    } == {
        "dev",
        "prod",
    }
    assert hub.tenants["t"].rollout is not None

    _rewrite(tmp_path, {"rollout": None})  # the tenant went back to Managed Updates v1
    anyio.run(source.refresh)  # NotFound is a success
    samples = parse_samples(hub.exposition.body().decode())
    assert not series(samples, "teleport_cloud_autoupdate_rollout_info")
    assert not series(samples, "teleport_cloud_autoupdate_group_state")
    assert hub.tenants["t"].rollout is None


@pytest.mark.parametrize(
    ("fault", "reason"), [("access_denied", "auth"), ("garbage", "parse"), ("expired_cert", "auth")]
)
def test_source_failures_keep_the_previous_rollout(tmp_path: Path, fault: str, reason: str) -> None:
    hub, source = _source(tmp_path, {"rollout": {}})
    anyio.run(source.refresh)
    before = hub.exposition.body()
    _rewrite(tmp_path, {"rollout": {}, "fault": fault})
    with pytest.raises(SourceError) as caught:
        anyio.run(source.refresh)
    assert caught.value.reason == reason
    assert hub.exposition.body() == before
    assert hub.tenants["t"].rollout is not None


@pytest.mark.parametrize("message", NOT_FOUND_MESSAGES)
def test_every_not_found_wording_means_no_rollout(tmp_path: Path, message: str) -> None:
    hub, source = _source(tmp_path, {"rollout": {}})
    runtime = Runtime(hub, [source])
    assert anyio.run(runtime.refresh_once, source) is None
    assert series(parse_samples(hub.exposition.body().decode()), ROLLOUT_INFO)
    _rewrite(tmp_path, {"rollout": None, "not_found_message": message})
    assert anyio.run(runtime.refresh_once, source) is None  # no error counted
    samples = parse_samples(hub.exposition.body().decode())
    for family in (ROLLOUT_INFO, "teleport_cloud_autoupdate_group_state", GROUP_VERSION):
        assert not series(samples, family), family
    assert value(samples, "teleport_cloud_source_up", source="rollout", target="t") == 1
    errors = [
        labels
        for labels in series(samples, "teleport_cloud_source_errors_total")
        if labels["source"] == "rollout"
        and value(samples, "teleport_cloud_source_errors_total", **labels) > 0
    ]
    assert errors == []
    assert hub.tenants["t"].rollout is None


@pytest.mark.parametrize("count", ['"-3"', "-3", '"three"', '"1.5"'])
def test_negative_or_non_numeric_counts_are_a_parse_error(count: str) -> None:
    document = (
        '[{"kind": "autoupdate_agent_rollout", "spec": {"target_version": "18.1.4"}, '
        '"status": {"groups": [{"name": "dev", "present_count": ' + count + "}]}}]"
    )
    with pytest.raises(RolloutParseError):
        parse_rollout(document.encode())


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("unstarted", "18.0.2"),
        ("rolledback", "18.0.2"),
        ("canary", "18.0.2"),
        ("active", "18.1.4"),
        ("done", "18.1.4"),
    ],
)
def test_group_version_follows_teleports_rule(state: str, expected: str) -> None:
    resource = generate_rollout(18, groups=("g",), states=(state,))
    samples = _samples(rollout_families("t", parse_rollout(json.dumps([resource]).encode())))
    assert series(samples, GROUP_VERSION) == [{"tenant": "t", "group": "g", "version": expected}]


def test_rollout_change_re_derives_target_and_stuck_agents(tmp_path: Path) -> None:
    """A rollout appearing moves the target from ping's (start) version to the rollout's
    target and brings the stuck counts; its disappearance takes them away again."""
    hub, source = _source(tmp_path, {"rollout": None})
    tenant = hub.tenants["t"]
    tenant.ping = PingInfo(server_version="18.1.4", auto_update=AutoUpdate(agent_version="18.0.2"))
    records = [
        _binary_agent("a", "18.1.4", "dev"),
        _binary_agent("b", "18.0.2", "dev"),
        _binary_agent("c", "18.0.2", "prod"),
        _binary_agent("d", "18.1.4", "prod"),
    ]
    tenant.inventory = parse_inventory(json.dumps(records).encode()).instances
    hub.changed(tenant)  # as the inventory source does after storing it
    samples = parse_samples(hub.exposition.body().decode())
    assert value(samples, "teleport_cloud_agents_outdated", tenant="t") == 2  # against 18.0.2
    assert not series(samples, STUCK)

    _rewrite(tmp_path, {"rollout": {"groups": ["dev", "prod"], "states": ["active", "unstarted"]}})
    anyio.run(source.refresh)  # the tenant's deriver follows the rollout at once
    samples = parse_samples(hub.exposition.body().decode())
    assert tenant.target_agent_version == "18.1.4"
    assert value(samples, TARGET_INFO, tenant="t", version="18.1.4") == 1
    assert value(samples, "teleport_cloud_agents_outdated", tenant="t") == 2  # b, c vs 18.1.4
    assert value(samples, STUCK, tenant="t", group="dev") == 1  # b: active group, on start
    assert value(samples, STUCK, tenant="t", group="prod") == 0  # unstarted: nobody is asked

    _rewrite(tmp_path, {"rollout": None})
    anyio.run(source.refresh)
    samples = parse_samples(hub.exposition.body().decode())
    assert not series(samples, STUCK)
    assert tenant.target_agent_version == "18.0.2"
    assert series(samples, TARGET_INFO) == [{"tenant": "t", "version": "18.0.2"}]


def _binary_agent(name: str, version: str, group: str) -> dict[str, Any]:
    return {
        "kind": "instance",
        "version": "v1",
        "metadata": {"name": name},
        "spec": {
            "version": version,
            "services": ["Node"],
            "hostname": name,
            "ext_upgrader": "binary",
            "UpdaterInfo": {"UpdateGroup": group, "UpdaterStatus": 1},
        },
    }


def test_a_rollout_landing_during_the_fleets_derivation_is_not_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rollout source sets the rollout while the inventory is still deriving its first
    fleet (so the fleet is not yet there for the re-derivation callback): the derivation must
    notice and derive again, or the stuck counts stay missing until the next inventory run."""
    hub, _ = _source(tmp_path, {"rollout": None})
    tenant = hub.tenants["t"]
    tenant.ping = PingInfo(server_version="18.1.4", auto_update=AutoUpdate(agent_version="18.0.2"))
    rollout = parse_rollout(
        json.dumps(
            [
                {
                    "spec": {
                        "start_version": "18.0.2",
                        "target_version": "18.1.4",
                        "autoupdate_mode": "enabled",
                        "schedule": "regular",
                    },
                    "status": {
                        "groups": [{"name": "dev", "state": "AUTO_UPDATE_AGENT_GROUP_STATE_ACTIVE"}]
                    },
                }
            ]
        ).encode()
    )
    real = derive_fleet
    calls: list[bool] = []

    def rollout_lands_meanwhile(*args: Any) -> Any:
        calls.append(tenant.rollout is not None)
        view = real(*args)
        if tenant.rollout is None:
            tenant.rollout = rollout
            hub.changed(tenant)  # as the rollout source does, while the fleet is being derived
        return view

    monkeypatch.setattr("exporter.derivations.derive_fleet", rollout_lands_meanwhile)
    records = [_binary_agent("a", "18.1.4", "dev"), _binary_agent("b", "18.0.2", "dev")]
    tenant.inventory = parse_inventory(json.dumps(records).encode()).instances
    hub.changed(tenant)
    assert calls == [False, True]
    samples = parse_samples(hub.exposition.body().decode())
    assert value(samples, STUCK, tenant="t", group="dev") == 1
    assert value(samples, "teleport_cloud_agents_outdated", tenant="t") == 1


TARGET_INFO = "teleport_cloud_agent_target_version_info"


def test_a_rollout_change_moves_the_target_without_a_ping(tmp_path: Path) -> None:
    """The target follows the rollout as soon as the rollout source sees it: no ping runs in
    this test, first with the last good ping's answer kept (a ping outage), then with none at
    all. When the rollout goes away the target falls back to ping's version at once."""
    hub, source = _source(tmp_path, {"rollout": {"groups": ["dev"], "states": ["active"]}})
    tenant = hub.tenants["t"]
    tenant.ping = PingInfo(server_version="18.1.4", auto_update=AutoUpdate(agent_version="18.0.2"))
    anyio.run(source.refresh)
    samples = parse_samples(hub.exposition.body().decode())
    assert series(samples, TARGET_INFO) == [{"tenant": "t", "version": "18.1.4"}]

    _rewrite(tmp_path, {"rollout": None})
    anyio.run(source.refresh)
    samples = parse_samples(hub.exposition.body().decode())
    assert series(samples, TARGET_INFO) == [{"tenant": "t", "version": "18.0.2"}]

    tenant.ping = None  # ping never answered since the start
    _rewrite(tmp_path, {"rollout": {"groups": ["dev"], "states": ["unstarted"]}})
    anyio.run(source.refresh)
    samples = parse_samples(hub.exposition.body().decode())
    assert series(samples, TARGET_INFO) == [{"tenant": "t", "version": "18.1.4"}]
