"""Families of the proxy probe and of the cluster facts its answer carries.

Per probe (updated on every probe, success or failure)::

    teleport_cloud_probe_success{tenant="prod"} 1
    teleport_cloud_probe_duration_seconds{tenant="prod"} 0.142
    teleport_cloud_probe_phase_duration_seconds{tenant="prod",phase="tls"} 0.031
        (phase: resolve, connect, tls, processing, transfer)
    teleport_cloud_probe_http_status_code{tenant="prod"} 200
    teleport_cloud_probe_latency_seconds_bucket{tenant="prod",le="0.2"} 17   (successful probes)
    teleport_cloud_tls_cert_expiry_timestamp_seconds{tenant="prod"} 1.77e9

From the last successful answer (kept while later probes fail)::

    teleport_cloud_cluster_info{tenant,cluster_name,server_version,min_client_version,
                                edition,fips,tls_routing_enabled,automatic_upgrades} 1
    teleport_cloud_control_plane_major_version{tenant="prod"} 18
    teleport_cloud_proxy_endpoint_info{tenant="prod",protocol="web",address="x.teleport.sh:443"} 1
    teleport_cloud_agent_target_version_info{tenant="prod",version="18.1.4"} 1
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.metrics_core import Metric

from exporter import vocab
from exporter.core import catalogue as m
from exporter.core.state import TenantState
from exporter.core.versions import major_of, normalise
from exporter.probe.model import ProbeResult


def _bool(value: bool) -> str:
    return "true" if value else "false"


def probe_families(tenant: str, result: ProbeResult, histogram: Iterable[Metric]) -> list[Metric]:
    phases = m.PROBE_PHASE_DURATION.new()
    for phase in vocab.PROBE_PHASES:
        phases.add_metric([tenant, phase], result.phases.get(phase, 0.0))
    families: list[Metric] = [
        m.PROBE_SUCCESS.single([tenant], 1.0 if result.success else 0.0),
        m.PROBE_DURATION.single([tenant], result.duration),
        phases,
        m.PROBE_STATUS_CODE.single([tenant], float(result.status_code)),
        *histogram,
    ]
    if result.cert_not_after is not None:
        families.append(m.TLS_CERT_EXPIRY.single([tenant], result.cert_not_after))
    return families


def cluster_families(tenant: TenantState) -> list[Metric]:
    ping = tenant.ping
    if ping is None:
        return []
    name = tenant.name
    families: list[Metric] = [
        m.CLUSTER_INFO.single(
            [
                name,
                ping.cluster_name,
                normalise(ping.server_version),
                normalise(ping.min_client_version),
                ping.edition,
                _bool(ping.fips),
                _bool(ping.proxy.tls_routing_enabled),
                _bool(ping.automatic_upgrades),
            ],
            1.0,
        )
    ]
    major = major_of(ping.server_version)
    if major is not None:
        families.append(m.CONTROL_PLANE_MAJOR.single([name], float(major)))
    endpoints = m.PROXY_ENDPOINT_INFO.new()
    for endpoint, address in ping.endpoints():
        endpoints.add_metric([name, endpoint, address], 1.0)
    families.append(endpoints)
    if ping.auto_update is not None and ping.auto_update.tools_version:
        tools = normalise(ping.auto_update.tools_version)
        families.append(m.CLIENT_TOOLS_VERSION.single([name, tools], 1.0))
    return families
