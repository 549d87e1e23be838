"""Teleport's per-group rule: each group's version of the moment, canaries, and stuck agents."""

from __future__ import annotations

import json

import pytest

from exporter.core.versions import same_version
from exporter.rollout.groups import GroupPlan, expected_version, plan_groups, stuck_by_group
from exporter.rollout.model import parse_rollout
from exporter.simulator.fleetgen import generate_rollout


@pytest.mark.parametrize(
    ("state", "version"),
    [
        ("unstarted", "18.0.2"),
        ("rolledback", "18.0.2"),
        ("canary", "18.0.2"),
        ("active", "18.1.4"),
        ("done", "18.1.4"),
        ("unspecified", None),
        ("paused", None),  # a state from a future Teleport is not guessed at
    ],
)
def test_expected_version(state: str, version: str | None) -> None:
    assert expected_version(state, "v18.0.2", "v18.1.4") == version


def test_canaries_get_the_target_the_rest_of_their_group_the_start() -> None:
    resource = generate_rollout(
        18, groups=("dev", "canaries", "prod"), states=("done", "canary", "unstarted")
    )
    plan = plan_groups(parse_rollout(json.dumps([resource]).encode()))
    assert plan is not None
    assert plan.versions == {"dev": "18.1.4", "canaries": "18.0.2", "prod": "18.0.2"}
    canary_hosts = [c["host_id"] for c in resource["status"]["groups"][1]["canaries"]]
    assert plan.canaries == dict.fromkeys(canary_hosts, "18.1.4") and canary_hosts
    agents = [
        (canary_hosts[0], "canaries", "18.1.4"),  # a canary on the target: fine
        (canary_hosts[1], "canaries", "18.0.2"),  # a canary still on the start: stuck
        ("other", "canaries", "18.1.4"),  # not a canary, yet on the target: off its version
        ("plain", "canaries", "v18.0.2"),  # waiting, as it should
        ("p1", "prod", "18.0.2"),
        ("d1", "dev", "17.3.7"),
    ]
    assert stuck_by_group(agents, plan) == {"dev": 1, "canaries": 2, "prod": 0}
    assert [plan.is_stuck(*agent) for agent in agents] == [False, True, True, False, False, True]


def test_group_listed_twice_first_wins_and_no_rollout_no_plan() -> None:
    resource = generate_rollout(18, groups=("dev", "dev"), states=("done", "unstarted"))
    plan = plan_groups(parse_rollout(json.dumps([resource]).encode()))
    assert plan == GroupPlan({"dev": "18.1.4"})
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
