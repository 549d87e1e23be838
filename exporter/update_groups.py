"""Managed Updates v2 groups: the version each group's agents should run now, and who is stuck.

Teleport's per-group rule (lib/web/autoupdate_common.go, `getVersionFromRollout`): a group that
is unstarted or rolled back runs the rollout's start version, an active or done group its target
version, and a canary group the start version (only its few canaries get the target early).
An agent whose version differs from its own group's version of the moment is stuck: it is what a
rollout owner must chase. Agents of an unstarted group still on the start version are merely
waiting for their turn and are not counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from exporter.models.rollout import Rollout
from exporter.versions import normalise, same_version

_START_STATES = frozenset({"unstarted", "rolledback", "canary"})
_TARGET_STATES = frozenset({"active", "done"})


def expected_version(state: str, start_version: str, target_version: str) -> str | None:
    """The version a group in `state` should run now; None for a state this code cannot place."""
    if state in _START_STATES:
        return normalise(start_version) or None
    if state in _TARGET_STATES:
        return normalise(target_version) or None
    return None


def group_versions(rollout: Rollout | None) -> dict[str, str]:
    """Group name -> its version of the moment, in the rollout's order (first entry wins)."""
    if rollout is None:
        return {}
    spec = rollout.spec
    versions: dict[str, str] = {}
    for group in rollout.status.groups:
        if group.name in versions:
            continue
        version = expected_version(group.state, spec.start_version, spec.target_version)
        if version is not None:
            versions[group.name] = version
    return versions


def stuck_by_group(
    agents: Iterable[tuple[str, str]], versions: Mapping[str, str]
) -> dict[str, int]:
    """Per group of `versions` (0 when none), the agents, given as (update group, version), of
    that group whose version differs from the group's. Agents of other groups are ignored."""
    stuck = dict.fromkeys(versions, 0)
    differs: dict[tuple[str, str], bool] = {}  # few distinct pairs, many agents
    for group, version in agents:
        expected = versions.get(group)
        if expected is None:
            continue
        key = (group, version)
        verdict = differs.get(key)
        if verdict is None:
            verdict = differs[key] = not same_version(version, expected)
        stuck[group] += verdict
    return stuck
