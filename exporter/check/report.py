"""`check`: collect every source once and print a report a person can act on.

Exit code 0 when healthy, 1 when there are findings (probe failing, agents unsupported or
blocking the next upgrade, agents not enrolled in automatic updates or whose updater is disabled
or pinned while they are behind, agents stuck in a rollout group, a rolled-back group, a tctl the
control plane no longer supports, a major status-page incident, the SLA breached), 2 when a
source could not be collected.

Agent lists are summarised by version first (version, majors behind, count, upgrader kinds),
then the first hosts are named: a fleet of thousands stays readable.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TextIO

import anyio

from exporter.app import build_sources, close_sources
from exporter.config import Settings
from exporter.core.errors import SourceError
from exporter.core.scheduler import Runtime
from exporter.core.source import Source
from exporter.core.state import Hub, TenantState
from exporter.core.versions import major_of, normalise, same_version
from exporter.derivations import attach_derivers
from exporter.fleet.derive import (
    NOT_UPDATING,
    AgentView,
    FleetView,
    not_updating,
    summarise_by_version,
)
from exporter.probe.source import PingSource
from exporter.rollout.agent_report_source import AgentReportSource
from exporter.rollout.groups import Agent, GroupPlan, assess, plan_groups
from exporter.rollout.model import Rollout, RolloutGroup
from exporter.sla.derive import month_bounds, summarize
from exporter.sla.ledger import Ledger, LedgerError
from exporter.tctl.version_source import TctlVersionSource

BLOCKING_SHOWN = 20
EXIT_HEALTHY, EXIT_FINDINGS, EXIT_UNCOLLECTED = 0, 1, 2


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def add(self, text: str = "") -> None:
        self.lines.append(text)


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


async def _collect(
    runtime: Runtime, sources: list[Source]
) -> dict[tuple[str, str], SourceError | None]:
    """Probes first (the fleet's skew needs the control-plane version), then the rest at once."""
    results: dict[tuple[str, str], SourceError | None] = {}

    async def one(source: Source) -> None:
        results[(source.kind, source.target)] = await runtime.refresh_once(source)

    try:
        async with anyio.create_task_group() as group:
            for source in sources:
                if isinstance(source, PingSource):
                    group.start_soon(one, source)
        async with anyio.create_task_group() as group:
            for source in sources:
                if not isinstance(source, PingSource):
                    group.start_soon(one, source)
    finally:
        await close_sources(sources)
    return results


def _agent_table(report: Report, agents: list[AgentView]) -> None:
    """`agents` by version (most urgent first), then the first BLOCKING_SHOWN hosts."""
    report.add(f"    {'VERSION':<20} {'BEHIND':>6} {'AGENTS':>7}  UPGRADERS")
    for row in summarise_by_version(agents):
        behind = "?" if row.majors_behind is None else str(row.majors_behind)
        report.add(
            f"    {row.version[:20]:<20} {behind:>6} {row.agents:>7}  {', '.join(row.upgraders)}"
        )
    report.add(f"    {'HOSTNAME':<32} {'VERSION':<16} {'UPGRADER':<20} {'UPDATER':<12} BEHIND")
    for agent in agents[:BLOCKING_SHOWN]:
        behind = "?" if agent.majors_behind is None else str(agent.majors_behind)
        report.add(
            f"    {agent.hostname[:32]:<32} {agent.version[:16]:<16} "
            f"{agent.upgrader[:20]:<20} {agent.updater_status[:12]:<12} {behind}"
        )
    if len(agents) > BLOCKING_SHOWN:
        report.add(f"    ... and {len(agents) - BLOCKING_SHOWN} more")


def _fleet_section(report: Report, tenant: TenantState, view: FleetView) -> None:
    skew = ", ".join(f"{name} {count}" for name, count in view.by_skew.items())
    report.add(f"  Agents          {view.total}: {skew}")
    unsupported = view.by_skew["unsupported_old"] + view.by_skew["unsupported_newer"]
    if unsupported:
        report.findings.append(f"{tenant.name}: {unsupported} agent(s) on an unsupported version")
    if view.upgrade_blocked:
        report.findings.append(
            f"{tenant.name}: next control-plane upgrade blocked by {len(view.blocking_agents)} "
            "agent(s)"
        )
        report.add(
            f"  Next upgrade    BLOCKED by {len(view.blocking_agents)} agent(s) one or more "
            "majors behind:"
        )
        _agent_table(report, view.blocking_agents)
    elif view.upgrade_blocked is False:
        report.add(
            "  Next upgrade    not blocked: every agent is on the control plane's major or newer"
        )
    else:
        report.add("  Next upgrade    unknown: the control-plane version is not known yet")
    enrolment: dict[str, int] = {}
    for (_, upgrader), count in view.by_version_upgrader.items():
        enrolment[upgrader] = enrolment.get(upgrader, 0) + count
    report.add(
        "  Enrolment       "
        + ", ".join(f"{kind} {count}" for kind, count in sorted(enrolment.items()))
    )
    if enrolment.get("none"):
        report.findings.append(
            f"{tenant.name}: {enrolment['none']} agent(s) not enrolled in automatic updates"
        )
    _not_updating_section(report, tenant, view)
    if view.outdated is not None and view.target_version:
        report.add(
            f"  Outdated        {view.outdated} agent(s) not on the target version "
            f"{view.target_version}"
        )


def _not_updating_section(report: Report, tenant: TenantState, view: FleetView) -> None:
    """Agents whose updater is disabled or pinned never update by themselves: a finding when
    they are behind the target or block the next upgrade."""
    frozen = not_updating(view.agents)
    if not frozen:
        return
    target = view.target_version
    stuck_behind = [
        agent
        for agent in frozen
        if (agent.majors_behind is not None and agent.majors_behind >= 1)
        or (target is not None and not same_version(agent.version, target))
    ]
    stuck_behind.sort(key=lambda agent: (-(agent.majors_behind or 0), agent.hostname))
    kinds = ", ".join(
        f"{status} {sum(agent.updater_status == status for agent in frozen)}"
        for status in ("disabled", "pinned", "unreadable")
    )
    report.add(f"  Updater off     {len(frozen)} agent(s) will not update by themselves: {kinds}")
    if stuck_behind:
        report.findings.append(
            f"{tenant.name}: {len(stuck_behind)} agent(s) with a disabled or pinned updater are "
            "behind the target or block the next upgrade"
        )
        report.add(
            f"  Updater off     {len(stuck_behind)} of them behind the target or blocking "
            "(run `teleport-update enable` / `unpin` on them):"
        )
        _agent_table(report, stuck_behind)


def _stuck_section(report: Report, tenant: TenantState, view: FleetView, rollout: Rollout) -> None:
    """Per update group, the agents Teleport is asking to update that are not on the group's
    version (membership and the ask as Teleport decides them, exporter.rollout.groups)."""
    plan = plan_groups(rollout)
    if plan is None:
        return
    by_group: dict[str, list[AgentView]] = {}
    expected: dict[str, str] = {}
    for agent in view.agents:
        verdict = assess(_rules_agent(agent), plan)
        if verdict.stuck and verdict.group is not None:
            by_group.setdefault(verdict.group, []).append(agent)
            expected.setdefault(verdict.group, verdict.version or "?")
    order = {name: index for index, name in enumerate(plan.groups)}
    for group, agents in sorted(by_group.items(), key=lambda item: order.get(item[0], len(order))):
        report.findings.append(
            f"{tenant.name}: {len(agents)} agent(s) of update group {group} are asked to update "
            f"and are not on its version {expected[group]}"
        )
        report.add(
            f"  Stuck in {group}: {len(agents)} agent(s) asked to update, not on {expected[group]}:"
        )
        agents.sort(key=lambda agent: (-(agent.majors_behind or 0), agent.hostname))
        _agent_table(report, agents)


def _rules_agent(agent: AgentView) -> Agent:
    return Agent(
        agent.server_id,
        agent.update_group,
        agent.updater_id,
        agent.version,
        agent.upgrader,
        agent.updater_status,
    )


def _waiting_line(plan: GroupPlan, group: RolloutGroup, strategy: str) -> str:
    """Why a group's agents are or are not being asked to update now."""
    rule = plan.groups.get(group.name)
    if rule is None:
        return ""
    if rule.asked:
        return "asked to update now"
    if group.state == "unstarted":
        return "not started yet: its agents wait"
    if group.state == "done" and strategy == "time-based":
        return "outside its window: laggards wait for the next one"
    if group.state == "canary":
        return "canaries only"
    return "not asked"


_WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _window_section(
    report: Report, tenant: TenantState, view: FleetView | None, now: float
) -> None:
    """The agent upgrade window, and when agents that update in it next get their chance."""
    window = tenant.upgrade_window
    if window is None:
        return
    days = (
        "every day"
        if len(window.weekdays) == 7
        else ", ".join(_WEEKDAY_NAMES[day] for day in sorted(window.weekdays))
    )
    start = window.next_start(datetime.fromtimestamp(now, UTC))
    opened = " (open now)" if start.timestamp() <= now else ""
    report.add(
        f"  Upgrade window  {days} at {window.start_hour:02d}:00 UTC for v1 unit and kube agents; "
        f"next opens {_when(start.timestamp())}{opened}"
    )
    if view is None or view.target_version is None:
        return
    waiting = [
        agent
        for agent in view.agents
        if agent.upgrader in ("unit", "kube")
        and agent.updater_status not in NOT_UPDATING
        and not same_version(agent.version, view.target_version)
    ]
    if waiting:
        blocking = sum(1 for a in waiting if a.majors_behind is not None and a.majors_behind >= 1)
        report.add(
            f"  Next chance     {len(waiting)} unit/kube agent(s) behind the target "
            f"{view.target_version} ({blocking} of them blocking the next upgrade) next get a "
            f"chance to update at {_when(start.timestamp())}"
        )


def _tools_section(report: Report, tenant: TenantState, source: TctlVersionSource | None) -> None:
    """The client tools version the tenant wants, against the exporter's tctl."""
    ping = tenant.ping
    wanted = ping.auto_update.tools_version if ping and ping.auto_update else ""
    if not wanted:
        return
    tctl = source.version if source is not None else None
    line = f"  Client tools    the tenant wants tsh/tctl {normalise(wanted)}"
    tools_major, tctl_major = major_of(wanted), major_of(tctl)
    if tctl is not None and tools_major is not None and tctl_major is not None:
        if tctl_major != tools_major:
            line += (
                f"; the exporter's tctl {tctl} is {abs(tools_major - tctl_major)} major(s) away "
                "from it: it falls out of support next (update the image's tctl)"
            )
        else:
            line += f"; the exporter's tctl {tctl} matches its major"
    report.add(line)


def _tctl_section(report: Report, tenant: TenantState, source: TctlVersionSource) -> None:
    if source.version is None:
        return
    plane = tenant.control_plane_version
    if source.compatible is False:
        report.add(f"  tctl            {source.version}: NOT supported by control plane {plane}")
        report.findings.append(
            f"{tenant.name}: tctl {source.version} is not supported by control plane {plane} "
            "(tctl must be on its major or one below)"
        )
    elif source.compatible and major_of(source.version) != major_of(plane):
        report.add(
            f"  tctl            {source.version}: one major behind control plane {plane}, "
            "still supported; the next control-plane major drops it"
        )
        report.findings.append(
            f"{tenant.name}: tctl {source.version} is one major behind control plane {plane}: "
            "update it before Cloud's next major upgrade"
        )
    elif source.compatible:
        report.add(f"  tctl            {source.version}: supported by control plane {plane}")
    else:
        report.add(f"  tctl            {source.version}")


def _rollout_section(
    report: Report, tenant: TenantState, rollout: Rollout, view: FleetView | None
) -> None:
    spec = rollout.spec
    report.add(
        f"  Rollout         {spec.start_version} -> {spec.target_version}, mode "
        f"{spec.autoupdate_mode}, strategy {spec.strategy}, schedule {spec.schedule}"
    )
    if spec.autoupdate_mode in ("disabled", "suspended"):
        report.add(
            f"    updates {spec.autoupdate_mode}: Teleport asks no agent to update, so none "
            "is counted as stuck"
        )
    plan = plan_groups(rollout)
    if plan is not None and spec.schedule == "immediate":
        report.add(
            f"    immediate schedule: every agent should run {plan.target or '?'} now (no groups)"
        )
    versions = plan.versions if plan is not None else {}
    tallies = view.groups.groups if view is not None and view.groups is not None else {}
    for index, group in enumerate(rollout.status.groups):
        catch_all = " (catch-all)" if index == len(rollout.status.groups) - 1 else ""
        tally = tallies.get(group.name)
        members = f", {tally.members} agent(s) by the inventory" if tally is not None else ""
        why = _waiting_line(plan, group, spec.strategy) if plan is not None else ""
        report.add(
            f"    {group.name + catch_all:<20} {group.state:<12} runs "
            f"{versions.get(group.name, '?'):<16} {group.up_to_date_count}/"
            f"{group.present_count} up to date{members}; {why}"
        )
        counted = (view.teleport_counts or {}).get(group.name) if view is not None else None
        if counted is not None and counted != (group.present_count, group.up_to_date_count):
            report.add(
                f"      the inventory gives {counted[1]}/{counted[0]} for the agents Teleport "
                "counts (agents that joined in the last minute or records of agents gone "
                "differ)"
            )
        if group.state == "rolledback":
            report.findings.append(f"{tenant.name}: rollout group {group.name} rolled back")


def _agent_report_section(report: Report, source: AgentReportSource | None) -> None:
    """Teleport's own agent reports (Teleport 18+), merged as Teleport merges them."""
    merged = source.report if source is not None else None
    if merged is None:
        return
    counted = sum(merged.agents.values())
    left_out = ", ".join(f"{reason} {count}" for reason, count in sorted(merged.omitted.items()))
    stale = f"; stale report(s) dropped: {', '.join(merged.dropped)}" if merged.dropped else ""
    report.add(
        f"  Agent reports   {counted} agent(s) counted by {len(merged.used)} Auth server(s) at "
        f"{_when(merged.timestamp)}{stale}"
    )
    if left_out:
        report.add(f"    left out: {left_out}")


def _sla_section(report: Report, settings: Settings, tenant: TenantState, now: float) -> None:
    try:
        ledger = Ledger.open(settings.state_dir, readonly=True)
    except LedgerError:
        report.add("  SLA month       no ledger yet (run the exporter to record probes)")
        return
    try:
        start, _ = month_bounds(now)
        sla = tenant.config.sla
        minutes = ledger.minutes(tenant.name, start - 3 * 86400, now + 60)
        summary = summarize(minutes, sla.objective, sla.exclude_maintenance, now)
    finally:
        ledger.close()
    report.add(
        f"  SLA month       downtime {summary.downtime:g} s of {summary.budget:g} s budget "
        f"({summary.budget_remaining_ratio:.1%} left), uptime "
        f"{'not measured' if summary.uptime_ratio is None else f'{summary.uptime_ratio:.4%}'}, "
        f"observed {summary.observed / max(1.0, now - start):.0%} of the month so far"
    )
    if summary.breached:
        report.findings.append(f"{tenant.name}: SLA breached this month")


def build_report(
    settings: Settings,
    hub: Hub,
    sources: list[Source],
    results: dict[tuple[str, str], SourceError | None],
    now: float,
) -> Report:
    report = Report()
    report.add(f"teleport-cloud-exporter check, {_when(now)}")
    probes = {s.target: s for s in sources if isinstance(s, PingSource)}
    for (kind, target), error in results.items():
        if error is None:
            continue
        if kind == "ping" and probes[target].unobserved_reason is None:
            continue  # the tenant's proxy failed: a finding about the tenant, reported below
        report.failures.append(f"{kind} {target}: {error.reason}: {error.message}")
    tctls = {s.target: s for s in sources if isinstance(s, TctlVersionSource)}
    reports = {s.target: s for s in sources if isinstance(s, AgentReportSource)}
    for tenant in hub.tenants.values():
        report.add()
        report.add(f"Tenant {tenant.name} ({tenant.config.proxy})")
        probe = probes[tenant.name].last_result
        if probe is not None and probe.success:
            expiry = (
                f", certificate valid until {_when(probe.cert_not_after)}"
                if probe.cert_not_after
                else ""
            )
            report.add(
                f"  Proxy probe     OK in {probe.duration * 1000:.0f} ms (HTTP "
                f"{probe.status_code}){expiry}"
            )
        elif probes[tenant.name].unobserved_reason is None:
            error = results.get(("ping", tenant.name))
            why = f": {error.reason}: {error.message}" if error is not None else ""
            report.add(f"  Proxy probe     FAILING{why}")
            report.findings.append(f"{tenant.name}: proxy probe failing{why}")
        else:
            report.add(
                f"  Proxy probe     not observed: {probes[tenant.name].unobserved_reason} "
                "(the exporter's own trouble, see Could not collect)"
            )
        if tenant.ping is not None:
            report.add(
                f"  Control plane   {tenant.ping.server_version} (cluster "
                f"{tenant.ping.cluster_name}), target agent version "
                f"{tenant.target_agent_version or 'unknown'}"
            )
        if tenant.name in tctls:
            _tctl_section(report, tenant, tctls[tenant.name])
        _tools_section(report, tenant, tctls.get(tenant.name))
        view = tenant.fleet  # as the exporter derives and publishes it
        if view is not None:
            _fleet_section(report, tenant, view)
        if view is not None and view.not_updating is not None:
            reasons = ", ".join(f"{reason} {count}" for reason, count in view.not_updating.items())
            report.add(f"  Not updating    {sum(view.not_updating.values())}: {reasons}")
        _window_section(report, tenant, view, now)
        if tenant.rollout is not None:
            _rollout_section(report, tenant, tenant.rollout, view)
            _agent_report_section(report, reports.get(tenant.name))
            if view is not None:
                _stuck_section(report, tenant, view, tenant.rollout)
        _sla_section(report, settings, tenant, now)
    if hub.status is not None:
        status = hub.status
        report.add()
        report.add(
            f"Status page {settings.status_page.host}: {status.status.indicator} "
            f"({status.status.description})"
        )
        for incident in status.incidents:
            report.add(f"  incident [{incident.impact}] {incident.name} ({incident.status})")
            if incident.impact in ("major", "critical"):
                report.findings.append(f"status page: {incident.impact} incident: {incident.name}")
        for maintenance in status.scheduled_maintenances:
            if maintenance.status != "completed":
                when = (
                    _when(maintenance.scheduled_for.timestamp())
                    if maintenance.scheduled_for
                    else "unscheduled"
                )
                report.add(f"  maintenance {maintenance.status}: {maintenance.name} at {when}")
    report.add()
    for title, items in (("Could not collect", report.failures), ("Findings", report.findings)):
        if items:
            report.add(f"{title}:")
            report.lines.extend(f"  - {item}" for item in items)
    if not report.failures and not report.findings:
        report.add("Healthy: no findings.")
    return report


def run_check(settings: Settings, out: TextIO | None = None) -> int:
    hub = attach_derivers(Hub(settings))
    sources = build_sources(hub, None)
    runtime = Runtime(hub, sources)
    results = anyio.run(_collect, runtime, sources)
    report = build_report(settings, hub, sources, results, time.time())
    (out or sys.stdout).write("\n".join(report.lines) + "\n")
    if report.failures:
        return EXIT_UNCOLLECTED
    return EXIT_FINDINGS if report.findings else EXIT_HEALTHY
