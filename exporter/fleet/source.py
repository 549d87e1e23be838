"""The fleet source: `tctl inventory ls --format=json`, parsed, derived and published.

Parsing, derivation and rendering of a 10,000-agent fleet take a noticeable slice of a CPU, so
they run in a worker thread and the event loop keeps serving scrapes and probes. The parsed
instances are kept (`TenantState.inventory`) so a new control-plane or target version from ping,
or a changed rollout (target version, group states), re-derives the fleet at once, without
waiting for the next tctl run; that too happens off the event loop (a background thread), as
100,000 agents take over a second. tctl's raw output is dropped as soon as it is parsed: only the
typed instances are kept.
"""

from __future__ import annotations

import logging
import threading

import anyio.to_thread

from exporter.core.errors import SourceError
from exporter.core.source import Source
from exporter.core.state import Hub, TenantState
from exporter.exposition import memtrim
from exporter.fleet.derive import FleetView, derive_fleet
from exporter.fleet.families import fleet_families
from exporter.fleet.model import Instance, InventoryParseError, parse_inventory
from exporter.rollout.groups import GroupPlan, plan_groups
from exporter.tctl.runner import run_tenant_tctl

Inputs = tuple[str | None, str | None, GroupPlan | None]
"""What a derivation depends on besides the instances: control-plane version, target version,
the rollout's group plan (None without a rollout)."""

log = logging.getLogger(__name__)

MAX_DERIVATIONS = 3
"""Derivations of one fleet in a row when its inputs keep changing meanwhile (a later change
is picked up by `_versions_changed`, which then sees the fleet)."""

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
        self.view: FleetView | None = None
        """The last published derivation (for the check command and tests)."""
        # Serialises derivations from the worker thread (refresh) and the event loop (version
        # change), so an older derivation can never overwrite a newer one.
        self._lock = threading.Lock()
        self._derived_for: Inputs | None = None
        self.rederiving: threading.Thread | None = None
        """The background re-derivation started by the last version change, if any."""
        hub.on_versions_changed.append(self._versions_changed)

    @property
    def key(self) -> tuple[str, str]:
        return ("fleet", self.tenant.name)

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
        await anyio.to_thread.run_sync(self._parse_and_publish, holder)

    def _parse_and_publish(self, holder: list[bytes | bytearray]) -> None:
        with memtrim.collector_paused():
            self._parse_and_publish_now(holder)

    def _parse_and_publish_now(self, holder: list[bytes | bytearray]) -> None:
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
        self._publish(parsed.instances)

    def _publish(self, instances: list[Instance] | None) -> None:
        """Derive and publish `instances` (None: the last good inventory) against the tenant's
        current versions. Versions are read under the lock, so whichever derivation runs last
        used the newest ones."""
        tenant = self.tenant
        with self._lock:
            if instances is None:
                instances = tenant.inventory
                if instances is None:
                    return
            # Versions or the rollout can change while this derives; until tenant.inventory is
            # set, `_versions_changed` skips such a change, so re-check here (bounded).
            for _ in range(MAX_DERIVATIONS):
                inputs = self._inputs()
                view = derive_fleet(instances, *inputs)
                per_agent = tenant.config.inventory.per_agent_metrics
                self.hub.publish(self.key, fleet_families(tenant.name, view, per_agent))
                tenant.inventory = instances
                self.view = view
                self._derived_for = inputs
                if self._inputs() == inputs:
                    break

    def _inputs(self) -> Inputs:
        tenant = self.tenant
        return (
            tenant.control_plane_version,
            tenant.target_agent_version,
            plan_groups(tenant.rollout),
        )

    def _versions_changed(self, tenant: TenantState) -> None:
        """Hub callback (event loop): re-derive the last good fleet against the new versions,
        in a background thread."""
        own = self.tenant
        if tenant.name != own.name or own.inventory is None:
            return
        if self._inputs() == self._derived_for:
            return
        self.rederiving = threading.Thread(
            target=self._rederive, name=f"fleet-{own.name}", daemon=True
        )
        self.rederiving.start()

    def _rederive(self) -> None:
        try:
            with memtrim.collector_paused():
                self._publish(None)
        except Exception:  # a derivation bug must not pass silently in a thread
            log.exception("tenant %s: re-deriving the fleet failed", self.tenant.name)
