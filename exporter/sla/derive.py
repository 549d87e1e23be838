"""SLA arithmetic over per-minute probe records: pure functions of records, objective and time.

The SLA period is the calendar month in UTC. Each minute of it is one of:
- *unobserved*: no probe ran (exporter stopped, restarting, clock gap). It counts neither as up
  nor as down; `observed` says how much of the month was seen.
- *down*: strictly more than half of its probes failed.
- *up*: otherwise (a tie is up: one failure in two probes is not proof of an outage).

A down minute inside a status-page maintenance is reported in `maintenance` in every case; with
`exclude_maintenance` it is left out of `downtime` (and out of burn rates), otherwise it counts as
downtime like any other. It stays observed either way, so uptime = 1 - downtime / observed.

Nothing here does I/O: the ledger (exporter.sla.ledger) stores the records, the service and the
`sla report` command feed them in.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

from exporter.vocab import BURN_WINDOW_SECONDS

MINUTE = 60

WINDOW_SECONDS = BURN_WINDOW_SECONDS

LONGEST_WINDOW = max(WINDOW_SECONDS.values())
"""How far before `now` a caller must supply records for every burn rate to be right."""

MinuteClass = Literal["up", "down", "unobserved"]

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, slots=True)
class MinuteRecord:
    """Probes of one tenant in one UTC minute."""

    minute_start: int
    """Unix seconds, a multiple of 60."""
    probes: int
    failed: int
    maintenance: bool
    """Whether a status-page maintenance covered this minute when a probe ran."""


@dataclass(frozen=True)
class DownInterval:
    """Consecutive down minutes with the same maintenance flag, [start, end) in Unix seconds."""

    start: int
    end: int
    in_maintenance: bool
    excluded: bool
    """True when the interval is maintenance and maintenance is excluded: not downtime."""

    @property
    def duration(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class MonthToDate:
    """A tenant's month so far as people read it: the summary and its down intervals."""

    summary: SlaSummary
    intervals: list[DownInterval]
    month_start: float


@dataclass(frozen=True)
class SlaSummary:
    objective: float
    period_start: int
    period_end: int
    budget: float
    """Allowed downtime in the period, seconds."""
    downtime: int
    """Down seconds counted against the budget."""
    maintenance: int
    """Down seconds that fell inside a maintenance (excluded from downtime only if configured)."""
    observed: int
    """Seconds of the period with at least one probe."""
    uptime_ratio: float | None
    """1 - downtime / observed; None while nothing was observed (no data is not 100 %)."""
    budget_remaining_ratio: float
    burn_rates: dict[str, float] = field(default_factory=dict)
    window_observed: dict[str, int] = field(default_factory=dict)
    """Observed seconds of each burn-rate window: what its burn rate was computed from."""
    window_downtime: dict[str, int] = field(default_factory=dict)
    """Down seconds of each burn-rate window, counted as in the burn rate."""
    breached: bool = False


def minute_floor(ts: float) -> int:
    """Start of the UTC minute holding `ts`."""
    return int(ts // MINUTE) * MINUTE


def month_bounds(ts: float) -> tuple[int, int]:
    """[start, end) of the UTC calendar month holding `ts`, in Unix seconds."""
    moment = datetime.fromtimestamp(ts, UTC)
    return month_bounds_of(moment.year, moment.month)


def month_bounds_of(year: int, month: int) -> tuple[int, int]:
    """[start, end) of a UTC calendar month, in Unix seconds."""
    start = calendar.timegm((year, month, 1, 0, 0, 0))
    days = calendar.monthrange(year, month)[1]
    return start, start + days * 86400


def parse_month(text: str) -> tuple[int, int]:
    """`YYYY-MM` -> [start, end) of that UTC month; ValueError on anything else."""
    match = _MONTH.match(text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ValueError(f"invalid month {text!r}: expected YYYY-MM, e.g. 2026-11")
    return month_bounds_of(int(match.group(1)), int(match.group(2)))


def month_label(ts: float) -> str:
    """`YYYY-MM` of the UTC month holding `ts`."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m")


def shift_month(start: int, months: int) -> int:
    """Start of the month `months` after (negative: before) the month starting at `start`."""
    moment = datetime.fromtimestamp(start, UTC)
    index = moment.year * 12 + moment.month - 1 + months
    return month_bounds_of(index // 12, index % 12 + 1)[0]


def _allowed_fraction(objective: float) -> Decimal:
    # Objectives are written in decimal (0.999); computing 1 - objective in binary floating point
    # gives 0.0010000000000000009 and a budget of 2592.0000000000023 s. Going through the
    # shortest decimal repr keeps the figures a customer checks by hand exact.
    return Decimal(1) - Decimal(repr(objective))


def error_budget_seconds(objective: float, start: int, end: int) -> float:
    """Downtime allowed over [start, end): its length x (1 - objective).

    2592 s for a 30-day month and 2678.4 s for a 31-day month at 99.9 %.
    """
    return float(_allowed_fraction(objective) * (end - start))


def classify(minute: MinuteRecord) -> MinuteClass:
    if minute.probes <= 0:
        return "unobserved"
    if minute.failed * 2 > minute.probes:
        return "down"
    return "up"


def _counts_as_down(minute: MinuteRecord, exclude_maintenance: bool) -> bool:
    return classify(minute) == "down" and not (exclude_maintenance and minute.maintenance)


def window_counts(
    minutes: Iterable[MinuteRecord],
    window_seconds: int,
    now: float,
    *,
    exclude_maintenance: bool = True,
) -> tuple[int, int]:
    """(observed minutes, down minutes) of the trailing window.

    The window holds the `window_seconds / 60` most recent minutes, the one in progress included
    (it has counted probes only once it has probes; until then it is unobserved like any gap).
    Minutes after `now` (left by a clock that stepped back) are outside every window.
    """
    current = minute_floor(now)
    first = current - window_seconds + MINUTE
    observed = down = 0
    for minute in minutes:
        if first <= minute.minute_start <= current and minute.probes > 0:
            observed += 1
            if _counts_as_down(minute, exclude_maintenance):
                down += 1
    return observed, down


def burn_rate(
    minutes: Iterable[MinuteRecord],
    window_seconds: int,
    now: float,
    objective: float,
    *,
    exclude_maintenance: bool = True,
) -> float:
    """(down minutes / observed minutes) / (1 - objective) over the trailing window.

    Nothing observed gives 0: there is no evidence of burn, and an alert on burn rate must not
    fire because the exporter was down; coverage is for the window's observed seconds to show.
    """
    observed, down = window_counts(
        minutes, window_seconds, now, exclude_maintenance=exclude_maintenance
    )
    return _rate(observed, down, objective)


def _rate(observed: int, down: int, objective: float) -> float:
    if observed == 0:
        return 0.0
    return float(Decimal(down) / Decimal(observed) / _allowed_fraction(objective))


def summarize(
    minutes: Iterable[MinuteRecord],
    objective: float,
    exclude_maintenance: bool,
    now: float,
) -> SlaSummary:
    """The SLA of the month holding `now`.

    `minutes` should cover that month and the 3 days before `now` (the longest burn window
    reaches into the previous month early in a month); records of other months only feed burn
    rates. Every record of the month counts, also one after `now` left by a clock that stepped
    back: it was observed.

    uptime_ratio is None while nothing was observed: no evidence is not 100 % uptime.
    """
    start, end = month_bounds(now)
    records = list(minutes)
    observed = down = maintenance = 0
    for minute in records:
        if not start <= minute.minute_start < end:
            continue
        kind = classify(minute)
        if kind == "unobserved":
            continue
        observed += 1
        if kind == "down":
            if minute.maintenance:
                maintenance += 1
            if not (exclude_maintenance and minute.maintenance):
                down += 1
    budget = error_budget_seconds(objective, start, end)
    downtime = down * MINUTE
    observed_seconds = observed * MINUTE
    uptime = 1.0 - downtime / observed_seconds if observed_seconds else None
    # Burn windows look at 3 days at most: scan the month once, then only that tail per window.
    current = minute_floor(now)
    recent = [m for m in records if current - LONGEST_WINDOW < m.minute_start <= current]
    counts = {
        window: window_counts(recent, seconds, now, exclude_maintenance=exclude_maintenance)
        for window, seconds in WINDOW_SECONDS.items()
    }
    return SlaSummary(
        objective=objective,
        period_start=start,
        period_end=end,
        budget=budget,
        downtime=downtime,
        maintenance=maintenance * MINUTE,
        observed=observed_seconds,
        uptime_ratio=uptime,
        budget_remaining_ratio=1.0 - downtime / budget,
        burn_rates={w: _rate(obs, down, objective) for w, (obs, down) in counts.items()},
        window_observed={w: obs * MINUTE for w, (obs, _) in counts.items()},
        window_downtime={w: down * MINUTE for w, (_, down) in counts.items()},
        breached=downtime > budget,
    )


def down_intervals(
    minutes: Iterable[MinuteRecord], exclude_maintenance: bool
) -> list[DownInterval]:
    """Down minutes merged into intervals, in time order.

    Minutes merge when they touch and share the maintenance flag, so each interval is wholly
    inside or wholly outside maintenance. An unobserved minute ends an interval: nothing shows
    the service was down then. Maintenance intervals are listed in every case, flagged
    `excluded` when `exclude_maintenance` keeps them out of downtime.
    """
    down = sorted((m for m in minutes if classify(m) == "down"), key=lambda m: m.minute_start)
    intervals: list[DownInterval] = []
    for minute in down:
        last = intervals[-1] if intervals else None
        if (
            last is not None
            and last.end == minute.minute_start
            and last.in_maintenance == minute.maintenance
        ):
            intervals[-1] = DownInterval(
                last.start, minute.minute_start + MINUTE, last.in_maintenance, last.excluded
            )
        else:
            intervals.append(
                DownInterval(
                    minute.minute_start,
                    minute.minute_start + MINUTE,
                    minute.maintenance,
                    exclude_maintenance and minute.maintenance,
                )
            )
    return intervals
