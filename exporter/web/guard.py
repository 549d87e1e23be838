"""Self-protection of the exporter's HTTP server: limits a hostile client cannot talk around.

- `FailureLimiter`: a token bucket of failed logins per client address, so guessing passwords
  costs the attacker time and costs us no bcrypt once the bucket is empty.
- `GuardedProtocol`: uvicorn's httptools protocol with a cap on open connections (the oldest
  connection with no request in flight makes room, else the new one is closed), a deadline
  and a size cap for a request's head (a half-sent request cannot hold a descriptor forever)
  and a deadline for a stalled answer (a client that stops reading); uvicorn's own
  `timeout_keep_alive` closes idle kept-alive connections.
- `WebCounters`: what the above refused, published as
  `teleport_cloud_web_auth_failures_total{reason}` and
  `teleport_cloud_web_connections_closed_total{reason}` at most once a second.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, ClassVar

from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from exporter.core import catalogue as m

MAX_CONNECTIONS = 256
"""Open connections at most: far below systemd's default RLIMIT_NOFILE of 1024, so probes,
tctl and the status page always find descriptors."""
HEADER_TIMEOUT = 10.0
"""Seconds from a request's first byte (or the connection's start) to its complete headers."""
WRITE_TIMEOUT = 30.0
"""Seconds an answer may sit unread (the client's window closed) before the connection is
closed: a client that asks and never reads must not hold a connection slot forever."""
KEEP_ALIVE_TIMEOUT = 30.0
"""Idle seconds before a kept-alive connection is closed (Prometheus reconnects at no cost)."""
MAX_HEADER_BYTES = 16 * 1024
"""Largest request head buffered; a larger one is answered 400 and closed."""

FAILURE_BURST = 10
FAILURE_REFILL_SECONDS = 6.0
"""Per client: 10 failed logins at once, then one more every 6 seconds (10 a minute)."""
MAX_TRACKED_CLIENTS = 4096


class FailureLimiter:
    """Token bucket of failed logins per client; the oldest idle clients are forgotten first
    so the table stays bounded under address-spraying."""

    def __init__(
        self,
        burst: int = FAILURE_BURST,
        refill_seconds: float = FAILURE_REFILL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = MAX_TRACKED_CLIENTS,
    ) -> None:
        self.burst = burst
        self.refill_seconds = refill_seconds
        self.clock = clock
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _tokens(self, client: str, now: float) -> float:
        tokens, since = self._buckets.get(client, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - since) / self.refill_seconds)

    def allowed(self, client: str) -> bool:
        """Whether the client may still try (it has a failure left)."""
        return self._tokens(client, self.clock()) >= 1.0

    def failed(self, client: str) -> None:
        now = self.clock()
        tokens = max(0.0, self._tokens(client, now) - 1.0)
        self._buckets[client] = (tokens, now)
        self._buckets.move_to_end(client)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)

    def refund(self, client: str) -> None:
        """Give back a failure taken up front (`failed` before a check that then succeeded)."""
        if client in self._buckets:
            tokens, since = self._buckets[client]
            self._buckets[client] = (min(float(self.burst), tokens + 1.0), since)

    def retry_after(self, client: str) -> int:
        missing = 1.0 - self._tokens(client, self.clock())
        return max(1, int(missing * self.refill_seconds + 0.999))


AUTH_FAILURE_REASONS = ("invalid", "rate_limited", "busy")
CLOSE_REASONS = ("over_limit", "header_timeout", "write_timeout")


class WebCounters:
    """Counts of refused logins and closed connections, published through `publish` (the
    exposition), throttled to once a second so an attack does not re-render the body per
    request."""

    def __init__(self, publish: Callable[[list[Metric]], None] | None = None) -> None:
        self.auth_failures = dict.fromkeys(AUTH_FAILURE_REASONS, 0)
        self.closed = dict.fromkeys(CLOSE_REASONS, 0)
        self._publish = publish
        self._pending = False
        self._last = 0.0
        if publish is not None:
            publish(self.families())

    def auth_failed(self, reason: str) -> None:
        self.auth_failures[reason] += 1
        self._changed()

    def connection_closed(self, reason: str) -> None:
        self.closed[reason] += 1
        self._changed()

    def families(self) -> list[Metric]:
        out: list[Metric] = []
        for spec, counts in (
            (m.WEB_AUTH_FAILURES, self.auth_failures),
            (m.WEB_CLOSED, self.closed),
        ):
            family = spec.new()
            assert isinstance(family, CounterMetricFamily)
            for reason, count in counts.items():
                family.add_metric([reason], float(count))
            out.append(family)
        return out

    def _changed(self) -> None:
        if self._publish is None or self._pending:
            return
        wait = self._last + 1.0 - time.monotonic()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            wait = 0.0
            loop = None
        if wait <= 0 or loop is None:
            self._flush()
        else:
            self._pending = True
            loop.call_later(wait, self._flush)

    def _flush(self) -> None:
        self._pending = False
        self._last = time.monotonic()
        if self._publish is not None:
            self._publish(self.families())


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol plus a connection cap, a header deadline, a cap on the
    request head and a deadline for a stalled answer (see the module). httptools rather than
    h11: with the pure-Python parser, 50 simultaneous scrapes queued past 50 ms."""

    counters: ClassVar[WebCounters | None] = None
    max_connections: ClassVar[int] = MAX_CONNECTIONS
    header_timeout: ClassVar[float] = HEADER_TIMEOUT
    write_timeout: ClassVar[float] = WRITE_TIMEOUT
    max_header_bytes: ClassVar[int] = MAX_HEADER_BYTES

    _header_timer: asyncio.TimerHandle | None = None
    _write_timer: asyncio.TimerHandle | None = None
    _opened: float = 0.0
    _in_head = False
    """True from a request's first byte (or the connection's start) to its complete headers."""
    _head_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._opened = time.monotonic()
        self._start_head()
        if len(self.connections) > self.max_connections and not self._evict_idle():
            self._close("over_limit")

    def data_received(self, data: bytes) -> None:
        if not self._in_head and self._idle():
            self._start_head()  # a new request on a kept-alive connection
        super().data_received(data)
        if self._in_head and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > self.max_header_bytes:
                self._end_head()
                self.send_400_response("Request head too large.")

    def on_headers_complete(self) -> None:
        self._end_head()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._end_head()
        self._disarm_write_timer()
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._write_timer is None:
            self._write_timer = self.loop.call_later(self.write_timeout, self._write_stalled)

    def resume_writing(self) -> None:
        self._disarm_write_timer()
        super().resume_writing()

    def _disarm_write_timer(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def _write_stalled(self) -> None:
        self._write_timer = None
        if not self.transport.is_closing():
            self._close("write_timeout")

    def _idle(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _evict_idle(self) -> bool:
        """Close the oldest other connection that has no request in flight."""
        idle = [
            c
            for c in self.connections
            if c is not self
            and isinstance(c, GuardedProtocol)
            and c._idle()
            and not c.transport.is_closing()
        ]
        if not idle:
            return False
        min(idle, key=lambda c: c._opened)._close("over_limit")
        return True

    def _start_head(self) -> None:
        self._end_head()
        self._in_head = True
        self._head_bytes = 0
        self._header_timer = self.loop.call_later(self.header_timeout, self._header_timeout)

    def _end_head(self) -> None:
        self._in_head = False
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self._in_head and not self.transport.is_closing():
            self._close("header_timeout")

    def _close(self, reason: str) -> None:
        self._end_head()
        self._disarm_write_timer()
        if self.counters is not None:
            self.counters.connection_closed(reason)
        self.transport.abort()


def guarded_protocol(counters: WebCounters | None, **limits: Any) -> type[GuardedProtocol]:
    """A protocol class bound to one server's counters and limits."""
    return type("ServerProtocol", (GuardedProtocol,), {"counters": counters, **limits})
