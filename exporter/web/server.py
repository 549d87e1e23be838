"""The HTTP side: a thin ASGI handler over the pre-rendered exposition, served by uvicorn.

A scrape picks the cached body for the negotiated format and encoding from the exposition's
current snapshot and writes its stored chunks; it never triggers I/O to Teleport, never walks the
series and never compresses.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio
import uvicorn

from exporter import __version__
from exporter.core.keys import PublishKey
from exporter.exposition.body import OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE, Body, Exposition
from exporter.web.config import BasicAuth, WebConfig
from exporter.web.guard import (
    KEEP_ALIVE_TIMEOUT,
    MAX_CONNECTIONS,
    QuietServer,
    WebCounters,
    guarded_protocol,
)

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

INDEX = """<!doctype html>
<html><head><title>teleport-cloud-exporter</title></head>
<body><h1>teleport-cloud-exporter {version}</h1>
<p>Prometheus metrics for Teleport Enterprise Cloud tenants.</p>
<ul><li><a href="metrics">metrics</a></li><li><a href="healthz">healthz</a></li>
<li><a href="readyz">readyz</a></li></ul></body></html>
"""


WRITE_SLICE = 128 * 1024
"""Largest single write of a body."""


class PageCache:
    """The page at `/`, built at most once per change of the exporter's state (the
    exposition's generation), on the first request after it: a page nobody reads costs
    nothing, and concurrent requests share one build."""

    def __init__(self, generation: Callable[[], int], build: Callable[[], Awaitable[bytes]]):
        self._generation = generation
        self._build = build
        self._lock = anyio.Lock()
        self._page: bytes | None = None
        self._built_at = -1
        self.builds = 0

    async def get(self) -> bytes:
        if self._page is not None and self._built_at == self._generation():
            return self._page
        async with self._lock:
            generation = self._generation()
            if self._page is None or self._built_at != generation:
                self._page = await self._build()
                self._built_at = generation
                self.builds += 1
            return self._page


HEALTH_PATHS = frozenset({"/healthz", "/readyz"})
"""Served without basic auth (still over TLS when it is on)."""


def wants_openmetrics(accept: str) -> bool:
    return "application/openmetrics-text" in accept


def wants_gzip(accept_encoding: str) -> bool:
    for item in accept_encoding.split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() == "gzip" and params.replace(" ", "") not in ("q=0", "q=0.0"):
            return True
    return False


class App:
    """Routes: /metrics, /healthz (process alive), /readyz (able to serve), /.

    `ready` says whether the exporter can serve (configuration loaded, ledger open, listener up),
    never whether Teleport is healthy: a pod taken out of its Service during a Teleport outage
    would fire the cluster's own alerts and hide the very series that report the outage.
    """

    def __init__(
        self,
        exposition: Exposition,
        ready: Callable[[], bool],
        auth: BasicAuth | None = None,
        page: PageCache | None = None,
    ) -> None:
        self.exposition = exposition
        self.ready = ready
        self.auth = auth
        self.page = page
        self.counters = WebCounters(lambda families: exposition.update(PublishKey("web"), families))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        path = scope["path"]
        head = scope["method"] == "HEAD"
        probe = path in HEALTH_PATHS and scope["method"] in ("GET", "HEAD")
        # Health probes answer without a login (a kubelet cannot send one) and say nothing but
        # ok/ready; everything else, the metrics and the page, needs it.
        if self.auth is not None and not probe and not await self._authorized(scope, headers, send):
            return
        if scope["method"] not in ("GET", "HEAD"):
            await _respond(send, 405, b"Method Not Allowed\n", "text/plain; charset=utf-8")
            return
        if path == "/metrics":
            openmetrics = wants_openmetrics(headers.get("accept", ""))
            gzipped = wants_gzip(headers.get("accept-encoding", ""))
            cached = self.exposition.snapshot().body(openmetrics, gzipped)
            extra = [(b"content-encoding", b"gzip")] if gzipped else []
            extra.append((b"vary", b"Accept, Accept-Encoding"))
            content_type = OPENMETRICS_CONTENT_TYPE if openmetrics else TEXT_CONTENT_TYPE
            await _respond(send, 200, cached, content_type, extra, head)
        elif path == "/healthz":
            await _respond(send, 200, b"OK\n", "text/plain; charset=utf-8", head=head)
        elif path == "/readyz":
            if self.ready():
                await _respond(send, 200, b"OK\n", "text/plain; charset=utf-8", head=head)
            else:
                body = b"not ready: starting up or shutting down\n"
                await _respond(send, 503, body, "text/plain; charset=utf-8", head=head)
        elif path == "/":
            if self.page is not None:
                page = await self.page.get()
            else:
                page = INDEX.format(version=__version__).encode()
            await _respond(send, 200, page, "text/html; charset=utf-8", head=head)
        else:
            await _respond(send, 404, b"Not Found\n", "text/plain; charset=utf-8", head=head)

    async def _authorized(self, scope: Scope, headers: dict[str, str], send: Send) -> bool:
        """Basic auth; on refusal the answer is sent here: 401, or 429 (rate-limited or busy)."""
        assert self.auth is not None
        client = scope.get("client")
        address = str(client[0]) if client else ""
        verdict = await self.auth.check(headers.get("authorization"), address)
        if verdict == "ok":
            return True
        if self.counters is not None:
            self.counters.auth_failed(verdict)
        if verdict == "invalid":
            challenge = (b"www-authenticate", b'Basic realm="teleport-cloud-exporter"')
            await _respond(send, 401, b"Unauthorized\n", "text/plain; charset=utf-8", [challenge])
        else:
            wait = self.auth.limiter.retry_after(address) if verdict == "rate_limited" else 1
            retry = (b"retry-after", str(wait).encode())
            await _respond(send, 429, b"Too Many Requests\n", "text/plain; charset=utf-8", [retry])
        return False

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _respond(
    send: Send,
    status: int,
    body: bytes | Body,
    content_type: str,
    extra: list[tuple[bytes, bytes]] | None = None,
    head: bool = False,
) -> None:
    """Headers, then the body: bytes in one message, a cached `Body` as it is stored (several
    `more_body` messages, never joined whole), so concurrent scrapes only share read-only data."""
    length = body.length if isinstance(body, Body) else len(body)
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(length).encode()),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    if head or not isinstance(body, Body):
        await send({"type": "http.response.body", "body": b"" if head else body})
        return
    for batch in body.batches():
        # Slices (views, no copies): uvicorn waits for the socket between writes, so a client
        # that stops reading holds at most a slice or two in memory, never a whole large part.
        view = memoryview(batch)
        for start in range(0, len(view), WRITE_SLICE):
            piece = view[start : start + WRITE_SLICE]
            await send({"type": "http.response.body", "body": piece, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def bind(address: str) -> socket.socket:
    """Bind the listening socket up front so a busy port is a clear start-up error."""
    from exporter.config import split_host_port

    host, port = split_host_port(address, default_port=0)
    host = host or "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so, and without
    # it a body written in several sends can wait 40 ms on the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(MAX_CONNECTIONS)
    sock.set_inheritable(True)
    return sock


def build_server(
    app: App, web: WebConfig | None, timeout_graceful: float = 3.0, **limits: Any
) -> QuietServer:
    """uvicorn over `app` with TLS from the web config and the connection limits of
    exporter.web.guard (`limits` overrides them: max_connections, header_timeout)."""
    tls = web.tls_server_config if web else None
    # TLS is not given to uvicorn: the protocol does the handshake itself, so that a connection
    # is counted and capped from accept and its handshake has a deadline (exporter.web.guard).
    context = tls.server_context() if tls is not None else None
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=int(timeout_graceful),
        server_header=False,
        http=guarded_protocol(app.counters, context, **limits),
        timeout_keep_alive=int(KEEP_ALIVE_TIMEOUT),
        backlog=MAX_CONNECTIONS,
    )
    config.load()
    return QuietServer(config)
