"""Teleport 18's agent report families (`tctl get autoupdate_agent_report`), merged over the
Auth servers' reports; none at all without a rollout::

    teleport_cloud_autoupdate_report_agents{tenant="prod",group="dev",version="18.1.4"} 118
    teleport_cloud_autoupdate_report_omitted{tenant="prod",reason="updater is pinned"} 3
    teleport_cloud_autoupdate_report_timestamp_seconds{tenant="prod"} 1.7646e+09
"""

from __future__ import annotations

from prometheus_client.metrics_core import Metric

from exporter.core.catalogue import REPORT_AGENTS, REPORT_OMITTED, REPORT_TIMESTAMP
from exporter.core.versions import normalise
from exporter.rollout.agent_report_model import MergedReport
from exporter.vocab import cap_label


def agent_report_families(tenant: str, report: MergedReport | None) -> list[Metric]:
    if report is None:
        return []
    agents = REPORT_AGENTS.new()
    omitted = REPORT_OMITTED.new()
    merged: dict[tuple[str, str], int] = {}
    for (group, version), count in report.agents.items():
        key = (cap_label(group), normalise(version))  # `v18.1.4` and `18.1.4` are one series
        merged[key] = merged.get(key, 0) + count
    for (group, version), count in sorted(merged.items()):
        agents.add_metric([tenant, group, version], count)
    reasons: dict[str, int] = {}
    for reason, count in report.omitted.items():
        label = cap_label(reason)
        reasons[label] = reasons.get(label, 0) + count
    for reason, count in sorted(reasons.items()):
        omitted.add_metric([tenant, reason], count)
    return [agents, omitted, REPORT_TIMESTAMP.single([tenant], report.timestamp)]
