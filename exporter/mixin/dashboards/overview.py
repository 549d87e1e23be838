"""Teleport Cloud / Overview: the on-call questions first, then the tables to act on, the
month's SLA, the proxy probe, the status page and the exporter's own health."""

from __future__ import annotations

from typing import Any, Final

from grafana_foundation_sdk.builders import dashboard as dash

from exporter.mixin.config import MixinConfig
from exporter.mixin.dashboards.kit import (
    Column,
    Q,
    add_annotations,
    frame,
    graph,
    joined_table,
    match,
    stat_panel,
    steps,
    table_panel,
    target,
    value_map,
    variables,
)

OVERVIEW_UID: Final = "teleport-cloud-overview"
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


def overview(config: MixinConfig) -> Any:
    th = config.thresholds
    q = Q(config)
    board = variables(
        frame(
            OVERVIEW_UID,
            "Teleport Cloud / Overview",
            "Is the next upgrade blocked and by whom, which agents do not update, the SLA "
            "budget left this month, the proxy probe and the vendor status page.",
            config,
        ),
        config,
        q,
        page=True,
    )
    board = add_annotations(board, q, page=True)
    blocked = value_map({0: ("no", "green"), 1: ("blocked", "red")})
    blocking_skews = q.t(
        "tenant_skew:teleport_cloud_agents_by_skew:max",
        match("skew", "=~", "one_major_behind|unsupported_old"),
    )
    budget_steps = steps("red", (th.budget_remaining_ratio, "green"))
    not_page = match("source", "!=", "status_page")
    page_source = match("source", "=", "status_page")
    burn_windows = "|".join(
        sorted({w for p in config.burn_rate_alerts for w in (p.long_window, p.short_window)})
    )
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
    rows = config.dashboards.table_rows
    # Per-agent tables show the first rows of a ranking; the stats above count every agent.
    blocking = (
        f"topk({rows}, max by ({', '.join(AGENT_COLUMNS)}) (\n"
        f"  {q.agents('teleport_cloud_agent_info')}\n"
        f"  * on ({config.by}, server_id) group_left ()\n"
        f"  (max by ({config.by}, server_id) "
        f"({q.agents('teleport_cloud_agent_major_versions_behind')}) >= 1)\n))"
    )
    board = (
        board.with_row(dash.Row("Overview"))
        .with_panel(_tenants(config, q))
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
                "Agents that will not update on their own: no upgrader, or an updater disabled, "
                "pinned or unreadable (TeleportCloudAgentsNotUpdating). Empty while unknown.",
                "none",
                target(
                    q.t("tenant:teleport_cloud_agents_not_updating:sum"),
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
                    q.t("tenant:teleport_cloud_sla_error_budget_remaining_ratio:best"),
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
        .with_row(dash.Row("Tenant size"))
        .with_panel(
            stat_panel(
                f"Agents of the {th.tenant_agent_limit:,} limit",
                f"Agents connected to the tenant against the {th.tenant_agent_limit:,} that "
                "Teleport asks Enterprise Cloud customers to discuss with their account team "
                f"first. Orange from {th.agent_limit_ratio:.0%} "
                "(TeleportCloudAgentsNearTenantLimit, which also projects the growth).",
                "percentunit",
                target(
                    f"{q.t('tenant:teleport_cloud_agents:sum')} / {th.tenant_agent_limit}",
                    "{{tenant}}",
                    instant=True,
                ),
                thresholds=steps("green", (th.agent_limit_ratio, "orange"), (1, "red")),
                width=24,
            )
        )
        .with_row(dash.Row("Agents to act on"))
        .with_panel(
            table_panel(
                "Agents blocking the next upgrade",
                "Agents one or more majors behind the control plane, with how many majors, of the "
                "tenant chosen in `Tenant (agent tables)`. Needs per_agent_metrics: true.",
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
                "Agents that will not update by themselves, of the tenant chosen in `Tenant (agent "
                "tables)`; `Behind target` says whether they are already off the tenant's target "
                "version (TeleportCloudAgentsNotUpdating).",
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
                    q.t("tenant:teleport_cloud_sla_downtime_seconds:best"),
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
                    q.t("tenant:teleport_cloud_sla_error_budget_seconds:best"),
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
                "1 - downtime / observed time, from the replica that observed the month most; "
                "three decimals, so 99.99 % and 99.95 % read apart. Empty while nothing was "
                "observed.",
                "percentunit",
                target(
                    f"1 - {q.t('tenant:teleport_cloud_sla_downtime_seconds:best')}\n"
                    f"  / on ({config.by}) "
                    f"({q.t('tenant:teleport_cloud_sla_observed_seconds:max')} > 0)",
                    "{{tenant}}",
                    instant=True,
                ),
                width=8,
                decimals=3,
            )
        )
        .with_panel(
            graph(
                "Error budget left",
                "Share of the month's error budget left over time; the dashed line is the "
                "TeleportCloudSLAErrorBudgetLow threshold.",
                "percentunit",
                target(
                    q.t("tenant:teleport_cloud_sla_error_budget_remaining_ratio:best"), "{{tenant}}"
                ),
                thresholds=budget_steps,
            )
        )
        .with_panel(
            graph(
                "SLA burn rate",
                "Burn rate of the error budget per window (1 = spending exactly the budget), over "
                "the windows of the burn-rate tickets: "
                + "; ".join(
                    f"{p.factor:g} over {p.long_window} and {p.short_window}"
                    for p in config.burn_rate_alerts
                )
                + ". They also need real downtime and a well observed window.",
                "none",
                target(
                    q.t(
                        "tenant_window:teleport_cloud_sla_burn_rate:best",
                        f'window=~"{burn_windows}"',
                    ),
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
                # A state set exports every state, 0 when not current: keep the current one.
                f"max by (page, group, component, status) "
                f"({q.p('teleport_cloud_status_component', match('status', '!=', 'operational'))}"
                " == 1)",
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
                # Tenant sources follow $tenant, the status page $page: one matcher for both
                # ($tenant|$page) let "All" pages show every tenant whatever $tenant said.
                "max by (source, target) (teleport_cloud_source_up"
                f"{q.scope(not_page, key=match('target', '=~', '$tenant'))})\n"
                "or max by (source, target) (teleport_cloud_source_up"
                f"{q.scope(page_source, key=match('target', '=~', '$page'))})",
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
        f"{q.agents('teleport_cloud_agent_info', match('updater_status', '=~', 'disabled|pinned'))}"
        f" or {q.agents('teleport_cloud_agent_info', match('upgrader', '=', 'none'))}"
    )
    by = ", ".join(AGENT_COLUMNS)
    target_version = f"{q.agents('teleport_cloud_agent_target_version_info')}"
    return (
        f"topk({config.dashboards.table_rows},\n"
        f"  max by ({by}) (({agents}) unless on ({config.by}, version) {target_version})\n"
        f"  or max by ({by}) ({agents}) * 0\n)"
    )


TENANTS_TITLE: Final = "Tenants: healthy, and can Cloud upgrade them?"
# Data age colours: the slowest default source interval is 5 minutes (rollout), so orange after
# two of them and red after an hour.
DATA_AGE_STEPS: Final = ((600.0, "orange"), (3600.0, "red"))


def _tenants(config: MixinConfig, q: Q) -> Any:
    """One row per tenant: the versions, what holds back the next upgrade, the SLA budget, the
    probe and how old the data is; `Problems` counts the failed checks and sorts the table."""
    th = config.thresholds
    skew = "tenant_skew:teleport_cloud_agents_by_skew:max"
    blocked = f"max by (tenant) ({q.t('tenant:teleport_cloud_control_plane_upgrade_blocked:max')})"
    not_updating = f"max by (tenant) ({q.t('tenant:teleport_cloud_agents_not_updating:sum')})"
    budget = (
        f"min by (tenant) ({q.t('tenant:teleport_cloud_sla_error_budget_remaining_ratio:best')})"
    )
    probe = f"max by (tenant) ({q.t('tenant:teleport_cloud_probe_success:max')})"
    # Each source's freshest replica, then the tenant's oldest source.
    last_success = (
        "max by (target, source) (teleport_cloud_source_last_success_timestamp_seconds"
        f"{q.scope(match('source', '!=', 'status_page'), key=match('target', '=~', '$tenant'))}"
        " > 0)"
    )
    # label_join copies target into tenant (label_replace's "$1" reads as a Grafana variable).
    by_tenant = f'label_join({last_success}, "tenant", "", "target")'
    age = f"time() - min by (tenant) ({by_tenant})"
    failed = {
        "blocked": f"{blocked} > 0",
        "not_updating": f"{not_updating} > 0",
        "budget": f"{budget} < {th.budget_remaining_ratio}",
        "probe": f"{probe} < 1",
        "unsupported": (
            f"sum by (tenant) "
            f"({q.t(skew, match('skew', '=~', 'unsupported_old|unsupported_newer'))}) > 0"
        ),
    }
    problems = (
        "count by (tenant) (\n  "
        + "\n  or ".join(
            f'label_replace({expr}, "check", "{name}", "", "")' for name, expr in failed.items()
        )
        + f"\n)\nor {probe} * 0"
    )
    count_steps = steps("green", (1, "red"))
    return joined_table(
        TENANTS_TITLE,
        "One row per tenant, the most failed checks first. Problems counts them: next upgrade "
        "blocked, agents not updating, unsupported agents, SLA budget under "
        f"{th.budget_remaining_ratio:.0%}, probe down. Blocking: agents one or more majors "
        "behind the control plane. Data age: seconds since the tenant's least recently "
        "refreshed source last succeeded (on its freshest replica), orange after 10 minutes "
        "and red after an hour. The tables and stats below say more.",
        "tenant",
        (
            Column("Problems", problems, thresholds=count_steps),
            Column(
                "Control plane",
                f"max by (tenant, server_version) ({q.t('teleport_cloud_cluster_info')})",
                label="server_version",
            ),
            Column(
                "Target agents",
                f"max by (tenant, version) ({q.t('teleport_cloud_agent_target_version_info')})",
                label="version",
            ),
            Column(
                "Next upgrade",
                blocked,
                thresholds=count_steps,
                mapping=value_map({0: ("OK", "green"), 1: ("BLOCKED", "red")}),
            ),
            Column(
                "Blocking",
                f"sum by (tenant) "
                f"({q.t(skew, match('skew', '=~', 'one_major_behind|unsupported_old'))})",
                thresholds=count_steps,
            ),
            Column(
                "Unsupported older",
                f"max by (tenant) ({q.t(skew, match('skew', '=', 'unsupported_old'))})",
                thresholds=count_steps,
            ),
            Column(
                "Unsupported newer",
                f"max by (tenant) ({q.t(skew, match('skew', '=', 'unsupported_newer'))})",
                thresholds=count_steps,
            ),
            Column("Not updating", not_updating, thresholds=steps("green", (1, "orange"))),
            Column(
                "Budget left",
                budget,
                unit="percentunit",
                thresholds=steps("red", (th.budget_remaining_ratio, "green")),
            ),
            Column(
                "Probe",
                probe,
                thresholds=steps("red", (1, "green")),
                mapping=value_map({0: ("DOWN", "red"), 1: ("UP", "green")}),
            ),
            Column(
                "Probe p95",
                f"max by (tenant) ({q.t('tenant:teleport_cloud_probe_latency_seconds:p95_10m')})",
                unit="s",
                thresholds=steps("green", (th.probe_latency_p95_seconds, "red")),
            ),
            Column("Data age", age, unit="s", thresholds=steps("green", *DATA_AGE_STEPS)),
        ),
        sort_by="Problems",
        height=6,
    )
