"""Every source a configuration asks for, and their shutdown: what `serve` runs and `check`
collects once."""

from __future__ import annotations

from collections.abc import Sequence

import anyio

from exporter.core.source import Source
from exporter.core.state import Hub
from exporter.fleet.source import InventorySource
from exporter.probe.source import PingSource, ProbeRecorder
from exporter.rollout.agent_report_source import AgentReportSource
from exporter.rollout.maintenance_config_source import MaintenanceConfigSource
from exporter.rollout.source import RolloutSource
from exporter.rollout.version_channel import VersionChannelSource
from exporter.status_page.source import StatusPageSource
from exporter.tctl.identity_source import IdentitySource
from exporter.tctl.version_source import TctlVersions, TctlVersionSource


def build_sources(hub: Hub, record: ProbeRecorder | None) -> list[Source]:
    """One source per enabled subject: a probe per tenant, fleet (with the expiry of the
    identity tctl uses) and rollout when enabled, and the status page when it has a URL."""
    sources: list[Source] = []
    tctl_versions = TctlVersions(hub)
    for tenant in hub.tenants.values():
        sources.append(PingSource(hub, tenant, record))
        if tenant.config.version_channel.enabled:
            sources.append(VersionChannelSource(hub, tenant))
        if tenant.config.inventory.enabled:
            sources.append(InventorySource(hub, tenant))
            sources.append(IdentitySource(hub, tenant))
        if tenant.config.rollout.enabled:
            sources.append(RolloutSource(hub, tenant))
        if tenant.config.uses_tctl:
            if tenant.config.agent_report.enabled:
                sources.append(AgentReportSource(hub, tenant))
            if tenant.config.maintenance_config.enabled:
                sources.append(MaintenanceConfigSource(hub, tenant))
            sources.append(TctlVersionSource(hub, tenant, tctl_versions))
    if hub.settings.status_page.url:
        sources.append(StatusPageSource(hub, hub.settings.status_page))
    return sources


async def close_sources(sources: Sequence[Source]) -> None:
    with anyio.CancelScope(shield=True):
        for source in sources:
            await source.aclose()
