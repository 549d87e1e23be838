"""The probe gives evidence about the tenant only: best-effort fields, the version channel apart,
one ledger entry per probe, and the exporter's own trouble counted as unobserved."""

from __future__ import annotations

import errno
import json
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from exporter.config import Settings
from exporter.core.errors import SourceError
from exporter.core.scheduler import LoopMonitor, Runtime, own_fault
from exporter.core.state import Hub
from exporter.derivations import attach_derivers
from exporter.probe.source import PING_PATH, PingSource
from exporter.rollout.version_channel import CHANNEL_PATH, VersionChannelSource, parse_channel
from exporter.simulator.scenarios import ping_body
from exporter.simulator.server import Scripted, SimulatedTenant
from tests.conftest import parse_samples, tenant_config, value
from tests.hostile.env import Recorder


@pytest.fixture
def scripted(sim: SimulatedTenant) -> Any:
    yield sim.app.scripted
    sim.app.scripted.clear()


def _hub(sim: SimulatedTenant, tmp_path: Path, **tenant: Any) -> Hub:
    return attach_derivers(
        Hub(
            Settings(
                state_dir=tmp_path, status_page={"url": ""}, tenants=[tenant_config(sim, **tenant)]
            )
        )
    )


def _samples(hub: Hub) -> Any:
    return parse_samples(hub.exposition.body().decode())


def test_unexpected_optional_field_is_counted_not_downtime(
    sim: SimulatedTenant, scripted: dict[str, Scripted], tmp_path: Path
) -> None:
    body = ping_body(sim.state, "127.0.0.1")
    body["auto_update"]["agent_update_jitter_seconds"] = 1.5
    body["fips"] = {"surprise": True}
    scripted[PING_PATH] = Scripted(body=json.dumps(body).encode())
    hub = _hub(sim, tmp_path)
    recorder = Recorder()
    ping = PingSource(hub, hub.tenants["t"], recorder)
    error = anyio.run(Runtime(hub, [ping]).refresh_once, ping)
    assert error is None
    assert recorder.calls == [True]
    samples = _samples(hub)
    assert value(samples, "teleport_cloud_probe_success", tenant="t") == 1
    ignored = "teleport_cloud_source_ignored_fields_total"
    assert value(samples, ignored, source="ping", target="t") == 2
    assert value(samples, "teleport_cloud_agent_target_version_info", tenant="t", version="18.1.4")


@pytest.mark.parametrize(
    "body",
    [b"[]", b"null", b'{"server_version": 18}', b'{"cluster_name": "x"}', b"<html>", b""],
    ids=["array", "null", "numeric-version", "no-version", "html", "empty"],
)
def test_answer_without_server_version_is_a_failed_probe(
    sim: SimulatedTenant, scripted: dict[str, Scripted], tmp_path: Path, body: bytes
) -> None:
    scripted[PING_PATH] = Scripted(body=body)
    hub = _hub(sim, tmp_path)
    recorder = Recorder()
    ping = PingSource(hub, hub.tenants["t"], recorder)
    error = anyio.run(Runtime(hub, [ping]).refresh_once, ping)
    assert error is not None and error.reason == "parse"
    assert recorder.calls == [False]


def test_slow_version_channel_never_touches_the_probe(
    sim: SimulatedTenant, scripted: dict[str, Scripted], tmp_path: Path
) -> None:
    sim.state.apply({"agent_version": None})
    scripted[CHANNEL_PATH] = Scripted(body=b"v17.5.2", delay=2.0)
    hub = _hub(sim, tmp_path, version_channel={"timeout": "0.5s"}, ping={"timeout": "1s"})
    recorder = Recorder()
    ping = PingSource(hub, hub.tenants["t"], recorder)
    channel = VersionChannelSource(hub, hub.tenants["t"])
    runtime = Runtime(hub, [ping, channel])

    async def both() -> list[SourceError | None]:
        return [await runtime.refresh_once(ping), await runtime.refresh_once(channel)]

    ping_error, channel_error = anyio.run(both)
    assert ping_error is None
    assert channel_error is not None and channel_error.reason == "timeout"
    assert recorder.calls == [True], "one probe, one ledger entry, a success"
    samples = _samples(hub)
    assert value(samples, "teleport_cloud_probe_success", tenant="t") == 1
    assert value(samples, "teleport_cloud_source_up", source="version_channel", target="t") == 0


def test_version_channel_body_is_capped(
    sim: SimulatedTenant, scripted: dict[str, Scripted], tmp_path: Path
) -> None:
    scripted[CHANNEL_PATH] = Scripted(body=b"v" * 65536, repeat=800)  # 50 MB, streamed
    hub = _hub(sim, tmp_path)
    channel = VersionChannelSource(hub, hub.tenants["t"])
    error = anyio.run(Runtime(hub, [channel]).refresh_once, channel)
    assert error is not None and error.reason == "too_large"


def test_version_channel_not_polled_when_ping_has_the_target(
    sim: SimulatedTenant, tmp_path: Path
) -> None:
    hub = _hub(sim, tmp_path)
    ping = PingSource(hub, hub.tenants["t"])
    channel = VersionChannelSource(hub, hub.tenants["t"])
    runtime = Runtime(hub, [ping, channel])
    before = sim.state.requests.get(CHANNEL_PATH, 0)

    async def run() -> SourceError | None:
        await runtime.refresh_once(ping)
        return await runtime.refresh_once(channel)

    assert anyio.run(run) is None
    assert sim.state.requests.get(CHANNEL_PATH, 0) == before


@pytest.mark.parametrize(
    ("body", "expected"),
    [(b"v18.1.4", "18.1.4"), (b"none", None), (b"18.2.0-rc.1\n", "18.2.0-rc.1")],
)
def test_parse_channel(body: bytes, expected: str | None) -> None:
    assert parse_channel(body) == expected


@pytest.mark.parametrize("body", [b"<html>", b"\xff\xfe", b"v1", b"v18.1.4 " + b"x" * 100])
def test_parse_channel_refuses_garbage(body: bytes) -> None:
    with pytest.raises(SourceError) as caught:
        parse_channel(body)
    assert caught.value.reason == "parse"


def test_slow_ledger_write_does_not_record_the_probe_twice(
    sim: SimulatedTenant, tmp_path: Path
) -> None:
    hub = _hub(sim, tmp_path, ping={"timeout": "0.5s"})
    recorder = Recorder(delay=1.0)  # the write outlasts the probe's timeout
    ping = PingSource(hub, hub.tenants["t"], recorder)
    error = anyio.run(Runtime(hub, [ping]).refresh_once, ping)
    assert error is not None and error.reason == "timeout"
    assert recorder.calls == [True]


def _emfile(*args: Any, **kwargs: Any) -> Any:
    raise OSError(errno.EMFILE, "Too many open files")  # as socket() raises it


def test_out_of_descriptors_is_unobserved_not_down(
    sim: SimulatedTenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = _hub(sim, tmp_path)
    recorder = Recorder()
    ping = PingSource(hub, hub.tenants["t"], recorder)
    runtime = Runtime(hub, [ping])
    anyio.run(runtime.refresh_once, ping)
    monkeypatch.setattr(ping._client, "get", _emfile)
    error = anyio.run(runtime.refresh_once, ping)
    assert error is not None and error.reason == "connect"
    assert recorder.calls == [True], "the failed probe left no evidence"
    samples = _samples(hub)
    unobserved = "teleport_cloud_probe_unobserved_total"
    assert value(samples, unobserved, tenant="t", reason="resources") == 1
    assert value(samples, unobserved, tenant="t", reason="loop_lag") == 0
    assert value(samples, "teleport_cloud_probe_success", tenant="t") == 1


def test_probe_does_not_wait_for_the_shared_worker_threads(
    sim: SimulatedTenant, tmp_path: Path
) -> None:
    hub = _hub(sim, tmp_path, ping={"timeout": "1s"})
    recorder = Recorder()
    ping = PingSource(hub, hub.tenants["t"], recorder)

    async def run() -> SourceError | None:
        anyio.to_thread.current_default_thread_limiter().total_tokens = 1
        release = threading.Event()

        async def hold() -> None:
            await anyio.to_thread.run_sync(release.wait)  # the only token of the shared pool

        async with anyio.create_task_group() as group:
            group.start_soon(hold)
            await anyio.sleep(0.05)
            error = await Runtime(hub, [ping]).refresh_once(ping)
            release.set()
        return error

    assert anyio.run(run) is None
    assert recorder.calls == [True]


def test_late_start_failure_is_unobserved(sim: SimulatedTenant, tmp_path: Path) -> None:
    sim.state.apply({"ping": {"status": 503}})
    hub = _hub(sim, tmp_path)
    recorder = Recorder()
    ping = PingSource(hub, hub.tenants["t"], recorder)
    runtime = Runtime(hub, [ping])
    anyio.run(runtime.refresh_once, ping, 0.2)  # on time: real evidence
    anyio.run(runtime.refresh_once, ping, 5.0)  # the loop was blocked for 5 s
    assert recorder.calls == [False]
    samples = _samples(hub)
    assert value(samples, "teleport_cloud_probe_unobserved_total", tenant="t", reason="loop_lag")


@pytest.mark.parametrize("block", [True, False], ids=["loop-blocked", "peer-slow"])
def test_timeout_across_a_loop_stall(sim: SimulatedTenant, tmp_path: Path, block: bool) -> None:
    sim.state.apply({"ping": {"delay": 2.0}})
    hub = _hub(sim, tmp_path, ping={"timeout": "1s"})
    recorder = Recorder()
    ping = PingSource(hub, hub.tenants["t"], recorder)
    runtime = Runtime(hub, [ping])

    async def run() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(runtime.monitor.run)
            await anyio.sleep(0.15)
            if block:
                group.start_soon(_block_loop, 1.2)
            await runtime.refresh_once(ping)
            group.cancel_scope.cancel()

    anyio.run(run)
    assert recorder.calls == ([] if block else [False])


async def _block_loop(seconds: float) -> None:
    await anyio.sleep(0.05)
    time.sleep(seconds)  # noqa: ASYNC251 (the point: a call that blocks the event loop)


def test_loop_monitor_measures_overlap() -> None:
    monitor = LoopMonitor(tick=0.1)
    monitor.note(10.0, 10.2)  # 0.1 s late: under the limit
    monitor.note(20.0, 22.1)  # a 2 s stall from 20.1 to 22.1
    assert monitor.stalled(0.0, 15.0) == 0.0
    assert monitor.stalled(21.1, 30.0) == pytest.approx(1.0)


def test_loop_monitor_counts_a_stall_it_has_not_woken_from() -> None:
    # A worker thread's timeout can be handled before the monitor's own wake-up notes the stall.
    monitor = LoopMonitor(tick=0.1)
    monitor.asleep_from = 10.0
    assert monitor.stalled(9.0, 10.2) == 0.0  # only 0.1 s overdue: not a stall
    assert monitor.stalled(9.0, 11.6) == pytest.approx(1.5)


@pytest.mark.parametrize(
    ("error", "kwargs", "expected"),
    [
        (SourceError("timeout", "t"), {"late": 0.0, "stalled": 0.0}, None),
        (SourceError("http", "503"), {"late": 0.0, "stalled": 3.0}, None),
        (SourceError("timeout", "t"), {"late": 0.0, "stalled": 1.5}, "loop_lag"),
        (SourceError("connect", "refused"), {"late": 2.0, "stalled": 0.0}, "loop_lag"),
    ],
)
def test_own_fault(error: SourceError, kwargs: dict[str, float], expected: str | None) -> None:
    assert own_fault(error, timeout=5.0, internal=False, **kwargs) == expected


def test_own_fault_resources_and_internal() -> None:
    for code in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
        error = SourceError("connect", "x")
        error.__cause__ = OSError(code, "x")
        assert own_fault(error, late=0, stalled=0, timeout=5, internal=False) == "resources"
    refused = SourceError("connect", "x")
    refused.__cause__ = OSError(errno.ECONNREFUSED, "refused")
    assert own_fault(refused, late=0, stalled=0, timeout=5, internal=False) is None
    bug = SourceError("other", "KeyError")
    assert own_fault(bug, late=0, stalled=0, timeout=5, internal=True) == "internal"
