"""The SLA service end to end: scripted probes on a manual clock, ledger, /metrics, report."""

from __future__ import annotations

import calendar
import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest

from exporter.config import (
    InventoryConfig,
    RolloutConfig,
    Settings,
    SlaConfig,
    TenantConfig,
)
from exporter.core.clock import ManualClock
from exporter.core.keys import PublishKey
from exporter.core.state import Hub
from exporter.derivations import attach_derivers
from exporter.sla.ledger import Ledger
from exporter.sla.report import build_report, format_text, main_report
from exporter.sla.service import FRESH_INTERVALS, SlaService
from exporter.status_page.model import Maintenance, Status, Summary

NOV_2026 = calendar.timegm((2026, 11, 1, 0, 0, 0))
DEC_2026 = calendar.timegm((2026, 12, 1, 0, 0, 0))
T0 = NOV_2026 + 9 * 86400 + 12 * 3600  # 2026-11-10T12:00:00Z


def tenant(name: str, objective: float = 0.999, exclude: bool = True) -> TenantConfig:
    return TenantConfig(
        proxy=f"{name}.example:443",
        name=name,
        inventory=InventoryConfig(enabled=False),
        rollout=RolloutConfig(enabled=False),
        sla=SlaConfig(objective=objective, exclude_maintenance=exclude),
    )


def make_settings(tmp_path: Path, *tenants: TenantConfig) -> Settings:
    return Settings(tenants=list(tenants) or [tenant("t")], state_dir=tmp_path / "state")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def ledger(settings: Settings) -> Iterator[Ledger]:
    opened = Ledger.open(settings.state_dir)
    yield opened
    opened.close()


def body(hub: Hub) -> str:
    return hub.exposition.body().decode()


def value(hub: Hub, series: str) -> float:
    """The value of one exact series (name and labels) in the rendered exposition."""
    for line in body(hub).splitlines():
        name, _, sample = line.rpartition(" ")
        if name == series:
            return float(sample)
    raise AssertionError(f"{series} not exposed")


def probe_minutes(
    service: SlaService, clock: ManualClock, tenants: list[str], minutes: int, failing: set[int]
) -> None:
    """Four probes a minute from T0 for `minutes` minutes; every probe of a failing minute
    fails. Minute 59 has a tie (2 of 4 failed: up) and the minute after the outage 1 of 4."""
    for minute in range(minutes):
        for probe in range(4):
            clock.set(T0 + minute * 60 + probe * 15)
            if minute in failing:
                success = False
            elif minute == 59:
                success = probe % 2 == 0
            elif minute - 1 in failing:
                success = probe != 0
            else:
                success = True
            for name in tenants:
                service.record_probe(name, clock.now(), success)


OUTAGE = set(range(60, 67))  # 7 minutes, 13:00 to 13:07


def test_nothing_observed_is_not_full_uptime(settings: Settings, ledger: Ledger) -> None:
    hub = attach_derivers(Hub(settings))
    clock = ManualClock(T0)
    service = SlaService(hub, ledger, clock)
    service.publish()
    assert value(hub, 'teleport_cloud_sla_observed_seconds{tenant="t"}') == 0.0
    assert "teleport_cloud_sla_uptime_ratio{" not in body(hub)
    probe_minutes(service, clock, ["t"], 1, set())
    clock.set(T0 + 61)
    service.publish()
    assert value(hub, 'teleport_cloud_sla_uptime_ratio{tenant="t"}') == 1.0
    out = io.StringIO()
    empty = make_settings(settings.state_dir.parent / "other")
    Ledger.open(empty.state_dir).close()
    assert main_report(empty, None, "text", out, now=T0) == 0
    assert "Uptime        not measured: nothing was observed" in out.getvalue()
    assert "100" not in out.getvalue().split("Uptime")[1].splitlines()[0]


def test_scripted_outage(settings: Settings, ledger: Ledger) -> None:
    hub = attach_derivers(Hub(settings))
    clock = ManualClock(T0)
    service = SlaService(hub, ledger, clock)
    probe_minutes(service, clock, ["t"], 97, OUTAGE)
    clock.set(T0 + 96 * 60 + 50)
    service.publish()

    assert value(hub, 'teleport_cloud_sla_downtime_seconds{tenant="t"}') == 420.0
    assert value(hub, 'teleport_cloud_sla_observed_seconds{tenant="t"}') == 97 * 60
    assert value(hub, 'teleport_cloud_sla_maintenance_seconds{tenant="t"}') == 0.0
    assert value(hub, 'teleport_cloud_sla_error_budget_seconds{tenant="t"}') == 2592.0
    assert value(hub, 'teleport_cloud_sla_objective_ratio{tenant="t"}') == 0.999
    assert value(hub, 'teleport_cloud_sla_period_start_timestamp_seconds{tenant="t"}') == NOV_2026
    assert value(hub, 'teleport_cloud_sla_period_end_timestamp_seconds{tenant="t"}') == DEC_2026
    assert value(hub, 'teleport_cloud_sla_uptime_ratio{tenant="t"}') == pytest.approx(
        1 - 420 / 5820
    )
    assert value(
        hub, 'teleport_cloud_sla_error_budget_remaining_ratio{tenant="t"}'
    ) == pytest.approx(1 - 420 / 2592)
    assert value(hub, 'teleport_cloud_sla_breached{tenant="t"}') == 0.0
    # Now is in minute 96: 5m covers minutes 92-96, 30m 67-96 (all up), 1h 37-96 (7 down of 60),
    # 2h and longer everything since T0 (7 down of 97 observed; before T0 nothing was seen).
    expected = {
        "5m": 0.0,
        "30m": 0.0,
        "1h": 7 / 60 / 0.001,
        "2h": 7 / 97 / 0.001,
        "6h": 7 / 97 / 0.001,
        "1d": 7 / 97 / 0.001,
        "3d": 7 / 97 / 0.001,
    }
    for window, rate in expected.items():
        series = f'teleport_cloud_sla_burn_rate{{tenant="t",window="{window}"}}'
        assert value(hub, series) == pytest.approx(rate)
    assert "# TYPE teleport_cloud_sla_burn_rate gauge" in body(hub)

    report = build_report(ledger, settings.tenants, None, clock.now())
    (entry,) = report["tenants"]
    assert entry["down_intervals"] == [
        {
            "start": "2026-11-10T13:00:00Z",
            "end": "2026-11-10T13:07:00Z",
            "duration_seconds": 420,
            "duration": "7m",
            "in_maintenance": False,
            "counted": True,
        }
    ]
    assert entry["downtime_seconds"] == 420
    assert entry["budget_seconds"] == 2592.0
    # 97 observed minutes out of the 9 days 13.6 hours elapsed since the 1st.
    assert entry["coverage_ratio"] == pytest.approx(5820 / (clock.now() - NOV_2026))


def _status(*maintenances: Maintenance) -> Summary:
    return Summary(
        status=Status(indicator="maintenance"), scheduled_maintenances=list(maintenances)
    )


def _at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def test_maintenance_window_excluded_when_configured_and_counted_otherwise(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path, tenant("ex", exclude=True), tenant("in", exclude=False))
    ledger = Ledger.open(settings.state_dir)
    hub = attach_derivers(Hub(settings))
    # Scheduled 13:00-13:03: the first 3 of the 7 outage minutes.
    hub.status_at = T0 + 3600  # the page confirmed it as the outage began
    hub.status = _status(
        Maintenance(
            id="m1",
            status="scheduled",
            scheduled_for=_at(T0 + 3600),
            scheduled_until=_at(T0 + 3600 + 180),
        )
    )
    clock = ManualClock(T0)
    service = SlaService(hub, ledger, clock)
    probe_minutes(service, clock, ["ex", "in"], 97, OUTAGE)
    service.publish()

    assert value(hub, 'teleport_cloud_sla_downtime_seconds{tenant="ex"}') == 240.0
    assert value(hub, 'teleport_cloud_sla_maintenance_seconds{tenant="ex"}') == 180.0
    assert value(hub, 'teleport_cloud_sla_downtime_seconds{tenant="in"}') == 420.0
    assert value(hub, 'teleport_cloud_sla_maintenance_seconds{tenant="in"}') == 180.0
    assert value(hub, 'teleport_cloud_sla_burn_rate{tenant="ex",window="1h"}') == pytest.approx(
        4 / 60 / 0.001
    )

    report = build_report(ledger, settings.tenants, "2026-11", clock.now())
    by_tenant = {t["tenant"]: t for t in report["tenants"]}
    assert [(i["start"], i["end"], i["in_maintenance"], i["counted"]) for i in
            by_tenant["ex"]["down_intervals"]] == [
        ("2026-11-10T13:00:00Z", "2026-11-10T13:03:00Z", True, False),
        ("2026-11-10T13:03:00Z", "2026-11-10T13:07:00Z", False, True),
    ]  # fmt: skip
    assert [i["counted"] for i in by_tenant["in"]["down_intervals"]] == [True, True]
    text = format_text(report)
    assert "2026-11-10T13:00:00Z  2026-11-10T13:03:00Z  3m           maintenance (excluded)" in text
    ledger.close()


@pytest.mark.parametrize(
    ("state", "offset_start", "offset_end", "expected"),
    [
        ("in_progress", 3600, 7200, True),  # overrunning: in progress whatever the schedule
        ("verifying", None, None, True),
        ("scheduled", -60, 60, True),
        ("scheduled", 0, 60, True),  # the start is inside
        ("scheduled", -60, 0, False),  # the end is not
        ("scheduled", 60, 120, False),
        ("completed", -60, 60, False),  # finished early: downtime after it is real
        ("scheduled", None, None, False),
    ],
)
def test_in_maintenance(
    settings: Settings,
    state: str,
    offset_start: int | None,
    offset_end: int | None,
    expected: bool,
) -> None:
    hub = attach_derivers(Hub(settings))
    service = SlaService(hub, None, ManualClock(T0))
    assert not service.in_maintenance(T0)
    hub.status_at = T0
    hub.status = _status(
        Maintenance(
            id="m",
            status=state,
            scheduled_for=None if offset_start is None else _at(T0 + offset_start),
            scheduled_until=None if offset_end is None else _at(T0 + offset_end),
        )
    )
    assert service.in_maintenance(T0) is expected


def test_naive_maintenance_times_are_utc(settings: Settings) -> None:
    hub = attach_derivers(Hub(settings))
    naive = _at(T0).replace(tzinfo=None)
    hub.status_at = T0
    hub.status = _status(
        Maintenance(
            id="m",
            status="scheduled",
            scheduled_for=naive,
            scheduled_until=_at(T0 + 60).replace(tzinfo=None),
        )
    )
    assert SlaService(hub, None, ManualClock(T0)).in_maintenance(T0 + 30)


def test_restart_keeps_the_month_and_the_gap_is_unobserved(settings: Settings) -> None:
    clock = ManualClock(T0)
    first = Ledger.open(settings.state_dir)
    probe_minutes(
        SlaService(attach_derivers(Hub(settings)), first, clock), clock, ["t"], 67, OUTAGE
    )
    first.close()

    # A new process two hours later: nothing probed yet, the month so far is already there.
    clock.set(T0 + 67 * 60 + 7200)
    second = Ledger.open(settings.state_dir)
    hub = attach_derivers(Hub(settings))
    service = SlaService(hub, second, clock)
    service.publish()
    assert value(hub, 'teleport_cloud_sla_downtime_seconds{tenant="t"}') == 420.0
    assert value(hub, 'teleport_cloud_sla_observed_seconds{tenant="t"}') == 67 * 60
    service.record_probe("t", clock.now(), True)
    service.publish()
    assert value(hub, 'teleport_cloud_sla_observed_seconds{tenant="t"}') == 68 * 60
    assert value(hub, 'teleport_cloud_sla_uptime_ratio{tenant="t"}') == pytest.approx(1 - 7 / 68)
    second.close()


def test_month_rollover_through_the_service(settings: Settings, ledger: Ledger) -> None:
    hub = attach_derivers(Hub(settings))
    clock = ManualClock(DEC_2026 - 120)
    service = SlaService(hub, ledger, clock)
    for at in (DEC_2026 - 120, DEC_2026 - 60):
        service.record_probe("t", at, False)
    service.publish(DEC_2026 - 1)
    assert value(hub, 'teleport_cloud_sla_downtime_seconds{tenant="t"}') == 120.0

    service.record_probe("t", DEC_2026 + 5, True)
    service.publish(DEC_2026 + 30)
    assert value(hub, 'teleport_cloud_sla_period_start_timestamp_seconds{tenant="t"}') == DEC_2026
    assert value(hub, 'teleport_cloud_sla_error_budget_seconds{tenant="t"}') == 2678.4
    assert value(hub, 'teleport_cloud_sla_downtime_seconds{tenant="t"}') == 0.0
    assert value(hub, 'teleport_cloud_sla_observed_seconds{tenant="t"}') == 60.0
    # The burn windows still see the end of November.
    assert value(hub, 'teleport_cloud_sla_burn_rate{tenant="t",window="5m"}') == pytest.approx(
        (2 / 3) / 0.001
    )
    assert ledger.months("t") == ["2026-11", "2026-12"]


def test_clock_stepping_back_is_counted_where_it_lands(settings: Settings, ledger: Ledger) -> None:
    hub = attach_derivers(Hub(settings))
    clock = ManualClock(T0)
    service = SlaService(hub, ledger, clock)
    service.record_probe("t", T0, False)
    service.publish()
    assert value(hub, 'teleport_cloud_sla_downtime_seconds{tenant="t"}') == 60.0
    # Back 5 days: before what the service holds in memory; it must read the ledger again.
    clock.set(T0 - 5 * 86400)
    service.record_probe("t", clock.now(), False)
    service.publish()
    assert value(hub, 'teleport_cloud_sla_downtime_seconds{tenant="t"}') == 120.0
    assert value(hub, 'teleport_cloud_sla_burn_rate{tenant="t",window="5m"}') == 1000.0
    clock.set(T0 + 60)  # forward again, into the minute after the first probe
    service.record_probe("t", clock.now(), True)
    service.publish()
    assert value(hub, 'teleport_cloud_sla_downtime_seconds{tenant="t"}') == 120.0
    assert value(hub, 'teleport_cloud_sla_observed_seconds{tenant="t"}') == 180.0


def test_database_errors_are_counted_and_do_not_raise(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    ledger = Ledger.open(settings.state_dir)
    hub = attach_derivers(Hub(settings))
    clock = ManualClock(T0)
    service = SlaService(hub, ledger, clock)
    for operation in ("record", "read", "prune"):
        assert value(hub, f'teleport_cloud_sla_ledger_errors_total{{operation="{operation}"}}') == 0
    hub.publish(PublishKey("probe", "t"), [])  # stands for the other sources' families
    service.record_probe("t", T0, False)
    service.publish()

    ledger.close()  # every later database call fails
    with caplog.at_level(logging.ERROR, logger="exporter.sla.service"):
        service.record_probe("t", T0 + 1, False)
        service.prune()
        clock.set(DEC_2026 + 60)  # a new month: the service must read the ledger, and fails
        service.publish()
    assert service.error_counts() == {"record": 1, "read": 1, "prune": 1}
    assert value(hub, 'teleport_cloud_sla_ledger_errors_total{operation="record"}') == 1.0
    assert value(hub, 'teleport_cloud_sla_ledger_errors_total{operation="read"}') == 1.0
    # The last good families stay exposed.
    assert value(hub, 'teleport_cloud_sla_downtime_seconds{tenant="t"}') == 60.0
    assert "SLA ledger record failed" in caplog.text


def test_disabled_ledger_does_nothing(settings: Settings) -> None:
    hub = attach_derivers(Hub(settings))
    service = SlaService(hub, None, ManualClock(T0))
    service.record_probe("t", T0, False)
    service.publish()
    assert "sla" not in body(hub)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_run_publishes_and_prunes(settings: Settings, ledger: Ledger) -> None:
    old = NOV_2026 - 400 * 86400  # more than 13 months before November 2026
    ledger.record_probe("t", old, False, False)
    hub = attach_derivers(Hub(settings))
    clock = ManualClock(T0)
    service = SlaService(hub, ledger, clock, publish_interval=0.01)
    await service.record("t", T0, False)
    with anyio.move_on_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(service.run)
            # Polling the rendered body is the point: it is what a scrape would see.
            while "teleport_cloud_sla_downtime_seconds" not in body(hub):  # noqa: ASYNC110
                await anyio.sleep(0.01)
            group.cancel_scope.cancel()
    assert value(hub, 'teleport_cloud_sla_downtime_seconds{tenant="t"}') == 60.0
    assert ledger.months("t") == ["2026-11"]


def test_main_report(
    settings: Settings, ledger: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    for minute in range(3):
        ledger.record_probe("t", T0 + minute * 60, minute == 2, False)
    out = io.StringIO()
    assert main_report(settings, "2026-11", "json", out, now=DEC_2026 + 86400) == 0
    report = json.loads(out.getvalue())
    assert report["complete"] is True
    (entry,) = report["tenants"]
    assert entry["downtime_seconds"] == 120
    assert entry["coverage_ratio"] == pytest.approx(180 / (30 * 86400))
    assert entry["down_intervals"][0]["duration"] == "2m"

    out = io.StringIO()
    assert main_report(settings, None, "text", out, now=T0 + 300) == 0
    text = out.getvalue()
    assert "SLA report 2026-11" in text
    assert "month to date" in text
    assert "Downtime      120 s (2m)" in text
    assert "2026-11-10T12:00:00Z  2026-11-10T12:02:00Z  2m" in text

    assert main_report(settings, "2026-13", "text", io.StringIO()) == 2
    missing = Settings(tenants=settings.tenants, state_dir=settings.state_dir / "nope")
    assert main_report(missing, None, "text", io.StringIO()) == 2
    assert "no SLA ledger" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("listed", "expected"),
    [
        (["auth00000001"], True),  # lists a kept component (by id)
        (["Proxy US"], True),  # by name
        ([], True),  # lists none: a maintenance of the whole page
        (["elsewhere001"], False),  # only components the filter drops
    ],
)
def test_maintenance_exclusion_follows_the_components_filter(
    tmp_path: Path, listed: list[str], expected: bool
) -> None:
    from exporter.status_page.model import AffectedComponent

    settings = Settings(
        state_dir=tmp_path,
        status_page={"url": "", "components": ["auth00000001", "Proxy US"]},
        tenants=[tenant("t")],
    )
    hub = attach_derivers(Hub(settings))
    hub.status_at = T0
    hub.status = _status(
        Maintenance(
            id="m",
            status="in_progress",
            components=[AffectedComponent(id=c, name=c) for c in listed],
        )
    )
    assert SlaService(hub, None, ManualClock(T0)).in_maintenance(T0) is expected


def test_a_stale_summary_excuses_nothing(settings: Settings) -> None:
    """While the page is unreachable its last "in progress" ages out: only fresh evidence
    (at most FRESH_INTERVALS of the page's intervals old) excludes a minute."""
    hub = attach_derivers(Hub(settings))
    hub.status = _status(Maintenance(id="m", status="in_progress"))
    service = SlaService(hub, None, ManualClock(T0))
    assert not service.in_maintenance(T0), "a summary never confirmed is no evidence"
    hub.status_at = T0
    max_age = FRESH_INTERVALS * settings.status_page.interval
    assert service.in_maintenance(T0 + max_age)
    assert not service.in_maintenance(T0 + max_age + 1)
