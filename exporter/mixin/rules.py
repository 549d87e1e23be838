"""The mixin's rules: recording rules first (the alerts and dashboards read them), then alerts.

Each rule carries the comment that says why it is what it is; `exporter.mixin.generate`
renders them.
"""

from __future__ import annotations

from dataclasses import replace

from exporter.mixin.config import (
    PROBE_WINDOWS,
    BurnRateAlert,
    Group,
    MixinConfig,
    Rule,
    seconds,
    sel,
    sustained,
)

LATENCY_QUANTILES = (("p50", "0.5"), ("p95", "0.95"), ("p99", "0.99"))


# --------------------------------------------------------------------------------------------
# Recording rules


def _probe_records(c: MixinConfig) -> Group:
    rules: list[Rule] = [
        Rule(
            "tenant:teleport_cloud_probe_success:max",
            f"max by ({c.by}) ({sel(c, 'teleport_cloud_probe_success')})",
            "1 while at least one replica's last probe succeeded (the dashboards' state line).",
            record=True,
        )
    ]
    used = {"5m", "1h", c.thresholds.partial_outage_window}
    for window in (w for w in PROBE_WINDOWS if w in used):
        failures = f"instance_tenant:teleport_cloud_probe_failures:rate{window}"
        probes = f"instance_tenant:teleport_cloud_probes:rate{window}"
        errors = sel(c, "teleport_cloud_source_errors_total", 'source="ping"')
        successes = sel(c, "teleport_cloud_probe_latency_seconds_count")
        rules += [
            Rule(
                failures,
                "sum without (reason, source, target) (\n"
                f'  label_replace(rate({errors}[{window}]), "tenant", "$1", "target", "(.*)")\n'
                ")",
                "Failed probes per second of each replica: the ping source's errors, all reasons."
                if window == "5m"
                else "",
                record=True,
            ),
            Rule(
                probes,
                f"{failures}\n+ (sum without () (rate({successes}[{window}])) or {failures} * 0)",
                "All probes per second of each replica: failures plus successes (the latency\n"
                "histogram counts successful probes only; before the first success it is absent)."
                if window == "5m"
                else "",
                record=True,
            ),
            Rule(
                f"tenant:teleport_cloud_probe_failures:ratio_rate{window}",
                f"min by ({c.by}) ({failures} / {probes})",
                "Share of failed probes of the best replica. From counters, so every probe counts\n"
                "(a sampled 0/1 gauge misses the failures between two scrapes and outages\n"
                "shorter than the scrape interval), and rate() survives restarts. The best\n"
                "replica decides: one replica with broken egress is not an outage."
                if window == "5m"
                else "",
                record=True,
            ),
        ]
    for name, quantile in LATENCY_QUANTILES:
        rules.append(
            Rule(
                f"tenant:teleport_cloud_probe_latency_seconds:{name}_10m",
                f"histogram_quantile({quantile},\n"
                f"  sum by ({c.by}, le) "
                f"(rate({sel(c, 'teleport_cloud_probe_latency_seconds_bucket')}[10m])))",
                "Latency of successful probes over 10 minutes. Replicas' buckets are summed:\n"
                "each observation is a real probe."
                if name == "p50"
                else "",
                record=True,
            )
        )
    return Group("teleport-cloud-probe.rules", tuple(rules))


def _major(selector: str) -> str:
    """`selector` with its `version` label's major as a `major` label."""
    return f'label_replace({selector}, "major", "$1", "version", "([0-9]+)\\\\..*")'


def fresh(c: MixinConfig, metric: str, *matchers: str, source: str = "inventory") -> str:
    """`metric` of the replicas whose `source` is not failing.

    Every replica exports the same fleet while its source works; a replica whose source failed
    keeps its last good data, which may be days old. Folding with max over such a replica keeps
    a fixed problem alive ("upgrade blocked" 36 hours after the agents were upgraded), so its
    series are left out until its source succeeds again. With every replica failing the fact is
    absent (unknown), and TeleportCloudSourceDown says why.
    """
    down = sel(c, "teleport_cloud_source_up", f'source="{source}"')
    return (
        f"{sel(c, metric, *matchers)}\n"
        f"      unless on ({c.replica})\n"
        f'      label_replace({down} == 0, "tenant", "$1", "target", "(.*)")'
    )


def _fleet_records(c: MixinConfig) -> Group:
    by = c.by

    def dedup(metric: str, *labels: str, matchers: tuple[str, ...] = ()) -> str:
        return f"max by ({c.group('tenant', *labels)}) (\n  {fresh(c, metric, *matchers)}\n)"

    agents = dedup("teleport_cloud_agents", "version", "upgrader")
    return Group(
        "teleport-cloud-fleet.rules",
        (
            Rule(
                "tenant_version_upgrader:teleport_cloud_agents:max",
                agents,
                "Every replica whose inventory works exports the same fleet: max folds them\n"
                "(see `fresh`: a replica whose inventory fails is left out, not trusted).",
                record=True,
            ),
            Rule(
                "tenant:teleport_cloud_agents:sum",
                f"sum by ({by}) (tenant_version_upgrader:teleport_cloud_agents:max)",
                record=True,
            ),
            Rule(
                "tenant_version:teleport_cloud_agents:sum",
                f"sum by ({by}, version) (tenant_version_upgrader:teleport_cloud_agents:max)",
                record=True,
            ),
            Rule(
                "tenant_upgrader:teleport_cloud_agents:sum",
                f"sum by ({by}, upgrader) (tenant_version_upgrader:teleport_cloud_agents:max)",
                record=True,
            ),
            Rule(
                "tenant_skew:teleport_cloud_agents_by_skew:max",
                dedup("teleport_cloud_agents_by_skew", "skew"),
                record=True,
            ),
            Rule(
                "tenant_status:teleport_cloud_agents_by_updater_status:sum",
                f"sum by ({by}, status) "
                f"({dedup('teleport_cloud_agents_by_updater_status', 'upgrader', 'status')})",
                record=True,
            ),
            Rule(
                "tenant:teleport_cloud_agents_enrolled:ratio",
                "(\n"
                f"    sum by ({by}) ("
                + dedup(
                    "teleport_cloud_agents_by_updater_status",
                    "upgrader",
                    "status",
                    matchers=('upgrader!="none"', 'status!~"disabled|pinned"'),
                )
                + ")\n"
                f"  or on ({by})\n"
                "    tenant:teleport_cloud_agents:sum * 0\n"
                ")\n"
                f"/ on ({by}) tenant:teleport_cloud_agents:sum",
                "Share of agents effectively enrolled in automatic updates: an upgrader, and not\n"
                "disabled or pinned. `or ... * 0` gives 0 rather than nothing when none is.",
                record=True,
            ),
            Rule(
                "tenant:teleport_cloud_control_plane_upgrade_blocked:max",
                dedup("teleport_cloud_control_plane_upgrade_blocked"),
                record=True,
            ),
            Rule(
                "tenant:teleport_cloud_agents_outdated:max",
                dedup("teleport_cloud_agents_outdated"),
                record=True,
            ),
            Rule(
                "tenant:teleport_cloud_agents_not_updating:sum",
                f"sum by ({by}) ({dedup('teleport_cloud_agents_not_updating', 'reason')})",
                "Agents that will not update by themselves (no upgrader, updater disabled,\n"
                "pinned or unreadable): the exporter's aggregate, present also without per-agent\n"
                "series. Absent, not 0, while the exporter does not know.",
                record=True,
            ),
            Rule(
                "tenant_group:teleport_cloud_autoupdate_group_agents_stuck:max",
                dedup("teleport_cloud_autoupdate_group_agents_stuck", "group"),
                record=True,
            ),
        ),
    )


# The SLA figures of the replica that observed the tenant most, and the operation that breaks a
# tie between replicas that observed equally (`sla report` merges ledgers the same way: a minute
# is down only if every replica that observed it saw it down).
SLA_FIGURES = (
    ("objective_ratio", "max"),
    ("error_budget_seconds", "max"),
    ("downtime_seconds", "min"),
    ("error_budget_remaining_ratio", "max"),
    ("breached", "min"),
    ("period_start_timestamp_seconds", "max"),
    ("period_end_timestamp_seconds", "max"),
)


def _sla_records(c: MixinConfig) -> Group:
    by = c.by
    window = c.thresholds.projection_window
    most = "instance_tenant:teleport_cloud_sla_observed_seconds:most"
    most_window = "instance_tenant_window:teleport_cloud_sla_window_observed_seconds:most"
    rules = [
        Rule(
            "tenant:teleport_cloud_sla_observed_seconds:max",
            f"max by ({by}) ({sel(c, 'teleport_cloud_sla_observed_seconds')})",
            "Each replica keeps its own ledger. The SLA figures come from the replica that\n"
            "observed the month most: min would let a replica added mid-month (little\n"
            "downtime because it saw little) hide a breach, max would trust a replica whose\n"
            "probes failed because of its own network.",
            record=True,
        ),
        Rule(
            most,
            f"{sel(c, 'teleport_cloud_sla_observed_seconds')}\n"
            f"== on ({by}) group_left () tenant:teleport_cloud_sla_observed_seconds:max",
            record=True,
        ),
    ]
    for figure, op in SLA_FIGURES:
        rules.append(
            Rule(
                f"tenant:teleport_cloud_sla_{figure}:best",
                f"{op} by ({by}) (\n"
                f"  {sel(c, 'teleport_cloud_sla_' + figure)}\n"
                f"  and on ({c.replica}) {most}\n"
                ")",
                record=True,
            )
        )
    rules += [
        Rule(
            "tenant_window:teleport_cloud_sla_window_observed_seconds:max",
            f"max by ({by}, window) ({sel(c, 'teleport_cloud_sla_window_observed_seconds')})",
            "Burn-rate windows likewise: each window's figures from the replica that observed\n"
            "that window most, with what they rest on (observed and down seconds).",
            record=True,
        ),
        Rule(
            most_window,
            f"{sel(c, 'teleport_cloud_sla_window_observed_seconds')}\n"
            f"== on ({by}, window) group_left ()\n"
            "  tenant_window:teleport_cloud_sla_window_observed_seconds:max",
            record=True,
        ),
        Rule(
            "tenant_window:teleport_cloud_sla_window_downtime_seconds:best",
            f"min by ({by}, window) (\n"
            f"  {sel(c, 'teleport_cloud_sla_window_downtime_seconds')}\n"
            f"  and on ({c.replica}, window) {most_window}\n"
            ")",
            record=True,
        ),
        Rule(
            "tenant_window:teleport_cloud_sla_burn_rate:best",
            f"min by ({by}, window) (\n"
            f"  {sel(c, 'teleport_cloud_sla_burn_rate')}\n"
            f"  and on ({c.replica}, window) {most_window}\n"
            ")",
            record=True,
        ),
        Rule(
            "tenant:teleport_cloud_sla_observed_seconds:ratio_month",
            "tenant:teleport_cloud_sla_observed_seconds:max\n"
            f"/ on ({by})\n"
            "(time() - tenant:teleport_cloud_sla_period_start_timestamp_seconds:best)",
            "Observed share of the month so far: the strength of the evidence for a claim.",
            record=True,
        ),
        Rule(
            f"tenant:teleport_cloud_sla_downtime_seconds:projected_burn_rate{window}",
            "tenant:teleport_cloud_sla_downtime_seconds:best\n"
            f"+ on ({by})\n"
            f'  tenant_window:teleport_cloud_sla_burn_rate:best{{window="{window}"}}\n'
            f"  * on ({by}) (1 - tenant:teleport_cloud_sla_objective_ratio:best)\n"
            f"  * on ({by}) clamp_min(\n"
            "      tenant:teleport_cloud_sla_period_end_timestamp_seconds:best - time(), 0\n"
            "    )",
            f"Downtime at the end of the month if the last {window}'s burn rate goes on:\n"
            "downtime so far + burn rate x (1 - objective) x time left. The time left comes\n"
            "from the period's end, so months of 28 to 31 days are right.",
            record=True,
        ),
    ]
    return Group("teleport-cloud-sla.rules", tuple(rules))


def recording_groups(c: MixinConfig) -> tuple[Group, ...]:
    return (_probe_records(c), _fleet_records(c), _sla_records(c))


# --------------------------------------------------------------------------------------------
# Alerts


def _fleet_alerts(c: MixinConfig) -> Group:
    t = c.thresholds
    by = c.by
    rolled_back = sel(c, "teleport_cloud_autoupdate_group_state", 'state="rolledback"')
    plane_major = sel(c, "teleport_cloud_control_plane_major_version")
    tctl_info = sel(c, "teleport_cloud_tctl_version_info")
    tctl_major = _major(tctl_info)
    tools_major = _major(
        f"max by ({by}, version) ({sel(c, 'teleport_cloud_client_tools_version_info')})"
    )
    return Group(
        "teleport-cloud-fleet",
        (
            Rule(
                "TeleportCloudAgentUnsupportedVersion",
                "tenant_skew:teleport_cloud_agents_by_skew:max"
                '{skew=~"unsupported_old|unsupported_newer"} > 0',
                "Outside Teleport's compatibility guarantee; nothing is broken yet and the fix is\n"
                "a planned upgrade, so a ticket. for: 30m rides out a control-plane upgrade, when\n"
                "ping and inventory refresh at different times and may disagree on the major.",
                severity="ticket",
                duration=t.unsupported_version_for,
                summary="Teleport agents run a version the control plane does not support.",
                description="{{ $value }} agent(s) of tenant {{ $labels.tenant }} are "
                "{{ $labels.skew }}: outside the supported range (the control plane's major or "
                "one major behind). Upgrade them to the control plane's major.",
            ),
            Rule(
                "TeleportCloudControlPlaneUpgradeBlocked",
                sustained(
                    c,
                    "tenant:teleport_cloud_control_plane_upgrade_blocked:max",
                    "== 1",
                    t.upgrade_blocked_for,
                    by,
                ),
                "Cloud withholds the next control-plane major while any agent is a major behind.\n"
                "Right after each major upgrade this is 1 until the agents catch up (daily\n"
                "maintenance windows), hence a day, measured restart-proof (see the header).",
                severity="ticket",
                summary="Agents one or more majors behind block the next control-plane upgrade.",
                description="Tenant {{ $labels.tenant }} has had agents one or more majors behind "
                f"the control plane for over {t.upgrade_blocked_for}; Teleport Cloud will not "
                "upgrade its control plane to the next major until every agent runs the current "
                "major.",
            ),
            Rule(
                "TeleportCloudAgentsNotEnrolled",
                sustained(
                    c,
                    'tenant_upgrader:teleport_cloud_agents:sum{upgrader="none"}',
                    "> 0",
                    t.agents_not_enrolled_for,
                    by,
                ),
                "No upgrader: the agent never updates itself. Some are pinned on purpose: info.",
                severity="info",
                summary="Teleport agents are not enrolled in automatic updates.",
                description="{{ $value }} agent(s) of tenant {{ $labels.tenant }} report no "
                "upgrader, so they will not follow the tenant's target version.",
            ),
            Rule(
                "TeleportCloudAgentsOutdated",
                sustained(
                    c,
                    "tenant:teleport_cloud_agents_outdated:max\n"
                    f"  unless on ({by}) max by ({by}) "
                    f"({sel(c, 'teleport_cloud_autoupdate_rollout_info')})",
                    "> 0",
                    t.agents_outdated_for,
                    by,
                    existed="tenant:teleport_cloud_agents_outdated:max",
                ),
                "Tenants without a Managed Updates v2 rollout: a new target version reaches the\n"
                "fleet within a day of maintenance windows. With a rollout, agents of groups\n"
                "that have not started are rightly behind the target, so the group-aware\n"
                "TeleportCloudAutoUpdateGroupStuck speaks instead.",
                severity="ticket",
                summary="Teleport agents have not reached the target version for over a day.",
                description="At least {{ $value }} agent(s) of tenant {{ $labels.tenant }} have "
                "run a version other than the tenant's target agent version for over "
                f"{t.agents_outdated_for}.",
            ),
            Rule(
                "TeleportCloudAgentsNotUpdating",
                sustained(
                    c,
                    "tenant:teleport_cloud_agents_not_updating:sum",
                    "> 0",
                    t.agents_not_updating_for,
                    by,
                ),
                "Agents that will not update on their own: no upgrader, or an updater disabled,\n"
                "pinned or unreadable. Waiting does not help, someone has to act. Read from the\n"
                "exporter's aggregate, so it works without per-agent series too.",
                severity="ticket",
                summary="Teleport agents will not update themselves.",
                description="{{ $value }} agent(s) of tenant {{ $labels.tenant }} have no "
                "upgrader, or an updater that is disabled, pinned or unreadable; see the fleet "
                "dashboard's table of agents not updating.",
            ),
            Rule(
                "TeleportCloudAgentsNearTenantLimit",
                "tenant:teleport_cloud_agents:sum"
                f" > {t.agent_limit_ratio:g} * {t.tenant_agent_limit}\n"
                "or\n"
                "  tenant:teleport_cloud_agents:sum\n"
                f"  and on ({by})\n"
                f"  predict_linear(tenant:teleport_cloud_agents:sum[{t.agent_growth_window}:1h], "
                f"{seconds(t.agent_limit_horizon)}) > {t.tenant_agent_limit}\n"
                f"  and on ({by})\n"
                "  tenant:teleport_cloud_agents:sum offset 1d",
                "Teleport asks Enterprise Cloud customers to contact their account team or\n"
                "support before connecting more than 10,000 agents, so the tenant can be scaled.\n"
                "Agents join on their own, so growth is easy to miss: ticket at a share of the\n"
                "limit, or when the growth of the last days reaches it within the horizon. The\n"
                "projection reads the recorded count hourly (a few hundred samples per tenant)\n"
                "and waits for a day of history. The value is the current count either way.",
                severity="ticket",
                duration=t.agent_limit_for,
                summary="A Teleport Cloud tenant approaches the 10,000-agent limit.",
                description='Tenant {{ $labels.tenant }} has {{ $value | printf "%.0f" }} agents; '
                "at the growth "
                f"of the last {t.agent_growth_window} it reaches {t.tenant_agent_limit} within "
                f"{t.agent_limit_horizon}, or it is already over {t.agent_limit_ratio:.0%} of "
                "it. Contact the Teleport account team or support before the fleet passes "
                f"{t.tenant_agent_limit} agents.",
            ),
            Rule(
                "TeleportCloudAutoUpdateGroupRolledBack",
                f"max by ({c.group('tenant', 'group')}) ({rolled_back}) == 1",
                "Stays rolled back until someone acts. for: 5m skips a state read mid-action.",
                severity="ticket",
                duration=t.group_rolled_back_for,
                summary="A Managed Updates v2 group was rolled back.",
                description="Update group {{ $labels.group }} of tenant {{ $labels.tenant }} is "
                "rolled back: its agents stay on the rollout's start version until the group is "
                "started again.",
            ),
            Rule(
                "TeleportCloudAutoUpdateGroupStuck",
                sustained(
                    c,
                    "tenant_group:teleport_cloud_autoupdate_group_agents_stuck:max",
                    "> 0",
                    t.group_stuck_for,
                    c.group("tenant", "group"),
                ),
                "Agents of a group not on the group's version of the moment. During a group's\n"
                "maintenance window agents update within minutes; hours later they are stuck.",
                severity="ticket",
                summary="Agents of a Managed Updates v2 group do not reach the group's version.",
                description="At least {{ $value }} agent(s) of update group {{ $labels.group }} "
                "of tenant {{ $labels.tenant }} have not run the group's version for "
                f"{t.group_stuck_for}.",
            ),
            Rule(
                "TeleportCloudTctlIncompatible",
                f"min by ({by}) ({sel(c, 'teleport_cloud_tctl_compatible')}) == 0",
                "Cloud upgrades the control plane on its own schedule; a pinned tctl falls out of\n"
                "support and the inventory stops. Any replica's tctl counts. for: 15m lets ping\n"
                "and the tctl version agree after an upgrade.",
                severity="ticket",
                duration=t.tctl_incompatible_for,
                summary="The exporter's tctl is not compatible with the control plane.",
                description="The tctl binary of an exporter replica watching tenant "
                "{{ $labels.tenant }} is neither the control plane's major nor one below it; "
                "upgrade tctl in the exporter's image.",
            ),
            Rule(
                "TeleportCloudTctlOneMajorBehind",
                f"count by ({by}) (\n"
                f'    count_values by ({by}) ("major", max by ({by}) ({plane_major}) - 1)\n'
                f"  and on ({c.group('major')})\n"
                f"    {tctl_major}\n"
                ")",
                "Still supported, but Cloud's next control-plane major drops it: update the\n"
                "image's tctl before that. Majors are compared as labels: count_values turns\n"
                "the control plane's major minus one into one.",
                severity="ticket",
                duration=t.tctl_one_major_behind_for,
                summary="The exporter's tctl is one major behind the control plane.",
                description="An exporter replica watching tenant {{ $labels.tenant }} runs a tctl "
                "one major behind the control plane; the next control-plane major upgrade leaves "
                "it unsupported and stops the inventory. Update tctl in the exporter's image.",
            ),
            Rule(
                "TeleportCloudTctlAwayFromClientTools",
                f"count by ({by}) (\n"
                f"    {tools_major}\n"
                f"  unless on ({c.group('major')})\n"
                f"    {tctl_major}\n"
                f") and on ({c.group()}) (count by ({c.group()}) ({tctl_info}) > 0)",
                "The tenant's client tools version (ping's tools_version) is where the control\n"
                "plane is going: a tctl on another major falls out of support next. Info: a\n"
                "heads-up, not yet a failure.",
                severity="info",
                duration=t.tctl_away_from_client_tools_for,
                summary="The exporter's tctl is a major away from the tenant's client tools.",
                description="Tenant {{ $labels.tenant }} wants clients on another major than the "
                "exporter's tctl (teleport_cloud_client_tools_version_info); update the image's "
                "tctl before the control plane moves on.",
            ),
        ),
    )


def _probe_alerts(c: MixinConfig) -> Group:
    t = c.thresholds
    by = c.by
    expiry = f"min by ({by}) ({sel(c, 'teleport_cloud_tls_cert_expiry_timestamp_seconds')} > 0)"
    tls_description = (
        "The TLS certificate of tenant {{ $labels.tenant }}'s proxy expires in "
        "{{ $value | humanizeDuration }}; Let's Encrypt renewal normally happens 30 days "
        "before expiry."
    )
    return Group(
        "teleport-cloud-probe",
        (
            Rule(
                "TeleportCloudProbeFailing",
                f"tenant:teleport_cloud_probe_failures:ratio_rate5m > {t.probe_failure_ratio}",
                "/webapi/ping does a proxy -> auth round trip: failing, users cannot log in.\n"
                "Counted from every probe (15 s apart), so a 3-minute outage shows as 12 of 20\n"
                "probes failed in 5 minutes and fires, while a single down minute (4 of 20)\n"
                "does not. The best replica decides: one replica's broken egress does not page.",
                severity="page",
                duration=t.probe_failing_for,
                summary="The Teleport Cloud proxy does not answer /webapi/ping.",
                description="{{ $value | humanizePercentage }} of the /webapi/ping probes of "
                "tenant {{ $labels.tenant }} failed over the last 5 minutes, from every exporter "
                "replica.",
            ),
            Rule(
                "TeleportCloudProbePartialOutage",
                f"tenant:teleport_cloud_probe_failures:ratio_rate{t.partial_outage_window}"
                f" > {t.partial_outage_ratio}\n"
                f"and on ({by}) tenant:teleport_cloud_probe_failures:ratio_rate5m"
                f" > {t.partial_outage_ratio}",
                "A proxy that fails some of its answers: under ProbeFailing's threshold, yet a\n"
                "minute is down when most of its 4 probes fail, so 40 % failed probes make about\n"
                "18 % of minutes down and spend a 99.9 % month's budget in about 4 hours, long\n"
                "before a burn-rate ticket is read. Both windows must agree: the long one proves\n"
                "it lasts, the short one that it still does. ProbeFailing inhibits it.",
                severity="page",
                duration=t.partial_outage_for,
                summary="The Teleport Cloud proxy fails part of its /webapi/ping probes.",
                description="{{ $value | humanizePercentage }} of the /webapi/ping probes of "
                "tenant {{ $labels.tenant }} failed over the last "
                f"{t.partial_outage_window} (and still over the last 5 minutes), from the best "
                "exporter replica: users see failed logins and the SLA budget burns fast.",
            ),
            Rule(
                "TeleportCloudProbeLatencyHigh",
                "tenant:teleport_cloud_probe_latency_seconds:p95_10m > "
                f"{t.probe_latency_p95_seconds}",
                "Felt by every tsh and web UI user, often the prelude of an outage.",
                severity="ticket",
                duration=t.probe_latency_for,
                summary="The Teleport Cloud proxy answers /webapi/ping slowly.",
                description="The 95th percentile latency of successful /webapi/ping probes of "
                "tenant {{ $labels.tenant }} over 10 minutes is {{ $value | humanizeDuration }} "
                f"(threshold {t.probe_latency_p95_seconds}s).",
            ),
            Rule(
                "TeleportCloudTLSCertificateExpiring",
                f"{expiry} - time() < {t.tls_warning_days} * 86400",
                "Let's Encrypt renews 30 days before expiry: under the ticket threshold renewal\n"
                "has been failing for weeks. min: any replica may be served the old certificate.\n"
                "for: 30m and 15m skip a load balancer briefly serving an older certificate.",
                severity="ticket",
                duration=t.tls_warning_for,
                summary="The Teleport Cloud proxy's TLS certificate expires soon.",
                description=tls_description,
            ),
            Rule(
                "TeleportCloudTLSCertificateExpiring",
                f"{expiry} - time() < {t.tls_critical_days} * 86400",
                severity="page",
                duration=t.tls_critical_for,
                summary="The Teleport Cloud proxy's TLS certificate expires soon.",
                description=tls_description,
            ),
        ),
    )


def _status_alerts(c: MixinConfig) -> Group:
    incidents = sel(c, "teleport_cloud_status_incidents", 'impact=~"major|critical"')
    return Group(
        "teleport-cloud-status-page",
        (
            Rule(
                "TeleportCloudStatusPageIncident",
                f"max by ({c.group('page', 'impact')}) ({incidents}) > 0",
                "Vendor incidents of the configured components: nothing to fix locally, but\n"
                "on-call should know before users report it, in the low-noise channel.\n"
                "for: 5m skips a quick downgrade.",
                severity="info",
                duration=c.thresholds.status_incident_for,
                summary="The Teleport Cloud status page reports a major or critical incident.",
                description="{{ $labels.page }} lists {{ $value }} unresolved incident(s) with "
                "{{ $labels.impact }} impact.",
            ),
        ),
    )


def _sla_alerts(c: MixinConfig) -> Group:
    t = c.thresholds
    by = c.by
    burn = "tenant_window:teleport_cloud_sla_burn_rate:best"
    down = "tenant_window:teleport_cloud_sla_window_downtime_seconds:best"
    observed = "tenant_window:teleport_cloud_sla_window_observed_seconds:max"
    minimum = t.burn_min_downtime_seconds
    coverage = t.burn_min_coverage_ratio

    def evidence(window: str) -> str:
        """The window holds real downtime and was observed enough to speak for itself."""
        return (
            f'{down}{{window="{window}"}} >= {minimum}\n'
            f'and on ({by}) {observed}{{window="{window}"}} >= '
            f"{coverage:g} * {seconds(window)}"
        )

    def burn_rule(pair: BurnRateAlert) -> Rule:
        long, short, factor = pair.long_window, pair.short_window, pair.factor
        return Rule(
            "TeleportCloudSLAErrorBudgetBurn",
            f'{burn}{{window="{long}"}} > {factor:g}\n'
            f'and ignoring (window) {burn}{{window="{short}"}} > {factor:g}\n'
            f"and on ({by}) (\n{evidence(long)}\n)",
            "",
            severity="ticket",
            duration=pair.duration,
            labels={"window": long, "short_window": short},
            summary="The tenant burns its monthly SLA error budget fast.",
            description="Tenant {{ $labels.tenant }} burns its SLA error budget "
            '{{ $value | printf "%.1f" }} times faster than sustainable over the last '
            f"{{{{ $labels.window }}}} (and still over the last {short}).",
        )

    window = t.projection_window
    projected = f"tenant:teleport_cloud_sla_downtime_seconds:projected_burn_rate{window}"
    budget = "tenant:teleport_cloud_sla_error_budget_seconds:best"
    burn_comment = (
        "The SLA is the vendor's promise: the customer cannot fix an outage, only claim a\n"
        "credit, so burn rates open tickets and never page (ProbeFailing and\n"
        "ProbePartialOutage page for the outage itself). Only the slow pairs of the SRE\n"
        "workbook are kept: at 99.9 % one down minute makes the 1h burn rate 16.7. A burn rate\n"
        "is down/observed, so it says nothing on little evidence (1 down minute in 20 observed\n"
        "is a burn rate of 50): each pair also needs, in its long window, "
        f"{minimum}s of real\n"
        f"downtime and {coverage:.0%} of the window observed. `window` and `short_window` keep\n"
        "the rules distinct."
    )
    rules = [burn_rule(pair) for pair in c.burn_rate_alerts]
    if rules:
        rules[0] = replace(rules[0], comment=burn_comment)
    rules += [
        Rule(
            "TeleportCloudSLAErrorBudgetLow",
            "tenant:teleport_cloud_sla_error_budget_remaining_ratio:best < "
            f"{t.budget_remaining_ratio}",
            "Little budget left this month: the next outage may breach the SLA. Fine at any\n"
            "objective, as the ratio is of the month's own budget.",
            severity="ticket",
            duration=t.budget_low_for,
            summary="Less than a quarter of the month's SLA error budget is left.",
            description="Tenant {{ $labels.tenant }} has {{ $value | humanizePercentage }} of "
            "this month's SLA error budget left.",
        ),
        Rule(
            "TeleportCloudSLABreachProjected",
            f"{projected} > on ({by}) {budget}\n"
            f"and on ({by}) tenant:teleport_cloud_sla_downtime_seconds:best < on ({by}) {budget}\n"
            f"and on ({by}) (\n{evidence(window)}\n)",
            "The month ends over budget if the recent burn rate goes on: a warning while\n"
            "there is still budget, so the evidence can be collected before the breach. Like\n"
            "the burn rates, only on real downtime and a well observed window (5 down minutes\n"
            "in 9 observed would project 16.9 days of downtime).",
            severity="ticket",
            duration=t.breach_projected_for,
            summary="The tenant is on course to miss its monthly SLA.",
            description="At the last " + window + "'s burn rate, tenant {{ $labels.tenant }} "
            "ends the month with {{ $value | humanizeDuration }} of downtime, more than its "
            "SLA's error budget.",
        ),
        Rule(
            "TeleportCloudSLABreached",
            "tenant:teleport_cloud_sla_breached:best == 1",
            "Over budget: someone files the service-credit claim with the evidence. Ticket.",
            severity="ticket",
            duration=t.breached_for,
            summary="The Teleport Cloud tenant missed its monthly SLA.",
            description="Tenant {{ $labels.tenant }} has been down for "
            "{{ with printf `tenant:teleport_cloud_sla_downtime_seconds:best{tenant='%s'}` "
            "$labels.tenant | query }}{{ . | first | value | humanizeDuration }}{{ end }} this "
            "month, more than the "
            "{{ with printf `tenant:teleport_cloud_sla_error_budget_seconds:best{tenant='%s'}` "
            "$labels.tenant | query }}{{ . | first | value | humanizeDuration }}{{ end }} its "
            "SLA allows: evidence for a service-credit claim.",
        ),
        Rule(
            "TeleportCloudSLACoverageLow",
            f'{observed}{{window="{t.coverage_window}"}}\n'
            f"  < {t.coverage_ratio:g} * {seconds(t.coverage_window)}\n"
            f'and on ({by}) {observed}{{window="{t.coverage_window}"}} offset '
            f"{t.coverage_window}",
            "Unobserved minutes count neither way, so a claim rests on the observed ones.\n"
            f"Measured over the trailing {t.coverage_window}, not the month so far: a gap "
            "ends the\n"
            "alert once it is behind, and a deployment that started mid-month is quiet once\n"
            f"it has watched for {t.coverage_window} (the `offset` proves it has).",
            severity="ticket",
            duration=t.coverage_for,
            summary="The SLA ledger observed too little of the tenant recently.",
            description="The exporter observed only {{ $value | humanizeDuration }} of the "
            f"last {t.coverage_window} for tenant {{{{ $labels.tenant }}}}; unobserved minutes "
            "weaken an SLA claim.",
        ),
        Rule(
            "TeleportCloudSLALedgerErrors",
            f"sum by ({c.group('instance')}) "
            f"(increase({sel(c, 'teleport_cloud_sla_ledger_errors_total')}[15m])) > 0",
            "The ledger is the SLA's only evidence; a failed write loses a minute. The ledger\n"
            "is per replica, so this names the replica.",
            severity="ticket",
            summary="The exporter cannot read or write its SLA ledger.",
            description="{{ $value | humanize }} SLA ledger operation(s) failed on "
            "{{ $labels.instance }} in the last 15 minutes; check state_dir's volume.",
        ),
    ]
    return Group("teleport-cloud-sla", tuple(rules))


def _exporter_alerts(c: MixinConfig) -> Group:
    t = c.thresholds
    source_by = c.group("source", "target")
    targets = c.group()
    up = sel(c, "up")
    source_up = sel(c, "teleport_cloud_source_up")
    not_ping = sel(c, "teleport_cloud_source_up", 'source!="ping"')
    cluster = (
        f"{{{{ with $labels.{c.cluster_label} }}}} in {c.cluster_label} {{{{ . }}}}{{{{ end }}}}"
        if c.cluster_label
        else ""
    )
    return Group(
        "teleport-cloud-exporter",
        (
            Rule(
                "TeleportCloudSourceDown",
                f"max by ({source_by}) ({not_ping}) == 0",
                "A failing source keeps its last data on the dashboards; only source_up tells.\n"
                "Fires when no replica's source succeeds. Not for ping: a ping failing on every\n"
                "replica is TeleportCloudProbeFailing's page, and one alert is enough.",
                severity="ticket",
                duration=t.source_down_for,
                summary="An exporter source is failing on every replica.",
                description="The {{ $labels.source }} source for {{ $labels.target }} has failed "
                f"every refresh on every replica for at least {t.source_down_for}; the metrics "
                "it feeds show stale data.",
            ),
            Rule(
                "TeleportCloudSourceReplicaDown",
                f"min by ({c.group('instance', 'source', 'target')}) ({source_up}) == 0\n"
                f"and on ({source_by}) max by ({source_by}) ({source_up}) == 1",
                "One replica's source fails while another's works: nothing is lost yet (the\n"
                "rules fold over the working replicas), but the redundancy is gone; often that\n"
                "replica's own egress, DNS or identity. Names the replica.",
                severity="ticket",
                duration=t.source_replica_down_for,
                summary="An exporter source is failing on one replica.",
                description="The {{ $labels.source }} source for {{ $labels.target }} has failed "
                f"on {{{{ $labels.instance }}}} for at least {t.source_replica_down_for} while "
                "another replica's succeeds.",
            ),
            Rule(
                "TeleportCloudSourceStale",
                f"time() - max by ({source_by}) "
                f"({sel(c, 'teleport_cloud_source_last_success_timestamp_seconds')} > 0) "
                f"> {t.source_stale_seconds}",
                "Also catches a refresh loop that hangs without reporting failure. `> 0` skips a\n"
                "source that has not succeeded since a restart (TeleportCloudSourceDown's case).",
                severity="ticket",
                summary="An exporter source has not refreshed successfully for a long time.",
                description="The {{ $labels.source }} source for {{ $labels.target }} last "
                "succeeded {{ $value | humanizeDuration }} ago.",
            ),
            Rule(
                "TeleportCloudIdentityExpiring",
                f"min by ({c.by}) "
                f"({sel(c, 'teleport_cloud_identity_expiry_timestamp_seconds')} > 0) - time()"
                f" < {t.identity_expiry_seconds}",
                "tbot renews its 1h certificate every 20 minutes; less left means renewals\n"
                "failed, and tctl stops working at expiry (the inventory goes stale).",
                severity="ticket",
                duration=t.identity_expiring_for,
                summary="The exporter's Machine ID identity expires before tbot renews it.",
                description="The Machine ID identity used for tenant {{ $labels.tenant }} "
                "expires in {{ $value | humanizeDuration }}; tbot has not renewed it.",
            ),
            Rule(
                "TeleportCloudExporterDown",
                f"max by ({targets}) ({up}) == 0\n"
                "or\n"
                f"  max by ({targets}) (max_over_time({up}[1d])) * 0\n"
                f"  unless on ({targets}) max by ({targets}) ({up})\n"
                "or\n"
                f"  absent({up})",
                "Without the exporter every other alert goes silent, so its absence pages, per\n"
                "cluster and job (a central Prometheus watches several): every target down,\n"
                "targets that were discovered in the last day and are gone, or none at all.\n"
                f"for: {t.exporter_down_for} covers a rolling restart. The job selector must not "
                "match\ntbot's job, or a tbot that is up hides exporters that are down.",
                severity="page",
                duration=t.exporter_down_for,
                summary="No teleport-cloud-exporter target is up.",
                description="Prometheus has scraped no teleport-cloud-exporter target"
                f"{cluster} successfully for at least {t.exporter_down_for}; Teleport Cloud "
                "tenants are unwatched.",
            ),
            Rule(
                "TeleportCloudExporterReplicaDown",
                f"{up} == 0\nand on ({targets}) max by ({targets}) ({up}) == 1",
                "One replica down while another is up: the tenants are still watched, but the\n"
                "next failure is an outage of monitoring, and the SLA ledger of that replica has\n"
                "a gap. Names the replica.",
                severity="ticket",
                duration=t.replica_down_for,
                summary="A teleport-cloud-exporter replica is down.",
                description="Prometheus has not scraped {{ $labels.instance }} of job "
                f"{{{{ $labels.job }}}} successfully for {t.replica_down_for}; the other "
                "replicas still watch the tenants.",
            ),
        ),
    )


def alert_groups(c: MixinConfig) -> tuple[Group, ...]:
    return (
        _fleet_alerts(c),
        _probe_alerts(c),
        _status_alerts(c),
        _sla_alerts(c),
        _exporter_alerts(c),
    )
