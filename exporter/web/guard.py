"""Self-protection of the exporter's HTTP server: limits a hostile client cannot talk around.

- `FailureLimiter`: a token bucket of failed logins per client address, so guessing passwords
  costs the attacker time and costs us no bcrypt once the bucket is empty.
- `GuardedProtocol`: uvicorn's httptools protocol with caps on open connections, in all and per
  client address, counted from accept (the oldest connection with no request in flight makes
  room, else the one whose client stopped reading longest, else the new one is closed), a
  deadline for the TLS handshake, a deadline and a size cap for a request's head (a half-sent
  request cannot hold a descriptor forever), a bound on pipelined requests and a deadline for a
  stalled answer (a client that stops reading); uvicorn's own `timeout_keep_alive` closes idle
  kept-alive connections.
- `WebCounters`: what the above refused, published as
  `teleport_cloud_web_auth_failures_total{reason}` and
  `teleport_cloud_web_connections_closed_total{reason}` at most once a second.
- `QuietServer`: uvicorn's server without its own signal handling.

This is the one module that relies on uvicorn's internals (the httptools protocol's hooks and
attributes, the server's signal and shutdown methods). pyproject.toml pins uvicorn to the range
tested with them, and tests/unit/web/test_uvicorn_contract.py checks that every attribute used
here exists in the installed uvicorn.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import uvicorn
from prometheus_client.metrics_core import Metric
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from exporter.core import catalogue as m
from exporter.vocab import AUTH_FAILURE_REASONS, CLOSE_REASONS

MAX_CONNECTIONS = 256
"""Open connections at most, counted from accept (a TLS handshake under way counts): far below
systemd's default RLIMIT_NOFILE of 1024, so probes, tctl and the status page always find
descriptors."""
MAX_PER_ADDRESS = 32
"""Connections one client address may hold: one address cannot take every slot. Prometheus
holds one per target, a kubelet one per probe."""
MAX_PIPELINED = 4
"""Requests that may wait behind an unanswered one on a connection; past it the connection is
closed. Prometheus never pipelines."""
SEND_BUFFER = 256 * 1024
"""Kernel send buffer of a connection (Linux doubles it for its bookkeeping)."""
HANDSHAKE_TIMEOUT = 5.0
"""Seconds from accept to a finished TLS handshake."""
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
    """uvicorn's httptools protocol plus the limits of the module: connection caps counted from
    accept (a TLS handshake in progress counts), a handshake deadline, a header deadline and a
    head-size cap, a bound on pipelined requests and a deadline for a stalled answer.
    httptools rather than h11: with the pure-Python parser, 50 simultaneous scrapes queued past
    50 ms.

    With TLS the protocol does the handshake itself (`loop.start_tls`) rather than letting the
    server wrap the socket: asyncio's server-side TLS hands a connection to the protocol only
    once its handshake is done, too late to count or cap it."""

    counters: ClassVar[WebCounters | None] = None
    tls: ClassVar[ssl.SSLContext | None] = None
    max_connections: ClassVar[int] = MAX_CONNECTIONS
    max_per_address: ClassVar[int] = MAX_PER_ADDRESS
    max_pipelined: ClassVar[int] = MAX_PIPELINED
    handshake_timeout: ClassVar[float] = HANDSHAKE_TIMEOUT
    header_timeout: ClassVar[float] = HEADER_TIMEOUT
    write_timeout: ClassVar[float] = WRITE_TIMEOUT
    max_header_bytes: ClassVar[int] = MAX_HEADER_BYTES
    accepted: ClassVar[dict[GuardedProtocol, None]]
    """Every connection from accept to close, oldest first (one table per server)."""
    by_address: ClassVar[dict[str, int]]

    _raw: asyncio.Transport | None = None
    _tls_layer: Any = None
    _handshake: asyncio.Task[None] | None = None
    _address = ""
    _header_timer: asyncio.TimerHandle | None = None
    _write_timer: asyncio.TimerHandle | None = None
    _opened: float = 0.0
    _in_head = False
    """True from a request's first byte (or the connection's start) to its complete headers."""
    _head_bytes = 0
    _refused = False
    _early: bytearray

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if self._raw is None:
            self._early = bytearray()
            self._raw = transport
            self._opened = time.monotonic()
            if not self._admit(transport):
                return
            if self.tls is not None:
                transport.pause_reading()  # the ClientHello waits in the kernel for start_tls
                self._handshake = self.loop.create_task(self._start_tls(transport, self.tls))
                return
        super().connection_made(transport)
        self._start_head()

    def _admit(self, transport: asyncio.Transport) -> bool:
        """Count the accepted connection; make room or refuse it (then it is closed)."""
        peer = transport.get_extra_info("peername")
        self._address = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        if self.by_address.get(self._address, 0) >= self.max_per_address:
            victim = self._victim(same_address=True)
            if victim is None:
                self._refuse(transport, "address_limit")
                return False
            victim._close("address_limit")
        if len(self.accepted) >= self.max_connections:
            victim = self._victim(same_address=False)
            if victim is None:
                self._refuse(transport, "over_limit")
                return False
            victim._close("over_limit")
        self.accepted[self] = None
        self.by_address[self._address] = self.by_address.get(self._address, 0) + 1
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # A fixed send buffer: the kernel's autotuned one can take megabytes per connection
            # that the client never reads, charged to the pod's memory; past this, the
            # server's own flow control (and the write deadline) applies.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        return True

    def _refuse(self, transport: asyncio.Transport, reason: str) -> None:
        self._refused = True
        if self.counters is not None:
            self.counters.connection_closed(reason)
        _reset_on_close(transport)
        transport.abort()

    async def _start_tls(self, raw: asyncio.Transport, context: ssl.SSLContext) -> None:
        try:
            secure = await self.loop.start_tls(
                raw,
                self,
                context,
                server_side=True,
                ssl_handshake_timeout=self.handshake_timeout,
            )
        except (OSError, ssl.SSLError, EOFError, TimeoutError, asyncio.CancelledError) as exc:
            timed_out = "taking longer" in str(exc)  # asyncio's handshake-timeout wording
            self._forget()
            raw.abort()
            if self.counters is not None and not isinstance(exc, asyncio.CancelledError):
                reason = "handshake_timeout" if timed_out else "handshake_failed"
                self.counters.connection_closed(reason)
            return
        finally:
            self._handshake = None
        if secure is None or raw.is_closing():
            self._forget()
            return
        self._follow_socket_flow(raw)
        self.connection_made(secure)
        early, self._early = bytes(self._early), bytearray()
        if early:
            self.data_received(early)

    def _follow_socket_flow(self, raw: asyncio.Transport) -> None:
        """Pause the answer when the socket's own buffer is full, not only TLS's: asyncio's TLS
        layer pauses the application on its unencrypted backlog alone and hands everything it
        encrypted to the socket, so a client that never reads would make the whole body
        buffer (megabytes) per connection."""
        tls_layer: Any = raw.get_protocol()
        pause, resume = tls_layer.pause_writing, tls_layer.resume_writing

        def paused() -> None:
            pause()
            if not self.transport.is_closing():
                self.pause_writing()

        def resumed() -> None:
            resume()
            self.resume_writing()

        tls_layer.pause_writing, tls_layer.resume_writing = paused, resumed
        self._tls_layer = tls_layer

    def _forget(self) -> None:
        if self in self.accepted:
            del self.accepted[self]
            left = self.by_address.get(self._address, 1) - 1
            if left > 0:
                self.by_address[self._address] = left
            else:
                self.by_address.pop(self._address, None)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self.transport is None:
            # TLS: the first request can arrive with the handshake's last flight, before
            # start_tls has handed over the transport; it is kept (bounded) and fed after.
            self._early += data
            if len(self._early) > self.max_header_bytes and self._raw is not None:
                self._refused = True
                self._raw.abort()
            return
        if not self._in_head and self._idle():
            self._start_head()  # a new request on a kept-alive connection
        super().data_received(data)
        if self._in_head and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > self.max_header_bytes:
                self._end_head()
                self.send_400_response("Request head too large.")

    def on_headers_complete(self) -> None:
        if self._refused:
            return  # the rest of a read already being parsed after a refusal
        if not self._idle() and len(self.pipeline) >= self.max_pipelined:
            # Requests queued behind an unanswered one each hold a request object; a client
            # that pipelines thousands and never reads would fill memory. Prometheus never
            # pipelines.
            self._refused = True
            self._close("pipelined")
            return
        self._end_head()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._tls_layer is not None:  # the hooks close a cycle: undo them, memory goes now
            vars(self._tls_layer).pop("pause_writing", None)
            vars(self._tls_layer).pop("resume_writing", None)
            self._tls_layer = None
        self._forget()
        self._end_head()
        self._disarm_write_timer()
        if self.transport is None:
            return  # refused at accept: uvicorn never saw it
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

    def _victim(self, same_address: bool) -> GuardedProtocol | None:
        """The connection to close to make room: the oldest one with no request in flight,
        else the one whose client has stopped reading for longest (a slow reader), never one
        whose answer is flowing or whose handshake is under way."""
        idle: GuardedProtocol | None = None
        stalled: GuardedProtocol | None = None
        for other in self.accepted:  # oldest first
            if other is self or (same_address and other._address != self._address):
                continue
            if other.transport is None or other.transport.is_closing():
                continue  # handshaking (deadline of its own) or already going
            if other._idle():
                idle = idle or other
                break
            if other._write_timer is not None and (
                stalled is None or other._write_timer.when() < stalled._write_timer.when()  # type: ignore[union-attr]
            ):
                stalled = other
        return idle or stalled

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
        self._forget()  # its slot is free now, not once the loop reports the close
        self._end_head()
        self._disarm_write_timer()
        if self.counters is not None:
            self.counters.connection_closed(reason)
        if self._raw is not None:
            _reset_on_close(self._raw)
        if self.transport is not None:
            self.transport.abort()
        elif self._raw is not None:
            self._raw.abort()

    @classmethod
    def abort_handshakes(cls) -> None:
        """Close every connection still in its TLS handshake (at shutdown: the server waits
        only for the connections uvicorn knows)."""
        for connection in list(cls.accepted):
            if connection._handshake is not None:
                connection._handshake.cancel()


def _reset_on_close(transport: asyncio.BaseTransport) -> None:
    """Make the coming close a reset: otherwise the kernel keeps an answer the client never
    reads queued (and the connection open) long after the exporter let go of it."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def guarded_protocol(
    counters: WebCounters | None, tls: ssl.SSLContext | None = None, **limits: Any
) -> type[GuardedProtocol]:
    """A protocol class bound to one server's counters, TLS context, limits and tables."""
    return type(
        "ServerProtocol",
        (GuardedProtocol,),
        {"counters": counters, "tls": tls, "accepted": {}, "by_address": {}, **limits},
    )


class QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the exporter's task group owns shutdown, which
    also drops TLS handshakes still under way (they are not uvicorn's connections yet)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        protocol = self.config.http_protocol_class
        if isinstance(protocol, type) and issubclass(protocol, GuardedProtocol):
            protocol.abort_handshakes()
        await super().shutdown(sockets)
