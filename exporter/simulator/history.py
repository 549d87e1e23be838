"""A simulated SLA history for the demo tenant: the month so far, minute by minute.

`sla report --demo` and the page's tests need a ledger with something in it; a fresh demo has
only the minutes since it started. The history is deterministic, placed at fixed fractions of the
month's elapsed time so it has the same shape on the 1st at noon as on the 28th:
- a 7-minute outage (every probe failed) at 30 %;
- 12 unobserved minutes (the exporter was restarting) at 45 %;
- a 4-minute outage inside an announced maintenance at 70 %;
- one minute with a single failed probe of four (not down: most probes succeeded) at 85 %.
Every other minute has four successful probes.
"""

from __future__ import annotations

from exporter.sla.derive import MinuteRecord, minute_floor, month_bounds

PROBES_PER_MINUTE = 4
OUTAGE_AT, OUTAGE_MINUTES = 0.30, 7
GAP_AT, GAP_MINUTES = 0.45, 12
MAINTENANCE_AT, MAINTENANCE_MINUTES = 0.70, 4
FLAKY_AT = 0.85


def simulated_history(now: float) -> list[MinuteRecord]:
    """The demo tenant's minutes from the start of `now`'s month up to the minute before it."""
    start = int(month_bounds(now)[0])
    end = int(minute_floor(now))
    total = (end - start) // 60

    def span(fraction: float, length: int) -> range:
        first = int(total * fraction)
        return range(first, min(total, first + length))

    outage = span(OUTAGE_AT, OUTAGE_MINUTES)
    gap = span(GAP_AT, GAP_MINUTES)
    maintenance = span(MAINTENANCE_AT, MAINTENANCE_MINUTES)
    flaky = int(total * FLAKY_AT)
    records = []
    for index in range(total):
        if index in gap:
            continue
        failed = 0
        if index in outage or index in maintenance:
            failed = PROBES_PER_MINUTE
        elif index == flaky:
            failed = 1
        records.append(
            MinuteRecord(start + index * 60, PROBES_PER_MINUTE, failed, index in maintenance)
        )
    return records
