"""Pure SLA arithmetic: budgets, month bounds, minute classification, burn rates, intervals."""

from __future__ import annotations

import calendar
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.sla.derive import (
    DownInterval,
    MinuteRecord,
    burn_rate,
    classify,
    down_intervals,
    error_budget_seconds,
    month_bounds,
    month_bounds_of,
    month_label,
    parse_month,
    shift_month,
    summarize,
)

NOV_2026 = calendar.timegm((2026, 11, 1, 0, 0, 0))  # a 30-day month
DEC_2026 = calendar.timegm((2026, 12, 1, 0, 0, 0))  # a 31-day month
JAN_2027 = calendar.timegm((2027, 1, 1, 0, 0, 0))


def up(minute: int, maintenance: bool = False) -> MinuteRecord:
    return MinuteRecord(minute, 4, 0, maintenance)


def down(minute: int, maintenance: bool = False) -> MinuteRecord:
    return MinuteRecord(minute, 4, 4, maintenance)


# Budgets: the figures a customer checks by hand, exactly (no float noise).
@pytest.mark.parametrize(
    ("objective", "month_start", "month_end", "budget"),
    [
        (0.999, NOV_2026, DEC_2026, 2592.0),
        (0.999, DEC_2026, JAN_2027, 2678.4),
        (0.9999, NOV_2026, DEC_2026, 259.2),
        (0.9999, DEC_2026, JAN_2027, 267.84),
    ],
)
def test_error_budget_of_30_and_31_day_months(
    objective: float, month_start: int, month_end: int, budget: float
) -> None:
    assert error_budget_seconds(objective, month_start, month_end) == budget


def test_error_budget_of_february() -> None:
    assert error_budget_seconds(0.999, *month_bounds_of(2026, 2)) == 2419.2  # 28 days
    assert error_budget_seconds(0.999, *month_bounds_of(2028, 2)) == 2505.6  # 29 days


@pytest.mark.parametrize(
    ("year", "month", "days"),
    [
        (2026, 2, 28),
        (2028, 2, 29),  # leap year
        (2100, 2, 28),  # divisible by 100, not by 400: not a leap year
        (2000, 2, 29),  # divisible by 400: leap year
        (2026, 4, 30),
        (2026, 12, 31),  # the end is in the next year
        (2026, 1, 31),
    ],
)
def test_month_bounds_lengths(year: int, month: int, days: int) -> None:
    start, end = month_bounds_of(year, month)
    assert start == calendar.timegm((year, month, 1, 0, 0, 0))
    assert end - start == days * 86400


def test_month_bounds_of_a_timestamp_at_the_edges() -> None:
    assert month_bounds(NOV_2026) == (NOV_2026, DEC_2026)
    assert month_bounds(DEC_2026 - 0.001) == (NOV_2026, DEC_2026)
    assert month_bounds(DEC_2026) == (DEC_2026, JAN_2027)
    assert month_bounds(JAN_2027 - 1) == (DEC_2026, JAN_2027)
    assert month_label(DEC_2026 - 1) == "2026-11"


def test_shift_month_across_years() -> None:
    assert shift_month(NOV_2026, 2) == JAN_2027
    assert shift_month(NOV_2026, -13) == calendar.timegm((2025, 10, 1, 0, 0, 0))
    assert shift_month(JAN_2027, -1) == DEC_2026


def test_parse_month() -> None:
    assert parse_month("2026-11") == (NOV_2026, DEC_2026)
    for bad in ("2026-13", "2026-00", "2026-1", "26-11", "2026/11", ""):
        with pytest.raises(ValueError, match="YYYY-MM"):
            parse_month(bad)


@pytest.mark.parametrize(
    ("probes", "failed", "expected"),
    [
        (0, 0, "unobserved"),
        (1, 0, "up"),
        (1, 1, "down"),
        (2, 1, "up"),  # half failed is not "most": a tie is up
        (3, 2, "down"),
        (4, 2, "up"),
        (4, 3, "down"),
    ],
)
def test_classify(probes: int, failed: int, expected: str) -> None:
    assert classify(MinuteRecord(NOV_2026, probes, failed, False)) == expected


def test_unobserved_time_counts_neither_way() -> None:
    # 10 minutes seen, 1 of them down, the rest of the month unobserved.
    minutes = [up(NOV_2026 + i * 60) for i in range(9)] + [down(NOV_2026 + 9 * 60)]
    minutes.append(MinuteRecord(NOV_2026 + 3600, 0, 0, False))  # a row without probes
    summary = summarize(minutes, 0.999, True, NOV_2026 + 86400)
    assert summary.observed == 600
    assert summary.downtime == 60
    assert summary.uptime_ratio == pytest.approx(0.9)
    assert summary.budget_remaining_ratio == pytest.approx(1 - 60 / 2592)
    assert (summary.period_start, summary.period_end) == (NOV_2026, DEC_2026)
    assert summary.budget == 2592.0


def test_nothing_observed() -> None:
    summary = summarize([], 0.999, True, NOV_2026 + 100)
    assert summary.observed == 0
    assert summary.uptime_ratio is None  # no evidence is not 100 % uptime
    assert summary.budget_remaining_ratio == 1.0
    assert set(summary.burn_rates.values()) == {0.0}
    assert not summary.breached


def test_breached_only_once_downtime_exceeds_the_budget() -> None:
    # 0.99 over 30 days: 25920 s = exactly 432 minutes of budget.
    at_budget = [down(NOV_2026 + i * 60) for i in range(432)]
    summary = summarize(at_budget, 0.99, True, NOV_2026 + 432 * 60)
    assert summary.budget == 25920.0
    assert summary.downtime == 25920
    assert summary.budget_remaining_ratio == 0.0
    assert not summary.breached
    over = [*at_budget, down(NOV_2026 + 432 * 60)]
    summary = summarize(over, 0.99, True, NOV_2026 + 433 * 60)
    assert summary.breached
    assert summary.budget_remaining_ratio == pytest.approx(-1 / 432)


@pytest.mark.parametrize("exclude", [True, False])
def test_maintenance_minutes(exclude: bool) -> None:
    minutes = [
        down(NOV_2026, maintenance=True),
        down(NOV_2026 + 60, maintenance=True),
        down(NOV_2026 + 120),
        up(NOV_2026 + 180, maintenance=True),  # up in maintenance: nothing to move
    ]
    summary = summarize(minutes, 0.999, exclude, NOV_2026 + 200)
    assert summary.maintenance == 120  # reported either way
    assert summary.downtime == (60 if exclude else 180)
    assert summary.observed == 240
    assert summary.uptime_ratio == pytest.approx(1 - summary.downtime / 240)


def test_previous_month_feeds_burn_rates_not_the_period() -> None:
    # Down across midnight of the 1st: the new month starts clean, the 5m burn still sees it.
    minutes = [down(DEC_2026 - 120), down(DEC_2026 - 60), up(DEC_2026)]
    summary = summarize(minutes, 0.999, True, DEC_2026 + 30)
    assert (summary.period_start, summary.downtime, summary.observed) == (DEC_2026, 0, 60)
    assert summary.burn_rates["5m"] == pytest.approx((2 / 3) / 0.001)


def test_windows_expose_what_their_burn_rate_rests_on() -> None:
    # One down minute in 20 observed of the last day: a burn rate of 50, on 20 minutes of
    # evidence. Alerts need the coverage and the real downtime, not the ratio alone.
    now = NOV_2026 + 2 * 86400
    minutes = [down(now - 60)] + [up(now - 60 * i) for i in range(2, 21)]
    summary = summarize(minutes, 0.999, True, now)
    assert summary.burn_rates["1d"] == pytest.approx((1 / 20) / 0.001)
    assert summary.window_observed["1d"] == 20 * 60
    assert summary.window_downtime["1d"] == 60
    # The minute in progress has no probe yet: 4 of the window's 5 minutes are observed.
    assert summary.window_observed["5m"] == 4 * 60
    assert summary.window_downtime["5m"] == 60
    assert set(summary.window_observed) == set(summary.burn_rates)


def test_burn_rate_window_edges() -> None:
    now = NOV_2026 + 10 * 60 + 20  # 20 s into minute 10
    minutes = [
        down(NOV_2026 + 5 * 60),  # just outside 5m: the window is minutes 6..10
        up(NOV_2026 + 6 * 60),
        down(NOV_2026 + 7 * 60),
        MinuteRecord(NOV_2026 + 10 * 60, 1, 1, False),  # the minute in progress, with a probe
        down(NOV_2026 + 11 * 60),  # after now (clock stepped back): in no window
    ]
    assert burn_rate(minutes, 300, now, 0.999) == pytest.approx((2 / 3) / 0.001)
    assert burn_rate(minutes, 360, now, 0.999) == pytest.approx((3 / 4) / 0.001)
    # The minute in progress without probes yet is simply unobserved.
    assert burn_rate(minutes[:3], 300, now, 0.999) == pytest.approx((1 / 2) / 0.001)
    assert burn_rate(minutes, 300, now, 0.9999) == pytest.approx((2 / 3) / 0.0001)
    assert burn_rate([], 300, now, 0.999) == 0.0


def test_burn_rate_of_one_minute_down_in_an_hour_at_999_is_about_17() -> None:
    now = NOV_2026 + 59 * 60
    minutes = [up(NOV_2026 + i * 60) for i in range(59)] + [down(NOV_2026 + 59 * 60)]
    assert burn_rate(minutes, 3600, now, 0.999) == pytest.approx(1000 / 60)


@pytest.mark.parametrize("exclude", [True, False])
def test_burn_rate_and_maintenance(exclude: bool) -> None:
    minutes = [down(NOV_2026, maintenance=True), up(NOV_2026 + 60)]
    rate = burn_rate(minutes, 300, NOV_2026 + 60, 0.999, exclude_maintenance=exclude)
    assert rate == pytest.approx(0.0 if exclude else 500.0)


def test_down_intervals_merge_and_split() -> None:
    m = NOV_2026
    minutes = [
        down(m + 60 * 10),
        down(m + 60 * 11),
        down(m + 60 * 12),
        up(m + 60 * 13),
        down(m + 60 * 14),
        # minute 15 unobserved: the outage may have gone on, but nothing shows it
        down(m + 60 * 16),
        down(m + 60 * 17, maintenance=True),  # maintenance starts: a new interval
        down(m + 60 * 18, maintenance=True),
        down(m + 60 * 19),
    ]
    assert down_intervals(reversed(minutes), exclude_maintenance=True) == [
        DownInterval(m + 600, m + 780, False, False),
        DownInterval(m + 840, m + 900, False, False),
        DownInterval(m + 960, m + 1020, False, False),
        DownInterval(m + 1020, m + 1140, True, True),
        DownInterval(m + 1140, m + 1200, False, False),
    ]
    counted = down_intervals(minutes, exclude_maintenance=False)
    assert [(i.in_maintenance, i.excluded) for i in counted][3] == (True, False)
    assert down_intervals(minutes, True)[0].duration == 180


_minutes = st.lists(
    st.builds(
        MinuteRecord,
        minute_start=st.integers(0, 2 * 1440).map(lambda i: NOV_2026 + i * 60),
        probes=st.integers(0, 5),
        failed=st.integers(0, 5),
        maintenance=st.booleans(),
    ).filter(lambda r: r.failed <= r.probes),
    unique_by=lambda r: r.minute_start,
    max_size=200,
)


@given(minutes=_minutes, exclude=st.booleans())
def test_intervals_add_up_to_downtime_and_maintenance(
    minutes: list[MinuteRecord], exclude: bool
) -> None:
    summary = summarize(minutes, 0.999, exclude, NOV_2026 + 3 * 86400)
    intervals = down_intervals(minutes, exclude)
    assert sum(i.duration for i in intervals if not i.excluded) == summary.downtime
    assert sum(i.duration for i in intervals if i.in_maintenance) == summary.maintenance
    assert summary.uptime_ratio is None or 0.0 <= summary.uptime_ratio <= 1.0
    for a, b in itertools.pairwise(intervals):
        assert a.end <= b.start
        # Touching intervals exist only where the maintenance flag changes.
        assert a.end < b.start or a.in_maintenance != b.in_maintenance
