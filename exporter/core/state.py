"""The in-memory state shared by sources: last good models per tenant, and the exposition.

Only the SLA ledger is persisted (exporter.sla.ledger); everything here is rebuilt by the sources.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client.metrics_core import Metric

from exporter.config import Settings, TenantConfig
from exporter.core.keys import PublishKey
from exporter.exposition.body import Exposition

if TYPE_CHECKING:
    from exporter.core.deriver import Deriver
    from exporter.fleet.derive import FleetView
    from exporter.fleet.model import Instance
    from exporter.probe.model import PingInfo
    from exporter.rollout.agent_report_model import MergedReport
    from exporter.rollout.maintenance_config_model import UpgradeWindow
    from exporter.rollout.model import Rollout
    from exporter.status_page.model import Summary


@dataclass
class TenantState:
    """Last good data of one tenant, as typed models."""

    config: TenantConfig
    ping: PingInfo | None = None
    """Last successful /webapi/ping answer."""
    channel_version: str | None = None
    """Target version from the v1 version channel (tenants without auto_update in ping)."""
    inventory: list[Instance] | None = None
    """Last good parsed `tctl inventory ls` (exporter.fleet.model), None before the first."""
    rollout: Rollout | None = None
    """Last good Managed Updates v2 rollout (exporter.rollout.model), None when none."""
    upgrade_window: UpgradeWindow | None = None
    """The agent upgrade window (cluster_maintenance_config), None when unset or unread."""
    agent_report: MergedReport | None = None
    """The last merged agent report read (autoupdate_agent_report), None without one."""
    tctl_version: str | None = None
    """The version of the tctl the exporter runs for this tenant, once read."""
    fleet: FleetView | None = None
    """Derived, owned by the tenant's deriver: the fleet last published (for `check`)."""

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def control_plane_version(self) -> str | None:
        return self.ping.server_version if self.ping else None

    @property
    def target_agent_version(self) -> str | None:
        """The rollout's target whenever a Managed Updates v2 rollout exists, else ping's
        `agent_version`, else the v1 channel's. Ping answers for one update group (without
        `?group=`, the rollout's last, usually unstarted): during a rollout its version is the
        start version, not where the fleet is going."""
        if self.rollout is not None and self.rollout.spec.target_version:
            return self.rollout.spec.target_version
        if self.ping and self.ping.auto_update and self.ping.auto_update.agent_version:
            return self.ping.auto_update.agent_version
        return self.channel_version


@dataclass
class Hub:
    """Where sources publish: the exposition plus the state that derivations read."""

    settings: Settings
    exposition: Exposition = field(default_factory=Exposition)
    tenants: dict[str, TenantState] = field(default_factory=dict)
    status: Summary | None = None
    """Last good status-page summary (maintenance windows feed the SLA ledger)."""
    status_at: float | None = None
    """When the status page last confirmed `status` (a 200 or a 304), Unix seconds."""
    derivers: dict[str, Deriver] = field(default_factory=dict)
    """The deriver of each tenant (exporter.core.deriver), attached by exporter.app.build_hub."""

    def __post_init__(self) -> None:
        for tenant in self.settings.tenants:
            self.tenants.setdefault(tenant.name, TenantState(tenant))

    def publish(self, key: PublishKey, families: Iterable[Metric]) -> None:
        """Render and compress `families` in the caller's thread: small sets (probe, health,
        status page) from the event loop, large ones (fleet, SLA) from their worker thread."""
        self.exposition.update(key, families)

    def remove(self, key: PublishKey) -> None:
        """Drop every family published under `key` (a tenant or page no longer watched)."""
        self.exposition.remove(key)

    def changed(self, tenant: TenantState) -> None:
        """A source stored a new model of `tenant`: what depends on it is derived again."""
        deriver = self.derivers.get(tenant.name)
        if deriver is not None:
            deriver.changed()
