"""A scripted outage against the simulated tenant: the real probe and status page feed the
ledger on a manual clock, and the SLA metrics and report show exactly what was scripted."""

from __future__ import annotations

import calendar
import signal
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from exporter.config import Settings
from exporter.core.clock import ManualClock
from exporter.core.scheduler import Runtime
from exporter.core.state import Hub
from exporter.derivations import attach_derivers
from exporter.probe.source import PingSource
from exporter.simulator.server import SimulatedTenant
from exporter.sla.ledger import Ledger
from exporter.sla.report import build_report
from exporter.sla.service import SlaService
from exporter.status_page.source import StatusPageSource
from tests.conftest import parse_samples, tenant_config, value
from tests.system.test_end_to_end import Exporter, write_config

T0 = calendar.timegm((2026, 11, 10, 13, 0, 0))  # a 30-day month: budget 2592 s at 99.9 %
PROBES_PER_MINUTE = 3
OUTAGE = range(3, 8)  # minutes 13:03 to 13:07 fail: 5 down minutes
MINUTES = 12


def _scripted(
    sim: SimulatedTenant, tmp_path: Path, exclude: bool, maintenance: bool
) -> tuple[dict[Any, float], dict[str, Any]]:
    clock = ManualClock(T0)
    settings = Settings(
        state_dir=tmp_path,
        status_page={"url": sim.url, "ca_file": str(sim.ca_file)},
        tenants=[tenant_config(sim, sla={"objective": 0.999, "exclude_maintenance": exclude})],
    )
    hub = attach_derivers(Hub(settings))
    ledger = Ledger.open(tmp_path)
    sla = SlaService(hub, ledger, clock)
    ping = PingSource(hub, hub.tenants["t"], sla.record, clock)
    status = StatusPageSource(hub, settings.status_page)
    runtime = Runtime(hub, [ping, status], seed=3)

    async def run() -> None:
        for minute in range(MINUTES):
            failing = minute in OUTAGE
            if failing and maintenance:
                sim.state.apply({"scenario": "maintenance"})  # ping 503 + maintenance in progress
            elif failing:
                sim.state.apply({"ping": {"status": 503}})
            else:
                sim.state.apply({"scenario": "healthy", "ping": {}})
            await runtime.refresh_once(status)
            for probe in range(PROBES_PER_MINUTE):
                clock.set(T0 + minute * 60 + probe * 20)
                await runtime.refresh_once(ping)
        await ping.aclose()
        await status.aclose()

    anyio.run(run)
    now = T0 + MINUTES * 60 - 1
    sla.publish(now)
    report = build_report(ledger, settings.tenants, "2026-11", now)
    ledger.close()
    return parse_samples(hub.exposition.body().decode()), report


def test_outage_minutes_become_exact_downtime_burn_and_intervals(
    sim: SimulatedTenant, tmp_path: Path
) -> None:
    samples, report = _scripted(sim, tmp_path, exclude=True, maintenance=False)
    down = len(OUTAGE) * 60
    assert value(samples, "teleport_cloud_sla_downtime_seconds", tenant="t") == down
    assert value(samples, "teleport_cloud_sla_observed_seconds", tenant="t") == MINUTES * 60
    assert value(samples, "teleport_cloud_sla_error_budget_seconds", tenant="t") == pytest.approx(
        2592
    )
    assert value(
        samples, "teleport_cloud_sla_error_budget_remaining_ratio", tenant="t"
    ) == pytest.approx(1 - down / 2592)
    assert value(samples, "teleport_cloud_sla_uptime_ratio", tenant="t") == pytest.approx(
        1 - len(OUTAGE) / MINUTES
    )
    # windows reaching back over every scripted minute see 5 down of 12 observed
    for window in ("30m", "1h", "6h", "1d", "3d"):
        assert value(
            samples, "teleport_cloud_sla_burn_rate", tenant="t", window=window
        ) == pytest.approx(len(OUTAGE) / MINUTES / 0.001)
    # the last 5 minutes (13:07 to 13:11) hold one down minute
    assert value(samples, "teleport_cloud_sla_burn_rate", tenant="t", window="5m") == pytest.approx(
        1 / 5 / 0.001
    )
    assert value(samples, "teleport_cloud_sla_breached", tenant="t") == 0
    intervals = report["tenants"][0]["down_intervals"]
    assert intervals == [
        {
            "start": "2026-11-10T13:03:00Z",
            "end": "2026-11-10T13:08:00Z",
            "duration_seconds": down,
            "duration": "5m",
            "in_maintenance": False,
            "counted": True,
        }
    ]


@pytest.mark.parametrize("exclude", [True, False])
def test_maintenance_window_is_excluded_only_when_configured(
    sim: SimulatedTenant, tmp_path: Path, exclude: bool
) -> None:
    samples, report = _scripted(sim, tmp_path, exclude=exclude, maintenance=True)
    down = len(OUTAGE) * 60
    assert value(samples, "teleport_cloud_sla_maintenance_seconds", tenant="t") == down
    assert value(samples, "teleport_cloud_sla_downtime_seconds", tenant="t") == (
        0 if exclude else down
    )
    assert [i["counted"] for i in report["tenants"][0]["down_intervals"]] == [not exclude]


def test_restart_after_sigkill_keeps_the_months_downtime(tmp_path: Path) -> None:
    from exporter.simulator.demo import start_simulator

    sim, tctl = start_simulator("healthy", 10, tmp_path / "sim")
    sim.start_in_thread()
    sim.state.apply({"ping": {"status": 503}})
    config = write_config(sim, tctl)
    try:
        first = Exporter(config, tmp_path)
        with httpx.Client(timeout=5) as client:
            first.wait_ready(client, "/healthz")
            downtime = _wait_for_downtime(client, first.base)
            first.process.send_signal(signal.SIGKILL)
            first.process.wait(timeout=10)
            sim.state.apply({"ping": {}})
            second = Exporter(config, tmp_path)
            try:
                second.wait_ready(client, "/healthz")
                after = _wait_for_downtime(client, second.base)
                assert after >= downtime, "downtime recorded before kill -9 was lost"
            finally:
                second.stop()
    finally:
        sim.stop()


def _wait_for_downtime(client: httpx.Client, base: str) -> float:
    deadline = time.monotonic() + 40  # the SLA families are published every 15 s
    while time.monotonic() < deadline:
        samples = parse_samples(client.get(base + "/metrics").text)
        key = ("teleport_cloud_sla_downtime_seconds", frozenset({("tenant", "demo")}))
        if samples.get(key, 0) >= 60:
            return samples[key]
        time.sleep(0.5)
    raise AssertionError("no downtime published")
