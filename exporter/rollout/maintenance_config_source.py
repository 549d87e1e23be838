"""The `maintenance_config` source: `tctl get cluster_maintenance_config --format=json`.

Gives `agent_upgrade_window_next_start_timestamp_seconds`: when v1 `unit` and kube agents next
get to update. The resource changes rarely and is a few hundred bytes from Auth's cache; the
source re-reads it every `interval` (10 minutes by default), which also moves the published next
start on once a window has passed. NotFound (no window set) clears the family. A role without
the rule or an Auth server that cannot serve it is said once, without counting an error every
interval (see exporter.rollout.agent_report_source).
"""

from __future__ import annotations

from datetime import UTC, datetime

from exporter.core.catalogue import UPGRADE_WINDOW_NEXT_START
from exporter.core.errors import SourceError, SourceUnavailableError
from exporter.core.keys import PublishKey
from exporter.core.source import Source
from exporter.core.state import Hub, TenantState
from exporter.rollout.agent_report_source import UNAVAILABLE_RECHECK, unavailable_reason
from exporter.rollout.maintenance_config_model import (
    MaintenanceConfigParseError,
    UpgradeWindow,
    parse_maintenance_config,
)
from exporter.tctl.runner import TctlNotFoundError, run_tenant_tctl

MAINTENANCE_CONFIG_ARGS = ("get", "cluster_maintenance_config", "--format=json")
MAX_MAINTENANCE_CONFIG_BYTES = 1024 * 1024
RESOURCE = "cluster_maintenance_config"


class MaintenanceConfigSource(Source):
    kind = "maintenance_config"
    timeout_slack = 5.0

    def __init__(self, hub: Hub, tenant: TenantState) -> None:
        config = tenant.config
        super().__init__(tenant.name, config.maintenance_config.interval, config.inventory.timeout)
        self.hub = hub
        self.tenant = tenant

    @property
    def key(self) -> PublishKey:
        return PublishKey("maintenance_config", self.tenant.name)

    async def refresh(self) -> None:
        config = self.tenant.config
        window: UpgradeWindow | None
        try:
            data = await run_tenant_tctl(
                config,
                MAINTENANCE_CONFIG_ARGS,
                timeout=self.timeout,
                max_bytes=MAX_MAINTENANCE_CONFIG_BYTES,
            )
        except TctlNotFoundError as exc:
            self.response_bytes = len(exc.message)
            window = None
        except SourceError as exc:
            reason = unavailable_reason(exc, RESOURCE)
            if reason is not None:
                raise SourceUnavailableError(reason, UNAVAILABLE_RECHECK) from None
            raise
        else:
            self.response_bytes = len(data)
            try:
                window = parse_maintenance_config(data)
            except MaintenanceConfigParseError as exc:
                raise SourceError("parse", f"tctl get {RESOURCE}: {exc}") from None
        self.tenant.upgrade_window = window
        families = []
        if window is not None:
            start = window.next_start(datetime.now(UTC))
            families.append(UPGRADE_WINDOW_NEXT_START.single([self.tenant.name], start.timestamp()))
        self.hub.publish(self.key, families)
