#!/usr/bin/env python3
"""Builds the Grafana dashboards of teleport-cloud-exporter with grafana-foundation-sdk.

    python grafana/build.py           rewrite grafana/dashboards/*.json (the mixin's defaults)
    python grafana/build.py --check   exit 1 if the committed JSON is not what it would write

`teleport-cloud-exporter mixin --config FILE --out DIR` renders the same dashboards from another
configuration: the `job` and `cluster` variables follow its job selector and cluster label, and
every threshold is the alert's, read from the same configuration.

Panels read the recording rules (replicas folded, one series per tenant) wherever one exists.
Other code (tests, the live check against Prometheus) imports `dashboards()`, `panel_queries()`
and `concrete()`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus, stat, table, timeseries
from grafana_foundation_sdk.builders.common import (
    GraphThresholdsStyleConfig,
    ReduceDataOptions,
    VizLegendOptions,
    VizTooltipOptions,
)
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import (
    BigValueGraphMode,
    GraphTresholdsStyleMode,  # sic, the SDK's name
    LegendDisplayMode,
    LegendPlacement,
    SortOrder,
    TooltipDisplayMode,
)
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DashboardLinkType,
    DataSourceRef,
    DataTransformerConfig,
    Threshold,
    ThresholdsMode,
    ValueMap,
    ValueMappingResult,
    VariableRefresh,
    VariableSort,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from exporter.mixin import MixinConfig, parse_config

Json = dict[str, Any]
OUT_DIR: Final = Path(__file__).resolve().parent / "dashboards"
TAGS: Final = ["teleport", "teleport-cloud"]
DATASOURCE: Final = DataSourceRef(type_val="prometheus", uid="${datasource}")
OVERVIEW_UID: Final = "teleport-cloud-overview"
FLEET_UID: Final = "teleport-cloud-fleet"
AGENT_COLUMNS: Final = (
    "tenant",
    "hostname",
    "server_id",
    "version",
    "upgrader",
    "updater_status",
    "update_group",
)
INDICATORS: Final = {"none": 0, "minor": 1, "major": 2, "critical": 3, "maintenance": 4}


# --------------------------------------------------------------------------------------------
# Queries


class Q:
    """Selectors scoped by the dashboard's variables: cluster, job, tenant (or page)."""

    def __init__(self, config: MixinConfig) -> None:
        self.cluster = config.cluster_label

    def scope(self, *matchers: str, key: str = 'tenant=~"$tenant"') -> str:
        base = [f'{self.cluster}=~"$cluster"'] if self.cluster else []
        return "{" + ", ".join([*base, 'job=~"$job"', key, *matchers]) + "}"

    def t(self, metric: str, *matchers: str) -> str:
        """A tenant series (raw family or recorded rule)."""
        return metric + self.scope(*matchers)

    def p(self, metric: str, *matchers: str) -> str:
        """A status-page series (label `page`)."""
        return metric + self.scope(*matchers, key='page=~"$page"')


def target(
    expr: str, legend: str = "", *, instant: bool = False, table_format: bool = False
) -> prometheus.Dataquery:
    """One Prometheus query: a range query, an instant one, or an instant table."""
    query = prometheus.Dataquery().expr(expr).datasource(DATASOURCE)
    if table_format:
        query = query.format(PromQueryFormat.TABLE).instant()
    elif instant:
        query = query.instant()
    else:
        query = query.range()
    return query.legend_format(legend) if legend else query


def match(label: str, op: str, value: str) -> str:
    """One label matcher, e.g. match("skew", "=~", "a|b") -> skew=~"a|b"."""
    return f'{label}{op}"{value}"'


def steps(base: str, *more: tuple[float, str]) -> dash.ThresholdsConfig:
    return (
        dash.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(color=base, value=None)] + [Threshold(color=c, value=v) for v, c in more])
    )


def value_map(names: Mapping[int, tuple[str, str]]) -> ValueMap:
    return ValueMap(
        options={
            str(k): ValueMappingResult(text=t, color=c, index=i)
            for i, (k, (t, c)) in enumerate(names.items())
        }
    )


# --------------------------------------------------------------------------------------------
# Panels: each helper sets title, description, unit and size; targets get refIds A, B, ...


def _finish(
    panel: Any, title: str, about: str, unit: str, width: int, height: int, targets: Sequence[Any]
) -> Any:
    panel = panel.title(title).description(about).unit(unit).datasource(DATASOURCE)
    for index, query in enumerate(targets):
        panel = panel.with_target(query.ref_id(chr(ord("A") + index)))
    return panel.span(width).height(height)


def stat_panel(
    title: str,
    about: str,
    unit: str,
    *targets: Any,
    thresholds: dash.ThresholdsConfig | None = None,
    mapping: ValueMap | None = None,
    width: int = 4,
    height: int = 4,
) -> Any:
    panel = (
        stat.Panel()
        .thresholds(thresholds or steps("blue"))
        .graph_mode(BigValueGraphMode.NONE)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
    if mapping is not None:
        panel = panel.mappings([mapping])
    return _finish(panel, title, about, unit, width, height, targets)


def graph(
    title: str,
    about: str,
    unit: str,
    *targets: Any,
    thresholds: dash.ThresholdsConfig | None = None,
    width: int = 12,
    height: int = 8,
) -> Any:
    panel = (
        timeseries.Panel()
        .thresholds(thresholds or steps("green"))
        .legend(
            VizLegendOptions()
            .display_mode(LegendDisplayMode.LIST)
            .placement(LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .tooltip(VizTooltipOptions().mode(TooltipDisplayMode.MULTI).sort(SortOrder.DESCENDING))
    )
    if thresholds is not None:
        panel = panel.thresholds_style(_dashed())
    return _finish(panel, title, about, unit, width, height, targets)


def _dashed() -> GraphThresholdsStyleConfig:
    """Threshold lines drawn dashed on the graph: where the alert fires."""
    return GraphThresholdsStyleConfig().mode(GraphTresholdsStyleMode.DASHED)


def table_panel(
    title: str,
    about: str,
    unit: str,
    expr: str,
    columns: Sequence[str],
    value: str,
    *,
    thresholds: dash.ThresholdsConfig | None = None,
    mapping: ValueMap | None = None,
    width: int = 24,
    height: int = 8,
) -> Any:
    """An instant table of `expr`'s series: the label `columns` in order, then the value."""
    order = {name: i for i, name in enumerate([*columns, "Value"])}
    panel = (
        table.Panel()
        .show_header(True)
        .thresholds(thresholds or steps("green"))
        .with_transformation(
            DataTransformerConfig(
                id_val="organize",
                options={
                    "excludeByName": {"Time": True},
                    "indexByName": order,
                    "renameByName": {"Value": value},
                },
            )
        )
    )
    if mapping is not None:
        panel = panel.mappings([mapping])
    return _finish(panel, title, about, unit, width, height, [target(expr, table_format=True)])


# --------------------------------------------------------------------------------------------
# Dashboards


def _variables(board: Any, config: MixinConfig, q: Q, *, page: bool) -> Any:
    job_source = "teleport_cloud_exporter_build_info{" + config.job_selector + "}"
    board = board.with_variable(
        dash.DatasourceVariable("datasource").label("Data source").type("prometheus")
    )
    if config.cluster_label:
        board = board.with_variable(
            _query_var("cluster", f"label_values({job_source}, {config.cluster_label})")
        )
    board = board.with_variable(_query_var("job", f"label_values({job_source}, job)"))
    board = board.with_variable(
        _query_var("tenant", f"label_values({q.t('teleport_cloud_probe_success')}, tenant)")
    )
    if page:
        board = board.with_variable(
            _query_var("page", f"label_values({q.p('teleport_cloud_status_indicator')}, page)")
        )
    return board


def _query_var(name: str, query: str) -> Any:
    return (
        dash.QueryVariable(name)
        .label(name.capitalize())
        .datasource(DATASOURCE)
        .query(query)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
    )


def _annotation(name: str, expr: str, color: str) -> dash.AnnotationQuery:
    return (
        dash.AnnotationQuery()
        .name(name)
        .datasource(DATASOURCE)
        .enable(True)
        .hide(False)
        .icon_color(color)
        .expr(expr)
    )


def _annotations(board: Any, q: Q, *, page: bool) -> Any:
    """Control-plane major upgrades on both dashboards, status-page maintenance on the overview."""
    upgrades = f"changes({q.t('teleport_cloud_control_plane_major_version')}[10m]) > 0"
    board = board.annotation(_annotation("Control-plane major upgrades", upgrades, "purple"))
    if page:
        maintenance = q.p("teleport_cloud_status_maintenances", match("state", "=", "in_progress"))
        board = board.annotation(
            _annotation("Status-page maintenance", f"{maintenance} > 0", "blue")
        )
    return board


def _board(uid: str, title: str, about: str) -> Any:
    link = (
        dash.DashboardLink("Teleport Cloud dashboards")
        .type(DashboardLinkType.DASHBOARDS)
        .tags(["teleport-cloud"])
        .include_vars(True)
        .keep_time(True)
    )
    return (
        dash.Dashboard(title)
        .uid(uid)
        .description(about)
        .tags(TAGS)
        .refresh("1m")
        .time("now-6h", "now")
        .timezone("utc")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .link(link)
    )


def overview(config: MixinConfig) -> Any:
    th = config.thresholds
    q = Q(config)
    board = _variables(
        _board(
            OVERVIEW_UID,
            "Teleport Cloud / Overview",
            "Is the next upgrade blocked and by whom, which agents do not update, the SLA "
            "budget left this month, the proxy probe and the vendor status page.",
        ),
        config,
        q,
        page=True,
    )
    board = _annotations(board, q, page=True)
    blocked = value_map({0: ("no", "green"), 1: ("blocked", "red")})
    blocking_skews = q.t(
        "tenant_skew:teleport_cloud_agents_by_skew:max",
        match("skew", "=~", "one_major_behind|unsupported_old"),
    )
    budget_steps = steps("red", (th.budget_remaining_ratio, "green"))
    failure_steps = steps("green", (th.probe_failure_ratio, "red"))
    tls_steps = steps(
        "red", (th.tls_critical_days * 86400, "orange"), (th.tls_warning_days * 86400, "green")
    )
    indicator = (
        "max by (page) (\n  "
        + "\n  or ".join(
            q.p("teleport_cloud_status_indicator", f'indicator="{name}"') + f" * {weight}"
            for name, weight in INDICATORS.items()
        )
        + "\n)"
    )
    blocking = (
        f"max by ({', '.join(AGENT_COLUMNS)}) (\n"
        f"  {q.t('teleport_cloud_agent_info')}\n"
        f"  * on ({config.by}, server_id) group_left ()\n"
        f"  (max by ({config.by}, server_id) "
        f"({q.t('teleport_cloud_agent_major_versions_behind')}) >= 1)\n)"
    )
    board = (
        board.with_row(dash.Row("Overview"))
        .with_panel(
            stat_panel(
                "Next upgrade blocked",
                "Whether agents one or more majors behind withhold the next control-plane major "
                "upgrade. The table below lists them.",
                "none",
                target(
                    q.t("tenant:teleport_cloud_control_plane_upgrade_blocked:max"),
                    "{{tenant}}",
                    instant=True,
                ),
                mapping=blocked,
                thresholds=steps("green", (1, "red")),
            )
        )
        .with_panel(
            stat_panel(
                "Agents blocking the upgrade",
                "Agents one or more majors behind the control plane.",
                "none",
                target(
                    f"sum by (tenant) ({blocking_skews})",
                    "{{tenant}}",
                    instant=True,
                ),
                thresholds=steps("green", (1, "red")),
            )
        )
        .with_panel(
            stat_panel(
                "Agents not updating",
                "Agents behind the target version with their updater disabled or pinned, or "
                "without an upgrader (TeleportCloudAgentsNotUpdating).",
                "none",
                target(
                    q.t("tenant:teleport_cloud_agents_not_updating:count"),
                    "{{tenant}}",
                    instant=True,
                ),
                thresholds=steps("green", (1, "orange")),
            )
        )
        .with_panel(
            stat_panel(
                "SLA budget left",
                "Share of this month's error budget left, from the replica that saw the tenant "
                f"best. Red under {th.budget_remaining_ratio:.0%} "
                "(TeleportCloudSLAErrorBudgetLow).",
                "percentunit",
                target(
                    q.t("tenant:teleport_cloud_sla_error_budget_remaining_ratio:max"),
                    "{{tenant}}",
                    instant=True,
                ),
                thresholds=budget_steps,
            )
        )
        .with_panel(
            stat_panel(
                "Probe failures (5m)",
                "Share of failed /webapi/ping probes over 5 minutes, best replica. Red from "
                f"{th.probe_failure_ratio:.0%} (TeleportCloudProbeFailing).",
                "percentunit",
                target(
                    q.t("tenant:teleport_cloud_probe_failures:ratio_rate5m"),
                    "{{tenant}}",
                    instant=True,
                ),
                thresholds=failure_steps,
            )
        )
        .with_panel(
            stat_panel(
                "Status page",
                "The vendor status page's overall indicator.",
                "none",
                target(indicator, "{{page}}", instant=True),
                mapping=value_map(
                    {
                        0: ("operational", "green"),
                        1: ("minor", "yellow"),
                        2: ("major", "orange"),
                        3: ("critical", "red"),
                        4: ("maintenance", "blue"),
                    }
                ),
                thresholds=steps("green"),
            )
        )
        .with_row(dash.Row("Agents to act on"))
        .with_panel(
            table_panel(
                "Agents blocking the next upgrade",
                "Agents one or more majors behind the control plane, with how many majors. Needs "
                "per_agent_metrics: true.",
                "none",
                blocking,
                AGENT_COLUMNS,
                "Majors behind",
                thresholds=steps("orange", (2, "red")),
                width=12,
            )
        )
        .with_panel(
            table_panel(
                "Agents pinned, disabled or without upgrader",
                "Agents that will not update by themselves; `Behind target` says whether they are "
                "already off the tenant's target version (TeleportCloudAgentsNotUpdating).",
                "none",
                _not_updating(q, config),
                AGENT_COLUMNS,
                "Behind target",
                mapping=value_map({0: ("no", "green"), 1: ("yes", "red")}),
                width=12,
            )
        )
        .with_panel(
            table_panel(
                "Stuck update groups",
                "Managed Updates v2 groups and their agents not on the group's version of the "
                "moment (TeleportCloudAutoUpdateGroupStuck).",
                "none",
                q.t("tenant_group:teleport_cloud_autoupdate_group_agents_stuck:max"),
                ("tenant", "group"),
                "Stuck agents",
                thresholds=steps("green", (1, "red")),
                height=6,
            )
        )
        .with_row(dash.Row("SLA this month"))
        .with_panel(
            stat_panel(
                "Downtime this month",
                "Down minutes x 60 this month, best replica.",
                "s",
                target(
                    q.t("tenant:teleport_cloud_sla_downtime_seconds:min"),
                    "{{tenant}}",
                    instant=True,
                ),
            )
        )
        .with_panel(
            stat_panel(
                "Error budget this month",
                "Allowed downtime this month: days x 86400 x (1 - objective).",
                "s",
                target(
                    q.t("tenant:teleport_cloud_sla_error_budget_seconds:max"),
                    "{{tenant}}",
                    instant=True,
                ),
            )
        )
        .with_panel(
            stat_panel(
                "Projected downtime at month end",
                f"Downtime so far plus the last {th.projection_window}'s burn rate over the time "
                "left (TeleportCloudSLABreachProjected when over the budget).",
                "s",
                target(
                    q.t(
                        "tenant:teleport_cloud_sla_downtime_seconds:projected_burn_rate"
                        + th.projection_window
                    ),
                    "{{tenant}}",
                    instant=True,
                ),
            )
        )
        .with_panel(
            stat_panel(
                "Observed coverage",
                "Share of the month so far the ledger observed. Red under "
                f"{th.coverage_ratio:.0%} (TeleportCloudSLACoverageLow).",
                "percentunit",
                target(
                    q.t("tenant:teleport_cloud_sla_observed_seconds:ratio_month"),
                    "{{tenant}}",
                    instant=True,
                ),
                thresholds=steps("red", (th.coverage_ratio, "green")),
            )
        )
        .with_panel(
            stat_panel(
                "Uptime this month",
                "1 - downtime / observed time, best replica.",
                "percentunit",
                target(
                    f"max by (tenant) ({q.t('teleport_cloud_sla_uptime_ratio')})",
                    "{{tenant}}",
                    instant=True,
                ),
                width=8,
            )
        )
        .with_panel(
            graph(
                "Error budget left",
                "Share of the month's error budget left over time; the dashed line is the "
                "TeleportCloudSLAErrorBudgetLow threshold.",
                "percentunit",
                target(
                    q.t("tenant:teleport_cloud_sla_error_budget_remaining_ratio:max"), "{{tenant}}"
                ),
                thresholds=budget_steps,
            )
        )
        .with_panel(
            graph(
                "SLA burn rate",
                "Burn rate of the error budget per window (1 = spending exactly the budget); the "
                "ticket thresholds are 3 over 1d and 1 over 3d.",
                "none",
                target(
                    q.t("tenant_window:teleport_cloud_sla_burn_rate:min", 'window=~"1h|1d|3d"'),
                    "{{tenant}} {{window}}",
                ),
                thresholds=steps("green", (1, "orange"), (3, "red")),
            )
        )
        .with_row(dash.Row("Proxy probe"))
        .with_panel(
            graph(
                "Probe failure ratio",
                "Share of failed probes, best replica, from counters (every probe counts).",
                "percentunit",
                target(q.t("tenant:teleport_cloud_probe_failures:ratio_rate5m"), "{{tenant}} 5m"),
                target(q.t("tenant:teleport_cloud_probe_failures:ratio_rate1h"), "{{tenant}} 1h"),
                thresholds=failure_steps,
                width=8,
            )
        )
        .with_panel(
            graph(
                "Probe latency",
                "Percentiles of successful probes over 10 minutes; the dashed line is "
                "TeleportCloudProbeLatencyHigh's p95 threshold.",
                "s",
                *(
                    target(
                        q.t(f"tenant:teleport_cloud_probe_latency_seconds:{p}_10m"),
                        f"{{{{tenant}}}} {p}",
                    )
                    for p in ("p50", "p95", "p99")
                ),
                thresholds=steps("green", (th.probe_latency_p95_seconds, "red")),
                width=8,
            )
        )
        .with_panel(
            graph(
                "Probe phases",
                "Duration of each phase of the last probe, slowest replica.",
                "s",
                target(
                    f"max by (tenant, phase) "
                    f"({q.t('teleport_cloud_probe_phase_duration_seconds')})",
                    "{{tenant}} {{phase}}",
                ),
                width=8,
            )
        )
        .with_panel(
            stat_panel(
                "TLS certificate expires in",
                f"Time left on the proxy's certificate: orange under {th.tls_warning_days:g} days "
                f"(ticket), red under {th.tls_critical_days:g} (page).",
                "s",
                target(
                    f"min by (tenant) ({q.t('teleport_cloud_tls_cert_expiry_timestamp_seconds')}"
                    " > 0) - time()",
                    "{{tenant}}",
                    instant=True,
                ),
                thresholds=tls_steps,
                width=6,
            )
        )
        .with_panel(
            stat_panel(
                "Machine ID identity expires in",
                "Time left on the identity tctl uses; tbot renews it every 20 minutes. Red under "
                f"{th.identity_expiry_seconds // 60} minutes (TeleportCloudIdentityExpiring).",
                "s",
                target(
                    f"min by (tenant) "
                    f"({q.t('teleport_cloud_identity_expiry_timestamp_seconds')} > 0) - time()",
                    "{{tenant}}",
                    instant=True,
                ),
                thresholds=steps("red", (th.identity_expiry_seconds, "green")),
                width=6,
            )
        )
        .with_panel(
            stat_panel(
                "tctl compatible",
                "Whether every replica's tctl is the control plane's major or one below.",
                "none",
                target(
                    f"min by (tenant) ({q.t('teleport_cloud_tctl_compatible')})",
                    "{{tenant}}",
                    instant=True,
                ),
                mapping=value_map({0: ("incompatible", "red"), 1: ("compatible", "green")}),
                thresholds=steps("red", (1, "green")),
                width=6,
            )
        )
        .with_panel(
            stat_panel(
                "Probe success (last)",
                "Whether the last probe of at least one replica succeeded.",
                "none",
                target(q.t("tenant:teleport_cloud_probe_success:max"), "{{tenant}}", instant=True),
                mapping=value_map({0: ("down", "red"), 1: ("up", "green")}),
                thresholds=steps("red", (1, "green")),
                width=6,
            )
        )
        .with_row(dash.Row("Status page"))
        .with_panel(
            table_panel(
                "Components not operational",
                "Status-page components (of the configured ones) in any state but operational.",
                "none",
                f"max by (page, group, component, status) "
                f"({q.p('teleport_cloud_status_component', match('status', '!=', 'operational'))})",
                ("page", "group", "component", "status"),
                "Current",
                mapping=value_map({0: ("no", "green"), 1: ("yes", "red")}),
                width=12,
            )
        )
        .with_panel(
            graph(
                "Unresolved incidents",
                "Unresolved incidents of the configured components, by impact.",
                "none",
                target(
                    f"max by (page, impact) ({q.p('teleport_cloud_status_incidents')})",
                    "{{page}} {{impact}}",
                ),
                width=12,
            )
        )
        .with_row(dash.Row("Exporter"))
        .with_panel(
            table_panel(
                "Sources",
                "Whether each source's last refresh succeeded on at least one replica.",
                "none",
                f"max by (source, target) "
                f"(teleport_cloud_source_up{q.scope(key=match('target', '=~', '$tenant|$page'))})",
                ("source", "target"),
                "Up",
                mapping=value_map({0: ("down", "red"), 1: ("up", "green")}),
                width=12,
            )
        )
        .with_panel(
            graph(
                "SLA ledger errors",
                "Failed ledger reads and writes per replica over 15 minutes "
                "(TeleportCloudSLALedgerErrors).",
                "none",
                target(
                    f"sum by (instance) (increase(teleport_cloud_sla_ledger_errors_total"
                    f"{q.scope(key=match('operation', '=~', '.+'))}[15m]))",
                    "{{instance}}",
                ),
                thresholds=steps("green", (1, "red")),
                width=12,
            )
        )
    )
    return board


def _not_updating(q: Q, config: MixinConfig) -> str:
    agents = (
        f"{q.t('teleport_cloud_agent_info', match('updater_status', '=~', 'disabled|pinned'))}"
        f" or {q.t('teleport_cloud_agent_info', match('upgrader', '=', 'none'))}"
    )
    by = ", ".join(AGENT_COLUMNS)
    target_version = f"{q.t('teleport_cloud_agent_target_version_info')}"
    return (
        f"max by ({by}) (({agents}) unless on ({config.by}, version) {target_version})\n"
        f"or max by ({by}) ({agents}) * 0"
    )


def fleet(config: MixinConfig) -> Any:
    q = Q(config)
    board = _variables(
        _board(
            FLEET_UID,
            "Teleport Cloud / Agent fleet",
            "Agents by version, skew and updater, the Managed Updates v2 rollout and its "
            "groups, and every agent one or more majors behind.",
        ),
        config,
        q,
        page=False,
    )
    board = _annotations(board, q, page=False)
    skew_colors = steps("green")
    return (
        board.with_row(dash.Row("Fleet"))
        .with_panel(
            stat_panel(
                "Agents",
                "Customer agents (Teleport-managed instances excluded).",
                "none",
                target(q.t("tenant:teleport_cloud_agents:sum"), "{{tenant}}", instant=True),
                width=6,
            )
        )
        .with_panel(
            stat_panel(
                "Effectively enrolled",
                "Share of agents with an upgrader whose updater is neither disabled nor pinned.",
                "percentunit",
                target(
                    q.t("tenant:teleport_cloud_agents_enrolled:ratio"), "{{tenant}}", instant=True
                ),
                thresholds=steps("orange", (1, "green")),
                width=6,
            )
        )
        .with_panel(
            stat_panel(
                "Agents off the target version",
                "Agents whose version differs from the tenant's target agent version.",
                "none",
                target(
                    q.t("tenant:teleport_cloud_agents_outdated:max"), "{{tenant}}", instant=True
                ),
                thresholds=steps("green", (1, "orange")),
                width=6,
            )
        )
        .with_panel(
            stat_panel(
                "Target agent version",
                "The version agents should run: the rollout's target, else ping's agent version.",
                "none",
                target(
                    f"max by (tenant, version) ({q.t('teleport_cloud_agent_target_version_info')})",
                    "{{version}}",
                    instant=True,
                ),
                width=6,
            )
        )
        .with_panel(
            graph(
                "Agents by skew",
                "Agents by version skew against the control plane.",
                "none",
                target(q.t("tenant_skew:teleport_cloud_agents_by_skew:max"), "{{tenant}} {{skew}}"),
                thresholds=skew_colors,
            )
        )
        .with_panel(
            graph(
                "Agents by version",
                "Agents per Teleport version.",
                "none",
                target(q.t("tenant_version:teleport_cloud_agents:sum"), "{{tenant}} {{version}}"),
            )
        )
        .with_panel(
            graph(
                "Agents by updater status",
                "Agents per updater status: ok, disabled, pinned, unreadable, unspecified.",
                "none",
                target(
                    q.t("tenant_status:teleport_cloud_agents_by_updater_status:sum"),
                    "{{tenant}} {{status}}",
                ),
            )
        )
        .with_panel(
            graph(
                "Agents by upgrader",
                "Agents per upgrader kind (none: no automatic updates).",
                "none",
                target(q.t("tenant_upgrader:teleport_cloud_agents:sum"), "{{tenant}} {{upgrader}}"),
            )
        )
        .with_row(dash.Row("Managed Updates v2 rollout"))
        .with_panel(
            table_panel(
                "Rollout",
                "The tenant's autoupdate_agent_rollout: versions, mode, strategy.",
                "none",
                f"max by (tenant, start_version, target_version, mode, strategy, schedule) "
                f"({q.t('teleport_cloud_autoupdate_rollout_info')})",
                ("tenant", "start_version", "target_version", "mode", "strategy", "schedule"),
                "Present",
                height=5,
            )
        )
        .with_panel(
            table_panel(
                "Update groups",
                "Each group's state, agents and agents up to date.",
                "none",
                f"max by (tenant, group, state) "
                f"({q.t('teleport_cloud_autoupdate_group_state')} == 1)",
                ("tenant", "group", "state"),
                "Current",
                width=12,
            )
        )
        .with_panel(
            graph(
                "Stuck agents per group",
                "Agents of each group not on the group's version of the moment.",
                "none",
                target(
                    q.t("tenant_group:teleport_cloud_autoupdate_group_agents_stuck:max"),
                    "{{tenant}} {{group}}",
                ),
                thresholds=steps("green", (1, "red")),
            )
        )
        .with_row(dash.Row("Agents"))
        .with_panel(
            table_panel(
                "Agents one or more majors behind",
                "Every agent one or more majors behind the control plane (negative: newer).",
                "none",
                f"max by (tenant, server_id) "
                f"({q.t('teleport_cloud_agent_major_versions_behind')}) >= 1",
                ("tenant", "server_id"),
                "Majors behind",
                thresholds=steps("orange", (2, "red")),
                height=10,
            )
        )
    )


# --------------------------------------------------------------------------------------------
# Rendering and the helpers other code uses


def _model(builder: Any) -> Json:
    """The dashboard as plain JSON, with unique panel ids (the SDK leaves them 0)."""
    model: Json = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    for number, panel in enumerate(all_panels(model), start=1):
        panel["id"] = number
    return model


def dashboards(config: MixinConfig | None = None) -> dict[str, Json]:
    config = config or parse_config()
    return {
        "teleport-cloud-overview.json": _model(overview(config)),
        "teleport-cloud-fleet.json": _model(fleet(config)),
    }


def render(model: Mapping[str, Any]) -> str:
    return json.dumps(model, indent=2, sort_keys=True) + "\n"


def render_all(config: MixinConfig) -> dict[str, str]:
    return {name: render(model) for name, model in dashboards(config).items()}


def all_panels(dashboard: Mapping[str, Any]) -> list[Json]:
    """Every panel, rows included, with the panels of collapsed rows after their row."""
    out: list[Json] = []
    for panel in dashboard.get("panels", []):
        out.append(panel)
        out.extend(panel.get("panels") or [])
    return out


def panel_queries(dashboard: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL expression) for every target of every panel, in dashboard order."""
    return [
        (panel["title"], target["expr"])
        for panel in all_panels(dashboard)
        if panel.get("type") != "row"
        for target in panel.get("targets") or []
    ]


BUILTIN_VALUES: Final = {
    "__rate_interval": "1m",
    "__interval": "1m",
    "__range": "1h",
    "cluster": ".*",
    "job": ".*",
}
_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")
_REGEX_META = re.compile(r"([.+*?()|\[\]{}^$\\])")


def concrete(expr: str, tenant: str, page: str = "", *, literal: bool = True) -> str:
    """`expr` with Grafana's variables replaced, ready for Prometheus' HTTP API.

    $tenant and $page become the given names (regex-escaped unless `literal` is false);
    $cluster and $job match anything; $__rate_interval and $__interval become 1m, $__range 1h.
    An unknown variable raises ValueError.
    """
    values = dict(BUILTIN_VALUES)
    for name, value in (("tenant", tenant), ("page", page)):
        values[name] = _REGEX_META.sub(r"\\\\\1", value) if literal else value

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise ValueError(f"unknown dashboard variable ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(substitute, expr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if the JSON is stale")
    args = parser.parse_args(argv)
    stale = []
    for filename, text in render_all(parse_config()).items():
        path = OUT_DIR / filename
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        if args.check:
            stale.append(str(path))
        else:
            OUT_DIR.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        print("out of date (run python grafana/build.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
