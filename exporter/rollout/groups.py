"""Managed Updates v2 as Teleport decides it: which group an agent belongs to, what Teleport asks
of it right now, and who is stuck. Pure functions of the rollout, the agents and the time.

Teleport's rules (lib/autoupdate/lookup/rfd_184.go, lib/autoupdate/rollout/; facts: "Which group
an agent belongs to"):

- Membership: an agent belongs to the rollout group named by its updater's `UpdateGroup`; an
  empty or unlisted name falls back to the rollout's *last* group (the catch-all). A v1 `unit`
  agent sends no group: it asks the version channel `default`, which with a rollout is read as
  a group name, so it belongs to `default` when listed, else to the last group.
- Version of the moment: with `autoupdate_mode: disabled` or `schedule: immediate`, the target
  for everyone; else per group state: unstarted or rolled back, the start version; active or
  done, the target; canary, the target for the group's canaries (matched on their updater id
  or host id) and the start version for the rest. Teleport fills a canary's `updater_id` with
  the raw bytes of the agent's UpdateUUID, which protojson cannot print faithfully; the host id
  (the inventory's server id) is the match that holds, the updater id is tried as well.
- The ask ("trigger"): nobody while the mode is disabled or suspended; everyone with an
  immediate schedule; else per group state: unstarted no, active and rolled back yes, canary
  only its canaries, done yes under halt-on-error and, under time-based, only inside the
  group's window (`config_days` at `config_start_hour` UTC for `maintenance_window_duration`,
  where Teleport's reconciler turns the group active again).
- Stuck: asked, and not on the group's version of the moment. An agent that cannot update by
  itself (no upgrader; updater disabled, pinned or unreadable) is never stuck: it is counted
  by reason in `not_updating` instead.
- Teleport's own `present_count` / `up_to_date_count` come from the Auth servers' agent
  reports, which leave out (lib/auth `filterHandler`) agents with no upgrader, v1 `unit`
  updaters, updaters that report no `UpdaterInfo` or an empty group (too old), every updater
  status but OK, Teleport-managed Auth/Proxy instances and agents registered less than a minute
  ago (the inventory cannot tell those); the halt-on-error strategy counts unlisted groups into
  the last group. `teleport_counts` reproduces that so the two can be compared.

With an immediate schedule the rollout has no groups: stuck agents are then counted under their
own update group (`default` when they report none).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from exporter.core.clock import WEEKDAY_NUMBERS
from exporter.core.versions import normalise, same_version
from exporter.rollout.model import Rollout
from exporter.vocab import NO_UPGRADER, NOT_UPDATING_REASONS

UNIT_UPGRADER = "unit"
DEFAULT_GROUP = "default"
"""The group `teleport-update` reports when none is configured, and the v1 channel's name."""
DEFAULT_WINDOW = timedelta(hours=1)
"""A time-based rollout's window when `maintenance_window_duration` is absent."""


class Agent(NamedTuple):
    """What the rules need of one customer agent (from the inventory)."""

    server_id: str
    update_group: str
    """`UpdaterInfo.UpdateGroup` as reported; empty when none."""
    updater_id: str
    """`UpdaterInfo.UpdateUUID` as reported (base64); empty when none."""
    version: str
    upgrader: str
    """`ext_upgrader`, or `none`."""
    updater_status: str
    """ok, disabled, pinned, unreadable, unspecified (no `UpdaterInfo`)."""


def not_updating_reason(upgrader: str, updater_status: str) -> str | None:
    """Why an agent with this upgrader and updater status will not update by itself, or None."""
    if upgrader == NO_UPGRADER:
        return "no_upgrader"
    if updater_status in ("disabled", "pinned", "unreadable"):
        return updater_status
    return None


def updater_uuid(raw: str) -> str:
    """An updater id as a lower-case UUID string, whichever form it comes in (the inventory
    prints the 16 bytes in base64, a rollout's canary list may print the UUID); the raw text
    when it is neither."""
    text = raw.strip()
    if not text:
        return ""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        pass
    try:
        decoded = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return text
    return str(uuid.UUID(bytes=decoded)) if len(decoded) == 16 else text


def parse_duration(text: str) -> timedelta | None:
    """protojson's Duration (`3600s`, `5400.5s`); None when absent or unreadable."""
    value = text.strip()
    if not value.endswith("s"):
        return None
    try:
        seconds = float(value[:-1])
    except ValueError:
        return None
    return timedelta(seconds=seconds) if seconds > 0 else None


def in_window(days: Iterable[str], start_hour: int, duration: timedelta, now: datetime) -> bool:
    """Teleport's `inWindow`: today (UTC) is one of `days` (or `*`) and `now` is in
    [today at start_hour, + duration). An unknown weekday name matches no day."""
    now = now.astimezone(UTC)
    today = now.weekday()
    if not any(day == "*" or WEEKDAY_NUMBERS.get(day.strip().lower()) == today for day in days):
        return False
    start = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(hours=start_hour)
    return start <= now < start + duration


@dataclass(frozen=True, slots=True)
class GroupRule:
    """One rollout group as the rules see it."""

    name: str
    state: str
    version: str | None
    """The version its (non-canary) agents should run now; None when it cannot be placed."""
    asked: bool
    """Whether Teleport asks its (non-canary) agents to update now."""
    canaries: frozenset[str] = frozenset()
    """Updater ids and host ids of the group's canaries (canary state only)."""
    canaries_asked: bool = False
    """Whether its canaries are asked (a canary group while the mode is enabled)."""


@dataclass(frozen=True, slots=True)
class GroupPlan:
    """Where each group of a rollout should be at one moment, and who is asked to get there."""

    groups: dict[str, GroupRule] = field(default_factory=dict)
    """By name, in the rollout's order (the first entry of a name listed twice wins)."""
    last: str | None = None
    """The catch-all group: the rollout's last, None when it lists none."""
    target: str | None = None
    immediate_version: str | None = None
    """With an immediate schedule (no groups): the target, for everyone."""
    immediate_asked: bool = False
    halt_on_error: bool = True

    @property
    def versions(self) -> dict[str, str]:
        """Group name -> its version of the moment (groups that can be placed)."""
        return {name: rule.version for name, rule in self.groups.items() if rule.version}

    def member(self, update_group: str, upgrader: str) -> str | None:
        """The group Teleport puts an agent in; None when the rollout has no groups."""
        if self.last is None:
            return None
        name = DEFAULT_GROUP if upgrader == UNIT_UPGRADER else update_group
        return name if name in self.groups else self.last


def plan_groups(rollout: Rollout | None, now: datetime | None = None) -> GroupPlan | None:
    """The GroupPlan of `rollout` at `now` (time-based windows); None without a rollout."""
    if rollout is None:
        return None
    spec = rollout.spec
    mode = spec.autoupdate_mode
    start, target = normalise(spec.start_version) or None, normalise(spec.target_version) or None
    enabled = mode == "enabled"
    halt_on_error = spec.strategy != "time-based"
    if spec.schedule == "immediate":
        return GroupPlan(target=target, immediate_version=target, immediate_asked=enabled)
    window = parse_duration(spec.maintenance_window_duration) or DEFAULT_WINDOW
    moment = now or datetime.now(UTC)
    groups: dict[str, GroupRule] = {}
    for group in rollout.status.groups:
        if group.name in groups:
            continue
        state = group.state
        canaries: frozenset[str] = frozenset()
        if mode == "disabled":
            version = target
        elif state in ("unstarted", "rolledback", "canary"):
            version = start
        elif state in ("active", "done"):
            version = target
        else:
            version = None
        if state == "canary":
            canaries = frozenset(
                ident
                for canary in group.canaries
                for ident in (updater_uuid(canary.updater_id), canary.host_id)
                if ident
            )
        if not enabled:
            asked = False
        elif state in ("active", "rolledback"):
            asked = True
        elif state == "done":
            asked = halt_on_error or in_window(
                group.config_days, group.config_start_hour, window, moment
            )
        else:  # unstarted; canary asks only its canaries; unknown states are not guessed at
            asked = False
        groups[group.name] = GroupRule(
            group.name, state, version, asked, canaries, enabled and state == "canary"
        )
    last = rollout.status.groups[-1].name if rollout.status.groups else None
    return GroupPlan(groups, last, target, halt_on_error=halt_on_error)


class Verdict(NamedTuple):
    group: str | None
    """The group Teleport puts the agent in (its own group, or `default`, with an immediate
    schedule); None when the rollout has no groups at all."""
    version: str | None
    """The version Teleport wants it on now."""
    asked: bool
    """Teleport asks it to update now (whether or not its updater can)."""
    stuck: bool
    """Asked, able to update (see `not_updating_reason`), and not on `version`."""


def assess(agent: Agent, plan: GroupPlan) -> Verdict:
    """Teleport's view of one agent under `plan`."""
    group: str | None
    version: str | None
    if plan.immediate_version is not None:
        group = agent.update_group or DEFAULT_GROUP
        version, asked = plan.immediate_version, plan.immediate_asked
    else:
        group = plan.member(agent.update_group, agent.upgrader)
        if group is None:
            return Verdict(None, None, False, False)
        rule = plan.groups[group]
        version, asked = rule.version, rule.asked
        if rule.canaries and (
            agent.server_id in rule.canaries or updater_uuid(agent.updater_id) in rule.canaries
        ):
            version, asked = plan.target, rule.canaries_asked
    able = not_updating_reason(agent.upgrader, agent.updater_status) is None
    stuck = asked and able and version is not None and not same_version(agent.version, version)
    return Verdict(group, version, asked, stuck)


@dataclass(frozen=True, slots=True)
class GroupTally:
    members: int = 0
    asked: int = 0
    stuck: int = 0


@dataclass(frozen=True, slots=True)
class Assessment:
    """Per group (the rollout's order; with an immediate schedule, the agents' own groups)."""

    groups: dict[str, GroupTally]
    stuck_agents: dict[str, tuple[str, list[int]]] = field(default_factory=dict)
    """Per group with stuck agents: the version Teleport wants there now, and the stuck agents'
    positions in the assessed sequence (so a report can name them without judging again)."""

    @property
    def stuck(self) -> dict[str, int]:
        return {name: tally.stuck for name, tally in self.groups.items()}


def assess_fleet(agents: Iterable[Agent], plan: GroupPlan) -> Assessment:
    """Members, asked and stuck agents per group. Verdicts are cached by what they depend on
    (fleets share few groups, versions and statuses); canary groups are judged per agent."""
    counts: dict[str, list[int]] = {name: [0, 0, 0] for name in plan.groups}
    cache: dict[tuple[str, str, str, str], Verdict] = {}
    canary_groups = {name for name, rule in plan.groups.items() if rule.canaries}
    stuck: dict[str, tuple[str, list[int]]] = {}
    for position, agent in enumerate(agents):
        key = (agent.update_group, agent.version, agent.upgrader, agent.updater_status)
        verdict = cache.get(key)
        if verdict is None or verdict.group in canary_groups:
            verdict = assess(agent, plan)
            if verdict.group not in canary_groups:
                cache[key] = verdict
        if verdict.group is None:
            continue
        row = counts.setdefault(verdict.group, [0, 0, 0])
        row[0] += 1
        row[1] += verdict.asked
        if verdict.stuck:
            row[2] += 1
            stuck.setdefault(verdict.group, (verdict.version or "?", []))[1].append(position)
    return Assessment(
        {name: GroupTally(*row) for name, row in counts.items()},
        {name: stuck[name] for name in counts if name in stuck},
    )


def not_updating_counts(agents: Iterable[Agent]) -> dict[str, int]:
    """Agents that will not update by themselves, by reason (every reason present)."""
    counts: dict[str, int] = dict.fromkeys(NOT_UPDATING_REASONS, 0)
    for agent in agents:
        reason = not_updating_reason(agent.upgrader, agent.updater_status)
        if reason is not None:
            counts[reason] += 1
    return counts


def counted_by_teleport(agent: Agent) -> bool:
    """Whether Teleport's agent reports, hence its group counts, include this agent: an upgrader
    other than v1 `unit`, a reported update group, and updater status OK (lib/auth
    `filterHandler`; registration time and Teleport-managed instances aside)."""
    return (
        agent.updater_status == "ok"
        and agent.update_group != ""
        and agent.upgrader not in (NO_UPGRADER, UNIT_UPGRADER)
    )


def teleport_counts(agents: Iterable[Agent], plan: GroupPlan) -> dict[str, tuple[int, int]]:
    """Per rollout group, (present, up to date) as Teleport computes `present_count` and
    `up_to_date_count`, for the agents the inventory shows."""
    counts = {name: (0, 0) for name in plan.groups}
    if plan.last is None:
        return counts
    target = plan.target
    for agent in agents:
        if not counted_by_teleport(agent):
            continue
        group = agent.update_group
        if group not in plan.groups:
            if not plan.halt_on_error:
                continue
            group = plan.last
        present, current = counts[group]
        on_target = target is not None and same_version(agent.version, target)
        counts[group] = (present + 1, current + on_target)
    return counts
