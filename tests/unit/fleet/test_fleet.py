"""Fleet derivation (pure): skew, enrolment, outdated, upgrade blocking, and the families.

Expected numbers come from the raw records through `independent_expectation`, a deliberately
naive re-derivation that shares no code with the exporter or the generator.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from exporter.core.versions import Version
from exporter.exposition.body import Exposition
from exporter.fleet.derive import (
    FleetView,
    VersionSummary,
    classify,
    derive_fleet,
    not_updating,
    summarise_by_version,
)
from exporter.fleet.families import fleet_families
from exporter.fleet.model import (
    Instance,
    InventoryParseError,
    parse_inventory,
    updater_status_name,
)
from exporter.rollout.groups import plan_groups
from exporter.rollout.model import parse_rollout
from exporter.simulator.fleetgen import generate_inventory, generate_rollout
from exporter.vocab import MAX_LABEL_VALUE, cap_label
from tests.conftest import Samples, parse_samples, series, value

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "inventory_small.json"
SKEWS = ("current", "one_major_behind", "unsupported_old", "unsupported_newer", "unknown")
NAMES = ("unspecified", "ok", "disabled", "pinned", "unreadable")
CP = ("auth-0", "proxy-0")


def _valid(record: Any) -> bool:
    """What a usable InstanceV1 record looks like, judged on the raw JSON value."""
    if not isinstance(record, dict):
        return False
    metadata, spec = record.get("metadata"), record.get("spec")
    if not isinstance(metadata, dict) or not isinstance(spec, dict):
        return False
    name = metadata.get("name")
    services = spec.get("services", [])
    return (
        isinstance(name, str)
        and name != ""
        and isinstance(spec.get("version", ""), str)
        and isinstance(services, list)
        and all(isinstance(service, str) for service in services)
    )


def independent_expectation(
    records: list[Any], control_plane_major: int | None, target: str | None
) -> dict[str, Any]:
    """The numbers the exporter must publish for `records`, computed the simple way."""
    agents = [
        record
        for record in records
        if _valid(record) and not {"Auth", "Proxy"} & set(record["spec"].get("services", []))
    ]
    by_skew = dict.fromkeys(SKEWS, 0)
    by_version_upgrader: Counter[tuple[str, str]] = Counter()
    by_service: Counter[str] = Counter()
    outdated = 0
    behind: dict[str, int] = {}
    for agent in agents:
        spec = agent["spec"]
        text = spec.get("version", "")
        label = text[1:] if re.match(r"v\d", text) else text
        match = re.fullmatch(r"(\d+)\.\d+\.\d+(-[0-9A-Za-z.-]+)?", label)
        if match is None or control_plane_major is None:
            by_skew["unknown"] += 1
        else:
            difference = control_plane_major - int(match.group(1))
            behind[agent["metadata"]["name"]] = difference
            if difference == 0:
                by_skew["current"] += 1
            elif difference == 1:
                by_skew["one_major_behind"] += 1
            elif difference > 1:
                by_skew["unsupported_old"] += 1
            else:
                by_skew["unsupported_newer"] += 1
        by_version_upgrader[(label, spec.get("ext_upgrader") or "none")] += 1
        by_service.update(set(spec.get("services", [])))
        outdated += target is not None and label != target
    return {
        "total": len(agents),
        "by_skew": by_skew,
        "by_version_upgrader": dict(by_version_upgrader),
        "by_service": dict(by_service),
        "outdated": outdated if target is not None else None,
        "blocked": (
            any(value >= 1 for value in behind.values())
            if control_plane_major is not None
            else None
        ),
        "behind": behind,
        "broken": sum(not _valid(record) for record in records),
    }


def exposed(view: FleetView, tenant: str = "t", per_agent: bool = True) -> Samples:
    exposition = Exposition()
    exposition.update(("fleet", tenant), fleet_families(tenant, view, per_agent))
    return parse_samples(exposition.body().decode())


def assert_matches(samples: Samples, expected: dict[str, Any], tenant: str = "t") -> None:
    agents = {
        (labels["version"], labels["upgrader"]): value(samples, "teleport_cloud_agents", **labels)
        for labels in series(samples, "teleport_cloud_agents")
        if labels["tenant"] == tenant
    }
    assert agents == expected["by_version_upgrader"]
    for skew in SKEWS:
        got = value(samples, "teleport_cloud_agents_by_skew", tenant=tenant, skew=skew)
        assert got == expected["by_skew"][skew], skew
    services = {
        labels["teleport_service"]: value(samples, "teleport_cloud_agents_by_service", **labels)
        for labels in series(samples, "teleport_cloud_agents_by_service")
    }
    assert services == expected["by_service"]
    if expected["outdated"] is None:
        assert not series(samples, "teleport_cloud_agents_outdated")
    else:
        assert (
            value(samples, "teleport_cloud_agents_outdated", tenant=tenant) == expected["outdated"]
        )
    if expected["blocked"] is None:
        assert not series(samples, "teleport_cloud_control_plane_upgrade_blocked")
    else:
        blocked = value(samples, "teleport_cloud_control_plane_upgrade_blocked", tenant=tenant)
        assert blocked == float(expected["blocked"])
    if series(samples, "teleport_cloud_agent_info"):
        assert len(series(samples, "teleport_cloud_agent_info")) == expected["total"]
        behind = {
            labels["server_id"]: value(
                samples, "teleport_cloud_agent_major_versions_behind", **labels
            )
            for labels in series(samples, "teleport_cloud_agent_major_versions_behind")
        }
        assert behind == expected["behind"]


def _instances(records: list[Any]) -> list[Instance]:
    return parse_inventory(json.dumps(records).encode()).instances


def _record(
    name: str,
    version: str,
    *,
    services: tuple[str, ...] = ("Node",),
    upgrader: str | None = None,
    last_seen: str = "2025-06-15T15:00:00Z",
    hostname: str | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "version": version,
        "services": list(services),
        "hostname": hostname or name,
        "last_seen": last_seen,
    }
    if upgrader:
        spec["ext_upgrader"] = upgrader
    return {"kind": "instance", "version": "v1", "metadata": {"name": name}, "spec": spec}


def _grouped(name: str, version: str, group: str) -> dict[str, Any]:
    record = _record(name, version, upgrader="binary")
    record["spec"]["UpdaterInfo"] = {"UpdateGroup": group, "UpdaterStatus": 1}
    return record


def test_recorded_fixture() -> None:
    parsed = parse_inventory(FIXTURE.read_bytes())
    assert parsed.skipped == 0
    view = derive_fleet(parsed.instances, "18.1.4", "v18.1.4")
    assert view.excluded_control_plane == 2  # auth-0 and proxy-0
    assert view.total == 8
    assert view.by_skew == {
        "current": 3,  # v18.1.4, 18.1.4, 18.2.0-rc.1
        "one_major_behind": 2,  # 17.5.2, v17.1.4-dev.x
        "unsupported_old": 1,  # 16.4.9
        "unsupported_newer": 1,  # 19.0.0
        "unknown": 1,  # banana-build
    }
    assert view.outdated == 6
    assert view.upgrade_blocked is True
    assert [agent.hostname for agent in view.blocking_agents] == ["db-1", "discovery-dev", "kube-1"]
    assert view.by_service == {
        "App": 2,
        "Db": 1,
        "Discovery": 1,
        "Kube": 1,
        "Node": 4,
        "Teleportation": 1,
    }
    assert view.by_version_upgrader[("16.4.9", "none")] == 1
    assert view.by_version_upgrader[("19.0.0", "systemd-timer")] == 1
    assert view.by_version_upgrader[("18.1.4", "unit")] == 1

    samples = exposed(view)
    records = json.loads(FIXTURE.read_text())
    assert_matches(samples, independent_expectation(records, 18, "18.1.4"))
    info = {labels["hostname"]: labels for labels in series(samples, "teleport_cloud_agent_info")}
    assert "auth-0" not in info and "proxy-0" not in info
    assert info["node-2"]["services"] == "App,Node"
    assert info["node-2"]["update_group"] == "prod"
    assert info["app-rc"]["update_group"] == "canary"
    assert info["node-1"]["upgrader_version"] == "18.1.4"
    assert info["db-1"]["upgrader"] == "none"
    assert info["weird-1"]["version"] == "banana-build"
    seen = {
        labels["server_id"]
        for labels in series(samples, "teleport_cloud_agent_last_seen_timestamp_seconds")
    }
    assert len(seen) == 7  # weird-1 has Go's zero time: no sample rather than year 1
    node1 = "5d1c7e0a-1111-4c7b-8f0e-5a0d2b9c0a01"
    assert value(
        samples, "teleport_cloud_agent_last_seen_timestamp_seconds", tenant="t", server_id=node1
    ) == pytest.approx(1749999900.0)


@pytest.mark.parametrize(("mix", "seed"), [("skewed", 1), ("skewed", 2), ("healthy", 3)])
def test_generated_fleet_matches_independent_counts(mix: str, seed: int) -> None:
    records = generate_inventory(3000, control_plane_major=18, mix=mix, broken=7, seed=seed)  # type: ignore[arg-type]
    parsed = parse_inventory(json.dumps(records, indent=2).encode())
    expected = independent_expectation(records, 18, "18.1.4")
    assert parsed.skipped == expected["broken"] == 7
    view = derive_fleet(parsed.instances, "18.1.4", "18.1.4")
    assert view.total == expected["total"] == 3000
    assert_matches(exposed(view), expected)
    if mix == "skewed":
        # the known mix: three majors, one newer, one garbage, every upgrader kind and none
        assert all(expected["by_skew"][skew] > 0 for skew in SKEWS)
        upgraders = {upgrader for _, upgrader in expected["by_version_upgrader"]}
        assert {"unit", "kube", "binary", "integration_awsoidc", "none"} <= upgraders
    else:
        assert expected["by_skew"]["current"] == 3000
        assert view.upgrade_blocked is False and view.outdated == 0


def test_seed_faq_control_plane_15_with_agents_on_14_is_blocked() -> None:
    records = [_record(f"agent-{i}", "15.3.1") for i in range(5)]
    records += [_record("old-a", "v14.3.20", hostname="old-a"), _record("old-b", "14.0.0")]
    view = derive_fleet(_instances(records), "15.3.1", "15.3.1")
    assert view.upgrade_blocked is True
    assert view.by_skew["one_major_behind"] == 2
    assert [agent.server_id for agent in view.blocking_agents] == ["old-a", "old-b"]
    samples = exposed(view)
    assert value(samples, "teleport_cloud_control_plane_upgrade_blocked", tenant="t") == 1.0
    assert_matches(samples, independent_expectation(records, 15, "15.3.1"))

    upgraded = [_record(f"agent-{i}", "15.3.1") for i in range(7)]
    view = derive_fleet(_instances(upgraded), "15.3.1", "15.3.1")
    assert view.upgrade_blocked is False and view.blocking_agents == []
    assert value(exposed(view), "teleport_cloud_control_plane_upgrade_blocked", tenant="t") == 0.0


def test_no_ping_yet_everything_unknown() -> None:
    records = generate_inventory(200, mix="skewed", seed=4)
    view = derive_fleet(_instances(records), None, None)
    assert view.by_skew == {**dict.fromkeys(SKEWS, 0), "unknown": 200}
    assert view.upgrade_blocked is None and view.outdated is None
    assert all(agent.majors_behind is None for agent in view.agents)
    samples = exposed(view)
    assert_matches(samples, independent_expectation(records, None, None))
    assert not series(samples, "teleport_cloud_agent_major_versions_behind")
    assert len(series(samples, "teleport_cloud_agent_info")) == 200


def test_garbage_control_plane_version_is_unknown_not_a_crash() -> None:
    view = derive_fleet(_instances([_record("a", "18.1.4")]), "not-a-version", "also garbage")
    assert view.by_skew["unknown"] == 1 and view.upgrade_blocked is None
    assert view.outdated == 1  # the target is known, even if unparseable: 18.1.4 differs


def test_target_unknown_omits_outdated_only() -> None:
    view = derive_fleet(_instances([_record("a", "17.0.0")]), "18.0.0", None)
    samples = exposed(view)
    assert not series(samples, "teleport_cloud_agents_outdated")
    assert value(samples, "teleport_cloud_control_plane_upgrade_blocked", tenant="t") == 1.0


def test_outdated_ignores_v_prefix_and_counts_prereleases() -> None:
    records = [_record("a", "v18.1.4"), _record("b", "18.1.4"), _record("c", "18.1.4-dev.x")]
    assert derive_fleet(_instances(records), "18.1.4", "v18.1.4").outdated == 1


def test_duplicate_server_id_is_one_agent_the_latest_record() -> None:
    records = [
        _record("same", "17.0.0", last_seen="2025-06-15T14:00:00Z"),
        _record("same", "18.1.4", last_seen="2025-06-15T15:00:00Z"),
        _record("same", "16.0.0", last_seen="2025-06-15T13:00:00Z"),
    ]
    view = derive_fleet(_instances(records), "18.1.4", None)
    assert [agent.version for agent in view.agents] == ["18.1.4"]
    assert len(series(exposed(view), "teleport_cloud_agent_info")) == 1


def test_per_agent_metrics_off_keeps_aggregates() -> None:
    records = generate_inventory(100, seed=5)
    view = derive_fleet(_instances(records), "18.1.4", "18.1.4")
    samples = exposed(view, per_agent=False)
    for name in (
        "teleport_cloud_agent_info",
        "teleport_cloud_agent_major_versions_behind",
        "teleport_cloud_agent_last_seen_timestamp_seconds",
    ):
        assert not series(samples, name)
    assert_matches(samples, independent_expectation(records, 18, "18.1.4"))


def test_long_upstream_strings_are_capped() -> None:
    record = _record("a", "x" * 500, services=("S" * 500,), hostname="h" * 500, upgrader="u" * 500)
    agent = derive_fleet(_instances([record]), "18.0.0", None).agents[0]
    assert agent.version == cap_label("x" * 500)
    assert agent.hostname == cap_label("h" * 500) and agent.upgrader == cap_label("u" * 500)
    assert agent.services == cap_label("S" * 500)
    assert len(agent.hostname) == MAX_LABEL_VALUE


def test_empty_fleet() -> None:
    view = derive_fleet([], "18.1.4", "18.1.4")
    assert view.total == 0 and view.upgrade_blocked is False and view.outdated == 0
    samples = exposed(view)
    assert value(samples, "teleport_cloud_agents_by_skew", tenant="t", skew="current") == 0.0


@pytest.mark.parametrize(
    ("control_plane", "agent", "expected"),
    [
        (18, Version(18, 0, 0), ("current", 0)),
        (18, Version(17, 9, 9), ("one_major_behind", 1)),
        (18, Version(16, 0, 0), ("unsupported_old", 2)),
        (18, Version(12, 0, 0), ("unsupported_old", 6)),
        (18, Version(19, 0, 0, "rc.1"), ("unsupported_newer", -1)),
        (None, Version(18, 0, 0), ("unknown", None)),
        (18, None, ("unknown", None)),
    ],
)
def test_classify(
    control_plane: int | None, agent: Version | None, expected: tuple[str, int | None]
) -> None:
    assert classify(control_plane, agent) == expected


def test_broken_records_are_skipped_and_counted() -> None:
    records: list[Any] = [_record("good", "18.1.4")]
    records += [
        {"metadata": {"name": 7}, "spec": {}},
        {"metadata": {"name": ""}, "spec": {}},
        {"metadata": {"name": "x"}, "spec": {"services": "Node"}},
        {"metadata": {"name": "y"}, "spec": {"version": 18}},
        {"metadata": {"name": "z"}},
        None,
        "text",
        42,
    ]
    parsed = parse_inventory(json.dumps(records).encode())
    assert [instance.server_id for instance in parsed.instances] == ["good"]
    assert parsed.skipped == 8
    # The log names the first few: by server id when the record has one, else by position.
    assert parsed.skipped_examples == (
        "#1: metadata.name: Expected `str`, got `int`",
        "#2: metadata.name: Expected `str` of length >= 1",
        "x: spec.services: Expected `array`, got `str`",
    )


def test_unreadable_last_seen_keeps_the_agent() -> None:
    record = _record("a", "18.1.4", last_seen="yesterday-ish")
    parsed = parse_inventory(json.dumps([record]).encode())
    assert parsed.skipped == 0 and parsed.instances[0].last_seen_timestamp is None


@pytest.mark.parametrize(
    "document", [b"", b"{not json", b'{"kind": "instance"}', b'"text"', b"[1,"]
)
def test_documents_that_are_not_arrays_fail(document: bytes) -> None:
    with pytest.raises(InventoryParseError):
        parse_inventory(document)


@pytest.mark.parametrize("document", [b"null", b"{}", b'{"items": []}'])
def test_output_tctl_never_prints_is_a_parse_error(document: bytes) -> None:
    # tctl prints an empty fleet as `[\n  \n]`; `null` or an object is a broken output, and
    # taking it for an empty fleet would wipe the last good one.
    with pytest.raises(InventoryParseError):
        parse_inventory(document)


def test_empty_fleet_as_tctl_prints_it() -> None:
    parsed = parse_inventory(b"[\n  \n]\n")
    assert parsed.instances == [] and parsed.skipped == 0


def test_updater_status_numbers_and_names() -> None:
    statuses = {
        instance.spec.hostname: instance.spec.updater_info.status_name
        for instance in parse_inventory(FIXTURE.read_bytes()).instances
        if instance.spec.updater_info is not None
    }
    assert statuses == {"node-2": "ok", "app-rc": "pinned", "discovery-dev": "disabled"}
    cases: list[tuple[int | str, str]] = [
        (1, "ok"),
        (2, "disabled"),
        (3, "pinned"),
        (4, "unreadable"),
        (0, "unspecified"),
        ("UPDATER_STATUS_PINNED", "pinned"),
        ("DISABLED", "disabled"),
        ("2", "disabled"),
        (9, "unknown_9"),
    ]
    for raw, name in cases:
        assert updater_status_name(raw) == name, raw


def test_updater_status_families_and_agent_label() -> None:
    view = derive_fleet(parse_inventory(FIXTURE.read_bytes()).instances, "18.1.4", "18.1.4")
    samples = exposed(view)
    records = [r for r in json.loads(FIXTURE.read_text()) if r["spec"]["hostname"] not in CP]
    expected: Counter[tuple[str, str]] = Counter()
    for record in records:
        spec = record["spec"]
        info = spec.get("UpdaterInfo")
        status = "unspecified" if info is None else NAMES[info.get("UpdaterStatus", 0)]
        expected[(spec.get("ext_upgrader") or "none", status)] += 1
    upgraders = {upgrader for upgrader, _ in expected}
    for upgrader in upgraders:  # every status for every upgrader present, 0 when none
        for status in NAMES:
            got = value(
                samples,
                "teleport_cloud_agents_by_updater_status",
                tenant="t",
                upgrader=upgrader,
                status=status,
            )
            assert got == expected.get((upgrader, status), 0), (upgrader, status)
    assert len(series(samples, "teleport_cloud_agents_by_updater_status")) == 5 * len(upgraders)
    info = {labels["hostname"]: labels for labels in series(samples, "teleport_cloud_agent_info")}
    assert info["app-rc"]["updater_status"] == "pinned"
    assert info["discovery-dev"]["updater_status"] == "disabled"
    assert info["node-1"]["updater_status"] == "unspecified"  # a v1 unit updater reports none
    assert [agent.hostname for agent in not_updating(view.agents)] == ["app-rc", "discovery-dev"]


def test_stuck_agents_per_group() -> None:
    records = [
        _grouped("d1", "18.1.4", "dev"),  # active group on target: fine
        _grouped("d2", "18.0.2", "dev"),  # active group, still on start: stuck
        _grouped("s1", "v18.0.2", "staging"),  # unstarted, on start: waiting
        _grouped("s2", "17.3.7", "staging"),  # unstarted, on neither: not asked, so not stuck
        _grouped("x1", "17.3.7", "other"),  # unlisted group: the last group (unstarted)
        _record("n1", "17.3.7"),  # no upgrader: not updating, never stuck
    ]
    resource = generate_rollout(18, states=("active", "unstarted", "unstarted"))
    plan = plan_groups(parse_rollout(json.dumps([resource]).encode()))
    view = derive_fleet(_instances(records), "18.1.4", "18.1.4", plan)
    assert view.stuck_by_group == {"dev": 1, "staging": 0, "prod": 0}
    assert view.groups is not None
    assert {name: tally.members for name, tally in view.groups.groups.items()} == {
        "dev": 2,
        "staging": 2,
        "prod": 2,  # x1 and n1 fall back to the last group
    }
    assert view.not_updating == {"no_upgrader": 1, "disabled": 0, "pinned": 0, "unreadable": 0}
    samples = exposed(view)
    for group, count in view.stuck_by_group.items():
        stuck = value(
            samples, "teleport_cloud_autoupdate_group_agents_stuck", tenant="t", group=group
        )
        assert stuck == count
    for reason, count in view.not_updating.items():
        assert value(samples, "teleport_cloud_agents_not_updating", tenant="t", reason=reason) == (
            count
        )
    without = derive_fleet(_instances(records), "18.1.4", "18.1.4")
    assert not series(exposed(without), "teleport_cloud_autoupdate_group_agents_stuck")
    # The aggregate stays without per-agent series.
    families = fleet_families("t", without, per_agent=False)
    assert "teleport_cloud_agents_not_updating" in {family.name for family in families}


def test_summary_by_version_most_urgent_first() -> None:
    records = [
        _record("a", "17.3.7", upgrader="unit"),
        _record("b", "17.3.7", upgrader="binary"),
        _record("c", "17.3.7"),
        _record("d", "16.4.1", upgrader="kube"),
        _record("e", "18.1.4"),
    ]
    view = derive_fleet(_instances(records), "18.1.4", "18.1.4")
    rows = summarise_by_version(view.blocking_agents)
    assert rows == [
        VersionSummary("16.4.1", 2, 1, ("kube",)),
        VersionSummary("17.3.7", 1, 3, ("binary", "none", "unit")),
    ]


def test_pre_rendered_agent_lines_are_what_rendering_the_samples_gives() -> None:
    """The per-agent families are written as lines for speed; they must be the very lines the
    exposition renders from prometheus_client samples, odd upstream strings included."""
    records = generate_inventory(300, mix="skewed", broken=3, seed=5)
    records += [
        _record("quote", "18.1.4", hostname='we"ird\\host\nname'),
        _record("long", "18.1.4", hostname="h" * 300),
        _record("x" * 200 + "1", "17.0.0"),
        _record("x" * 200 + "2", "17.0.0"),  # capped to the same id: one series kept
        _record("nothing-seen", "18.1.4", last_seen="0001-01-01T00:00:00Z"),
        _record("unparsed", "banana"),
    ]
    view = derive_fleet(_instances(records), "18.1.4", "18.1.4")
    bodies = []
    for samples in (False, True):
        exposition = Exposition()
        families = fleet_families("t", view, per_agent=True, samples=samples)
        exposition.update(("fleet", "t"), families)
        bodies.append((exposition.body(), exposition.body(openmetrics=True, gzipped=True)))
    assert bodies[0] == bodies[1]
    text = bodies[0][0].decode()
    assert 'hostname="we\\"ird\\\\host\\nname"' in text
    parse_samples(text)


def test_pre_rendered_lines_shared_with_another_key_appear_once() -> None:
    view = derive_fleet(_instances([_record("a", "18.1.4"), _record("b", "18.1.4")]), "18", "18")
    exposition = Exposition()
    exposition.update("first", fleet_families("t", view, per_agent=True))
    exposition.update("second", fleet_families("t", view, per_agent=True))
    lines = [line for line in exposition.body().decode().splitlines() if "agent_info{" in line]
    assert len(lines) == 2
    exposition.remove("first")
    exposition.update("second", fleet_families("t", view, per_agent=True))
    lines = [line for line in exposition.body().decode().splitlines() if "agent_info{" in line]
    assert len(lines) == 2  # once the first key left, the second one's republish exports them


def test_a_fleet_decoded_in_slices_is_the_fleet_decoded_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from exporter.fleet import model as inventory

    records = generate_inventory(200, mix="skewed", seed=3)
    whole = parse_inventory(json.dumps(records, indent=2).encode())
    monkeypatch.setattr(inventory, "SLICE_BYTES", 2_000)  # dozens of slices
    for document in (json.dumps(records, indent=2), json.dumps(records), "[\n  \n]"):
        parsed = parse_inventory(document.encode())
        expected = whole.instances if document != "[\n  \n]" else []
        assert parsed.instances == expected and parsed.skipped == 0
    # a broken record in a later slice costs only itself
    broken = [*records[:150], {"metadata": {"name": 7}, "spec": {}}, *records[150:]]
    parsed = parse_inventory(json.dumps(broken, indent=2).encode())
    assert parsed.instances == whole.instances and parsed.skipped == 1
    assert parsed.skipped_examples == ("#150: metadata.name: Expected `str`, got `int`",)
