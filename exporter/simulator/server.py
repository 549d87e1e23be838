"""The simulated tenant's HTTPS server: a test CA of its own, ping, version channel, status page.

`/_sim/state` (GET to read, POST a JSON object to change) switches scenario and faults while
it runs, so tests and the demo can script outages.
"""

from __future__ import annotations

import json
import random
import socket
import ssl
import tempfile
import threading
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import trustme
import uvicorn

from exporter.simulator.scenarios import (
    SimState,
    channel_answer,
    fault_body,
    ping_body,
    summary_body,
)
from exporter.web.guard import QuietServer
from exporter.web.server import bind

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

PING_PATHS = ("/webapi/ping", "/v1/webapi/ping")
CHANNELS = "/v1/webapi/automaticupgrades/channel/"


@dataclass
class Scripted:
    """A canned answer for one path, overriding the simulated one (hostile-input tests): the
    body is sent `repeat` times as separate chunks, so a huge answer costs no huge buffer."""

    status: int = 200
    body: bytes = b""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    delay: float = 0.0
    repeat: int = 1


class SimulatorApp:
    def __init__(self, state: SimState) -> None:
        self.state = state
        self.scripted: dict[str, Scripted] = {}
        self.accept_encoding: dict[str, str] = {}
        """The last `Accept-Encoding` asked for, per path (what a client is willing to inflate)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        state = self.state
        state.requests[path] = state.requests.get(path, 0) + 1
        self.accept_encoding[path] = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k.lower() == b"accept-encoding"),
            "",
        )
        if path in self.scripted:
            await _send_scripted(send, self.scripted[path])
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        host = headers.get("host", "localhost").rsplit(":", 1)[0].strip("[]")
        if path == "/_sim/state":
            await self._control(scope, receive, send)
        elif path in PING_PATHS:
            # Teleport answers ping for one update group: `?group=`, else the rollout's last.
            query = urllib.parse.parse_qs(scope.get("query_string", b"").decode())
            group = query.get("group", [None])[0]
            await self._faulty(
                send, state.ping, ping_body(state, host, group), state.ping_status(), state.jitter
            )
        elif path.startswith(CHANNELS) and path.endswith(("/version", "/critical")):
            # `v<semver>` or `none`, with no trailing newline, as Teleport's version server;
            # with a rollout the channel name is read as an update group.
            channel, _, what = path.removeprefix(CHANNELS).partition("/")
            answer = channel_answer(state, channel, what)
            if answer is None:
                await _send(send, 404, b"404 page not found\n", "text/plain")
            else:
                await _send(send, 200, answer.encode(), "text/plain")
        elif path == "/api/v2/summary.json":
            body = summary_body(state, datetime.now(UTC))
            etag = '"' + str(abs(hash(json.dumps(body["status"]) + state.scenario))) + '"'
            unfaulted = not (state.status.status or state.status.body or state.status.delay)
            if unfaulted and headers.get("if-none-match") == etag:
                await _send(send, 304, b"", "application/json", [(b"etag", etag.encode())])
                return
            await self._faulty(send, state.status, body, 200, 0.0, [(b"etag", etag.encode())])
        else:
            await _send(send, 404, b"404 page not found\n", "text/plain")

    async def _faulty(
        self,
        send: Send,
        faults: Any,
        document: dict[str, Any],
        status: int,
        jitter: float,
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        delay = faults.delay + (random.uniform(0, jitter) if jitter else 0.0)
        if delay:
            await anyio.sleep(delay)
        status = faults.status or status
        headers = list(extra or [])
        if status == 429 or faults.retry_after:
            headers.append((b"retry-after", str(faults.retry_after or 30).encode()))
        good = json.dumps(document).encode()
        body = fault_body(faults.body, good) if faults.body else good
        if status >= 400 and not faults.body:
            body = json.dumps({"error": {"message": "simulated failure"}}).encode()
        content_type = "text/html" if faults.body == "html" else "application/json"
        await _send(send, status, body, content_type, headers)

    async def _control(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "POST":
            raw = b""
            while True:
                message = await receive()
                raw += message.get("body", b"")
                if not message.get("more_body"):
                    break
            try:
                self.state.apply(json.loads(raw or b"{}"))
            except (KeyError, ValueError, TypeError) as exc:
                await _send(send, 400, f"bad state change: {exc}\n".encode(), "text/plain")
                return
        await _send(send, 200, json.dumps(asdict(self.state)).encode(), "application/json")


async def _send_scripted(send: Send, answer: Scripted) -> None:
    if answer.delay:
        await anyio.sleep(answer.delay)
    headers = [(b"content-type", b"application/json"), *answer.headers]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    for n in range(answer.repeat):
        more = n < answer.repeat - 1
        await send({"type": "http.response.body", "body": answer.body, "more_body": more})


async def _send(
    send: Send,
    status: int,
    body: bytes,
    content_type: str,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class SimulatedTenant:
    """A running simulated tenant on loopback with its own CA.

    `ca_file` is what the exporter's `ca_file` must point at; `proxy` its `host:port`.
    Use `start_in_thread()` from synchronous tests, or `await serve()` inside an event loop.
    """

    def __init__(
        self,
        state: SimState | None = None,
        listen: str = "127.0.0.1:0",
        workdir: Path | None = None,
    ) -> None:
        self.state = state or SimState()
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="tce-sim-"))
        self.ca = trustme.CA(organization_name="teleport-cloud-exporter simulator")
        self.ca_file = self.workdir / "simulator-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        cert = self.ca.issue_cert("127.0.0.1", "::1", "localhost")
        wrong = self.ca.issue_cert("mismatch.invalid")
        cert_file, key_file = self.workdir / "server.pem", self.workdir / "server.key"
        cert.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
        cert.private_key_pem.write_to_path(str(key_file))
        self._wrong_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        wrong.configure_cert(self._wrong_context)
        self.socket = bind(listen)
        # Accepted connections inherit this: without it the response's header and body
        # records meet Nagle + delayed ACK and every probe gains ~40 ms that no real proxy has.
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.host, self.port = self.socket.getsockname()[:2]
        self.app = SimulatorApp(self.state)
        config = uvicorn.Config(
            self.app,
            log_config=None,
            access_log=False,
            lifespan="off",  # nothing to start; and the demo cancels it mid-flight on Ctrl-C
            ssl_certfile=str(cert_file),
            ssl_keyfile=str(key_file),
            timeout_graceful_shutdown=1,
        )
        config.load()
        assert isinstance(config.ssl, ssl.SSLContext)
        config.ssl.sni_callback = self._choose_certificate
        self.server = QuietServer(config)
        self._thread: threading.Thread | None = None

    def _choose_certificate(
        self, sock: ssl.SSLObject | ssl.SSLSocket, name: str | None, context: ssl.SSLContext
    ) -> None:
        # TLS mismatch: present a certificate for another host name, as a misrouted proxy would.
        if self.state.tls_mismatch:
            sock.context = self._wrong_context

    @property
    def proxy(self) -> str:
        return f"{self.host}:{self.port}" if ":" not in self.host else f"[{self.host}]:{self.port}"

    @property
    def url(self) -> str:
        return f"https://{self.proxy}"

    async def serve(self) -> None:
        await self.server.serve(sockets=[self.socket])

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def start_in_thread(self) -> SimulatedTenant:
        self._thread = threading.Thread(
            target=lambda: anyio.run(self.serve), daemon=True, name="simulator"
        )
        self._thread.start()
        deadline = 100
        while not self.server.started and deadline:
            threading.Event().wait(0.05)
            deadline -= 1
        return self
