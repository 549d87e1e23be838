"""Teleport Cloud / Agent fleet: agents by skew, version, updater status and upgrader, the
Managed Updates v2 rollout and its groups, and every agent one or more majors behind."""

from __future__ import annotations

from typing import Any, Final

from grafana_foundation_sdk.builders import dashboard as dash

from exporter.mixin.config import MixinConfig
from exporter.mixin.dashboards.kit import (
    Q,
    add_annotations,
    frame,
    graph,
    merged_table,
    stat_panel,
    steps,
    table_panel,
    target,
    variables,
)

FLEET_UID: Final = "teleport-cloud-fleet"


def fleet(config: MixinConfig) -> Any:
    q = Q(config)
    rows = config.dashboards.table_rows
    board = variables(
        frame(
            FLEET_UID,
            "Teleport Cloud / Agent fleet",
            "Agents by version, skew and updater, the Managed Updates v2 rollout and its "
            "groups, and every agent one or more majors behind.",
            config,
        ),
        config,
        q,
        page=False,
    )
    board = add_annotations(board, q, page=False)
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
                show_name=True,
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
            merged_table(
                "Update groups",
                "Each Managed Updates v2 group: its state, its agents, those up to date, and "
                "those Teleport asks to update that are not on the group's version "
                "(TeleportCloudAutoUpdateGroupStuck), most stuck first.",
                ("tenant", "group", "state"),
                (
                    (
                        f"max by (tenant, group, state) "
                        f"({q.t('teleport_cloud_autoupdate_group_state')} == 1)",
                        "Current",
                    ),
                    (
                        f"max by (tenant, group) ({q.t('teleport_cloud_autoupdate_group_agents')})",
                        "Agents",
                    ),
                    (
                        f"max by (tenant, group) "
                        f"({q.t('teleport_cloud_autoupdate_group_agents_up_to_date')})",
                        "Up to date",
                    ),
                    (
                        f"max by (tenant, group) "
                        f"({q.t('tenant_group:teleport_cloud_autoupdate_group_agents_stuck:max')})",
                        "Stuck",
                    ),
                ),
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
                f"The {rows} agents furthest behind the control plane, with hostname and "
                "version, of the tenant chosen in `Tenant (agent tables)`; the overview's stat "
                "counts them all. Needs per_agent_metrics: true.",
                "none",
                f"topk({rows},\n"
                f"  max by (tenant, hostname, server_id, version) (\n"
                f"    {q.agents('teleport_cloud_agent_info')}\n"
                f"    * on ({config.by}, server_id) group_left ()\n"
                f"    (max by ({config.by}, server_id) "
                f"({q.agents('teleport_cloud_agent_major_versions_behind')}) >= 1)\n"
                "  )\n)",
                ("tenant", "hostname", "server_id", "version"),
                "Majors behind",
                thresholds=steps("orange", (2, "red")),
                height=10,
            )
        )
    )
