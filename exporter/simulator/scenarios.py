"""Scenarios of the simulated tenant: what ping, the version channel and the status page say.

`healthy`   control plane 18.1.4, agents current, status page all operational.
`skewed`    same control plane; the fleet (fake tctl) spans three majors plus a newer one.
`outage`    ping answers 503; the status page shows a major outage and a critical incident.
`maintenance`  a maintenance is in progress; ping answers 503 meanwhile.
`demo`      the newcomer's view: skewed fleet, a v2 rollout, a minor incident, a maintenance
            scheduled for tomorrow, and ping latency that wanders a little.

With a Managed Updates v2 rollout (`SimState.rollout`, the same `generate_rollout` arguments the
fake tctl gets), ping answers per update group as Teleport does: `?group=<name>` gets that group's
version of the moment, no group (or an unknown one) the rollout's last group's, which while the
rollout is in progress is usually still the start version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from exporter.simulator.fleetgen import generate_rollout, group_trigger, group_version

SCENARIOS = ("healthy", "skewed", "outage", "maintenance", "demo")
ROLLOUT_SCENARIOS = ("skewed", "demo")
"""Scenarios whose tenant runs a Managed Updates v2 rollout (the default generate_rollout: first
group done, second active, the last unstarted)."""


def scenario_rollout(scenario: str) -> dict[str, Any] | None:
    """`generate_rollout` arguments of a scenario's rollout, None for a tenant without one."""
    return {} if scenario in ROLLOUT_SCENARIOS else None


FAULTS = (
    "slow",
    "status",
    "malformed",
    "html",
    "wrong_types",
    "too_large",
    "tls_mismatch",
    "rate_limit",
)

CLUSTER_VERSION = "18.1.4"


@dataclass
class Faults:
    """Fault switches for one endpoint family (`ping` or `status`)."""

    delay: float = 0.0
    """Seconds to wait before answering (slow)."""
    status: int = 0
    """Answer with this HTTP status instead of 200 (5xx, 429 with Retry-After)."""
    body: str = ""
    """Replace the body: `malformed` (truncated JSON), `html`, `wrong_types`, `too_large`."""
    retry_after: int = 0


@dataclass
class SimState:
    """Everything a test or the demo can change while the simulator runs."""

    scenario: str = "healthy"
    cluster_version: str = CLUSTER_VERSION
    agent_version: str | None = CLUSTER_VERSION
    """Target agent version in ping's auto_update; None drops auto_update (older tenant)."""
    channel_version: str = "v" + CLUSTER_VERSION
    ping: Faults = field(default_factory=Faults)
    status: Faults = field(default_factory=Faults)
    tls_mismatch: bool = False
    jitter: float = 0.0
    """Extra random delay (0..jitter seconds) on ping, for a livelier demo."""
    rollout: dict[str, Any] | None = None
    """`generate_rollout` arguments of the tenant's v2 rollout (None: none); while there is one,
    ping's `agent_version` follows the asking group's state."""
    channel_critical: bool = False
    """What the v1 channel's `/critical` says (`yes` / `no`)."""
    requests: dict[str, int] = field(default_factory=dict)

    def apply(self, changes: dict[str, Any]) -> None:
        for key, value in changes.items():
            if key in ("ping", "status") and isinstance(value, dict):
                setattr(self, key, Faults(**value))
            elif hasattr(self, key) and key != "requests":
                setattr(self, key, value)
            else:
                raise KeyError(key)
        if self.scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {self.scenario!r}")

    def ping_status(self) -> int:
        if self.ping.status:
            return self.ping.status
        return 503 if self.scenario in ("outage", "maintenance") else 200


def agent_version(state: SimState, group: str | None) -> str | None:
    """ping's `auto_update.agent_version` for an agent of `group` (None: no group given)."""
    if state.agent_version is None:
        return None
    if state.rollout is None:
        return state.agent_version
    options = {key: value for key, value in state.rollout.items() if key != "now"}
    return group_version(generate_rollout(**options), group)


def channel_answer(state: SimState, channel: str, what: str) -> str | None:
    """The v1 version server's answer for `channel` (`version` or `critical`); None for a
    channel it does not serve. With a rollout Teleport reads the channel name as an update
    group (`default` or else the last group): `version` is that group's version of the moment,
    `critical` whether Teleport tells it to update now."""
    if state.rollout is None:
        if channel != "default":
            return None
        if what == "version":
            return state.channel_version or "none"
        return "yes" if state.channel_critical else "no"
    rollout = generate_rollout(**{k: v for k, v in state.rollout.items() if k != "now"})
    if what == "version":
        return "v" + group_version(rollout, channel).removeprefix("v")
    return "yes" if group_trigger(rollout, channel) else "no"


def ping_body(state: SimState, host: str, group: str | None = None) -> dict[str, Any]:
    major = int(state.cluster_version.split(".")[0])
    body: dict[str, Any] = {
        "auth": {"type": "local", "second_factor": "on", "local": {"name": ""}},
        "proxy": {
            "kube": {"enabled": True, "public_addr": f"{host}:443", "listen_addr": "0.0.0.0:3026"},
            "ssh": {
                "listen_addr": "0.0.0.0:3023",
                "tunnel_listen_addr": "0.0.0.0:3024",
                "web_listen_addr": "0.0.0.0:3080",
                "public_addr": f"{host}:443",
                "ssh_public_addr": f"{host}:3023",
                "ssh_tunnel_public_addr": f"{host}:3024",
            },
            "db": {
                "postgres_public_addr": f"{host}:443",
                "mysql_public_addr": f"{host}:3036",
                "mongo_public_addr": "",
            },
            "tls_routing_enabled": True,
            "assist_enabled": False,
        },
        "server_version": state.cluster_version,
        "min_client_version": f"{major - 1}.0.0-aa",
        "cluster_name": host,
        "automatic_upgrades": True,
        "edition": "ent",
        "fips": False,
        "license_warnings": [],
    }
    version = agent_version(state, group)
    if version is not None:
        body["auto_update"] = {
            "tools_version": state.cluster_version,
            "tools_auto_update": True,
            "agent_version": version,
            "agent_auto_update": True,
            "agent_update_jitter_seconds": 60,
        }
    return body


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _component(
    cid: str,
    name: str,
    status: str,
    group_id: str | None,
    is_group: bool = False,
    children: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "id": cid,
        "name": name,
        "status": status,
        "created_at": "2023-01-10T18:00:00.000Z",
        "updated_at": "2026-11-01T12:00:00.000Z",
        "position": 1,
        "description": None,
        "showcase": False,
        "start_date": None,
        "group_id": group_id,
        "page_id": "tlpcloudpage",
        "group": is_group,
        "only_show_if_degraded": False,
        **({"components": children or []} if is_group else {}),
    }


def _incident(
    iid: str, name: str, status: str, impact: str, started: datetime, **extra: Any
) -> dict[str, Any]:
    return {
        "id": iid,
        "name": name,
        "status": status,
        "created_at": _iso(started),
        "updated_at": _iso(started),
        "monitoring_at": None,
        "resolved_at": None,
        "impact": impact,
        "shortlink": "https://stspg.io/example",
        "started_at": _iso(started),
        "page_id": "tlpcloudpage",
        "incident_updates": [
            {
                "status": status,
                "body": "We are looking into it.",
                "display_at": _iso(started),
                "affected_components": None,
            }
        ],
        "components": [],
        **extra,
    }


def summary_body(state: SimState, now: datetime) -> dict[str, Any]:
    """A Statuspage summary.json: two regional groups with a name repeated in both."""
    scenario = state.scenario
    proxy_us = {"outage": "major_outage", "maintenance": "under_maintenance"}.get(
        scenario, "operational"
    )
    auth = "partial_outage" if scenario == "outage" else "operational"
    groups = [
        _component(
            "grpamericas1", "Americas", "operational", None, True, ["prxuswest001", "webuswest001"]
        ),
        _component(
            "grpeurope001", "Europe", "operational", None, True, ["prxeucentr01", "webeucentr01"]
        ),
    ]
    components = [
        *groups,
        _component("prxuswest001", "Proxy", proxy_us, "grpamericas1"),
        _component("webuswest001", "Web UI", "operational", "grpamericas1"),
        _component(
            "prxeucentr01",
            "Proxy",
            "degraded_performance" if scenario == "demo" else "operational",
            "grpeurope001",
        ),
        _component("webeucentr01", "Web UI", "operational", "grpeurope001"),
        _component("authservice1", "Auth Service", auth, None),
    ]
    incidents: list[dict[str, Any]] = []
    maintenances: list[dict[str, Any]] = []
    indicator, description = "none", "All Systems Operational"
    if scenario == "outage":
        indicator, description = "critical", "Major System Outage"
        incidents.append(
            _incident(
                "inc000outage",
                "Proxy unavailable in us-west-2",
                "identified",
                "critical",
                now - timedelta(minutes=20),
            )
        )
    elif scenario == "maintenance":
        indicator, description = "maintenance", "Service Under Maintenance"
        maintenances.append(
            _incident(
                "mnt000inprog",
                "Control plane upgrade",
                "in_progress",
                "maintenance",
                now - timedelta(minutes=10),
                scheduled_for=_iso(now - timedelta(minutes=10)),
                scheduled_until=_iso(now + timedelta(minutes=50)),
            )
        )
    elif scenario == "demo":
        indicator, description = "minor", "Minor Service Outage"
        incidents.append(
            _incident(
                "inc000demo01",
                "Elevated latency in Europe",
                "monitoring",
                "minor",
                now - timedelta(hours=1),
            )
        )
        maintenances.append(
            _incident(
                "mnt000sched1",
                "Scheduled control plane upgrade",
                "scheduled",
                "maintenance",
                now,
                scheduled_for=_iso(now + timedelta(days=1)),
                scheduled_until=_iso(now + timedelta(days=1, hours=1)),
            )
        )
    return {
        "page": {
            "id": "tlpcloudpage",
            "name": "Teleport Cloud",
            "url": "https://status.teleport.sh",
            "time_zone": "Etc/UTC",
            "updated_at": _iso(now),
        },
        "components": components,
        "incidents": incidents,
        "scheduled_maintenances": maintenances,
        "status": {"indicator": indicator, "description": description},
    }


def fault_body(kind: str, good: bytes) -> bytes:
    """A broken body standing in for a good one."""
    if kind == "malformed":
        return good[: max(1, len(good) // 2)]
    if kind == "html":
        return b"<!doctype html><html><body><h1>502 Bad Gateway</h1></body></html>"
    if kind == "wrong_types":
        return b'{"server_version": 18, "status": "fine", "components": {}}'
    if kind == "too_large":
        return b'{"padding": "' + b"x" * (8 * 1024 * 1024) + b'"}'
    return good
