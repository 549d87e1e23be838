"""The metric catalogue: every family the exporter exposes, defined once.

Collectors build families from these specs only, so names, help texts and label names cannot
drift between the code, the README's catalogue (generated from `CATALOGUE`) and the rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, overload

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.metrics_core import Metric

PREFIX = "teleport_cloud_"

Kind = Literal["gauge", "counter", "histogram"]


@dataclass(frozen=True)
class Family:
    """One metric family: its full name, type, help text and label names. `new()` of each kind's
    subclass returns that kind's prometheus_client family, so call sites need no type checks."""

    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...]
    subject: str

    def new(self) -> Metric:
        """An empty prometheus_client family for this spec."""
        return Metric(self.name, self.help, self.kind)


@dataclass(frozen=True)
class GaugeFamily(Family):
    def new(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(self.name, self.help, labels=self.labels)

    def single(self, labels: Sequence[str], value: float) -> GaugeMetricFamily:
        """The family holding one sample."""
        family = self.new()
        family.add_metric(list(labels), value)
        return family

    def state_set(
        self,
        rows: Iterable[tuple[Sequence[str], str]],
        states: Sequence[str],
    ) -> GaugeMetricFamily:
        """A state set: for each row of label values, one sample per state, 1 for the current one.

        The state's label is the family's last label. A current state outside `states` is kept as
        an extra sample so an unexpected value from upstream stays visible instead of vanishing.
        """
        family = self.new()
        for label_values, current in rows:
            for state in states:
                family.add_metric([*label_values, state], 1.0 if state == current else 0.0)
            if current not in states:
                family.add_metric([*label_values, current], 1.0)
        return family


@dataclass(frozen=True)
class CounterFamily(Family):
    """Counters are counted in plain dicts by whoever owns them and exposed through `counts`:
    the one way a counter family is built."""

    def new(self) -> CounterMetricFamily:
        return CounterMetricFamily(self.name, self.help, labels=self.labels)

    def counts(self, rows: Iterable[tuple[Sequence[str], float]]) -> CounterMetricFamily:
        """One `_total` sample per row of (label values, count)."""
        family = self.new()
        for label_values, count in rows:
            family.add_metric(list(label_values), count)
        return family


@dataclass(frozen=True)
class HistogramFamily(Family):
    def new(self) -> HistogramMetricFamily:
        return HistogramMetricFamily(self.name, self.help, labels=self.labels)


CATALOGUE: list[Family] = []
_KINDS: dict[Kind, type[Family]] = {
    "gauge": GaugeFamily,
    "counter": CounterFamily,
    "histogram": HistogramFamily,
}


@overload
def _family(
    subject: str, name: str, kind: Literal["gauge"], help_text: str, *labels: str
) -> GaugeFamily: ...
@overload
def _family(
    subject: str, name: str, kind: Literal["counter"], help_text: str, *labels: str
) -> CounterFamily: ...
@overload
def _family(
    subject: str, name: str, kind: Literal["histogram"], help_text: str, *labels: str
) -> HistogramFamily: ...
def _family(subject: str, name: str, kind: Kind, help_text: str, *labels: str) -> Family:
    spec = _KINDS[kind](PREFIX + name, kind, help_text, labels, subject)
    CATALOGUE.append(spec)
    return spec


# Exporter and sources
BUILD_INFO = _family(
    "exporter",
    "exporter_build_info",
    "gauge",
    "Build of the running exporter; always 1.",
    "version",
)
SOURCE_UP = _family(
    "exporter",
    "source_up",
    "gauge",
    "1 if the source's last background refresh succeeded, else 0. Sources refresh on their own "
    "interval and are served from cache.",
    "source",
    "target",
)
SOURCE_LAST_SUCCESS = _family(
    "exporter",
    "source_last_success_timestamp_seconds",
    "gauge",
    "Unix time of the source's last successful refresh.",
    "source",
    "target",
)
SOURCE_DURATION = _family(
    "exporter",
    "source_duration_seconds",
    "gauge",
    "Wall-clock duration of the source's last refresh, successful or not.",
    "source",
    "target",
)
SOURCE_RESPONSE_BYTES = _family(
    "exporter",
    "source_response_bytes",
    "gauge",
    "Size of the source's last answer from upstream in bytes: what the exporter costs the "
    "tenant per refresh.",
    "source",
    "target",
)
SOURCE_ERRORS = _family(
    "exporter",
    "source_errors",
    "counter",
    "Failed refreshes of the source, by reason (timeout, connect, tls, http, parse, auth, exec, "
    "too_large, other).",
    "source",
    "target",
    "reason",
)

# Proxy probe
PROBE_SUCCESS = _family(
    "probe", "probe_success", "gauge", "1 if the last /webapi/ping probe succeeded.", "tenant"
)
PROBE_DURATION = _family(
    "probe",
    "probe_duration_seconds",
    "gauge",
    "Duration of the last /webapi/ping probe, resolve to last byte (blackbox_exporter semantics).",
    "tenant",
)
PROBE_PHASE_DURATION = _family(
    "probe",
    "probe_phase_duration_seconds",
    "gauge",
    "Duration of each phase of the last probe: resolve, connect, tls, processing, transfer.",
    "tenant",
    "phase",
)
PROBE_LATENCY = _family(
    "probe",
    "probe_latency_seconds",
    "histogram",
    "Distribution of the durations of successful probes since the exporter started.",
    "tenant",
)
PROBE_STATUS_CODE = _family(
    "probe",
    "probe_http_status_code",
    "gauge",
    "HTTP status code of the last probe; 0 when no response arrived.",
    "tenant",
)
TLS_CERT_EXPIRY = _family(
    "probe",
    "tls_cert_expiry_timestamp_seconds",
    "gauge",
    "notAfter of the proxy's leaf TLS certificate, as Unix time.",
    "tenant",
)
CLUSTER_INFO = _family(
    "probe",
    "cluster_info",
    "gauge",
    "Cluster facts from the last successful /webapi/ping; always 1.",
    "tenant",
    "cluster_name",
    "server_version",
    "min_client_version",
    "edition",
    "fips",
    "tls_routing_enabled",
    "automatic_upgrades",
)
CONTROL_PLANE_MAJOR = _family(
    "probe",
    "control_plane_major_version",
    "gauge",
    "Major version of the tenant's control plane (Auth and Proxy), from /webapi/ping.",
    "tenant",
)
PROXY_ENDPOINT_INFO = _family(
    "probe",
    "proxy_endpoint_info",
    "gauge",
    "Public addresses published in the proxy settings of /webapi/ping; always 1.",
    "tenant",
    "protocol",
    "address",
)
AGENT_TARGET_VERSION = _family(
    "probe",
    "agent_target_version_info",
    "gauge",
    "Version the tenant wants its agents to run: the Managed Updates v2 rollout's target_version "
    "when a rollout exists, else ping's auto_update.agent_version, else the v1 version channel; "
    "always 1.",
    "tenant",
    "version",
)
TCTL_VERSION_INFO = _family(
    "probe",
    "tctl_version_info",
    "gauge",
    "Version of the tctl binary the exporter runs (`tctl version`); always 1.",
    "version",
)
CLIENT_TOOLS_VERSION = _family(
    "probe",
    "client_tools_version_info",
    "gauge",
    "The tsh/tctl version the tenant wants clients to run (ping's auto_update.tools_version); "
    "always 1. A tctl a major away from it falls out of support next.",
    "tenant",
    "version",
)
TCTL_COMPATIBLE = _family(
    "probe",
    "tctl_compatible",
    "gauge",
    "1 while tctl's major is the control plane's or one below it (Teleport's client rule), else 0.",
    "tenant",
)
IDENTITY_EXPIRY = _family(
    "probe",
    "identity_expiry_timestamp_seconds",
    "gauge",
    "notAfter of the TLS certificate in the tenant's Machine ID identity file, as Unix time.",
    "tenant",
)

# Fleet
AGENTS = _family(
    "fleet",
    "agents",
    "gauge",
    "Customer agents by Teleport version and upgrader kind (ext_upgrader; none when absent).",
    "tenant",
    "version",
    "upgrader",
)
AGENTS_BY_SERVICE = _family(
    "fleet",
    "agents_by_service",
    "gauge",
    "Customer agents running each Teleport service (an agent with several services counts in "
    "each).",
    "tenant",
    "teleport_service",
)
AGENTS_BY_UPDATER_STATUS = _family(
    "fleet",
    "agents_by_updater_status",
    "gauge",
    "Customer agents by upgrader kind and updater status: ok, disabled, pinned, unreadable, "
    "unspecified (the agent reports none). Disabled and pinned agents never update.",
    "tenant",
    "upgrader",
    "status",
)
AGENTS_BY_SKEW = _family(
    "fleet",
    "agents_by_skew",
    "gauge",
    "Customer agents by version skew against the control plane: current, one_major_behind, "
    "unsupported_old (two or more majors behind), unsupported_newer, unknown.",
    "tenant",
    "skew",
)
AGENTS_OUTDATED = _family(
    "fleet",
    "agents_outdated",
    "gauge",
    "Customer agents whose version differs from the tenant's target agent version.",
    "tenant",
)
AGENTS_NOT_UPDATING = _family(
    "fleet",
    "agents_not_updating",
    "gauge",
    "Customer agents that will not update by themselves, by reason: no_upgrader, disabled, "
    "pinned, unreadable (updater status). Never counted as stuck in a rollout group.",
    "tenant",
    "reason",
)
UPGRADE_BLOCKED = _family(
    "fleet",
    "control_plane_upgrade_blocked",
    "gauge",
    "1 while any agent is one or more majors behind the control plane, which withholds the next "
    "control-plane major upgrade.",
    "tenant",
)
AGENT_INFO = _family(
    "fleet",
    "agent_info",
    "gauge",
    "One series per customer agent; always 1. Switched off by per_agent_metrics: false.",
    "tenant",
    "server_id",
    "hostname",
    "version",
    "services",
    "upgrader",
    "upgrader_version",
    "update_group",
    "updater_status",
)
AGENT_MAJORS_BEHIND = _family(
    "fleet",
    "agent_major_versions_behind",
    "gauge",
    "Control-plane major minus the agent's major (negative when the agent is newer).",
    "tenant",
    "server_id",
)
AGENT_LAST_SEEN = _family(
    "fleet",
    "agent_last_seen_timestamp_seconds",
    "gauge",
    "Last heartbeat of the agent as recorded by the control plane, as Unix time.",
    "tenant",
    "server_id",
)

# Managed Updates v2 rollout
ROLLOUT_INFO = _family(
    "rollout",
    "autoupdate_rollout_info",
    "gauge",
    "The tenant's Managed Updates v2 agent rollout; always 1. Absent when the tenant has none.",
    "tenant",
    "start_version",
    "target_version",
    "mode",
    "strategy",
    "schedule",
)
ROLLOUT_GROUP_STATE = _family(
    "rollout",
    "autoupdate_group_state",
    "gauge",
    "State of each rollout group, as a state set over unstarted, active, done, rolledback, canary.",
    "tenant",
    "group",
    "state",
)
ROLLOUT_GROUP_AGENTS = _family(
    "rollout",
    "autoupdate_group_agents",
    "gauge",
    "Agents present in each rollout group.",
    "tenant",
    "group",
)
ROLLOUT_GROUP_UP_TO_DATE = _family(
    "rollout",
    "autoupdate_group_agents_up_to_date",
    "gauge",
    "Agents of each rollout group already running the target version.",
    "tenant",
    "group",
)

ROLLOUT_GROUP_VERSION = _family(
    "rollout",
    "autoupdate_group_version_info",
    "gauge",
    "Version the group's agents should run now (Teleport's rule): the start version while "
    "unstarted, rolled back or canary (canaries excepted), the target once active or done, the "
    "target for every group while the mode is disabled; always 1.",
    "tenant",
    "group",
    "version",
)
ROLLOUT_GROUP_STUCK = _family(
    "rollout",
    "autoupdate_group_agents_stuck",
    "gauge",
    "Agents Teleport is asking to update right now that are not on their group's version. "
    "Membership as Teleport decides it (an empty or unlisted group is the last group); none "
    "while the mode is disabled or suspended, in an unstarted group, or in a time-based done "
    "group outside its window; agents that cannot update are in agents_not_updating instead.",
    "tenant",
    "group",
)

REPORT_AGENTS = _family(
    "rollout",
    "autoupdate_report_agents",
    "gauge",
    "Agents by update group and version from Teleport's own agent reports "
    "(autoupdate_agent_report, Teleport 18+), summed over the Auth servers' reports Teleport "
    "would accept; absent without a rollout.",
    "tenant",
    "group",
    "version",
)
REPORT_OMITTED = _family(
    "rollout",
    "autoupdate_report_omitted",
    "gauge",
    "Agents Teleport's agent reports leave out, by Teleport's reason.",
    "tenant",
    "reason",
)
REPORT_TIMESTAMP = _family(
    "rollout",
    "autoupdate_report_timestamp_seconds",
    "gauge",
    "When the newest merged agent report was written, as Unix time.",
    "tenant",
)
UPGRADE_WINDOW_NEXT_START = _family(
    "rollout",
    "agent_upgrade_window_next_start_timestamp_seconds",
    "gauge",
    "Start of the tenant's next agent upgrade window (cluster_maintenance_config: weekdays and "
    "UTC start hour), as Unix time; v1 unit and kube agents update in it. Absent when the "
    "tenant sets none.",
    "tenant",
)

# Status page
STATUS_INDICATOR = _family(
    "status_page",
    "status_indicator",
    "gauge",
    "The status page's overall indicator as a state set (none, minor, major, critical, "
    "maintenance).",
    "page",
    "indicator",
)
STATUS_COMPONENT = _family(
    "status_page",
    "status_component",
    "gauge",
    "Status of each status-page component as a state set; group is the parent group's name.",
    "page",
    "component_id",
    "component",
    "group",
    "status",
)
STATUS_INCIDENTS = _family(
    "status_page",
    "status_incidents",
    "gauge",
    "Unresolved incidents on the status page, by impact.",
    "page",
    "impact",
)
STATUS_MAINTENANCES = _family(
    "status_page",
    "status_maintenances",
    "gauge",
    "Scheduled maintenances on the status page that have not completed, by state.",
    "page",
    "state",
)
STATUS_NEXT_MAINTENANCE = _family(
    "status_page",
    "status_next_maintenance_start_timestamp_seconds",
    "gauge",
    "Start of the earliest maintenance still scheduled, as Unix time; absent when none is.",
    "page",
)

# SLA
SLA_OBJECTIVE = _family(
    "sla", "sla_objective_ratio", "gauge", "Monthly uptime objective of the tenant's SLA.", "tenant"
)
SLA_PERIOD_START = _family(
    "sla",
    "sla_period_start_timestamp_seconds",
    "gauge",
    "Start of the current SLA period (calendar month, UTC).",
    "tenant",
)
SLA_PERIOD_END = _family(
    "sla",
    "sla_period_end_timestamp_seconds",
    "gauge",
    "End of the current SLA period (calendar month, UTC).",
    "tenant",
)
SLA_BUDGET = _family(
    "sla",
    "sla_error_budget_seconds",
    "gauge",
    "Downtime the SLA allows in this month: days x 86400 x (1 - objective).",
    "tenant",
)
SLA_DOWNTIME = _family(
    "sla",
    "sla_downtime_seconds",
    "gauge",
    "Down minutes observed this month x 60 (a minute is down when most of its probes failed).",
    "tenant",
)
SLA_MAINTENANCE = _family(
    "sla",
    "sla_maintenance_seconds",
    "gauge",
    "Down minutes this month that fell inside a status-page maintenance, x 60; left out of "
    "downtime when exclude_maintenance is true.",
    "tenant",
)
SLA_OBSERVED = _family(
    "sla",
    "sla_observed_seconds",
    "gauge",
    "Minutes of this month with at least one probe, x 60. Unobserved time counts neither way.",
    "tenant",
)
SLA_UPTIME = _family(
    "sla",
    "sla_uptime_ratio",
    "gauge",
    "1 - downtime / observed time, this month; absent while nothing was observed (no data is "
    "not 100 %).",
    "tenant",
)
SLA_BUDGET_REMAINING = _family(
    "sla",
    "sla_error_budget_remaining_ratio",
    "gauge",
    "1 - downtime / error budget, this month; negative once the budget is exceeded.",
    "tenant",
)
SLA_BURN_RATE = _family(
    "sla",
    "sla_burn_rate",
    "gauge",
    "Error-budget burn rate over a trailing window: (down / observed minutes) / (1 - objective).",
    "tenant",
    "window",
)
SLA_WINDOW_OBSERVED = _family(
    "sla",
    "sla_window_observed_seconds",
    "gauge",
    "Observed seconds of a burn-rate window: the coverage its burn rate rests on.",
    "tenant",
    "window",
)
SLA_WINDOW_DOWNTIME = _family(
    "sla",
    "sla_window_downtime_seconds",
    "gauge",
    "Down seconds of a burn-rate window, counted as in the burn rate.",
    "tenant",
    "window",
)
SLA_BREACHED = _family(
    "sla",
    "sla_breached",
    "gauge",
    "1 once this month's downtime exceeds the error budget.",
    "tenant",
)
SLA_LEDGER_ERRORS = _family(
    "sla",
    "sla_ledger_errors",
    "counter",
    "Failed reads or writes of the SLA ledger (SQLite under state_dir).",
    "operation",
)


SOURCE_IGNORED_FIELDS = _family(
    "exporter",
    "source_ignored_fields",
    "counter",
    "Optional upstream fields of an unexpected type or size, ignored without failing the refresh.",
    "source",
    "target",
)
PROBE_UNOBSERVED = _family(
    "sla",
    "probe_unobserved",
    "counter",
    "Probes that gave no evidence because of the exporter's own trouble (loop_lag: the probe "
    "started late or our timer lagged; resources: out of file descriptors or buffers; internal). "
    "Their minutes count as unobserved, never as down.",
    "tenant",
    "reason",
)

# Self-protection of the exporter's HTTP server
WEB_AUTH_FAILURES = _family(
    "exporter",
    "web_auth_failures",
    "counter",
    "Requests to the exporter refused by basic auth (invalid: wrong or malformed credentials; "
    "rate_limited: too many failures from the client; busy: the hash-check pool was full).",
    "reason",
)
WEB_CLOSED = _family(
    "exporter",
    "web_connections_closed",
    "counter",
    "Connections to the exporter closed by its limits (over_limit: too many open connections; "
    "address_limit: too many from one client address; handshake_timeout, handshake_failed: "
    "TLS handshake not done in time, or refused; header_timeout: request headers not complete "
    "in time; pipelined: too many requests queued behind an unanswered one; write_timeout: "
    "the client stopped reading the answer).",
    "reason",
)


def by_name(name: str) -> Family:
    """The spec of a family by its full name."""
    for spec in CATALOGUE:
        if spec.name == name:
            return spec
    raise KeyError(name)
