"""The text report of `check`, from the shared assessment (exporter.check.findings).

Agent lists are summarised by version first (version, majors behind, count, upgrader kinds),
then the first hosts are named: a fleet of thousands stays readable.
"""

from __future__ import annotations

from datetime import UTC, datetime

from exporter.check.findings import Assessment, TenantView
from exporter.fleet.derive import AgentView, summarise_by_version
from exporter.sla.derive import MonthToDate

BLOCKING_SHOWN = 20


def when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def render_text(assessment: Assessment) -> list[str]:
    lines = [f"teleport-cloud-exporter check, {when(assessment.now)}"]
    for tenant in assessment.tenants:
        lines.append("")
        lines += _tenant(tenant, assessment.now)
    page = assessment.status_page
    if page is not None:
        lines.append("")
        lines.append(f"Status page {page.host}: {page.indicator} ({page.description})")
        for incident in page.incidents:
            lines.append(f"  incident [{incident.impact}] {incident.name} ({incident.status})")
        for maintenance in page.maintenances:
            at = when(maintenance.scheduled_for) if maintenance.scheduled_for else "unscheduled"
            lines.append(f"  maintenance {maintenance.status}: {maintenance.name} at {at}")
    lines.append("")
    failures = assessment.failures
    findings = [str(finding) for finding in assessment.findings]
    for title, items in (("Could not collect", failures), ("Findings", findings)):
        if items:
            lines.append(f"{title}:")
            lines.extend(f"  - {item}" for item in items)
    if not failures and not findings:
        lines.append("Healthy: no findings.")
    return lines


def agent_table(agents: list[AgentView]) -> list[str]:
    """`agents` by version (most urgent first), then the first BLOCKING_SHOWN hosts."""
    lines = [f"    {'VERSION':<20} {'BEHIND':>6} {'AGENTS':>7}  UPGRADERS"]
    for row in summarise_by_version(agents):
        behind = "?" if row.majors_behind is None else str(row.majors_behind)
        lines.append(
            f"    {row.version[:20]:<20} {behind:>6} {row.agents:>7}  {', '.join(row.upgraders)}"
        )
    lines.append(f"    {'HOSTNAME':<32} {'VERSION':<16} {'UPGRADER':<20} {'UPDATER':<12} BEHIND")
    for agent in agents[:BLOCKING_SHOWN]:
        behind = "?" if agent.majors_behind is None else str(agent.majors_behind)
        lines.append(
            f"    {agent.hostname[:32]:<32} {agent.version[:16]:<16} "
            f"{agent.upgrader[:20]:<20} {agent.updater_status[:12]:<12} {behind}"
        )
    if len(agents) > BLOCKING_SHOWN:
        lines.append(f"    ... and {len(agents) - BLOCKING_SHOWN} more")
    return lines


def _tenant(tenant: TenantView, now: float) -> list[str]:
    lines = [f"Tenant {tenant.name} ({tenant.proxy})"]
    probe = tenant.probe
    if probe.state == "ok" and probe.last is not None:
        last = probe.last
        expiry = (
            f", certificate valid until {when(last.cert_not_after)}" if last.cert_not_after else ""
        )
        lines.append(
            f"  Proxy probe     OK in {last.duration * 1000:.0f} ms (HTTP "
            f"{last.status_code}){expiry}"
        )
    elif probe.state == "unobserved":
        lines.append(
            f"  Proxy probe     not observed: {probe.unobserved_reason} "
            "(the exporter's own trouble, see Could not collect)"
        )
    elif probe.state == "failing":
        why = f": {probe.error}" if probe.error else ""
        lines.append(f"  Proxy probe     FAILING{why}")
    else:
        lines.append("  Proxy probe     not run yet")
    if tenant.control_plane is not None:
        lines.append(
            f"  Control plane   {tenant.control_plane} (cluster {tenant.cluster_name}), target "
            f"agent version {tenant.target_version or 'unknown'}"
        )
    if tenant.tctl_version is not None:
        plane = tenant.control_plane
        if tenant.tctl_compatible is False:
            lines.append(
                f"  tctl            {tenant.tctl_version}: NOT supported by control plane {plane}"
            )
        elif tenant.tctl_one_behind:
            lines.append(
                f"  tctl            {tenant.tctl_version}: one major behind control plane {plane}, "
                "still supported; the next control-plane major drops it"
            )
        elif tenant.tctl_compatible:
            lines.append(
                f"  tctl            {tenant.tctl_version}: supported by control plane {plane}"
            )
        else:
            lines.append(f"  tctl            {tenant.tctl_version}")
    tools = tenant.tools
    if tools is not None:
        line = f"  Client tools    the tenant wants tsh/tctl {tools.wanted}"
        if tools.majors_apart:
            line += (
                f"; the exporter's tctl {tools.tctl} is {tools.majors_apart} major(s) away "
                "from it: it falls out of support next (update the image's tctl)"
            )
        elif tools.majors_apart == 0:
            line += f"; the exporter's tctl {tools.tctl} matches its major"
        lines.append(line)
    fleet = tenant.fleet
    if fleet is not None:
        skew = ", ".join(f"{name} {count}" for name, count in fleet.by_skew.items())
        lines.append(f"  Agents          {fleet.total}: {skew}")
        if tenant.size is not None:
            lines.append(f"  Fleet size      {tenant.size.line()}")
        if tenant.upgrade == "blocked":
            lines.append(
                f"  Next upgrade    BLOCKED by {len(fleet.blocking_agents)} agent(s) one or more "
                "majors behind:"
            )
            lines += agent_table(fleet.blocking_agents)
        elif tenant.upgrade == "not blocked":
            lines.append(
                "  Next upgrade    not blocked: every agent is on the control plane's major or "
                "newer"
            )
        else:
            lines.append("  Next upgrade    unknown: the control-plane version is not known yet")
        lines.append(
            "  Enrolment       "
            + ", ".join(f"{kind} {count}" for kind, count in tenant.enrolment.items())
        )
        frozen = tenant.frozen
        if frozen is not None:
            kinds = ", ".join(f"{status} {count}" for status, count in frozen.by_status.items())
            lines.append(
                f"  Updater off     {len(frozen.agents)} agent(s) will not update by themselves: "
                f"{kinds}"
            )
            if frozen.behind:
                lines.append(
                    f"  Updater off     {len(frozen.behind)} of them behind the target or blocking "
                    "(run `teleport-update enable` / `unpin` on them):"
                )
                lines += agent_table(frozen.behind)
        if fleet.outdated is not None and fleet.target_version:
            lines.append(
                f"  Outdated        {fleet.outdated} agent(s) not on the target version "
                f"{fleet.target_version}"
            )
        if fleet.not_updating is not None:
            reasons = ", ".join(f"{reason} {count}" for reason, count in fleet.not_updating.items())
            lines.append(f"  Not updating    {sum(fleet.not_updating.values())}: {reasons}")
    lines += window_lines(tenant)
    rollout = tenant.rollout
    if rollout is not None:
        lines.append(
            f"  Rollout         {rollout.start_version} -> {rollout.target_version}, mode "
            f"{rollout.mode}, strategy {rollout.strategy}, schedule {rollout.schedule}"
        )
        lines += [f"    {note}" for note in rollout.notes]
        for group in rollout.groups:
            catch_all = " (catch-all)" if group.catch_all else ""
            members = (
                f", {group.members} agent(s) by the inventory" if group.members is not None else ""
            )
            lines.append(
                f"    {group.name + catch_all:<20} {group.state:<12} runs "
                f"{group.version:<16} {group.up_to_date}/{group.present} up to date{members}; "
                f"{group.why}"
            )
            if group.inventory_counts is not None:
                present, up_to_date = group.inventory_counts
                lines.append(
                    f"      the inventory gives {up_to_date}/{present} for the agents Teleport "
                    "counts (agents that joined in the last minute or records of agents gone "
                    "differ)"
                )
        merged = tenant.agent_report
        if merged is not None:
            counted = sum(merged.agents.values())
            left_out = ", ".join(
                f"{reason} {count}" for reason, count in sorted(merged.omitted.items())
            )
            stale = (
                f"; stale report(s) dropped: {', '.join(merged.dropped)}" if merged.dropped else ""
            )
            lines.append(
                f"  Agent reports   {counted} agent(s) counted by {len(merged.used)} Auth "
                f"server(s) at {when(merged.timestamp)}{stale}"
            )
            if left_out:
                lines.append(f"    left out: {left_out}")
        for stuck in tenant.stuck:
            lines.append(
                f"  Stuck in {stuck.group}: {len(stuck.agents)} agent(s) asked to update, not on "
                f"{stuck.version}:"
            )
            lines += agent_table(stuck.agents)
    lines.append(_sla_line(tenant.sla, now))
    return lines


WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def window_days(weekdays: tuple[int, ...]) -> str:
    if len(weekdays) == 7:
        return "every day"
    return ", ".join(WEEKDAY_NAMES[day] for day in weekdays)


def window_lines(tenant: TenantView) -> list[str]:
    window = tenant.window
    if window is None:
        return []
    opened = " (open now)" if window.open_now else ""
    lines = [
        f"  Upgrade window  {window_days(window.weekdays)} at {window.start_hour:02d}:00 UTC for "
        f"v1 unit and kube agents; next opens {when(window.next_start)}{opened}"
    ]
    if window.waiting:
        lines.append(
            f"  Next chance     {window.waiting} unit/kube agent(s) behind the target "
            f"{window.target} ({window.waiting_blocking} of them blocking the next upgrade) next "
            f"get a chance to update at {when(window.next_start)}"
        )
    return lines


def _sla_line(sla: MonthToDate | None, now: float) -> str:
    if sla is None:
        return "  SLA month       no ledger yet (run the exporter to record probes)"
    summary = sla.summary
    uptime = "not measured" if summary.uptime_ratio is None else f"{summary.uptime_ratio:.4%}"
    return (
        f"  SLA month       downtime {summary.downtime:g} s of {summary.budget:g} s budget "
        f"({summary.budget_remaining_ratio:.1%} left), uptime {uptime}, "
        f"observed {summary.observed / max(1.0, now - sla.month_start):.0%} of the month so far"
    )
