"""The monitoring mixin: Prometheus alert and recording rules rendered from a configuration.

`teleport-cloud-exporter mixin --config FILE --out DIR` writes `prometheus/alerts.yml`,
`prometheus/recording.yml` and, where grafana-foundation-sdk is installed (the
`mixin` extra), `grafana/dashboards/*.json`. The configuration sets the job selector, the
cluster label, the runbook URL pattern, the severity of each class of alert and the thresholds;
`defaults.yml` beside this module holds the defaults, and the shipped files are their
rendering.

Rules of the mixin, all in service of alerts that hold up with several replicas and restarts:
- every recording rule aggregates `by (<cluster>, tenant, ...)`: replicas are folded (fleet
  facts with max, probe results with the best replica), `instance` and `pod` disappear;
- alerts read recorded series, so one alert per tenant whatever the number of replicas;
- durations of an hour or more are measured with a subquery over the recorded series plus a
  check that the condition already held at the window's start, never with `for:`: a restarted
  pod starts new series and an absent minute resets a `for:` timer, not a subquery.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from exporter.config import parse_duration

DEFAULTS_FILE = "defaults.yml"
RULE_FILES = ("prometheus/alerts.yml", "prometheus/recording.yml")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class MixinConfigError(ValueError):
    """A mixin configuration that cannot be rendered; the message names the key."""


# --------------------------------------------------------------------------------------------
# Configuration


def default_config() -> dict[str, Any]:
    text = resources.files("exporter.mixin").joinpath(DEFAULTS_FILE).read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return data


def _merge(base: dict[str, Any], override: Mapping[str, Any], path: str = "") -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        where = f"{path}{key}"
        if key not in base:
            raise MixinConfigError(f"{where}: unknown key")
        if isinstance(base[key], dict):
            if not isinstance(value, Mapping):
                raise MixinConfigError(f"{where}: expected a mapping")
            out[key] = _merge(base[key], value, where + ".")
        elif isinstance(base[key], list):
            if not isinstance(value, list):
                raise MixinConfigError(f"{where}: expected a list")
            out[key] = list(value)
        else:
            if isinstance(value, Mapping | list) or value is None:
                raise MixinConfigError(f"{where}: expected a single value")
            out[key] = value
    return out


def seconds(value: Any, key: str = "duration") -> int:
    """`90`, `15m`, `24h` -> seconds, in the configuration's duration grammar."""
    try:
        return int(parse_duration(value))
    except ValueError:
        raise MixinConfigError(f"{key}: {value!r} is not a duration like 15m or 24h") from None


def promql_duration(total: int) -> str:
    """Seconds -> the shortest PromQL duration (`1h55m`, `23h`, `3d`)."""
    if total <= 0:
        raise MixinConfigError(f"duration {total}s must be positive")
    parts = []
    for unit in ("d", "h", "m", "s"):
        count, total = divmod(total, _UNITS[unit])
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


# Windows over which the exporter exports SLA burn rates and their observed and down seconds.
SLA_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
# Windows over which the recording rules compute the probe failure ratio.
PROBE_WINDOWS = ("5m", "30m", "1h")


@dataclass(frozen=True)
class Thresholds:
    probe_failure_ratio: float
    probe_failing_for: str
    partial_outage_ratio: float
    partial_outage_window: str
    partial_outage_for: str
    probe_latency_p95_seconds: float
    probe_latency_for: str
    tls_warning_days: float
    tls_warning_for: str
    tls_critical_days: float
    tls_critical_for: str
    identity_expiry_seconds: int
    identity_expiring_for: str
    upgrade_blocked_for: str
    agents_outdated_for: str
    agents_not_updating_for: str
    agents_not_enrolled_for: str
    group_stuck_for: str
    unsupported_version_for: str
    group_rolled_back_for: str
    tctl_incompatible_for: str
    tctl_one_major_behind_for: str
    tctl_away_from_client_tools_for: str
    status_incident_for: str
    tenant_agent_limit: int
    agent_limit_ratio: float
    agent_limit_horizon: str
    agent_growth_window: str
    agent_limit_for: str
    budget_remaining_ratio: float
    budget_low_for: str
    coverage_ratio: float
    coverage_window: str
    coverage_for: str
    projection_window: str
    breach_projected_for: str
    breached_for: str
    burn_min_downtime_seconds: int
    burn_min_coverage_ratio: float
    source_down_for: str
    source_replica_down_for: str
    source_stale_seconds: int
    exporter_down_for: str
    replica_down_for: str


@dataclass(frozen=True)
class BurnRateAlert:
    """One multiwindow burn-rate ticket: both windows over `factor` times the sustainable rate."""

    name: str
    long_window: str
    short_window: str
    factor: float
    duration: str


@dataclass(frozen=True)
class Dashboards:
    refresh: str
    tags: tuple[str, ...]
    multi_cluster: bool
    table_rows: int


@dataclass(frozen=True)
class MixinConfig:
    job_selector: str
    cluster_label: str
    runbook_url: str
    severities: dict[str, str]
    thresholds: Thresholds
    burn_rate_alerts: tuple[BurnRateAlert, ...] = ()
    dashboards: Dashboards = Dashboards("1m", ("teleport", "teleport-cloud"), False, 50)

    @property
    def by(self) -> str:
        """The labels every tenant-level aggregate keeps: replicas share cluster and job."""
        return self.group("tenant")

    @property
    def replica(self) -> str:
        """The labels that tell one exporter replica's series apart, tenant included."""
        return self.group("instance", "tenant")

    def group(self, *labels: str) -> str:
        """`by`-list of an aggregate: the cluster label and `job`, then `labels`."""
        return ", ".join([*([self.cluster_label] if self.cluster_label else []), "job", *labels])

    def runbook(self, alert: str) -> str:
        return self.runbook_url.format(alert=alert, alert_lower=alert.lower())


def _ratio(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise MixinConfigError(f"{key}: {value!r} is not a ratio in (0, 1]")
    return float(value)


def _window(value: Any, key: str, allowed: tuple[str, ...]) -> str:
    text = promql_duration(seconds(value, key))
    if text not in allowed:
        raise MixinConfigError(
            f"{key}: {value!r} is not a window the exporter exports ({', '.join(allowed)})"
        )
    return text


def _thresholds(data: Mapping[str, Any]) -> Thresholds:
    values = dict(data)
    for key, value in values.items():
        where = f"thresholds.{key}"
        if key.endswith(("_for", "_window", "_horizon")):
            promql_duration(seconds(value, where))  # validated; the text stays as written
            values[key] = str(value)
        elif key.endswith("_ratio"):
            values[key] = _ratio(value, where)
        elif isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise MixinConfigError(f"{where}: {value!r} is not a positive number")
    for key in ("coverage_window", "projection_window"):
        values[key] = _window(values[key], f"thresholds.{key}", SLA_WINDOWS)
    values["partial_outage_window"] = _window(
        values["partial_outage_window"], "thresholds.partial_outage_window", PROBE_WINDOWS
    )
    try:
        return Thresholds(**values)
    except TypeError as exc:  # a key of the defaults file missing from Thresholds, or vice versa
        raise MixinConfigError(f"thresholds: {exc}") from exc


def _burn_rate_alerts(data: Mapping[str, Any]) -> tuple[BurnRateAlert, ...]:
    out = []
    for name, pair in data.items():
        where = f"burn_rate_alerts.{name}"
        long = _window(pair["long_window"], f"{where}.long_window", SLA_WINDOWS)
        short = _window(pair["short_window"], f"{where}.short_window", SLA_WINDOWS)
        if seconds(short) >= seconds(long):
            raise MixinConfigError(f"{where}.short_window: {short} is not shorter than {long}")
        factor = pair["factor"]
        if isinstance(factor, bool) or not isinstance(factor, int | float) or factor <= 0:
            raise MixinConfigError(f"{where}.factor: {factor!r} is not a positive number")
        duration = promql_duration(seconds(pair["for"], f"{where}.for"))
        out.append(BurnRateAlert(str(name), long, short, float(factor), duration))
    return tuple(out)


def _dashboards(data: Mapping[str, Any]) -> Dashboards:
    refresh = promql_duration(seconds(data["refresh"], "dashboards.refresh"))
    tags = data["tags"]
    if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
        raise MixinConfigError(f"dashboards.tags: {tags!r} is not a list of names")
    rows = data["table_rows"]
    if isinstance(rows, bool) or not isinstance(rows, int) or not 1 <= rows <= 500:
        raise MixinConfigError(f"dashboards.table_rows: {rows!r} is not a count from 1 to 500")
    if not isinstance(data["multi_cluster"], bool):
        raise MixinConfigError("dashboards.multi_cluster: expected true or false")
    return Dashboards(refresh, tuple(tags), data["multi_cluster"], rows)


def parse_config(override: Mapping[str, Any] | None = None) -> MixinConfig:
    data = _merge(default_config(), override or {})
    thresholds = _thresholds(data["thresholds"])
    severities = {str(k): str(v) for k, v in data["severities"].items()}
    if set(severities) != {"page", "ticket", "info"}:
        raise MixinConfigError("severities: needs exactly page, ticket and info")
    cluster = str(data["cluster_label"] or "")
    if cluster and not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", cluster):
        raise MixinConfigError(f"cluster_label: {cluster!r} is not a label name")
    if "{alert" not in str(data["runbook_url"]):
        raise MixinConfigError("runbook_url: needs {alert} or {alert_lower}")
    return MixinConfig(
        job_selector=str(data["job_selector"]),
        cluster_label=cluster,
        runbook_url=str(data["runbook_url"]),
        severities=severities,
        thresholds=thresholds,
        burn_rate_alerts=_burn_rate_alerts(data["burn_rate_alerts"]),
        dashboards=_dashboards(data["dashboards"]),
    )


def load_config(path: Path | None) -> MixinConfig:
    if path is None:
        return parse_config()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise MixinConfigError(f"{path}: {exc}") from exc
    if not isinstance(data, Mapping):
        raise MixinConfigError(f"{path}: expected a mapping at the top level")
    return parse_config(data)


# --------------------------------------------------------------------------------------------
# Rule model and rendering


@dataclass(frozen=True)
class Rule:
    """An alerting (`alert`) or recording (`record`) rule with the comment that explains it."""

    name: str
    expr: str
    comment: str = ""
    record: bool = False
    severity: str = ""  # page | ticket | info (alerts)
    duration: str = ""  # the `for:` of an alert
    summary: str = ""
    description: str = ""
    labels: dict[str, str] = field(default_factory=dict)

    def body(self, config: MixinConfig) -> dict[str, Any]:
        if self.record:
            out: dict[str, Any] = {"record": self.name, "expr": self.expr}
            if self.labels:
                out["labels"] = dict(self.labels)
            return out
        out = {"alert": self.name, "expr": self.expr}
        if self.duration:
            out["for"] = promql_duration(seconds(self.duration, f"{self.name}: for"))
        out["labels"] = {"severity": config.severities[self.severity], **self.labels}
        out["annotations"] = {
            "summary": self.summary,
            "description": self.description,
            "runbook_url": config.runbook(self.name),
        }
        return out


@dataclass(frozen=True)
class Group:
    name: str
    rules: tuple[Rule, ...]
    comment: str = ""


class _Dumper(yaml.SafeDumper):
    """Block-indented lists and literal blocks for multi-line strings (PromQL, JSON)."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    return dumper.represent_scalar(
        "tag:yaml.org,2002:str", data, style="|" if "\n" in data else None
    )


_Dumper.add_representer(str, _str)


def dump_yaml(document: Any) -> str:
    """The mixin's one YAML dumper (rule files and Kubernetes objects)."""
    return yaml.dump(
        document,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=4096,
    )


def _comment(text: str, indent: str) -> str:
    return "".join(f"{indent}# {line}".rstrip() + "\n" for line in text.strip().splitlines())


def render_rule_file(header: str, groups: tuple[Group, ...], config: MixinConfig) -> str:
    """YAML with each group's and rule's comment above it (PyYAML alone drops comments)."""
    out = [_comment(header, ""), "\ngroups:\n"]
    for group in groups:
        if group.comment:
            out.append(_comment(group.comment, "  "))
        out.append(f"  - name: {group.name}\n    rules:\n")
        for rule in group.rules:
            if rule.comment:
                out.append(_comment(rule.comment, "      "))
            text = dump_yaml([rule.body(config)])
            out.append("".join("      " + line + "\n" for line in text.splitlines()))
        out.append("\n")
    return "".join(out).rstrip("\n") + "\n"


# --------------------------------------------------------------------------------------------
# Expression helpers


def sel(config: MixinConfig, metric: str, *matchers: str) -> str:
    """`metric{<job selector>, matchers...}`."""
    return metric + "{" + ", ".join([config.job_selector, *matchers]) + "}"


def sustained(
    config: MixinConfig,
    series: str,
    condition: str,
    duration: str,
    by: str,
    *,
    existed: str | None = None,
) -> str:
    """`series <condition>` held at every 5-minute step of the last `duration`, restart-proof.

    `min_over_time` over a subquery skips the steps where the series is absent (a pod being
    rescheduled, a source not yet refreshed after a restart) instead of starting over, and
    `series offset <duration>` proves the series already existed when the window began, so a
    condition that appeared an hour ago does not pass for a day-long one. (A gap exactly at the
    window's start delays the alert by the gap's length, no more.)
    """
    window = promql_duration(seconds(duration))
    inner = series if existed is None else f"({series})"
    return (
        f"min_over_time({inner}[{window}:5m]) {condition}\nand on ({by})\n"
        f"{existed or series} offset {window}"
    )
