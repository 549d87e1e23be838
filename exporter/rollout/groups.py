"""Managed Updates v2 groups: the version each group's agents should run now, and who is stuck.

Teleport's per-group rule (lib/web/autoupdate_common.go, `getVersionFromRollout`): a group that
is unstarted or rolled back runs the rollout's start version, an active or done group its target
version, and a canary group the start version (only its few canaries get the target early).
A canary is matched by its host id (the inventory's server id).
An agent whose version differs from its own group's version of the moment is stuck: it is what a
rollout owner must chase. Agents of an unstarted group still on the start version are merely
waiting for their turn and are not counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from exporter.core.versions import normalise, same_version
from exporter.rollout.model import Rollout

_START_STATES = frozenset({"unstarted", "rolledback", "canary"})
_TARGET_STATES = frozenset({"active", "done"})


def expected_version(state: str, start_version: str, target_version: str) -> str | None:
    """The version a group in `state` should run now; None for a state this code cannot place."""
    if state in _START_STATES:
        return normalise(start_version) or None
    if state in _TARGET_STATES:
        return normalise(target_version) or None
    return None


@dataclass(frozen=True, slots=True)
class GroupPlan:
    """Where each group of a rollout should be now."""

    versions: dict[str, str] = field(default_factory=dict)
    """Group name -> its version of the moment, in the rollout's order."""
    canaries: dict[str, str] = field(default_factory=dict)
    """Host id -> the target version, for the canaries of groups in the canary state."""

    def expected(self, server_id: str, group: str) -> str | None:
        """The version this agent should run now; None when its group is not in the rollout."""
        version = self.versions.get(group)
        if version is None:
            return None
        return self.canaries.get(server_id, version)

    def is_stuck(self, server_id: str, group: str, version: str) -> bool:
        expected = self.expected(server_id, group)
        return expected is not None and not same_version(version, expected)


def plan_groups(rollout: Rollout | None) -> GroupPlan | None:
    """The GroupPlan of `rollout` (first entry of a group listed twice wins); None without one."""
    if rollout is None:
        return None
    spec = rollout.spec
    plan = GroupPlan()
    target = normalise(spec.target_version)
    for group in rollout.status.groups:
        if group.name in plan.versions:
            continue
        version = expected_version(group.state, spec.start_version, spec.target_version)
        if version is None:
            continue
        plan.versions[group.name] = version
        if group.state == "canary" and target:
            for canary in group.canaries:
                if canary.host_id:
                    plan.canaries[canary.host_id] = target
    return plan


def stuck_by_group(agents: Iterable[tuple[str, str, str]], plan: GroupPlan) -> dict[str, int]:
    """Per group of `plan` (0 when none), the agents, given as (server id, update group,
    version), of that group that are not on their version of the moment. Agents of other
    groups are ignored."""
    stuck = dict.fromkeys(plan.versions, 0)
    differs: dict[tuple[str, str], bool] = {}  # few distinct pairs, many agents
    versions, canaries = plan.versions, plan.canaries
    for server_id, group, version in agents:
        expected = versions.get(group)
        if expected is None:
            continue
        expected = canaries.get(server_id, expected)
        key = (expected, version)
        verdict = differs.get(key)
        if verdict is None:
            verdict = differs[key] = not same_version(version, expected)
        stuck[group] += verdict
    return stuck
