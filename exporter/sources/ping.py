"""The proxy probe: `GET https://<proxy>/webapi/ping` on a fresh connection, timed by phase.

Phases follow blackbox_exporter: resolve (our own getaddrinfo, so DNS is timed apart from the
TCP connect), connect, tls, processing (connection ready to response headers) and transfer
(headers to last body byte). httpcore's trace hooks give the connect/TLS/response boundaries.
Keep-alive is off: a reused connection would hide connect and TLS trouble.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
from prometheus_client import Counter, Histogram
from prometheus_client.metrics_core import Metric

from exporter.clock import Clock, SystemClock
from exporter.collectors.probe import TARGET_KEY, cluster_families, probe_families, target_families
from exporter.errors import SourceError
from exporter.metrics import PROBE_LATENCY, PROBE_UNOBSERVED, UNOBSERVED_REASONS
from exporter.models.ping import PingInfo, PingParseError, parse_ping
from exporter.sources.base import IgnoredFields, Source
from exporter.sources.http import IDENTITY, error_from_exception, read_capped, tls_context
from exporter.state import Hub, TenantState

log = logging.getLogger(__name__)

PING_PATH = "/webapi/ping"
MAX_PING_BYTES = 1024 * 1024

ProbeRecorder = Callable[[str, float, bool], Awaitable[None]]
"""Where each probe result goes (the SLA ledger): tenant, wall time, success."""


@dataclass
class ProbeResult:
    """One probe's measurements; what is not reached stays at its default."""

    started_at: float
    success: bool = False
    duration: float = 0.0
    phases: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(
            ("resolve", "connect", "tls", "processing", "transfer"), 0.0
        )
    )
    status_code: int = 0
    cert_not_after: float | None = None
    ping: PingInfo | None = None
    recorded: bool = False
    """Set once the result went to the ledger: a probe is evidence for one minute, once."""


@dataclass(frozen=True)
class ProbeFailure:
    """A failed probe as people read it: when, the error reason and what was seen."""

    at: float
    reason: str
    message: str


RECENT_FAILURES = 10
"""Failed probes kept for `check` and the page (the counters keep the totals)."""


class _PhaseTimer:
    """Collects httpcore trace events into phase boundaries (perf_counter seconds)."""

    def __init__(self) -> None:
        self.marks: dict[str, float] = {}
        self.cert_not_after: float | None = None

    async def __call__(self, event: str, info: dict[str, Any]) -> None:
        self.marks.setdefault(event.split(".", 1)[-1], time.perf_counter())
        if event.endswith("start_tls.complete"):
            stream = info.get("return_value")
            ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
            if isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
                cert = ssl_object.getpeercert()
                not_after = cert.get("notAfter") if cert else None
                if isinstance(not_after, str):
                    self.cert_not_after = float(ssl.cert_time_to_seconds(not_after))

    def span(self, start: str, end: str) -> float:
        if start in self.marks and end in self.marks:
            return max(0.0, self.marks[end] - self.marks[start])
        return 0.0


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _url_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


class PingSource(Source):
    kind = "ping"
    backoff = False

    def __init__(
        self,
        hub: Hub,
        tenant: TenantState,
        record: ProbeRecorder | None = None,
        clock: Clock | None = None,
    ) -> None:
        config = tenant.config
        super().__init__(tenant.name, config.ping.interval, config.ping.timeout)
        self.hub = hub
        self.tenant = tenant
        self.record = record
        self.clock = clock or SystemClock()
        self.host = config.host
        self.port = config.port
        self._host_header = self.host if self.port == 443 else f"{_url_host(self.host)}:{self.port}"
        self._client = httpx.AsyncClient(
            verify=tls_context(config.ca_file),
            limits=httpx.Limits(max_keepalive_connections=0),
            timeout=config.ping.timeout,
            follow_redirects=False,
            trust_env=False,
        )
        self._histogram = _LatencyHistogram(tenant.name)
        self.ignored = IgnoredFields(self.kind, tenant.name)
        self._unobserved = Counter(
            PROBE_UNOBSERVED.name,
            PROBE_UNOBSERVED.help,
            labelnames=PROBE_UNOBSERVED.labels,
            registry=None,
        )
        for reason in UNOBSERVED_REASONS:
            self._unobserved.labels(tenant.name, reason)
        hub.publish(("unobserved", tenant.name), list(self._unobserved.collect()))
        hub.publish(("ignored", self.kind, tenant.name), self.ignored.families())
        self.last_result: ProbeResult | None = None
        self.recent_failures: deque[ProbeFailure] = deque(maxlen=RECENT_FAILURES)
        self.unobserved_reason: str | None = None
        """Set when the last probe gave no evidence for the exporter's own reasons."""

    async def refresh(self) -> None:
        result = ProbeResult(started_at=self.clock.now())
        self.last_result = result
        self.unobserved_reason = None
        start = time.perf_counter()
        timer = _PhaseTimer()
        try:
            address = await self._resolve()
            resolved = time.perf_counter()
            result.phases["resolve"] = resolved - start
            url = f"https://{_url_host(address)}:{self.port}{PING_PATH}"
            request = self._client.build_request(
                "GET",
                url,
                headers={"Host": self._host_header, "Accept": "application/json", **IDENTITY},
                extensions={"trace": timer, "sni_hostname": self.host},
            )
            response = await self._client.send(request, stream=True)
            try:
                result.status_code = response.status_code
                body = await read_capped(response, MAX_PING_BYTES)
                end = time.perf_counter()  # last byte; closing the connection is not the probe's
                self.response_bytes = len(body)
            finally:
                await response.aclose()
        except Exception as exc:
            self._finish(result, timer, start)
            if not isinstance(exc, httpx.HTTPError | OSError | SourceError | TimeoutError):
                raise  # a bug of ours, not the proxy's failure: the runtime calls it internal
            raise error_from_exception(exc) from exc
        self._finish(result, timer, start, end)
        if result.status_code != 200:
            raise SourceError("http", f"/webapi/ping answered HTTP {result.status_code}")
        try:
            parsed = parse_ping(body)
        except PingParseError as exc:
            raise SourceError("parse", f"/webapi/ping body is not a ping answer: {exc}") from exc
        if parsed.ignored:
            log.warning(
                "tenant=%s /webapi/ping fields of an unexpected type ignored: %s",
                self.tenant.name,
                ", ".join(parsed.ignored)[:500],
            )
            self.ignored.add(len(parsed.ignored))
            self.hub.publish(("ignored", self.kind, self.tenant.name), self.ignored.families())
        result.success = True
        result.ping = parsed.ping
        self._histogram.observe(result.duration)
        await self._publish_probe(result)
        self._update_tenant(parsed.ping)

    async def failed(self, error: SourceError) -> None:
        result = self.last_result
        if result is not None and result.recorded:
            return  # this probe already gave its evidence; a late timeout adds none
        if result is None:
            result = ProbeResult(started_at=self.clock.now())
        self.recent_failures.append(ProbeFailure(result.started_at, error.reason, error.message))
        if error.reason == "timeout" and result.duration == 0.0:
            result.duration = self.timeout
        await self._publish_probe(result)

    async def unobserved(self, reason: str, error: SourceError) -> None:
        """The probe failed for the exporter's own reasons: no evidence about the tenant, so
        nothing goes to the ledger and probe_success keeps its last value."""
        result = self.last_result
        if result is not None and result.recorded:
            return
        if result is not None:
            result.recorded = True  # settled: a later hook must not record it as down
        self.unobserved_reason = reason
        log.warning(
            "tenant=%s probe unobserved (reason=%s), not counted as downtime: %s",
            self.tenant.name,
            reason,
            error.message,
        )
        self._unobserved.labels(self.tenant.name, reason).inc()
        self.hub.publish(("unobserved", self.tenant.name), list(self._unobserved.collect()))

    def _finish(
        self, result: ProbeResult, timer: _PhaseTimer, start: float, end: float | None = None
    ) -> None:
        end = time.perf_counter() if end is None else end
        result.duration = end - start
        ready = (
            "start_tls.complete" if "start_tls.complete" in timer.marks else "connect_tcp.complete"
        )
        result.phases["connect"] = timer.span("connect_tcp.started", "connect_tcp.complete")
        result.phases["tls"] = timer.span("start_tls.started", "start_tls.complete")
        result.phases["processing"] = timer.span(ready, "receive_response_headers.complete")
        if "receive_response_headers.complete" in timer.marks:
            result.phases["transfer"] = max(
                0.0, end - timer.marks["receive_response_headers.complete"]
            )
        result.cert_not_after = timer.cert_not_after

    async def _resolve(self) -> str:
        if _is_ip_literal(self.host):
            return self.host  # nothing to resolve; skip the resolver thread
        try:
            infos = await anyio.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise SourceError("connect", f"cannot resolve {self.host!r}: {exc}") from exc
        if not infos:
            raise SourceError("connect", f"{self.host!r} resolves to no address")
        return str(infos[0][4][0])

    async def _publish_probe(self, result: ProbeResult) -> None:
        if result.recorded:
            return
        result.recorded = True
        if self.record is not None:
            await self.record(self.tenant.name, result.started_at, result.success)
        self.hub.publish(
            ("probe", self.tenant.name),
            probe_families(self.tenant.name, result, self._histogram.families()),
        )

    def _update_tenant(self, ping: PingInfo) -> None:
        before = (self.tenant.control_plane_version, self.tenant.target_agent_version)
        self.tenant.ping = ping
        self.hub.publish(("cluster", self.tenant.name), cluster_families(self.tenant))
        self.hub.publish((TARGET_KEY, self.tenant.name), target_families(self.tenant))
        if (self.tenant.control_plane_version, self.tenant.target_agent_version) != before:
            self.hub.versions_changed(self.tenant)

    async def aclose(self) -> None:
        await self._client.aclose()


class _LatencyHistogram:
    """Cumulative histogram of successful probe durations, kept by prometheus_client."""

    def __init__(self, tenant: str) -> None:
        self._histogram = Histogram(
            PROBE_LATENCY.name,
            PROBE_LATENCY.help,
            labelnames=PROBE_LATENCY.labels,
            registry=None,
            buckets=(0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0),
        )
        self._child = self._histogram.labels(tenant)

    def observe(self, seconds: float) -> None:
        self._child.observe(seconds)

    def families(self) -> list[Metric]:
        return list(self._histogram.collect())
