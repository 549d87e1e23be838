"""`check`: collect every source once and print a report a person can act on.

Exit code 0 when healthy, 1 when there are findings (probe failing, agents unsupported or
blocking the next upgrade, agents not enrolled in automatic updates, a rolled-back group, a
major status-page incident, the SLA breached), 2 when a source could not be collected.
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
from exporter.errors import SourceError
from exporter.fleet import FleetView, derive_fleet
from exporter.ledger import Ledger, LedgerError
from exporter.models.rollout import Rollout
from exporter.runtime import Runtime
from exporter.sla import month_bounds, summarize
from exporter.sources.base import Source
from exporter.sources.ping import PingSource
from exporter.state import Hub, TenantState

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
        report.add(f"    {'HOSTNAME':<32} {'VERSION':<16} {'UPGRADER':<20} BEHIND")
        for agent in view.blocking_agents[:BLOCKING_SHOWN]:
            report.add(
                f"    {agent.hostname[:32]:<32} {agent.version[:16]:<16} "
                f"{agent.upgrader[:20]:<20} {agent.majors_behind}"
            )
        if len(view.blocking_agents) > BLOCKING_SHOWN:
            report.add(f"    ... and {len(view.blocking_agents) - BLOCKING_SHOWN} more")
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
    if view.outdated is not None and view.target_version:
        report.add(
            f"  Outdated        {view.outdated} agent(s) not on the target version "
            f"{view.target_version}"
        )


def _rollout_section(report: Report, tenant: TenantState, rollout: Rollout) -> None:
    spec = rollout.spec
    report.add(
        f"  Rollout         {spec.start_version} -> {spec.target_version}, mode "
        f"{spec.autoupdate_mode}, strategy {spec.strategy}, schedule {spec.schedule}"
    )
    for group in rollout.status.groups:
        report.add(
            f"    {group.name:<20} {group.state:<12} "
            f"{group.up_to_date_count}/{group.present_count} up to date"
        )
        if group.state == "rolledback":
            report.findings.append(f"{tenant.name}: rollout group {group.name} rolled back")


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
        f"({summary.budget_remaining_ratio:.1%} left), uptime {summary.uptime_ratio:.4%}, "
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
    for (kind, target), error in results.items():
        if error is not None:
            report.failures.append(f"{kind} {target}: {error.reason}: {error.message}")
    probes = {s.target: s for s in sources if isinstance(s, PingSource)}
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
        else:
            report.add(
                "  Proxy probe     FAILING"
                + (f" (HTTP {probe.status_code})" if probe and probe.status_code else "")
            )
            report.findings.append(f"{tenant.name}: proxy probe failing")
        if tenant.ping is not None:
            report.add(
                f"  Control plane   {tenant.ping.server_version} (cluster "
                f"{tenant.ping.cluster_name}), target agent version "
                f"{tenant.target_agent_version or 'unknown'}"
            )
        if tenant.inventory is not None:
            _fleet_section(
                report,
                tenant,
                derive_fleet(
                    tenant.inventory, tenant.control_plane_version, tenant.target_agent_version
                ),
            )
        if tenant.rollout is not None:
            _rollout_section(report, tenant, tenant.rollout)
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
    hub = Hub(settings)
    sources = build_sources(hub, None)
    runtime = Runtime(hub, sources)
    results = anyio.run(_collect, runtime, sources)
    report = build_report(settings, hub, sources, results, time.time())
    (out or sys.stdout).write("\n".join(report.lines) + "\n")
    if report.failures:
        return EXIT_UNCOLLECTED
    return EXIT_FINDINGS if report.findings else EXIT_HEALTHY
