"""The exporter's vocabulary: every label value, state and reason it exports, defined once.

The metric catalogue, the derivations, the sources and the docs all read these tuples, so a
state set and the code that fills it cannot drift apart. Where a value is also a type (a skew
class, an error reason), the tuple is derived from the `Literal`, so mypy checks the code that
produces a value and the exposition lists every value, from one definition.

`cap_label` is the one rule for label values taken from upstream text (group names, hostnames,
unparseable versions): every family applies it at derivation, so the same long update group
has the same label value in `agent_info` and in the rollout families, and their series join.
"""

from __future__ import annotations

import hashlib
from typing import Final, Literal, get_args

# --- sources and their failures -------------------------------------------------------------

SOURCES: Final = (
    "ping",
    "version_channel",
    "inventory",
    "rollout",
    "agent_report",
    "maintenance_config",
    "status_page",
    "tctl_version",
    "identity",
)
"""The `source` label of the source-health families."""

Reason = Literal["timeout", "connect", "tls", "http", "parse", "auth", "exec", "too_large", "other"]
ERROR_REASONS: Final[tuple[Reason, ...]] = get_args(Reason)
"""`source_errors_total{reason}`: why a refresh failed."""

UnobservedReason = Literal["loop_lag", "resources", "internal"]
UNOBSERVED_REASONS: Final[tuple[UnobservedReason, ...]] = get_args(UnobservedReason)
"""`probe_unobserved_total{reason}`: a probe that gave no evidence because of our own trouble."""

LEDGER_OPERATIONS: Final = ("record", "read", "prune")
"""`sla_ledger_errors_total{operation}`."""

AUTH_FAILURE_REASONS: Final = ("invalid", "rate_limited", "busy")
"""`web_auth_failures_total{reason}`."""

CLOSE_REASONS: Final = (
    "over_limit",
    "address_limit",
    "handshake_timeout",
    "handshake_failed",
    "header_timeout",
    "pipelined",
    "write_timeout",
)
"""`web_connections_closed_total{reason}`: connections the server closed to protect itself."""

# --- probe ----------------------------------------------------------------------------------

Phase = Literal["resolve", "connect", "tls", "processing", "transfer"]
PROBE_PHASES: Final[tuple[Phase, ...]] = get_args(Phase)
"""`probe_phase_duration_seconds{phase}`, blackbox_exporter's phases."""

# --- fleet ----------------------------------------------------------------------------------

Skew = Literal["current", "one_major_behind", "unsupported_old", "unsupported_newer", "unknown"]
SKEW_CLASSES: Final[tuple[Skew, ...]] = get_args(Skew)
"""`agents_by_skew{skew}`; `unknown`: unparseable version, or the control plane not yet known."""

UpdaterStatus = Literal["ok", "disabled", "pinned", "unreadable", "unspecified"]
UPDATER_STATUSES: Final[tuple[UpdaterStatus, ...]] = get_args(UpdaterStatus)
"""`agents_by_updater_status{status}`; `unspecified` for agents that report none (v1 `unit`,
older agents)."""

NotUpdatingReason = Literal["no_upgrader", "disabled", "pinned", "unreadable"]
NOT_UPDATING_REASONS: Final[tuple[NotUpdatingReason, ...]] = get_args(NotUpdatingReason)
"""`agents_not_updating{reason}`: why an agent will not update by itself."""

NO_UPGRADER: Final = "none"
"""The `upgrader` label of an agent without `ext_upgrader`."""

# --- rollout --------------------------------------------------------------------------------

GroupState = Literal["unstarted", "active", "done", "rolledback", "canary"]
GROUP_STATES: Final[tuple[GroupState, ...]] = get_args(GroupState)
"""`autoupdate_group_state{state}`."""

# --- status page ----------------------------------------------------------------------------

STATUS_INDICATORS: Final = ("none", "minor", "major", "critical", "maintenance")
COMPONENT_STATUSES: Final = (
    "operational",
    "degraded_performance",
    "partial_outage",
    "major_outage",
    "under_maintenance",
)
INCIDENT_IMPACTS: Final = ("none", "minor", "major", "critical")
MAINTENANCE_STATES: Final = ("scheduled", "in_progress", "verifying")

# --- SLA ------------------------------------------------------------------------------------

BURN_WINDOW_SECONDS: Final[dict[str, int]] = {
    "5m": 300,
    "30m": 1800,
    "1h": 3600,
    "2h": 7200,
    "6h": 21600,
    "1d": 86400,
    "3d": 259200,
}
BURN_WINDOWS: Final = tuple(BURN_WINDOW_SECONDS)
"""`sla_burn_rate{window}` and the window families, shortest first."""

# --- label values from upstream text --------------------------------------------------------

MAX_LABEL_VALUE: Final = 128
"""Longest label value exported; one odd upstream record must not bloat every scrape."""
_HASH_CHARS = 8


def cap_label(value: str) -> str:
    """`value` when at most MAX_LABEL_VALUE characters; else a prefix and a hash of the whole,
    MAX_LABEL_VALUE long, so distinct long values stay distinct and the same value always caps
    the same way (the families that carry it join)."""
    if len(value) <= MAX_LABEL_VALUE:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_CHARS]
    return f"{value[: MAX_LABEL_VALUE - _HASH_CHARS - 1]}~{digest}"
