"""Deterministic fleets and rollouts in tctl's exact JSON shapes, for the fake tctl, tests and
benchmarks.

`generate_inventory(size, ...)` returns the records `tctl inventory ls --format=json` would print
for `size` customer agents, plus three Teleport-managed control-plane instances (one Auth, two
Proxy) and `broken` records that are not valid instances, shuffled. The same arguments always
give the same records (pass `now` to pin the timestamps too).

Mixes:
- `skewed`: agents on the control plane's major (most), one major behind and two behind, with
  `v`-prefixed, pre-release and dev versions among them, plus exactly one agent on the next major
  and one with a garbage version (when size >= 2); every upgrader kind (unit, kube, binary,
  integration_awsoidc) and agents without one; several update groups and services, including a
  service this code has never heard of; `binary` (Managed Updates v2) agents in every updater
  status, some of them disabled or pinned.
- `healthy`: every agent on `release(control_plane_major)` (the simulated target) and enrolled.

Tests must compute what they expect from the returned records, never from this module's
choices, so a bug here cannot hide a bug in the exporter.

Records follow Teleport's encoders (see the Teleport facts): keys in the Go structs' order, empty
values omitted (`control_log`, `ext_upgrader*`), `UpdaterInfo` only on `binary` agents with a
numeric `UpdaterStatus` left out when 0 (unspecified), snake_case keys inside `LastMeasurement`,
timestamps in RFC 3339 with up to nine fractional digits. The rollout is protojson: zero values
omitted, uint64 counts as strings, 18.x canary fields on canary groups.
"""

from __future__ import annotations

import base64
import random
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

Mix = Literal["skewed", "healthy"]

UPGRADERS = ("unit", "kube", "binary", "integration_awsoidc")
UPDATER_STATUSES = (1, 2, 3, 4, 0)
"""types.UpdaterStatus: OK, DISABLED, PINNED, UNREADABLE, UNSPECIFIED (tctl prints numbers)."""
UPDATE_GROUPS = ("dev", "staging", "prod")
ROLLOUT_GROUPS = ("dev", "staging", "prod")
UNKNOWN_SERVICE = "Quantum"
"""A service name from a future Teleport: the exporter must keep it as an opaque value."""
GARBAGE_VERSION = "custom-build (dirty)"

_SERVICE_SETS: tuple[tuple[str, ...], ...] = (
    ("Node",),
    ("Node",),
    ("Node", "App"),
    ("App",),
    ("Db",),
    ("Node", "Db"),
    ("WindowsDesktop",),
    ("Discovery",),
    ("App", "Db", "Discovery"),
)
_KUBE_SERVICE_SETS: tuple[tuple[str, ...], ...] = (("Kube",), ("Kube", "App"))
_HEARTBEAT_TTL = timedelta(minutes=20)


def release(major: int) -> str:
    """The version a simulated tenant runs on `major` (control plane and agent target)."""
    return f"{major}.1.4"


def rfc3339(moment: datetime, nanos: int = 0) -> str:
    """Go's time.RFC3339Nano in UTC, as Teleport's JSON prints it (trailing zeros of the
    fraction dropped); `nanos` adds the sub-microsecond digits a Go clock has."""
    moment = moment.astimezone(UTC)
    fraction = f"{moment.microsecond:06d}{nanos % 1000:03d}".rstrip("0")
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _skewed_version(rng: random.Random, cp: int) -> str:
    major = rng.choices((cp, cp - 1, cp - 2), weights=(70, 22, 8))[0]
    if major == cp:
        version = rng.choices((release(cp), f"{cp}.0.2", f"{cp}.2.0-rc.1"), weights=(80, 17, 3))[0]
    elif major == cp - 1:
        version = rng.choices((f"{major}.3.7", f"{major}.1.4-dev.x"), weights=(95, 5))[0]
    else:
        version = f"{major}.4.1"
    return "v" + version if rng.random() < 0.3 else version


def _agent(
    rng: random.Random,
    *,
    index: int,
    version: str,
    upgrader: str | None,
    now: datetime,
    auth_id: str,
    unknown_service: bool,
    healthy: bool,
) -> dict[str, Any]:
    services = rng.choice(_KUBE_SERVICE_SETS if upgrader == "kube" else _SERVICE_SETS)
    if unknown_service:
        services = (*services, UNKNOWN_SERVICE)
    last_seen = now - timedelta(seconds=rng.uniform(5, 18 * 60))
    spec: dict[str, Any] = {
        "version": version,
        "services": list(services),
        "hostname": f"{services[0].lower()}-{index:05d}.example.internal",
        "auth_id": auth_id,
        "last_seen": rfc3339(last_seen, rng.randrange(1000)),
    }
    if upgrader is not None:
        spec["ext_upgrader"] = upgrader
        bare = version.removeprefix("v")
        if bare != GARBAGE_VERSION:
            # teleport-upgrade and the kube updater report with a v, teleport-update without.
            spec["ext_upgrader_version"] = "v" + bare if upgrader in ("unit", "kube") else bare
    if rng.random() < 0.5:
        spec["LastMeasurement"] = {
            "controller_system_clock": rfc3339(last_seen),
            "system_clock": rfc3339(last_seen - timedelta(milliseconds=rng.randint(0, 900))),
            "request_duration": rng.randint(1_000_000, 90_000_000),
        }
    if upgrader == "binary":
        # Only teleport-update reports UpdaterInfo; Go omits the zero status.
        status = 1 if healthy else rng.choices(UPDATER_STATUSES, weights=(80, 5, 5, 3, 7))[0]
        info: dict[str, Any] = {
            "UpdateGroup": rng.choice(UPDATE_GROUPS),
            "UpdateUUID": base64.b64encode(rng.randbytes(16)).decode(),
        }
        if status:
            info["UpdaterStatus"] = status
        spec["UpdaterInfo"] = info
    elif upgrader == "kube":
        # The kube updater always reports OK, with the group from its environment (none set on
        # one agent in seven). Derived from the index, so the fleet's randomness is unchanged.
        kube_info: dict[str, Any] = {}
        if index % 7:
            kube_info["UpdateGroup"] = UPDATE_GROUPS[index % len(UPDATE_GROUPS)]
        ident = uuid.uuid5(uuid.NAMESPACE_OID, f"kube-{index}")
        kube_info["UpdateUUID"] = base64.b64encode(ident.bytes).decode()
        kube_info["UpdaterStatus"] = 1
        spec["UpdaterInfo"] = kube_info
    return {
        "kind": "instance",
        "version": "v1",
        "metadata": {"name": _uuid(rng), "expires": rfc3339(last_seen + _HEARTBEAT_TTL)},
        "spec": spec,
    }


def _control_plane(
    rng: random.Random, cp: int, now: datetime, auth_id: str
) -> list[dict[str, Any]]:
    records = []
    for index, services in enumerate((["Auth"], ["Proxy"], ["Proxy"])):
        seen = now - timedelta(seconds=rng.uniform(5, 300))
        records.append(
            {
                "kind": "instance",
                "version": "v1",
                "metadata": {
                    "name": auth_id if index == 0 else _uuid(rng),
                    "expires": rfc3339(seen + _HEARTBEAT_TTL),
                },
                "spec": {
                    "version": release(cp),
                    "services": services,
                    "hostname": f"{services[0].lower()}-{index}",
                    "auth_id": auth_id,
                    "last_seen": rfc3339(seen),
                },
            }
        )
    return records


def _broken(rng: random.Random, index: int, cp: int) -> Any:
    """Records a real tctl should never print, each wrong in a different way."""
    variant = index % 5
    base: dict[str, Any] = {"kind": "instance", "version": "v1"}
    if variant == 0:
        return {**base, "metadata": {"name": 12345}, "spec": {"version": release(cp)}}
    if variant == 1:
        return {**base, "metadata": {"name": _uuid(rng)}, "spec": {"services": "Node"}}
    if variant == 2:
        return {**base, "metadata": {"name": _uuid(rng)}, "spec": {"version": cp}}
    if variant == 3:
        return {**base, "metadata": {"name": _uuid(rng)}}
    return "not an instance"


def generate_inventory(
    size: int,
    control_plane_major: int = 18,
    *,
    mix: Mix = "skewed",
    broken: int = 0,
    seed: int = 0,
    now: datetime | None = None,
) -> list[Any]:
    """`size` customer agents + 3 control-plane instances + `broken` invalid records, as
    InstanceV1 dicts in tctl's JSON shape (broken ones may not even be dicts)."""
    if mix not in ("skewed", "healthy"):
        raise ValueError(f"unknown mix {mix!r}: expected skewed or healthy")
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    cp = control_plane_major
    auth_id = _uuid(rng)
    records: list[Any] = []
    for index in range(size):
        if mix == "healthy":
            version = release(cp)
            upgrader: str | None = rng.choice(("binary", "binary", "unit", "kube"))
        else:
            if index == 0 and size >= 2:
                version = f"{cp + 1}.0.1"
            elif index == 1:
                version = GARBAGE_VERSION
            else:
                version = _skewed_version(rng, cp)
            upgrader = rng.choices((*UPGRADERS, None), weights=(25, 15, 30, 5, 25))[0]
        unknown_service = mix == "skewed" and index == 2
        records.append(
            _agent(
                rng,
                index=index,
                version=version,
                upgrader=upgrader,
                now=now,
                auth_id=auth_id,
                unknown_service=unknown_service,
                healthy=mix == "healthy",
            )
        )
    records.extend(_control_plane(rng, cp, now, auth_id))
    records.extend(_broken(rng, index, cp) for index in range(broken))
    rng.shuffle(records)
    return records


_GROUP_STATE_NAMES = {
    "unstarted": "AUTO_UPDATE_AGENT_GROUP_STATE_UNSTARTED",
    "active": "AUTO_UPDATE_AGENT_GROUP_STATE_ACTIVE",
    "done": "AUTO_UPDATE_AGENT_GROUP_STATE_DONE",
    "rolledback": "AUTO_UPDATE_AGENT_GROUP_STATE_ROLLEDBACK",
    "canary": "AUTO_UPDATE_AGENT_GROUP_STATE_CANARY",
}


def generate_rollout(
    control_plane_major: int = 18,
    groups: Sequence[str] = ROLLOUT_GROUPS,
    states: Sequence[str] | None = None,
    seed: int = 0,
    now: datetime | None = None,
    strategy: str = "halt-on-error",
    counts: Mapping[str, tuple[int, int]] | None = None,
    mode: str = "enabled",
    schedule: str = "regular",
    windows: Mapping[str, tuple[Sequence[str], int]] | None = None,
    window_duration: str = "3600s",
) -> dict[str, Any]:
    """One autoupdate_agent_rollout resource in protojson (tctl prints it inside an array).

    `counts` (group -> present, up to date) are the counts Teleport computes from the agents'
    own reports (`group_counts` of the inventory); without them they are random.

    By default the first group is done, the second active and the rest unstarted; `states`
    (short names such as `canary`) overrides that per group. As protojson prints it: uint64
    counts as strings, zero values omitted, `maintenance_window_duration` only for the
    time-based strategy, `canary_count` and `canaries` (18.x) on canary groups. `mode` and
    `schedule` are the spec's; an immediate schedule has no groups (Teleport clears them).
    `windows` (group -> (config_days, config_start_hour)) overrides the default windows.
    """
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    cp = control_plane_major
    if states is None:
        states = [("done", "active")[i] if i < 2 else "unstarted" for i in range(len(groups))]
    status_groups = []
    for index, (name, state) in enumerate(zip(groups, states, strict=True)):
        if counts is not None:
            present, up_to_date = counts.get(name, (0, 0))
        else:
            present = rng.randint(20, 400)
            up_to_date = {"done": present, "unstarted": 0}.get(state, rng.randint(0, present))
        started = now - timedelta(days=len(groups) - index)
        group: dict[str, Any] = {"name": name}
        if state != "unstarted":
            group["start_time"] = rfc3339(started)
        group["state"] = _GROUP_STATE_NAMES.get(state, state)
        group["last_update_time"] = rfc3339(started)
        group["last_update_reason"] = {"done": "success", "active": "in_window"}.get(
            state, "created"
        )
        days, hour = (windows or {}).get(name, (["Mon", "Tue", "Wed", "Thu"], 2 * index))
        group["config_days"] = list(days)
        if hour:  # protojson omits 0
            group["config_start_hour"] = hour
        if state != "unstarted" and present:
            group["initial_count"] = str(present)
        if present:
            group["present_count"] = str(present)
        if up_to_date:
            group["up_to_date_count"] = str(up_to_date)
        if state == "canary":
            canaries = [
                {
                    "updater_id": _uuid(rng),
                    "host_id": _uuid(rng),
                    "hostname": f"canary-{index}-{number}.example.internal",
                    **({"success": True} if number == 0 else {}),
                }
                for number in range(2)
            ]
            group["canary_count"] = str(len(canaries))
            group["canaries"] = canaries
        status_groups.append(group)
    spec: dict[str, Any] = {
        "start_version": f"{cp}.0.2",
        "target_version": release(cp),
        "schedule": schedule,
        "autoupdate_mode": mode,
        "strategy": strategy,
    }
    if strategy == "time-based":
        spec["maintenance_window_duration"] = window_duration
    status: dict[str, Any] = {"start_time": rfc3339(now - timedelta(days=len(groups)))}
    if schedule != "immediate":
        status = {
            "groups": status_groups,
            "state": "AUTO_UPDATE_AGENT_ROLLOUT_STATE_ACTIVE",
            **status,
        }
    return {
        "kind": "autoupdate_agent_rollout",
        "version": "v1",
        "metadata": {"name": "autoupdate-agent-rollout", "revision": _uuid(rng)},
        "spec": spec,
        "status": status,
    }


OMISSION_REASONS = {
    "no_updater": "agent has no updater",
    "v1": "managed updates v1 updater does not support agent reports",
    "too_old": "updater version does not support agent reports",
    2: "updater is disabled",
    3: "updater is pinning a specific version",
    4: "agent cannot read updater status",
    "unknown": "unknown updater status",
}
"""Teleport's omission reasons in agent reports (lib/auth, `filterHandler`), by cause."""


def report_entry(record: Any) -> tuple[str, str] | str | None:
    """How an Auth server's agent report treats one inventory record: (group, version) when it
    counts it, the omission reason when it leaves it out with one, None when it skips it
    silently (Teleport-managed Auth/Proxy instances; invalid records)."""
    spec = record.get("spec") if isinstance(record, dict) else None
    if not isinstance(spec, dict) or not isinstance(spec.get("services"), list):
        return None
    if {"Auth", "Proxy"} & set(spec["services"]):
        return None
    upgrader = spec.get("ext_upgrader", "")
    if not upgrader:
        return OMISSION_REASONS["no_updater"]
    if upgrader == "unit":
        return OMISSION_REASONS["v1"]
    info = spec.get("UpdaterInfo")
    if not isinstance(info, dict) or not info.get("UpdateGroup"):
        return OMISSION_REASONS["too_old"]
    status = info.get("UpdaterStatus", 0)
    if status != 1:
        return OMISSION_REASONS.get(status, OMISSION_REASONS["unknown"])
    return str(info["UpdateGroup"]), str(spec.get("version", ""))


def generate_agent_reports(
    records: Iterable[Any],
    auth_servers: Sequence[tuple[str, float]] = (("auth-0", 10.0),),
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """The `autoupdate_agent_report` resources (protojson) that the Auth servers named in
    `auth_servers` ((name, age of its report in seconds)) write for the fleet in `records`,
    its agents spread over the Auth servers in turn: int32 counts as numbers, int64 omission
    counts as strings, zero values and empty maps omitted."""
    now = now or datetime.now(UTC)
    reports: list[dict[str, Any]] = []
    tallies: list[tuple[dict[str, dict[str, int]], dict[str, int]]] = [
        ({}, {}) for _ in auth_servers
    ]
    index = 0
    for record in records:
        entry = report_entry(record)
        if entry is None:
            continue
        groups, omitted = tallies[index % len(auth_servers)]
        index += 1
        if isinstance(entry, str):
            omitted[entry] = omitted.get(entry, 0) + 1
        else:
            group, version = entry
            versions = groups.setdefault(group, {})
            versions[version] = versions.get(version, 0) + 1
    for (name, age), (groups, omitted) in zip(auth_servers, tallies, strict=True):
        written = now - timedelta(seconds=age)
        spec: dict[str, Any] = {"timestamp": rfc3339(written)}
        if groups:
            spec["groups"] = {
                group: {"versions": {v: {"count": n} for v, n in sorted(versions.items())}}
                for group, versions in sorted(groups.items())
            }
        if omitted:
            spec["omitted"] = [
                {"reason": reason, "count": str(count)} for reason, count in sorted(omitted.items())
            ]
        reports.append(
            {
                "kind": "autoupdate_agent_report",
                "version": "v1",
                "metadata": {"name": name, "expires": rfc3339(written + timedelta(hours=1))},
                "spec": spec,
            }
        )
    return reports


def group_counts(
    records: Iterable[Any],
    target_version: str,
    groups: Sequence[str] = (),
    strategy: str = "halt-on-error",
) -> dict[str, tuple[int, int]]:
    """Per update group, the agents present and those already on `target_version`, as Teleport
    computes `present_count` and `up_to_date_count` from the agent reports: only agents the
    reports count (`report_entry`); with `groups` (the rollout's) and the halt-on-error
    strategy, agents of unlisted groups are counted into the last group."""
    counts: dict[str, tuple[int, int]] = {}
    target = target_version.removeprefix("v")
    for record in records:
        entry = report_entry(record)
        if not isinstance(entry, tuple):
            continue
        group, version = entry
        if groups and group not in groups:
            if strategy != "halt-on-error":
                continue
            group = groups[-1]
        present, up_to_date = counts.get(group, (0, 0))
        counts[group] = (present + 1, up_to_date + (version.removeprefix("v") == target))
    return counts


def settle_versions(records: list[Any], rollout: dict[str, Any]) -> list[Any]:
    """`records` with versions that follow the rollout's group states, as Teleport would have
    put them: an agent of a group still on the start version (unstarted, rolled back, a canary
    group's non-canaries) that the generator placed on the target runs the start version
    instead; in a done group, agents with a working updater (status OK) that were on the start
    version have updated to the target (a done group is >= 90 % up to date). Membership as
    Teleport decides it (empty or unlisted group: the last; v1 `unit` agents: `default`).
    Other agents are left as generated (laggards on other versions stay laggards)."""
    spec, groups = rollout["spec"], rollout["status"].get("groups", [])
    if not groups or spec.get("schedule") == "immediate":
        return records
    start, target = spec["start_version"], spec["target_version"]
    states = {group["name"]: group for group in groups}
    holding = (_GROUP_STATE_NAMES["unstarted"], _GROUP_STATE_NAMES["rolledback"])
    for record in records:
        record_spec = record.get("spec") if isinstance(record, dict) else None
        if not isinstance(record_spec, dict) or not isinstance(record_spec.get("version"), str):
            continue
        bare = record_spec["version"].removeprefix("v")
        if bare not in (target.removeprefix("v"), start.removeprefix("v")):
            continue
        info = record_spec.get("UpdaterInfo")
        name = "default" if record_spec.get("ext_upgrader") == "unit" else ""
        if not name and isinstance(info, dict):
            name = str(info.get("UpdateGroup", ""))
        group = states.get(name, groups[-1])
        state = group.get("state")
        canary_hosts = {c.get("host_id") for c in group.get("canaries", [])}
        is_canary = record.get("metadata", {}).get("name") in canary_hosts
        on_target = bare == target.removeprefix("v")
        if on_target and (
            state in holding or (state == _GROUP_STATE_NAMES["canary"] and not is_canary)
        ):
            record_spec["version"] = start
        elif (
            not on_target
            and state == _GROUP_STATE_NAMES["done"]
            and isinstance(info, dict)
            and info.get("UpdaterStatus") == 1
        ):
            record_spec["version"] = target
    return records


def group_version(rollout: dict[str, Any], group: str | None) -> str:
    """What `/webapi/ping?group=<group>` reports as `agent_version` for `rollout` (protojson),
    following Teleport's `getGroup` and `getVersionFromRollout`: an unknown or missing group is
    answered for the last group; unstarted, rolled-back and canary groups get the start
    version, active and done groups the target version."""
    spec, groups = rollout["spec"], rollout["status"].get("groups", [])
    if not groups or spec.get("autoupdate_mode") == "disabled":
        return str(spec["target_version"])  # immediate schedule; disabled answers the target
    chosen = next((g for g in groups if g["name"] == group), groups[-1])
    done = chosen.get("state") in (_GROUP_STATE_NAMES["active"], _GROUP_STATE_NAMES["done"])
    return str(spec["target_version"] if done else spec["start_version"])


def group_trigger(rollout: dict[str, Any], group: str | None, now: datetime | None = None) -> bool:
    """Whether Teleport tells an agent of `group` (no updater id: never a canary) to update now,
    as the v1 channel's `/critical` answers with a rollout (`getTriggerFromRollout`)."""
    spec, groups = rollout["spec"], rollout["status"].get("groups", [])
    if spec.get("autoupdate_mode") != "enabled":
        return False
    if spec.get("schedule") == "immediate" or not groups:
        return True
    chosen = next((g for g in groups if g["name"] == group), groups[-1])
    state = chosen.get("state")
    if state in (_GROUP_STATE_NAMES["active"], _GROUP_STATE_NAMES["rolledback"]):
        return True
    if state != _GROUP_STATE_NAMES["done"]:
        return False
    if spec.get("strategy") != "time-based":
        return True
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    names = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    days = {str(day).lower()[:3] for day in chosen.get("config_days", [])}
    if "*" not in days and names[moment.weekday()] not in days:
        return False
    start = moment.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(
        hours=int(chosen.get("config_start_hour", 0))
    )
    window = float(str(spec.get("maintenance_window_duration", "3600s")).rstrip("s") or 3600)
    return start <= moment < start + timedelta(seconds=window)
