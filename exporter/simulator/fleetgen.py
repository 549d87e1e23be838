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
) -> dict[str, Any]:
    """One autoupdate_agent_rollout resource in protojson (tctl prints it inside an array).

    `counts` (group -> present, up to date) are the counts Teleport computes from the agents'
    own reports (`group_counts` of the inventory); without them they are random.

    By default the first group is done, the second active and the rest unstarted; `states`
    (short names such as `canary`) overrides that per group. As protojson prints it: uint64
    counts as strings, zero values omitted, `maintenance_window_duration` only for the
    time-based strategy, `canary_count` and `canaries` (18.x) on canary groups.
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
        group["config_days"] = ["Mon", "Tue", "Wed", "Thu"]
        if index:  # the first group starts at hour 0, which protojson omits
            group["config_start_hour"] = 2 * index
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
        "schedule": "regular",
        "autoupdate_mode": "enabled",
        "strategy": strategy,
    }
    if strategy == "time-based":
        spec["maintenance_window_duration"] = "3600s"
    return {
        "kind": "autoupdate_agent_rollout",
        "version": "v1",
        "metadata": {"name": "autoupdate-agent-rollout", "revision": _uuid(rng)},
        "spec": spec,
        "status": {
            "groups": status_groups,
            "state": "AUTO_UPDATE_AGENT_ROLLOUT_STATE_ACTIVE",
            "start_time": rfc3339(now - timedelta(days=len(groups))),
        },
    }


def group_counts(records: Iterable[Any], target_version: str) -> dict[str, tuple[int, int]]:
    """Per update group of `records` (tctl's inventory), the agents present and those already on
    `target_version`: what Teleport reports as `present_count` and `up_to_date_count`."""
    counts: dict[str, tuple[int, int]] = {}
    target = target_version.removeprefix("v")
    for record in records:
        spec = record.get("spec") if isinstance(record, dict) else None
        if not isinstance(spec, dict):
            continue
        info = spec.get("UpdaterInfo")
        group = info.get("UpdateGroup") if isinstance(info, dict) else None
        if not isinstance(group, str):
            continue
        present, up_to_date = counts.get(group, (0, 0))
        on_target = str(spec.get("version", "")).removeprefix("v") == target
        counts[group] = (present + 1, up_to_date + on_target)
    return counts


def group_version(rollout: dict[str, Any], group: str | None) -> str:
    """What `/webapi/ping?group=<group>` reports as `agent_version` for `rollout` (protojson),
    following Teleport's `getGroup` and `getVersionFromRollout`: an unknown or missing group is
    answered for the last group; unstarted, rolled-back and canary groups get the start
    version, active and done groups the target version."""
    spec, groups = rollout["spec"], rollout["status"].get("groups", [])
    if not groups:
        return str(spec["target_version"])
    chosen = next((g for g in groups if g["name"] == group), groups[-1])
    done = chosen.get("state") in (_GROUP_STATE_NAMES["active"], _GROUP_STATE_NAMES["done"])
    return str(spec["target_version"] if done else spec["start_version"])
