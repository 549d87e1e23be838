"""What the assessment reads (exporter.check.findings), taken from a set of sources: the ones
`check` collected once, or the running exporter's for the page at `/`."""

from __future__ import annotations

from collections.abc import Iterable

from exporter.check.findings import Observation, ProbeObservation, TctlView
from exporter.config import Settings
from exporter.core.scheduler import Health, Runtime
from exporter.core.source import Source
from exporter.core.state import Hub
from exporter.fleet.derive import FleetView
from exporter.fleet.source import InventorySource
from exporter.probe.source import PingSource
from exporter.rollout.agent_report_source import AgentReportSource
from exporter.sla.derive import MonthToDate
from exporter.sla.service import SlaService
from exporter.tctl.version_source import TctlVersionSource


def observe(
    settings: Settings,
    hub: Hub,
    sources: Iterable[Source],
    health: dict[tuple[str, str], Health],
    fleets: dict[str, FleetView | None],
    sla: dict[str, MonthToDate | None],
    now: float,
) -> Observation:
    """The observation of a set of sources, whether collected once or running."""
    sources = list(sources)
    probes = {
        s.target: ProbeObservation(s.last_completed, s.unobserved_reason, tuple(s.recent_failures))
        for s in sources
        if isinstance(s, PingSource)
    }
    tctls = {
        s.target: TctlView(s.version, s.compatible)
        for s in sources
        if isinstance(s, TctlVersionSource)
    }
    reports = {s.target: s.report for s in sources if isinstance(s, AgentReportSource)}
    errors = {
        key: entry.last_error for key, entry in health.items() if entry.last_error is not None
    }
    return Observation(
        settings,
        hub,
        now,
        probes,
        dict(health),
        errors,
        fleets,
        tctls=tctls,
        sla=sla,
        agent_reports=reports,
    )


def observe_running(
    settings: Settings,
    hub: Hub,
    sources: Iterable[Source],
    runtime: Runtime,
    now: float,
) -> Observation:
    """The running exporter as the page shows it: the fleet as the inventory source last
    derived it. Cheap (references and small copies), so it runs on the event loop; the SLA
    month (`sla_months`) and the assessment run in a worker thread."""
    sources = list(sources)
    fleets: dict[str, FleetView | None] = dict.fromkeys(hub.tenants)
    for source in sources:
        if isinstance(source, InventorySource):
            fleets[source.target] = source.view
    return observe(settings, hub, sources, runtime.health, fleets, {}, now)


def sla_months(hub: Hub, sla: SlaService, now: float) -> dict[str, MonthToDate | None]:
    return {name: sla.month_to_date(name, now) for name in hub.tenants}
