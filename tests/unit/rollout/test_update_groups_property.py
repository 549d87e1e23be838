"""Property: for random fleets and rollouts, the exporter's membership, ask, stuck and
not-updating counts equal a direct transcription of Teleport's rules.

The transcription below follows Teleport's functions one by one (lib/autoupdate/lookup/rfd_184.go
`getGroup`, `getTriggerFromRollout`, `getVersionFromRollout`, `updaterIsCanary`;
lib/autoupdate/rollout/strategy.go `inWindow`, `canUpdateToday`) and the facts file's notes on who
Teleport's counts leave out. It shares no code with exporter.rollout.groups: the exporter's side
is driven from tctl's JSON through the same parsers and `derive_fleet` that serve /metrics.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.fleet.derive import derive_fleet
from exporter.fleet.model import parse_inventory
from exporter.rollout.groups import plan_groups
from exporter.rollout.model import parse_rollout

START, TARGET = "18.0.2", "18.1.4"
STATE_ENUM = {
    "unstarted": "AUTO_UPDATE_AGENT_GROUP_STATE_UNSTARTED",
    "active": "AUTO_UPDATE_AGENT_GROUP_STATE_ACTIVE",
    "done": "AUTO_UPDATE_AGENT_GROUP_STATE_DONE",
    "rolledback": "AUTO_UPDATE_AGENT_GROUP_STATE_ROLLEDBACK",
    "canary": "AUTO_UPDATE_AGENT_GROUP_STATE_CANARY",
}
GROUP_NAMES = ("default", "dev", "staging", "prod")
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun", "*", "monday", "sunday")
STATUS_NUMBERS = {"ok": 1, "disabled": 2, "pinned": 3, "unreadable": 4, "unspecified": 0}


# ---- Teleport's rules, transcribed ---------------------------------------------------------


@dataclass
class TGroup:
    name: str
    state: str
    days: list[str]
    start_hour: int
    canary_updater_ids: list[str]
    canary_host_ids: list[str]


@dataclass
class TRollout:
    mode: str
    schedule: str
    strategy: str
    window: timedelta
    groups: list[TGroup]


@dataclass
class TAgent:
    server_id: str
    upgrader: str | None
    status: str | None  # None: no UpdaterInfo
    group: str
    updater_id: str  # UUID text
    version: str


def t_get_group(rollout: TRollout, name: str) -> TGroup:
    for group in rollout.groups:
        if group.name == name:
            return group
    return rollout.groups[-1]


def t_is_canary(group: TGroup, agent: TAgent) -> bool:
    return (agent.updater_id != "" and agent.updater_id in group.canary_updater_ids) or (
        agent.server_id in group.canary_host_ids
    )


def t_can_update_today(days: list[str], now: datetime) -> bool:
    names = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    for day in days:
        if day == "*":
            return True
        lowered = day.lower()
        for number, full in enumerate(names):
            if lowered in (full, full[:3]) and number == now.weekday():
                return True
    return False


def t_in_window(group: TGroup, now: datetime, duration: timedelta) -> bool:
    if not t_can_update_today(group.days, now):
        return False
    start = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(hours=group.start_hour)
    return start <= now < start + duration


def t_asked_group(agent: TAgent) -> str:
    """The group name the agent puts in its request."""
    if agent.upgrader == "unit":
        return "default"  # the v1 channel's name, read as a group
    return agent.group


def t_trigger(rollout: TRollout, agent: TAgent, now: datetime) -> bool:
    if rollout.mode in ("disabled", "suspended"):
        return False
    if rollout.schedule == "immediate":
        return True
    group = t_get_group(rollout, t_asked_group(agent))
    if group.state == "unstarted":
        return False
    if group.state in ("active", "rolledback"):
        return True
    if group.state == "done":
        if rollout.strategy == "halt-on-error":
            return True
        # time-based: the reconciler makes a done group active again inside its window
        return t_in_window(group, now, rollout.window)
    if group.state == "canary":
        return t_is_canary(group, agent)
    return False


def t_version(rollout: TRollout, agent: TAgent) -> str:
    if rollout.mode == "disabled" or rollout.schedule == "immediate":
        return TARGET
    group = t_get_group(rollout, t_asked_group(agent))
    if group.state in ("unstarted", "rolledback"):
        return START
    if group.state in ("active", "done"):
        return TARGET
    return TARGET if t_is_canary(group, agent) else START


def t_cannot_update(agent: TAgent) -> str | None:
    if agent.upgrader is None:
        return "no_upgrader"
    if agent.status in ("disabled", "pinned", "unreadable"):
        return agent.status
    return None


def t_counted(agent: TAgent) -> bool:
    """lib/auth `filterHandler`: whether the agent reports (hence Teleport's present and
    up-to-date counts) include the agent."""
    if agent.upgrader is None or agent.upgrader == "unit":
        return False  # no updater; v1 updater
    if agent.status is None or agent.group == "":
        return False  # updater too old
    return agent.status == "ok"


def transcribe(rollout: TRollout, agents: list[TAgent], now: datetime) -> dict[str, Any]:
    members: dict[str, int] = {}
    asked: dict[str, int] = {}
    stuck: dict[str, int] = {}
    if rollout.schedule != "immediate":
        for group in rollout.groups:
            for table in (members, asked, stuck):
                table.setdefault(group.name, 0)
    not_updating = dict.fromkeys(("no_upgrader", "disabled", "pinned", "unreadable"), 0)
    # An immediate schedule has no groups (the reconciler clears them), so no counts either.
    listed = [] if rollout.schedule == "immediate" else [group.name for group in rollout.groups]
    counts = {name: [0, 0] for name in listed}
    for agent in agents:
        reason = t_cannot_update(agent)
        if reason:
            not_updating[reason] += 1
        if rollout.schedule == "immediate":
            name = agent.group or "default"
        else:
            name = t_get_group(rollout, t_asked_group(agent)).name
        trigger = t_trigger(rollout, agent, now)
        members[name] = members.get(name, 0) + 1
        asked[name] = asked.get(name, 0) + trigger
        stuck[name] = stuck.get(name, 0) + (
            trigger and reason is None and agent.version != t_version(rollout, agent)
        )
        if t_counted(agent) and listed:
            if agent.group in listed:
                into = agent.group
            elif rollout.strategy == "halt-on-error":
                into = listed[-1]
            else:
                continue
            counts[into][0] += 1
            counts[into][1] += agent.version == TARGET
    return {
        "members": members,
        "asked": asked,
        "stuck": stuck,
        "not_updating": not_updating,
        "counts": {name: tuple(pair) for name, pair in counts.items()},
    }


# ---- random fleets and rollouts, printed as tctl prints them ---------------------------------


@st.composite
def rollouts(draw: st.DrawFn) -> TRollout:
    names = draw(st.lists(st.sampled_from(GROUP_NAMES), min_size=1, max_size=4, unique=True))
    groups = [
        TGroup(
            name,
            draw(st.sampled_from(tuple(STATE_ENUM))),
            draw(st.lists(st.sampled_from(DAYS), min_size=1, max_size=3)),
            draw(st.integers(0, 23)),
            [],
            [],
        )
        for name in names
    ]
    return TRollout(
        draw(st.sampled_from(("enabled", "enabled", "disabled", "suspended"))),
        draw(st.sampled_from(("regular", "regular", "regular", "immediate"))),
        draw(st.sampled_from(("halt-on-error", "time-based"))),
        timedelta(minutes=draw(st.sampled_from((30, 60, 180, 600)))),
        groups,
    )


@st.composite
def agents(draw: st.DrawFn, index: int) -> TAgent:
    upgrader = draw(st.sampled_from((None, "unit", "kube", "binary", "binary", "integration")))
    status: str | None = None
    group = ""
    if upgrader in ("kube", "binary"):
        status = draw(
            st.sampled_from(("ok", "ok", "ok", "disabled", "pinned", "unreadable", "unspecified"))
        )
        group = draw(st.sampled_from(("", *GROUP_NAMES, "unlisted")))
    return TAgent(
        str(uuid.UUID(int=index + 1)),
        upgrader,
        status,
        group,
        str(uuid.UUID(int=(1 << 100) + index)) if status is not None else "",
        draw(st.sampled_from((START, TARGET, "17.3.7"))),
    )


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[TRollout, list[TAgent], datetime]:
    rollout = draw(rollouts())
    fleet = [draw(agents(index)) for index in range(draw(st.integers(0, 30)))]
    for group in rollout.groups:  # canaries picked from the fleet, named one way or the other
        if group.state == "canary" and fleet:
            for agent in draw(st.lists(st.sampled_from(fleet), max_size=3)):
                if agent.updater_id and draw(st.booleans()):
                    group.canary_updater_ids.append(agent.updater_id)
                else:
                    group.canary_host_ids.append(agent.server_id)
    now = datetime(2026, 11, 30, tzinfo=UTC) + timedelta(
        minutes=draw(st.integers(0, 7 * 24 * 60 - 1))
    )
    return rollout, fleet, now


def rollout_json(rollout: TRollout) -> bytes:
    groups = []
    for group in rollout.groups:
        entry: dict[str, Any] = {"name": group.name, "state": STATE_ENUM[group.state]}
        entry["config_days"] = group.days
        if group.start_hour:
            entry["config_start_hour"] = group.start_hour
        canaries = [{"updater_id": ident} for ident in group.canary_updater_ids]
        canaries += [{"host_id": ident} for ident in group.canary_host_ids]
        if canaries:
            entry["canary_count"] = str(len(canaries))
            entry["canaries"] = canaries
        groups.append(entry)
    spec = {
        "start_version": START,
        "target_version": TARGET,
        "schedule": rollout.schedule,
        "autoupdate_mode": rollout.mode,
        "strategy": rollout.strategy,
    }
    if rollout.strategy == "time-based":
        spec["maintenance_window_duration"] = f"{int(rollout.window.total_seconds())}s"
    status = {"groups": groups} if rollout.schedule != "immediate" else {}
    return json.dumps(
        [{"kind": "autoupdate_agent_rollout", "spec": spec, "status": status}], indent=4
    ).encode()


def inventory_json(fleet: list[TAgent]) -> bytes:
    records = []
    for agent in fleet:
        spec: dict[str, Any] = {"version": agent.version, "services": ["Node"], "hostname": "h"}
        if agent.upgrader is not None:
            spec["ext_upgrader"] = agent.upgrader
        if agent.status is not None:
            info: dict[str, Any] = {}
            if agent.group:
                info["UpdateGroup"] = agent.group
            info["UpdateUUID"] = base64.b64encode(uuid.UUID(agent.updater_id).bytes).decode()
            if STATUS_NUMBERS[agent.status]:
                info["UpdaterStatus"] = STATUS_NUMBERS[agent.status]
            spec["UpdaterInfo"] = info
        records.append({"kind": "instance", "metadata": {"name": agent.server_id}, "spec": spec})
    return json.dumps(records, indent=2).encode()


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_exporter_counts_as_teleport_counts(
    scenario: tuple[TRollout, list[TAgent], datetime],
) -> None:
    rollout, fleet, now = scenario
    expected = transcribe(rollout, fleet, now)
    plan = plan_groups(parse_rollout(rollout_json(rollout)), now)
    view = derive_fleet(parse_inventory(inventory_json(fleet)).instances, "18.1.4", TARGET, plan)
    assert view.groups is not None
    tallies = view.groups.groups
    assert {name: tally.members for name, tally in tallies.items()} == expected["members"]
    assert {name: tally.asked for name, tally in tallies.items()} == expected["asked"]
    assert view.stuck_by_group == expected["stuck"]
    # The agents `check` names as stuck are the ones counted, each once.
    named = {group: positions for group, (_, positions) in view.groups.stuck_agents.items()}
    assert {group: len(set(p)) for group, p in named.items()} == {
        group: count for group, count in expected["stuck"].items() if count
    }
    assert view.not_updating == expected["not_updating"]
    assert view.teleport_counts == expected["counts"]
