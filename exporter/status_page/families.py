"""Families of the vendor status page.

::

    teleport_cloud_status_indicator{page="status.teleport.sh",indicator="minor"} 1
        (one sample per indicator: none, minor, major, critical, maintenance)
    teleport_cloud_status_component{page,component_id,component,group,status="operational|..."} 0/1
    teleport_cloud_status_incidents{page,impact="none|minor|major|critical"} 2
    teleport_cloud_status_maintenances{page,state="scheduled|in_progress|verifying"} 1
    teleport_cloud_status_next_maintenance_start_timestamp_seconds{page} 1.77e9   (absent when none)

Group rows are skipped; their children carry the group's name. Components are keyed on id
(names repeat on real pages), and a repeated id keeps its first row. States and impacts known in
advance are always exported. `keep` (status_page.components) filters components, and incidents
and maintenances that list no kept component.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client.metrics_core import Metric

from exporter import vocab
from exporter.core import catalogue as m
from exporter.status_page.model import Summary, concerns, kept

RESOLVED_INCIDENT_STATUSES = frozenset({"resolved", "postmortem"})


def _counts(values: Sequence[str], known: Sequence[str]) -> dict[str, int]:
    counts = dict.fromkeys(known, 0)
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


def status_families(page: str, summary: Summary, keep: Sequence[str]) -> list[Metric]:
    groups = {c.id: c.name for c in summary.components if c.group}
    wanted = frozenset(keep)
    rows: dict[str, tuple[list[str], str]] = {}
    for c in summary.components:
        if not c.group and kept(c, wanted) and c.id not in rows:
            rows[c.id] = ([page, c.id, c.name, groups.get(c.group_id or "", "")], c.status)
    open_incidents = [
        i.impact
        for i in summary.incidents
        if i.status not in RESOLVED_INCIDENT_STATUSES and concerns(i, wanted)
    ]
    pending = [
        mt
        for mt in summary.scheduled_maintenances
        if mt.status != "completed" and concerns(mt, wanted)
    ]
    families: list[Metric] = [
        m.STATUS_INDICATOR.state_set([([page], summary.status.indicator)], vocab.STATUS_INDICATORS),
        m.STATUS_COMPONENT.state_set(rows.values(), vocab.COMPONENT_STATUSES),
    ]
    for spec, values, known in (
        (m.STATUS_INCIDENTS, open_incidents, vocab.INCIDENT_IMPACTS),
        (m.STATUS_MAINTENANCES, [mt.status for mt in pending], vocab.MAINTENANCE_STATES),
    ):
        family = spec.new()
        for label, count in _counts(values, known).items():
            family.add_metric([page, label], float(count))
        families.append(family)
    starts = [
        mt.scheduled_for.timestamp()
        for mt in pending
        if mt.status == "scheduled" and mt.scheduled_for is not None
    ]
    if starts:
        families.append(m.STATUS_NEXT_MAINTENANCE.single([page], min(starts)))
    return families
