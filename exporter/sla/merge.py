"""Merging the SLA ledgers of several replicas: the best replica's view of every minute.

Each replica probes on its own and keeps its own ledger, so one replica's network failure must not
become the tenant's downtime. Per tenant-minute:
- observed when any replica observed it;
- down only when every replica that observed it saw it down (the alert rules' "best replica"
  reading of `probe_success`, applied to the evidence);
- in maintenance when any replica saw a maintenance (the status page is the same for all).

Pure: lists of records in, one list out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from exporter.sla.derive import MinuteRecord


class MinuteSource(Protocol):
    """What reports read minutes from: a ledger, or several merged."""

    def minutes(self, tenant: str, start: float, end: float) -> list[MinuteRecord]: ...


def _failure_ratio(record: MinuteRecord) -> tuple[float, int]:
    # Lowest failure ratio first; on a tie, the replica with more probes is the better witness.
    return (record.failed / record.probes, -record.probes)


def best_of(records: Sequence[MinuteRecord]) -> MinuteRecord:
    """One minute seen by several replicas -> the record of the replica that saw it best.

    Its up/down class is "up" if any replica saw it up, so "down" only if all saw it down.
    """
    best = min(records, key=_failure_ratio)
    maintenance = any(r.maintenance for r in records)
    return MinuteRecord(best.minute_start, best.probes, best.failed, maintenance)


def merge_replicas(replicas: Iterable[Sequence[MinuteRecord]]) -> list[MinuteRecord]:
    """The merged minutes of several replicas' records (each in any order), in time order.

    Records without probes are unobserved and ignored, as a missing row would be.
    """
    by_minute: dict[int, list[MinuteRecord]] = {}
    for records in replicas:
        for record in records:
            if record.probes > 0:
                by_minute.setdefault(record.minute_start, []).append(record)
    return [best_of(by_minute[minute]) for minute in sorted(by_minute)]


class MergedLedgers:
    """Several ledgers read as one (a MinuteSource)."""

    def __init__(self, ledgers: Sequence[MinuteSource]) -> None:
        self.ledgers = list(ledgers)

    def minutes(self, tenant: str, start: float, end: float) -> list[MinuteRecord]:
        return merge_replicas(ledger.minutes(tenant, start, end) for ledger in self.ledgers)
