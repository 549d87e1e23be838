"""Teleport's Managed Updates v2 rules: membership, each group's version, the ask, stuck agents,
agents that do not update, and Teleport's own group counts."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from exporter.core.versions import same_version
from exporter.rollout.groups import (
    Agent,
    assess,
    assess_fleet,
    in_window,
    not_updating_counts,
    parse_duration,
    plan_groups,
    teleport_counts,
    updater_uuid,
)
from exporter.rollout.model import Rollout, parse_rollout
from exporter.simulator.fleetgen import generate_rollout

START, TARGET = "18.0.2", "18.1.4"
# A Wednesday at 12:30 UTC.
NOON = datetime(2026, 12, 2, 12, 30, tzinfo=UTC)


def _rollout(states: tuple[str, ...], **spec: Any) -> Rollout:
    groups = ("dev", "staging", "prod")[: len(states)]
    resource = generate_rollout(18, groups=groups, states=states, now=NOON)
    resource["spec"].update(spec)
    rollout = parse_rollout(json.dumps([resource]).encode())
    assert rollout is not None
    return rollout


def _agent(
    version: str,
    group: str = "",
    upgrader: str = "binary",
    status: str = "ok",
    server_id: str = "s",
    updater_id: str = "",
) -> Agent:
    return Agent(server_id, group, updater_id, version, upgrader, status)


@pytest.mark.parametrize(
    ("group", "upgrader", "member"),
    [
        ("dev", "binary", "dev"),
        ("", "binary", "prod"),  # empty: the last group
        ("nosuch", "kube", "prod"),  # unlisted: the last group
        ("default", "binary", "prod"),  # `default` is an ordinary name, here unlisted
        ("", "unit", "prod"),  # v1 unit agents ask the channel `default`: unlisted, last group
    ],
)
def test_membership(group: str, upgrader: str, member: str) -> None:
    plan = plan_groups(_rollout(("done", "active", "unstarted")), NOON)
    assert plan is not None
    assert plan.member(group, upgrader) == member


def test_unit_agents_join_a_listed_default_group() -> None:
    resource = generate_rollout(18, groups=("default", "prod"), states=("active", "unstarted"))
    plan = plan_groups(parse_rollout(json.dumps([resource]).encode()), NOON)
    assert plan is not None
    assert plan.member("", "unit") == "default"
    assert plan.member("staging", "unit") == "default"  # the channel name wins
    assert plan.member("", "binary") == "prod"
    verdict = assess(_agent(START, upgrader="unit", status="unspecified"), plan)
    assert verdict == (("default", TARGET, True, True))


@pytest.mark.parametrize(
    ("state", "version", "asked"),
    [
        ("unstarted", START, False),
        ("active", TARGET, True),
        ("done", TARGET, True),  # halt-on-error keeps asking a done group
        ("rolledback", START, True),  # asked back to the start version
        ("canary", START, False),  # only its canaries are asked
    ],
)
def test_group_state_gives_version_and_ask(state: str, version: str, asked: bool) -> None:
    plan = plan_groups(_rollout((state,)), NOON)
    assert plan is not None
    rule = plan.groups["dev"]
    assert (rule.version, rule.asked) == (version, asked)
    laggard = assess(_agent("17.3.7", "dev"), plan)
    assert laggard.stuck is asked
    on_version = assess(_agent(version, "dev"), plan)
    assert on_version.asked is asked and not on_version.stuck


@pytest.mark.parametrize("mode", ["disabled", "suspended"])
def test_nobody_is_asked_while_updates_are_off(mode: str) -> None:
    plan = plan_groups(_rollout(("done", "active", "unstarted"), autoupdate_mode=mode), NOON)
    assert plan is not None
    assert not any(rule.asked for rule in plan.groups.values())
    agents = [_agent("17.3.7", group) for group in ("dev", "staging", "prod", "")]
    assert assess_fleet(agents, plan).stuck == {"dev": 0, "staging": 0, "prod": 0}
    # Disabled answers the target to everyone; suspended keeps each group's version.
    expected = TARGET if mode == "disabled" else START
    assert plan.groups["prod"].version == expected


def test_immediate_schedule_asks_everyone_for_the_target() -> None:
    rollout = _rollout(("unstarted",), schedule="immediate")
    plan = plan_groups(rollout, NOON)
    assert plan is not None and plan.immediate_version == TARGET and plan.immediate_asked
    agents = [
        _agent(START, "dev"),
        _agent(TARGET, "dev"),
        _agent(START),  # no group: `default`
        _agent(START, "dev", status="pinned"),  # cannot update: not stuck
    ]
    tally = assess_fleet(agents, plan)
    assert tally.stuck == {"dev": 1, "default": 1}
    assert tally.groups["dev"].members == 3 and tally.groups["dev"].asked == 3
    suspended = plan_groups(
        _rollout(("unstarted",), schedule="immediate", autoupdate_mode="suspended"), NOON
    )
    assert suspended is not None
    assert assess_fleet(agents, suspended).stuck == {"dev": 0, "default": 0}


def test_time_based_done_group_is_asked_only_inside_its_window() -> None:
    resource = generate_rollout(18, groups=("dev",), states=("done",), strategy="time-based")
    group = resource["status"]["groups"][0]
    group["config_days"] = ["Wed"]
    group["config_start_hour"] = 12
    resource["spec"]["maintenance_window_duration"] = "3600s"
    rollout = parse_rollout(json.dumps([resource]).encode())
    for moment, asked in (
        (NOON, True),  # Wednesday 12:30, inside [12:00, 13:00)
        (NOON.replace(hour=11, minute=59), False),
        (NOON.replace(hour=13, minute=0), False),  # the window is half-open
        (NOON + timedelta(days=1), False),  # Thursday is not a window day
    ):
        plan = plan_groups(rollout, moment)
        assert plan is not None
        assert plan.groups["dev"].asked is asked, moment
        assert assess(_agent(START, "dev"), plan).stuck is asked


def test_canaries_are_matched_on_updater_id_or_host_id() -> None:
    resource = generate_rollout(18, groups=("canaries", "prod"), states=("canary", "unstarted"))
    canaries = resource["status"]["groups"][0]["canaries"]
    by_updater, by_host = canaries[0], canaries[1]
    plan = plan_groups(parse_rollout(json.dumps([resource]).encode()), NOON)
    assert plan is not None
    encoded = base64.b64encode(uuid.UUID(by_updater["updater_id"]).bytes).decode()
    agents = [
        _agent(START, "canaries", server_id="x", updater_id=encoded),  # canary by updater id
        _agent(START, "canaries", server_id=by_host["host_id"]),  # canary by host id
        _agent(START, "canaries", server_id="plain"),  # waits on the start version
        _agent(TARGET, "canaries", server_id="early"),  # not asked, so not stuck
    ]
    verdicts = [assess(agent, plan) for agent in agents]
    assert [v.version for v in verdicts] == [TARGET, TARGET, START, START]
    assert [v.stuck for v in verdicts] == [True, True, False, False]
    assert assess_fleet(agents, plan).stuck == {"canaries": 2, "prod": 0}


def test_agents_that_cannot_update_are_never_stuck() -> None:
    plan = plan_groups(_rollout(("active",)), NOON)
    assert plan is not None
    agents = [
        _agent(START, "dev", status=status, upgrader=upgrader)
        for upgrader, status in (
            ("binary", "pinned"),
            ("binary", "disabled"),
            ("binary", "unreadable"),
            ("none", "unspecified"),
            ("binary", "ok"),
            ("kube", "ok"),
        )
    ]
    assert assess_fleet(agents, plan).stuck == {"dev": 2}
    assert not_updating_counts(agents) == {
        "no_upgrader": 1,
        "disabled": 1,
        "pinned": 1,
        "unreadable": 1,
    }


def test_teleport_counts_leave_out_whom_teleport_leaves_out() -> None:
    plan = plan_groups(_rollout(("done", "active", "unstarted")), NOON)
    assert plan is not None
    agents = [
        _agent(TARGET, "dev"),
        _agent(START, "dev"),
        _agent(TARGET, "dev", status="pinned"),  # left out
        _agent(TARGET, "dev", upgrader="unit", status="unspecified"),  # left out
        _agent(TARGET, "dev", upgrader="none", status="unspecified"),  # left out
        _agent(TARGET, "dev", status="unspecified"),  # left out: only OK counts
        _agent(START, "nosuch"),  # halt-on-error: counted in the last group
        _agent(TARGET, ""),  # no group reported: left out as too old
    ]
    assert teleport_counts(agents, plan) == {"dev": (2, 1), "staging": (0, 0), "prod": (1, 0)}
    time_based = plan_groups(_rollout(("done", "active", "unstarted"), strategy="time-based"))
    assert time_based is not None
    assert teleport_counts(agents, time_based)["prod"] == (0, 0)


def test_helpers() -> None:
    ident = uuid.UUID("6f1c8a3e-0d7b-4c2a-9e51-3a2b1c0d9e8f")
    assert updater_uuid(base64.b64encode(ident.bytes).decode()) == str(ident)
    assert updater_uuid(str(ident).upper()) == str(ident)
    assert updater_uuid("not-an-id") == "not-an-id"
    assert parse_duration("3600s") == timedelta(hours=1)
    assert parse_duration("") is None and parse_duration("1h") is None
    assert in_window(["*"], 0, timedelta(hours=24), NOON)
    assert in_window(["wednesday"], 12, timedelta(hours=1), NOON)
    assert not in_window(["Funday"], 12, timedelta(hours=1), NOON)
    assert plan_groups(None) is None


@pytest.mark.parametrize(
    ("left", "right", "same"),
    [
        ("v18.1.4", "18.1.4", True),
        ("18.1.4", "18.1.5", False),
        ("18.1.4-dev.x", "18.1.4", False),
        ("banana", "banana", True),
        ("banana", "18.1.4", False),
    ],
)
def test_same_version(left: str, right: str, same: bool) -> None:
    assert same_version(left, right) is same
