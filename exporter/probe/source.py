"""The proxy probe: `GET https://<proxy>/webapi/ping` on a fresh connection, timed by phase.

Phases follow blackbox_exporter: resolve, connect, tls, processing (connection ready to the
first response byte) and transfer (first byte to the end of the body), each taken at the socket
event by `exporter.probe.client` in a worker thread, so the exporter's own work is not counted
as the tenant's latency. A new connection per probe: a reused one would hide connect and TLS
trouble.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable

import anyio
from prometheus_client import Histogram
from prometheus_client.metrics_core import Metric

from exporter.core.catalogue import PROBE_LATENCY, PROBE_UNOBSERVED
from exporter.core.clock import Clock, SystemClock
from exporter.core.errors import SourceError
from exporter.core.http import tls_context
from exporter.core.keys import PublishKey
from exporter.core.source import IgnoredFields, Source
from exporter.core.state import Hub, TenantState
from exporter.probe.client import Answer, ProbeClient, Trace, error_from_probe
from exporter.probe.families import cluster_families, probe_families
from exporter.probe.model import PingInfo, PingParseError, ProbeFailure, ProbeResult, parse_ping
from exporter.vocab import UNOBSERVED_REASONS

log = logging.getLogger(__name__)

PING_PATH = "/webapi/ping"
MAX_PING_BYTES = 1024 * 1024
PING_HEADERS = [("Accept", "application/json")]

ProbeRecorder = Callable[[str, float, bool], Awaitable[None]]
"""Where each probe result goes (the SLA ledger): tenant, wall time, success."""


RECENT_FAILURES = 10
"""Failed probes kept for `check` and the page (the counters keep the totals)."""


class PingSource(Source):
    kind = "ping"
    backoff = False
    timeout_slack = 0.5
    """The client stops at `timeout` itself and reports the phases it reached; the slack lets
    that answer arrive before the runtime cancels the wait (a resolver that hangs)."""

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
        # Built once: loading the CA store is the exporter's work, not the tenant's latency.
        self._client = ProbeClient(
            config.host,
            config.port,
            tls_context(config.ca_file),
            timeout=config.ping.timeout,
            max_bytes=MAX_PING_BYTES,
        )
        # A worker thread of its own: waiting for one of the shared pool's (busy with fleet
        # refreshes) would delay the probe, and a late probe is no evidence about the tenant.
        self._thread = anyio.CapacityLimiter(1)
        self._histogram = _LatencyHistogram(tenant.name)
        self.ignored = IgnoredFields(self.kind, tenant.name)
        self._unobserved: dict[str, int] = dict.fromkeys(UNOBSERVED_REASONS, 0)
        hub.publish(PublishKey("unobserved", tenant.name), self._unobserved_families())
        hub.publish(PublishKey("ignored", tenant.name), self.ignored.families())
        self.last_result: ProbeResult | None = None
        """The probe under way, or the last one."""
        self.last_completed: ProbeResult | None = None
        """The last probe that gave evidence (what `check` and the page show)."""
        self.recent_failures: deque[ProbeFailure] = deque(maxlen=RECENT_FAILURES)
        self.unobserved_reason: str | None = None
        """Set when the last finished probe gave no evidence for the exporter's own reasons."""

    async def refresh(self) -> None:
        result = ProbeResult(started_at=self.clock.now())
        self.last_result = result
        trace = Trace()
        try:
            # Abandoned if the runtime gives up first; the client ends itself at `timeout`.
            answer: Answer = await anyio.to_thread.run_sync(
                self._client.get,
                PING_PATH,
                PING_HEADERS,
                trace,
                abandon_on_cancel=True,
                limiter=self._thread,
            )
        except Exception as exc:
            _finish(result, trace)
            error = error_from_probe(exc)
            if error is None:
                raise  # a bug of ours, not the proxy's failure: the runtime calls it internal
            raise error from exc
        _finish(result, trace)
        result.cert_not_after = answer.cert_not_after
        body = answer.body
        self.response_bytes = len(body)
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
            self.hub.publish(PublishKey("ignored", self.tenant.name), self.ignored.families())
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
        self._unobserved[reason] = self._unobserved.get(reason, 0) + 1
        self.hub.publish(PublishKey("unobserved", self.tenant.name), self._unobserved_families())

    def _unobserved_families(self) -> list[Metric]:
        rows = (((self.tenant.name, reason), n) for reason, n in self._unobserved.items())
        return [PROBE_UNOBSERVED.counts(rows)]

    async def _publish_probe(self, result: ProbeResult) -> None:
        if result.recorded:
            return
        result.recorded = True
        self.last_completed = result
        self.unobserved_reason = None
        if self.record is not None:
            await self.record(self.tenant.name, result.started_at, result.success)
        self.hub.publish(
            PublishKey("probe", self.tenant.name),
            probe_families(self.tenant.name, result, self._histogram.families()),
        )

    def _update_tenant(self, ping: PingInfo) -> None:
        before = (self.tenant.control_plane_version, self.tenant.target_agent_version)
        self.tenant.ping = ping
        self.hub.publish(PublishKey("cluster", self.tenant.name), cluster_families(self.tenant))
        if (self.tenant.control_plane_version, self.tenant.target_agent_version) != before:
            self.hub.changed(self.tenant)


def _finish(result: ProbeResult, trace: Trace) -> None:
    """Duration and phases up to the last event reached (the whole probe when it completed)."""
    if trace.start:
        result.duration = trace.last() - trace.start
    result.phases = trace.phases()
    result.status_code = trace.status


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
