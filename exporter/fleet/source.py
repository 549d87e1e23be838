"""The fleet source: `tctl inventory ls --format=json`, parsed and stored.

Parsing 10,000 agents takes a noticeable slice of a CPU, so it runs in a worker thread and the
event loop keeps serving scrapes and probes. tctl's raw output is dropped as soon as it is
parsed: only the typed instances are kept (`TenantState.inventory`). The fleet's families need
the control-plane and target versions and the rollout's groups too, so the tenant's deriver
derives and publishes them (exporter.derivations): after a refresh here, and whenever one of
the others changes.
"""

from __future__ import annotations

import logging

import anyio.to_thread

from exporter.core.errors import SourceError
from exporter.core.source import Source
from exporter.core.state import Hub, TenantState
from exporter.exposition import memtrim
from exporter.fleet.derive import FleetView
from exporter.fleet.model import InventoryParseError, parse_inventory
from exporter.tctl.runner import run_tenant_tctl

log = logging.getLogger(__name__)

INVENTORY_ARGS = ("inventory", "ls", "--format=json")


def scaled_interval(
    interval: float, response_bytes: int, max_bytes_per_hour: int, max_interval: float
) -> float:
    """The inventory's next interval: `interval`, stretched at large fleets so the inventory
    pulls at most `max_bytes_per_hour` from the tenant (each call scans Auth's backend), but
    never beyond `max_interval` (nor below `interval`). At ~630 bytes an agent and the default
    40 MB an hour: 60 s up to ~1,000 agents, ~9.5 min at 10,000, the hour cap from ~63,000."""
    if max_bytes_per_hour <= 0:
        return interval
    stretched = response_bytes * 3600.0 / max_bytes_per_hour
    return max(interval, min(stretched, max(max_interval, interval)))


class InventorySource(Source):
    kind = "inventory"
    timeout_slack = 5.0

    def __init__(self, hub: Hub, tenant: TenantState) -> None:
        config = tenant.config.inventory
        super().__init__(tenant.name, config.interval, config.timeout)
        self.hub = hub
        self.tenant = tenant

    @property
    def view(self) -> FleetView | None:
        """The fleet as last derived and published (for the check command and tests)."""
        return self.tenant.fleet

    async def refresh(self) -> None:
        config = self.tenant.config
        data = await run_tenant_tctl(
            config,
            INVENTORY_ARGS,
            timeout=self.timeout,
            max_bytes=config.inventory.max_output_bytes,
        )
        self.response_bytes = len(data)
        inventory = config.inventory
        self.interval = scaled_interval(
            inventory.interval, len(data), inventory.max_bytes_per_hour, inventory.max_interval
        )
        holder: list[bytes | bytearray] = [data]
        del data  # the worker drops the only reference once parsed: no raw copy lingers
        await anyio.to_thread.run_sync(self._parse_and_store, holder)
        self.hub.changed(self.tenant)

    def _parse_and_store(self, holder: list[bytes | bytearray]) -> None:
        with memtrim.collector_paused():
            self._parse_and_store_now(holder)

    def _parse_and_store_now(self, holder: list[bytes | bytearray]) -> None:
        try:
            parsed = parse_inventory(holder.pop())
        except InventoryParseError as exc:
            raise SourceError("parse", f"tctl inventory ls: {exc}") from None
        if parsed.skipped:
            more = parsed.skipped - len(parsed.skipped_examples)
            log.warning(
                "tenant %s: skipped %d of %d inventory records that are not valid instances: %s%s",
                self.tenant.name,
                parsed.skipped,
                parsed.skipped + len(parsed.instances),
                "; ".join(parsed.skipped_examples),
                f"; and {more} more" if more else "",
            )
        self.tenant.inventory = parsed.instances
