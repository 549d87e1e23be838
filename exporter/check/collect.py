"""`check`: collect every source once and print a report a person can act on.

Exit code 0 when healthy, 1 when there are findings (probe failing, agents unsupported or
blocking the next upgrade, agents not enrolled in automatic updates or whose updater is disabled
or pinned while they are behind, agents stuck in a rollout group, a rolled-back group, a tctl the
control plane no longer supports, a major status-page incident, the SLA breached), 2 when the
exporter could not see: a source other than the probe could not be collected, or the probe
failed for the exporter's own reasons.

Collection lives here; the verdicts are `exporter.check.findings` (shared with the page at `/`,
which observes the running exporter instead, `check.observe`), the text `exporter.check.render`.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

import anyio

from exporter.check.findings import Assessment, assess_all
from exporter.check.observe import observe
from exporter.check.render import render_text
from exporter.config import Settings
from exporter.core.errors import SourceError
from exporter.core.scheduler import Runtime
from exporter.core.source import Source
from exporter.core.state import Hub
from exporter.derivations import attach_derivers
from exporter.fleet.derive import FleetView
from exporter.probe.source import PingSource
from exporter.sla.derive import MonthToDate, down_intervals, month_bounds, summarize
from exporter.sla.ledger import Ledger, LedgerError
from exporter.sources import build_sources, close_sources


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


def _sla_from_ledger(settings: Settings, hub: Hub, now: float) -> dict[str, MonthToDate | None]:
    months: dict[str, MonthToDate | None] = dict.fromkeys(hub.tenants)
    try:
        ledger = Ledger.open(settings.state_dir, readonly=True)
    except LedgerError:
        return months
    try:
        start, _ = month_bounds(now)
        for tenant in hub.tenants.values():
            sla = tenant.config.sla
            minutes = ledger.minutes(tenant.name, start - 3 * 86400, now + 60)
            summary = summarize(minutes, sla.objective, sla.exclude_maintenance, now)
            month = [m for m in minutes if m.minute_start >= start]
            intervals = down_intervals(month, sla.exclude_maintenance)
            months[tenant.name] = MonthToDate(summary, intervals, start)
    finally:
        ledger.close()
    return months


def collect_and_assess(settings: Settings) -> Assessment:
    hub = attach_derivers(Hub(settings))
    sources = build_sources(hub, None)
    runtime = Runtime(hub, sources)
    anyio.run(_collect, runtime, sources)
    now = time.time()
    # The fleet as the exporter derives and publishes it (no run of the deriver task here: each
    # source's change was derived at once).
    fleets: dict[str, FleetView | None] = {
        tenant.name: tenant.fleet for tenant in hub.tenants.values()
    }
    sla = _sla_from_ledger(settings, hub, now)
    return assess_all(observe(settings, hub, sources, runtime.health, fleets, sla, now))


def run_check(settings: Settings, out: TextIO | None = None) -> int:
    assessment = collect_and_assess(settings)
    (out or sys.stdout).write("\n".join(render_text(assessment)) + "\n")
    return assessment.exit_code
