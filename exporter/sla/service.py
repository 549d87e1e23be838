"""Glue between the probe, the SLA ledger and the exposition.

The probe calls `record_probe` (or `record` from async code) with each result; `run` publishes
every tenant's SLA families every 15 s and prunes the ledger once a day. The ledger is the
source of truth; the service keeps the records of the current month (and the 3 days before, for
burn windows) in memory after one read, and updates them as it writes, so a publish costs a pass
over at most 34 days of minutes and no database read. The cache is reloaded when the month turns
or the clock steps back before it.

A database error never stops the exporter: it is logged, counted in
`teleport_cloud_sla_ledger_errors_total{operation}`, and the last good SLA families stay exposed.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

import anyio
import anyio.to_thread

from exporter.core.clock import Clock
from exporter.core.keys import PublishKey
from exporter.core.state import Hub
from exporter.sla.derive import (
    LONGEST_WINDOW,
    MINUTE,
    MinuteRecord,
    MonthToDate,
    down_intervals,
    minute_floor,
    month_bounds,
    summarize,
)
from exporter.sla.families import ledger_error_families, sla_families
from exporter.sla.ledger import Ledger, LedgerError
from exporter.status_page.model import concerns
from exporter.vocab import LEDGER_OPERATIONS

log = logging.getLogger(__name__)

_ACTIVE_MAINTENANCE = frozenset({"in_progress", "verifying"})
FRESH_INTERVALS = 3
"""A status-page summary excuses minutes only while it is at most this many of the page's
intervals old: while the page is unreachable, its last "in progress" must not excuse real
downtime for hours."""


@dataclass
class _Cached:
    """A tenant's records over [start, end), mirroring the ledger."""

    start: int
    end: int
    records: dict[int, MinuteRecord] = field(default_factory=dict)


class SlaService:
    def __init__(
        self,
        hub: Hub,
        ledger: Ledger | None,
        clock: Clock,
        *,
        publish_interval: float = 15.0,
        prune_interval: float = 86400.0,
    ) -> None:
        self.hub = hub
        self.ledger = ledger
        self.clock = clock
        self.publish_interval = publish_interval
        self.prune_interval = prune_interval
        # One lock for the cache and the counts: a write and its cache update, or a reload,
        # happen as one step, so a probe recorded during a reload is never lost from memory.
        self._lock = threading.RLock()
        self._cache: dict[str, _Cached] = {}
        self._errors: dict[str, int] = dict.fromkeys(LEDGER_OPERATIONS, 0)
        if ledger is not None:
            hub.publish(PublishKey("ledger_errors"), ledger_error_families(self._errors))

    def in_maintenance(self, at: float) -> bool:
        """Whether the last good status page puts `at` inside a maintenance.

        In progress or verifying counts whatever the schedule says (maintenances overrun);
        a scheduled one counts between scheduled_for and scheduled_until; a completed one never
        does, even before its scheduled end, so downtime after it is not hidden. Only
        maintenances that concern a kept component (`status_page.components`) count, and only
        while the summary is fresh (`FRESH_INTERVALS`).
        """
        status = self.hub.status
        if status is None or not self.status_fresh(at):
            return False
        moment = datetime.fromtimestamp(at, UTC)
        keep = frozenset(self.hub.settings.status_page.components)
        for maintenance in status.scheduled_maintenances:
            if not concerns(maintenance, keep):
                continue
            if maintenance.status in _ACTIVE_MAINTENANCE:
                return True
            if maintenance.status == "completed":
                continue
            start, until = maintenance.scheduled_for, maintenance.scheduled_until
            if start is not None and until is not None and _aware(start) <= moment < _aware(until):
                return True
        return False

    def status_fresh(self, at: float) -> bool:
        """Whether the page confirmed its summary recently enough to be evidence at `at`."""
        confirmed = self.hub.status_at
        max_age = FRESH_INTERVALS * self.hub.settings.status_page.interval
        return confirmed is not None and at - confirmed <= max_age

    def record_probe(self, tenant: str, at: float, success: bool) -> None:
        """Count one probe result into the ledger (synchronous: one committed upsert)."""
        if self.ledger is None:
            return
        maintenance = self.in_maintenance(at)
        with self._lock:
            try:
                self.ledger.record_probe(tenant, at, success, maintenance)
            except (sqlite3.Error, LedgerError) as exc:
                self._failed("record", exc)
                return
            cached = self._cache.get(tenant)
            minute = minute_floor(at)
            if cached is not None and cached.start <= minute < cached.end:
                old = cached.records.get(minute)
                cached.records[minute] = MinuteRecord(
                    minute,
                    (old.probes if old else 0) + 1,
                    (old.failed if old else 0) + (0 if success else 1),
                    (old.maintenance if old else False) or maintenance,
                )

    async def record(self, tenant: str, at: float, success: bool) -> None:
        """`record_probe` from async code, in a worker thread: the commit's fsync and a cache
        reload under way must not stall the event loop (probe timings run on it)."""
        await anyio.to_thread.run_sync(self.record_probe, tenant, at, success)

    def publish(self, now: float | None = None) -> None:
        """Publish every tenant's SLA families, and the ledger error counter."""
        if self.ledger is None:
            return
        now = self.clock.now() if now is None else now
        for name, state in list(self.hub.tenants.items()):
            try:
                records = self._records(name, now)
            except (sqlite3.Error, LedgerError) as exc:
                self._failed("read", exc)
                continue  # the tenant's last good families stay exposed
            sla = state.config.sla
            summary = summarize(records, sla.objective, sla.exclude_maintenance, now)
            self.hub.publish(PublishKey("sla", name), sla_families(name, summary))
        with self._lock:
            counts = dict(self._errors)
        self.hub.publish(PublishKey("ledger_errors"), ledger_error_families(counts))

    def prune(self, now: float | None = None) -> None:
        if self.ledger is None:
            return
        now = self.clock.now() if now is None else now
        try:
            deleted = self.ledger.prune(now)
        except (sqlite3.Error, LedgerError) as exc:
            self._failed("prune", exc)
            return
        if deleted:
            log.info("SLA ledger: pruned %d minute rows older than 13 months", deleted)

    async def run(self) -> None:
        """Publish every publish_interval and prune every prune_interval, forever."""
        if self.ledger is None:
            return
        last_prune: float | None = None
        while True:
            try:
                now = self.clock.now()
                # abs(): a clock stepped back must not postpone pruning by the size of the step.
                if last_prune is None or abs(now - last_prune) >= self.prune_interval:
                    await anyio.to_thread.run_sync(self.prune, now)
                    last_prune = now
                await anyio.to_thread.run_sync(self.publish, now)
            except Exception:
                # A bug here must not take the exporter down with it; the other sources go on.
                log.exception("SLA publishing failed")
            await anyio.sleep(self.publish_interval)

    def month_to_date(self, tenant: str, now: float) -> MonthToDate | None:
        """The tenant's month so far with its down intervals, from memory after the first read
        (the page at `/`); None without a ledger or while it cannot be read."""
        state = self.hub.tenants.get(tenant)
        if self.ledger is None or state is None:
            return None
        try:
            records = self._records(tenant, now)
        except (sqlite3.Error, LedgerError) as exc:
            self._failed("read", exc)
            return None
        sla = state.config.sla
        start = month_bounds(now)[0]
        month = sorted(
            (record for record in records if record.minute_start >= start),
            key=lambda record: record.minute_start,
        )
        return MonthToDate(
            summarize(records, sla.objective, sla.exclude_maintenance, now),
            down_intervals(month, sla.exclude_maintenance),
            start,
        )

    def error_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._errors)

    def _records(self, tenant: str, now: float) -> list[MinuteRecord]:
        assert self.ledger is not None
        month_start, month_end = month_bounds(now)
        start = min(month_start, minute_floor(now) - LONGEST_WINDOW + MINUTE)
        with self._lock:
            cached = self._cache.get(tenant)
            if cached is None or cached.end != month_end or start < cached.start:
                self._cache.pop(tenant, None)
                rows = self.ledger.minutes(tenant, start, month_end)
                cached = _Cached(start, month_end, {r.minute_start: r for r in rows})
                self._cache[tenant] = cached
            return list(cached.records.values())

    def _failed(self, operation: str, exc: Exception) -> None:
        with self._lock:
            self._errors[operation] += 1
        log.error("SLA ledger %s failed: %s", operation, exc)


def _aware(moment: datetime) -> datetime:
    # Statuspage sends offsets; a naive time would make the comparison raise, so read it as UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
