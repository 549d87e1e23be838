"""The probe's own HTTPS client against a one-connection TLS server on loopback that answers
with exactly the bytes a test gives it: framing, encodings, SNI, verification, failures."""

from __future__ import annotations

import gzip
import socket
import ssl
import threading
import time
import tracemalloc
from dataclasses import dataclass, field

import pytest
import trustme

from exporter.core.errors import SourceError
from exporter.probe.client import (
    Answer,
    ProbeClient,
    Trace,
    decoded,
    error_from_probe,
)
from exporter.vocab import PROBE_PHASES

PING = b'{"server_version": "18.1.4"}'


@dataclass
class OneShot:
    """Serves one TLS connection: reads the request head, waits `delay`, writes `answer`."""

    context: ssl.SSLContext
    answer: bytes = b""
    delay: float = 0.0
    request: bytes = b""
    server_name: str | None = None
    port: int = 0
    _listener: socket.socket = field(default_factory=socket.socket)

    def start(self) -> OneShot:
        self.context.sni_callback = self._note_name
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(1)
        self._listener.settimeout(10)
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def _note_name(self, sock: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
        self.server_name = name

    def _serve(self) -> None:
        try:
            raw, _ = self._listener.accept()
        except OSError:
            return
        raw.settimeout(10)
        try:
            with self.context.wrap_socket(raw, server_side=True) as tls:
                while b"\r\n\r\n" not in self.request:
                    data = tls.recv(4096)
                    if not data:
                        return
                    self.request += data
                time.sleep(self.delay)
                tls.sendall(self.answer)
        except OSError:
            pass  # the client gave up or refused the certificate: its side is what is tested
        finally:
            self._listener.close()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def probe(
    ca: trustme.CA,
    answer: bytes,
    host: str = "127.0.0.1",
    delay: float = 0.0,
    timeout: float = 5.0,
    max_bytes: int = 1024 * 1024,
    trusted: bool = True,
) -> tuple[OneShot, Answer | BaseException, Trace]:
    server = OneShot(server_context(ca), answer, delay).start()
    context = client_context(ca) if trusted else ssl.create_default_context()
    client = ProbeClient(host, server.port, context, timeout=timeout, max_bytes=max_bytes)
    trace = Trace()
    try:
        return server, client.get("/webapi/ping", [("Accept", "application/json")], trace), trace
    except Exception as exc:
        return server, exc, trace


def reason(outcome: Answer | BaseException) -> str:
    assert isinstance(outcome, BaseException), f"expected a failure, got {outcome!r}"
    error = error_from_probe(outcome)
    assert error is not None, f"{outcome!r} was classified as a bug of ours"
    return error.reason


def head(status: str = "200 OK", *headers: str) -> bytes:
    return ("\r\n".join([f"HTTP/1.1 {status}", *headers]) + "\r\n\r\n").encode()


def test_request_sni_and_answer(ca: trustme.CA) -> None:
    server, answer, trace = probe(
        ca, head("200 OK", f"Content-Length: {len(PING)}") + PING, host="localhost"
    )
    assert isinstance(answer, Answer) and answer.status == 200 and answer.body == PING
    request = server.request.decode().lower()
    assert request.startswith("get /webapi/ping http/1.1\r\n")
    assert f"host: localhost:{server.port}\r\n" in request
    assert "accept-encoding: identity\r\n" in request and "accept: application/json" in request
    assert server.server_name == "localhost", "SNI carries the tenant's host name"
    assert answer.cert_not_after is not None and answer.cert_not_after > time.time()
    assert trace.status == 200


def test_no_sni_for_an_ip_literal(ca: trustme.CA) -> None:
    server, answer, _ = probe(ca, head("200 OK", "Content-Length: 2") + b"{}")
    assert isinstance(answer, Answer)
    assert server.server_name is None


def test_server_delay_lands_in_processing_only(ca: trustme.CA) -> None:
    _, answer, trace = probe(ca, head("200 OK", "Content-Length: 2") + b"{}", delay=0.3)
    assert isinstance(answer, Answer)
    phases = trace.phases()
    assert tuple(phases) == PROBE_PHASES
    assert phases["processing"] >= 0.3
    assert all(phases[p] < 0.3 for p in ("resolve", "connect", "tls", "transfer"))
    total = trace.last() - trace.start
    assert sum(phases.values()) <= total + 1e-9


@pytest.mark.parametrize(
    ("answer", "body"),
    [
        (
            head("200 OK", "Transfer-Encoding: chunked") + b'3\r\n{"s\r\n2\r\n"}\r\n0\r\n\r\n',
            b'{"s"}',
        ),
        (head("200 OK") + PING, PING),  # no length: the body runs to the close
        (head("100 Continue") + head("200 OK", "Content-Length: 2") + b"{}", b"{}"),
    ],
    ids=["chunked", "read-to-close", "informational-first"],
)
def test_framings(ca: trustme.CA, answer: bytes, body: bytes) -> None:
    _, outcome, _ = probe(ca, answer)
    assert isinstance(outcome, Answer) and outcome.body == body


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (head("200 OK", "Content-Length: 999999999999") + b"{}", "too_large"),
        (head("200 OK", "Transfer-Encoding: chunked") + b"800\r\n" + b" " * 2048, "too_large"),
        (head("200 OK", "Content-Length: 100") + b"{}", "http"),  # closed mid-body
        (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", "http"),
        (head("200 OK", "X: " + "x" * 200_000), "http"),  # a head past the cap
        (b"", "connect"),  # closed without an answer
        (head("101 Switching Protocols", "Upgrade: h2c", "Connection: Upgrade"), "http"),
    ],
    ids=[
        "length-over-cap",
        "chunks-over-cap",
        "truncated",
        "not-http",
        "huge-head",
        "no-answer",
        "switching-protocols",
    ],
)
def test_failures(ca: trustme.CA, answer: bytes, expected: str) -> None:
    _, outcome, trace = probe(ca, answer, max_bytes=1024)
    assert reason(outcome) == expected
    assert trace.failed is not None and trace.tls_done is not None


def test_untrusted_certificate_is_a_tls_failure(ca: trustme.CA) -> None:
    _, outcome, trace = probe(ca, head("200 OK", "Content-Length: 2") + b"{}", trusted=False)
    assert reason(outcome) == "tls"
    assert trace.connected is not None and trace.tls_done is None


def test_timeout_keeps_the_phases_reached(ca: trustme.CA) -> None:
    _, outcome, trace = probe(ca, b"", delay=2.0, timeout=0.4)
    assert reason(outcome) == "timeout"
    assert trace.tls_done is not None and trace.first_byte is None
    assert trace.failed is not None and 0.4 <= trace.failed - trace.start < 1.5


def test_refused_connection(ca: trustme.CA) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    client = ProbeClient("127.0.0.1", port, client_context(ca), timeout=2.0, max_bytes=1024)
    with pytest.raises(ConnectionRefusedError) as caught:
        client.get("/", [], Trace())
    assert reason(caught.value) == "connect"


def test_proxy_environment_is_ignored(ca: trustme.CA, monkeypatch: pytest.MonkeyPatch) -> None:
    # blackbox_exporter's default: the probe measures the path to the tenant, not to a proxy
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    _, outcome, _ = probe(ca, head("200 OK", "Content-Length: 2") + b"{}")
    assert isinstance(outcome, Answer) and outcome.body == b"{}"


def test_compressed_answer_though_identity_was_asked(ca: trustme.CA) -> None:
    body = gzip.compress(PING)
    answer = head("200 OK", "Content-Encoding: gzip", f"Content-Length: {len(body)}") + body
    _, outcome, _ = probe(ca, answer)
    assert isinstance(outcome, Answer) and outcome.body == PING


def gz(data: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"content-encoding", data)]


def test_decoded_reads_every_gzip_member() -> None:
    body = gzip.compress(b'{"server_version": ') + gzip.compress(b'"18.1.4"}')
    assert decoded(body, gz(b"gzip"), 1024) == PING


def test_decoded_bounds_a_compression_bomb() -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)  # 64 MiB in ~64 KiB
    tracemalloc.start()
    try:
        with pytest.raises(SourceError) as caught:
            decoded(bomb, gz(b"gzip"), 1024 * 1024)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert caught.value.reason == "too_large"
    assert peak < 8 * 1024 * 1024, "inflated past the cap before refusing"


@pytest.mark.parametrize(
    ("body", "encoding", "expected"),
    [
        (b"\x1f\x8b\x08\x00garbage", b"gzip", "parse"),
        (gzip.compress(PING)[:-12], b"gzip", "parse"),  # cut short
        (PING, b"br", "http"),  # an encoding never asked for
        (PING, b"gzip, gzip", "http"),  # stacked
    ],
    ids=["corrupt", "cut-short", "brotli", "stacked"],
)
def test_decoded_refuses(body: bytes, encoding: bytes, expected: str) -> None:
    with pytest.raises(SourceError) as caught:
        decoded(body, gz(encoding), 1024)
    assert caught.value.reason == expected


def test_identity_passes_through() -> None:
    assert decoded(PING, [], 8) == PING  # the cap is the reader's, not re-applied here
    assert decoded(PING, gz(b"identity"), 8) == PING


def test_a_bug_is_not_a_failure_reason() -> None:
    assert error_from_probe(KeyError("x")) is None
    timeout = error_from_probe(TimeoutError())
    assert timeout is not None and timeout.reason == "timeout"
