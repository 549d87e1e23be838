"""The probe and the status page against the simulated tenant over real TLS, good and bad."""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Any

import anyio
import pytest
from cryptography import x509

from exporter.config import Settings
from exporter.core.scheduler import Runtime
from exporter.core.source import Source
from exporter.core.state import Hub
from exporter.derivations import attach_derivers
from exporter.probe.source import PingSource
from exporter.simulator.server import SimulatedTenant
from exporter.status_page.source import StatusPageSource
from tests.conftest import parse_samples, series, tenant_config, value


def _setup(
    sim: SimulatedTenant, tmp_path: Path, **tenant: Any
) -> tuple[Hub, Runtime, PingSource, StatusPageSource]:
    settings = Settings(
        state_dir=tmp_path,
        status_page={"url": sim.url, "ca_file": str(sim.ca_file), "timeout": "2s"},
        tenants=[tenant_config(sim, **tenant)],
    )
    hub = attach_derivers(Hub(settings))
    ping = PingSource(hub, hub.tenants["t"])
    status = StatusPageSource(hub, settings.status_page)
    return hub, Runtime(hub, [ping, status], seed=1), ping, status


def _refresh(runtime: Runtime, *steps: Any) -> None:
    """Run refreshes and plain callables (state changes) in order, in one event loop (the
    sources' HTTP clients belong to the loop they first ran in)."""

    async def run() -> None:
        for step in steps:
            if isinstance(step, Source):
                await runtime.refresh_once(step)
            else:
                step()

    anyio.run(run)


def test_probe_reports_cluster_and_timings(sim: SimulatedTenant, tmp_path: Path) -> None:
    hub, runtime, ping, status = _setup(sim, tmp_path)
    first: list[bytes] = []
    _refresh(runtime, ping, status, lambda: first.append(hub.exposition.body()), ping)
    samples = parse_samples(first[0].decode())
    assert value(samples, "teleport_cloud_probe_success", tenant="t") == 1
    assert value(samples, "teleport_cloud_probe_http_status_code", tenant="t") == 200
    assert value(samples, "teleport_cloud_source_up", source="ping", target="t") == 1
    phases = {
        p: value(samples, "teleport_cloud_probe_phase_duration_seconds", tenant="t", phase=p)
        for p in ("resolve", "connect", "tls", "processing", "transfer")
    }
    total = value(samples, "teleport_cloud_probe_duration_seconds", tenant="t")
    assert phases["tls"] > 0 and phases["connect"] > 0 and phases["processing"] > 0
    assert sum(phases.values()) <= total + 1e-6
    served = x509.load_pem_x509_certificate((sim.workdir / "server.pem").read_bytes())
    expiry = value(samples, "teleport_cloud_tls_cert_expiry_timestamp_seconds", tenant="t")
    assert expiry == served.not_valid_after_utc.timestamp()
    info = series(samples, "teleport_cloud_cluster_info")
    assert info == [
        {
            "tenant": "t",
            "cluster_name": "127.0.0.1",
            "server_version": "18.1.4",
            "min_client_version": "17.0.0-aa",
            "edition": "ent",
            "fips": "false",
            "tls_routing_enabled": "true",
            "automatic_upgrades": "true",
        }
    ]
    assert value(samples, "teleport_cloud_control_plane_major_version", tenant="t") == 18
    assert (
        value(samples, "teleport_cloud_agent_target_version_info", tenant="t", version="18.1.4")
        == 1
    )
    endpoints = {
        s["protocol"]: s["address"] for s in series(samples, "teleport_cloud_proxy_endpoint_info")
    }
    assert endpoints["web"] == "127.0.0.1:443" and endpoints["ssh_tunnel"] == "127.0.0.1:3024"
    assert "mongo" not in endpoints
    assert value(samples, "teleport_cloud_probe_latency_seconds_count", tenant="t") == 1
    # every probe opens a new connection: the second probe has its own TLS handshake
    samples = parse_samples(hub.exposition.body().decode())
    assert (
        value(samples, "teleport_cloud_probe_phase_duration_seconds", tenant="t", phase="tls") > 0
    )
    assert value(samples, "teleport_cloud_probe_latency_seconds_count", tenant="t") == 2


def test_older_tenant_takes_target_from_version_channel(
    sim: SimulatedTenant, tmp_path: Path
) -> None:
    from exporter.rollout.version_channel import VersionChannelSource

    sim.state.apply({"agent_version": None, "channel_version": "v17.5.2"})
    hub, runtime, ping, _ = _setup(sim, tmp_path)
    channel = VersionChannelSource(hub, hub.tenants["t"])
    runtime = Runtime(hub, [ping, channel], seed=1)
    _refresh(runtime, ping)
    samples = parse_samples(hub.exposition.body().decode())
    assert series(samples, "teleport_cloud_agent_target_version_info") == []
    _refresh(runtime, channel)
    samples = parse_samples(hub.exposition.body().decode())
    assert (
        value(samples, "teleport_cloud_agent_target_version_info", tenant="t", version="17.5.2")
        == 1
    )
    assert value(samples, "teleport_cloud_source_up", source="version_channel", target="t") == 1


def test_status_page_state_sets(sim: SimulatedTenant, tmp_path: Path) -> None:
    sim.state.apply({"scenario": "demo"})
    hub, runtime, _, status = _setup(sim, tmp_path)
    _refresh(runtime, status)
    samples = parse_samples(hub.exposition.body().decode())
    page = sim.proxy
    indicators = {
        s["indicator"]: value(samples, "teleport_cloud_status_indicator", **s)
        for s in series(samples, "teleport_cloud_status_indicator")
    }
    assert indicators == {"none": 0, "minor": 1, "major": 0, "critical": 0, "maintenance": 0}
    components = series(samples, "teleport_cloud_status_component")
    # 5 leaf components x 5 states; the two groups are not components of their own
    assert len(components) == 25
    assert not any(c["component_id"].startswith("grp") for c in components)
    eu_proxy = {
        c["status"]: value(samples, "teleport_cloud_status_component", **c)
        for c in components
        if c["component_id"] == "prxeucentr01"
    }
    assert eu_proxy["degraded_performance"] == 1 and sum(eu_proxy.values()) == 1
    assert {c["group"] for c in components if c["component"] == "Proxy"} == {"Americas", "Europe"}
    assert {c["group"] for c in components if c["component"] == "Auth Service"} == {""}
    assert value(samples, "teleport_cloud_status_incidents", page=page, impact="minor") == 1
    assert value(samples, "teleport_cloud_status_incidents", page=page, impact="critical") == 0
    assert value(samples, "teleport_cloud_status_maintenances", page=page, state="scheduled") == 1
    assert (
        value(samples, "teleport_cloud_status_next_maintenance_start_timestamp_seconds", page=page)
        > 0
    )


def test_status_page_conditional_request(sim: SimulatedTenant, tmp_path: Path) -> None:
    hub, runtime, _, status = _setup(sim, tmp_path)
    _refresh(runtime, status, status)
    assert status._validators.get("If-None-Match")
    samples = parse_samples(hub.exposition.body().decode())
    assert value(samples, "teleport_cloud_source_up", source="status_page", target=sim.proxy) == 1
    assert value(samples, "teleport_cloud_status_indicator", page=sim.proxy, indicator="none") == 1


def test_status_page_components_filter(sim: SimulatedTenant, tmp_path: Path) -> None:
    settings = Settings(
        state_dir=tmp_path,
        status_page={
            "url": sim.url,
            "ca_file": str(sim.ca_file),
            "components": ["Auth Service", "prxuswest001"],
        },
        tenants=[tenant_config(sim)],
    )
    hub = attach_derivers(Hub(settings))
    status = StatusPageSource(hub, settings.status_page)
    _refresh(Runtime(hub, [status]), status)
    kept = {
        c["component_id"]
        for c in series(
            parse_samples(hub.exposition.body().decode()), "teleport_cloud_status_component"
        )
    }
    assert kept == {"authservice1", "prxuswest001"}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


PING_FAULTS = [
    ({"ping": {"delay": 3.0}}, "timeout"),
    ({"tls_mismatch": True}, "tls"),
    ({"ping": {"status": 503}}, "http"),
    ({"ping": {"status": 429, "retry_after": 7}}, "http"),
    ({"ping": {"body": "html"}}, "parse"),
    ({"ping": {"body": "malformed"}}, "parse"),
    ({"ping": {"body": "wrong_types"}}, "parse"),
    ({"ping": {"body": "too_large"}}, "too_large"),
]


@pytest.mark.parametrize(
    ("fault", "reason"), PING_FAULTS, ids=[f"{r}-{i}" for i, (_, r) in enumerate(PING_FAULTS)]
)
def test_probe_failure_keeps_last_good_data(
    sim: SimulatedTenant,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    fault: dict[str, Any],
    reason: str,
) -> None:
    hub, runtime, ping, status = _setup(sim, tmp_path, ping={"timeout": "1s"})
    with caplog.at_level(logging.WARNING):
        _refresh(
            runtime,
            ping,
            status,
            lambda: sim.state.apply(fault),
            ping,
            lambda: sim.state.apply({"ping": {}, "tls_mismatch": False}),
            status,
        )
    samples = parse_samples(hub.exposition.body().decode())
    assert value(samples, "teleport_cloud_source_up", source="ping", target="t") == 0
    assert (
        value(
            samples, "teleport_cloud_source_errors_total", source="ping", target="t", reason=reason
        )
        == 1
    )
    others = [
        r
        for r in (
            "timeout",
            "connect",
            "tls",
            "http",
            "parse",
            "auth",
            "exec",
            "too_large",
            "other",
        )
        if r != reason
    ]
    assert all(
        value(samples, "teleport_cloud_source_errors_total", source="ping", target="t", reason=r)
        == 0
        for r in others
    )
    assert value(samples, "teleport_cloud_probe_success", tenant="t") == 0
    assert len(series(samples, "teleport_cloud_cluster_info")) == 1, (
        "last good cluster info must stay"
    )
    assert value(samples, "teleport_cloud_source_up", source="status_page", target=sim.proxy) == 1
    assert value(samples, "teleport_cloud_probe_latency_seconds_count", tenant="t") == 1
    assert any(
        f"reason={reason}" in r.getMessage() and "source=ping" in r.getMessage()
        for r in caplog.records
    )
    if reason == "http":
        assert value(samples, "teleport_cloud_probe_http_status_code", tenant="t") in (503, 429)


def test_probe_connection_refused(sim: SimulatedTenant, tmp_path: Path) -> None:
    hub, runtime, ping, _ = _setup(sim, tmp_path, proxy=f"127.0.0.1:{_closed_port()}")
    _refresh(runtime, ping)
    samples = parse_samples(hub.exposition.body().decode())
    assert (
        value(
            samples,
            "teleport_cloud_source_errors_total",
            source="ping",
            target="t",
            reason="connect",
        )
        == 1
    )
    assert value(samples, "teleport_cloud_probe_success", tenant="t") == 0
    assert value(samples, "teleport_cloud_probe_http_status_code", tenant="t") == 0


STATUS_FAULTS = [
    ({"status": {"delay": 3.0}}, "timeout"),
    ({"tls_mismatch": True}, "tls"),
    ({"status": {"status": 500}}, "http"),
    ({"status": {"body": "html"}}, "parse"),
    ({"status": {"body": "malformed"}}, "parse"),
    ({"status": {"body": "wrong_types"}}, "parse"),
    ({"status": {"body": "too_large"}}, "too_large"),
]


@pytest.mark.parametrize(
    ("fault", "reason"), STATUS_FAULTS, ids=[f"{r}-{i}" for i, (_, r) in enumerate(STATUS_FAULTS)]
)
def test_status_page_failure_keeps_last_good_data(
    sim: SimulatedTenant,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    fault: dict[str, Any],
    reason: str,
) -> None:
    sim.state.apply({"scenario": "demo"})
    hub, runtime, ping, status = _setup(sim, tmp_path)
    with caplog.at_level(logging.WARNING):
        _refresh(
            runtime,
            status,
            lambda: sim.state.apply(fault),
            status,
            lambda: sim.state.apply({"status": {}, "tls_mismatch": False}),
            ping,
        )
    samples = parse_samples(hub.exposition.body().decode())
    page = sim.proxy
    assert value(samples, "teleport_cloud_source_up", source="status_page", target=page) == 0
    assert (
        value(
            samples,
            "teleport_cloud_source_errors_total",
            source="status_page",
            target=page,
            reason=reason,
        )
        == 1
    )
    assert value(samples, "teleport_cloud_status_indicator", page=page, indicator="minor") == 1
    assert value(samples, "teleport_cloud_probe_success", tenant="t") == 1, (
        "the probe is unaffected"
    )
    assert any(f"reason={reason}" in r.getMessage() for r in caplog.records)


def test_status_page_429_retry_after_pushes_next_attempt(
    sim: SimulatedTenant, tmp_path: Path
) -> None:
    from exporter.core.scheduler import next_delay

    _, runtime, _, status = _setup(sim, tmp_path)
    sim.state.apply({"status": {"status": 429, "retry_after": 600}})
    error = anyio.run(runtime.refresh_once, status)
    assert error is not None and error.reason == "http" and error.retry_after == 600
    import random

    assert next_delay(status, 1, error.retry_after, random.Random(0)) >= 600
