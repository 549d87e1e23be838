"""The probe's HTTPS client: one GET on a fresh connection, timed at the socket events.

blackbox_exporter times its phases with Go's httptrace at the moments the network answers:
connect is ConnectStart..ConnectDone, tls is TLSHandshakeStart..Done, processing runs from the
ready connection (GotConn) to the first response byte, transfer from that byte to the end of the
body. A general-purpose async client adds its own work to every one of those spans (event-loop
turns between the socket becoming ready and the code seeing it, TLS through memory buffers,
connection-pool bookkeeping), and that work would be reported as the tenant's latency.

So the probe runs this client in a worker thread on a blocking socket: `connect()`,
`do_handshake()` and `recv()` return when the kernel and OpenSSL are done, and the timestamp is
taken on the next line. Everything that is not the network (the TLS context with its CA store,
the request bytes) is built before the clock starts. HTTP/1.1 framing (Content-Length, chunked,
read-to-close) is h11's, the parser httpx itself uses.

The client asks for `Accept-Encoding: identity`; a server that compresses anyway has its body
inflated after the clock stops and never past the size cap. Proxy environment variables are
ignored, as blackbox_exporter does by default: the probe measures the path to the tenant.
"""

from __future__ import annotations

import socket
import ssl
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import h11
from cryptography import x509

from exporter import __version__
from exporter.core.errors import SourceError

RECV_BYTES = 64 * 1024
MAX_HEADER_BYTES = 100 * 1024
"""The status line and headers together, as httpcore bounds them."""


@dataclass
class Trace:
    """What one probe reached: perf_counter() seconds at each socket event (None until it
    happened), and the status code once the response head arrived."""

    start: float = 0.0
    resolved: float | None = None
    connect_start: float | None = None
    connected: float | None = None
    tls_start: float | None = None
    tls_done: float | None = None
    """The connection is ready for the request: Go's GotConn."""
    first_byte: float | None = None
    end: float | None = None
    """Last body byte read: the probe's end, as blackbox_exporter's."""
    failed: float | None = None
    """When a failure ended the probe early."""
    status: int = 0

    def last(self) -> float:
        """The latest event reached."""
        events = (
            self.resolved,
            self.connected,
            self.tls_done,
            self.first_byte,
            self.end,
            self.failed,
        )
        return max((t for t in events if t is not None), default=self.start)

    def phases(self) -> dict[str, float]:
        """blackbox_exporter's phases; a phase not reached is 0."""

        def span(begin: float | None, until: float | None) -> float:
            return max(0.0, until - begin) if begin is not None and until is not None else 0.0

        return {
            "resolve": span(self.start, self.resolved),
            "connect": span(self.connect_start, self.connected),
            "tls": span(self.tls_start, self.tls_done),
            "processing": span(self.tls_done, self.first_byte),
            "transfer": span(self.first_byte, self.end),
        }


@dataclass
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    cert_not_after: float | None
    trace: Trace = field(default_factory=Trace)


class ProbeClient:
    """GET `https://<host>:<port><path>` on a new connection per call (blocking: run it in a
    worker thread). The host name is the SNI name, the certificate's name and the Host header;
    the connection goes to the address it resolves to, or to the host itself when it is an IP
    literal."""

    def __init__(
        self, host: str, port: int, context: ssl.SSLContext, timeout: float, max_bytes: int
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.context = context
        # The tenant sees what it saw from httpx: an HTTP/1.1 client. Teleport's proxy routes
        # TLS by ALPN, and "http/1.1" selects its web listener.
        self.context.set_alpn_protocols(["http/1.1"])
        self._literal = _ip_literal(host)
        self._host_header = host if port == 443 else f"{_bracketed(host)}:{port}"

    def get(self, path: str, headers: list[tuple[str, str]], trace: Trace) -> Answer:
        """One probe. Raises TimeoutError, OSError (ssl.SSLError among them),
        h11.RemoteProtocolError or SourceError (too_large, parse); `trace` keeps the events
        reached either way."""
        parser = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEADER_BYTES)
        request = parser.send(
            h11.Request(
                method="GET",
                target=path,
                headers=[
                    ("Host", self._host_header),
                    ("User-Agent", f"teleport-cloud-exporter/{__version__}"),
                    ("Accept-Encoding", "identity"),
                    ("Connection", "close"),
                    *headers,
                ],
            )
        )
        request += parser.send(h11.EndOfMessage()) or b""
        trace.start = time.perf_counter()
        try:
            return self._exchange(request, parser, trace)
        except BaseException:
            trace.failed = time.perf_counter()
            raise

    def _exchange(self, request: bytes, parser: h11.Connection, trace: Trace) -> Answer:
        deadline = trace.start + self.timeout

        def remaining() -> float:
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError(f"no answer within {self.timeout:g}s")
            return left

        family, address = self._resolve()
        trace.resolved = time.perf_counter()
        trace.connect_start = trace.resolved
        raw = socket.socket(family, socket.SOCK_STREAM)
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as Go's dialer
            raw.settimeout(remaining())
            raw.connect(address)
            trace.connected = time.perf_counter()
            tls = self.context.wrap_socket(
                raw, server_hostname=self.host, do_handshake_on_connect=False
            )
        except BaseException:
            raw.close()
            raise
        with tls:
            tls.settimeout(remaining())
            trace.tls_start = time.perf_counter()
            tls.do_handshake()
            trace.tls_done = time.perf_counter()
            certificate = tls.getpeercert(binary_form=True)  # a copy; decoded off the clock
            tls.settimeout(remaining())
            tls.sendall(request)
            status, response_headers, body = self._read_response(tls, parser, trace, remaining)
        return Answer(
            status=status,
            headers=response_headers,
            body=decoded(body, response_headers, self.max_bytes),
            cert_not_after=_not_after(certificate),
            trace=trace,
        )

    def _resolve(self) -> tuple[socket.AddressFamily, tuple[str, int]]:
        if self._literal is not None:
            return self._literal, (self.host, self.port)  # nothing to resolve
        try:
            infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise SourceError("connect", f"cannot resolve {self.host!r}: {exc}") from exc
        if not infos:
            raise SourceError("connect", f"{self.host!r} resolves to no address")
        family, _, _, _, address = infos[0]
        return family, (str(address[0]), int(address[1]))

    def _read_response(
        self,
        tls: ssl.SSLSocket,
        parser: h11.Connection,
        trace: Trace,
        remaining: Callable[[], float],
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        status = 0
        headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []
        size = 0
        while True:
            event = parser.next_event()
            if event is h11.NEED_DATA:
                tls.settimeout(remaining())
                data = tls.recv(RECV_BYTES)
                if trace.first_byte is None:
                    if not data:
                        raise ConnectionResetError("the server closed the connection unanswered")
                    trace.first_byte = time.perf_counter()
                parser.receive_data(data)
            elif isinstance(event, h11.Response):
                status, headers = event.status_code, list(event.headers)
                trace.status = status
                declared = _header(headers, b"content-length")
                if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
                    raise SourceError(
                        "too_large", f"response of {declared.decode()} bytes exceeds the cap"
                    )
            elif isinstance(event, h11.Data):
                size += len(event.data)
                if size > self.max_bytes:
                    raise SourceError("too_large", f"response exceeds {self.max_bytes} bytes")
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                trace.end = time.perf_counter()
                return status, headers, b"".join(chunks)
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionResetError("the server closed the connection unanswered")
            elif not isinstance(event, h11.InformationalResponse):  # 1xx: the answer follows
                # h11.PAUSED, which a GET without Upgrade should never meet: asking the parser
                # again would spin without reading
                raise h11.RemoteProtocolError(f"no HTTP answer follows {event!r}")


def decoded(body: bytes, headers: list[tuple[bytes, bytes]], max_bytes: int) -> bytes:
    """The body without its Content-Encoding. The probe asks for identity; a server that
    compresses anyway may use one gzip or deflate layer, inflated to at most `max_bytes` (every
    gzip member, as Go reads them). Stacked or other codings are an `http` failure, as for the
    other sources."""
    codings = [
        c.strip().lower()
        for c in (_header(headers, b"content-encoding") or b"").split(b",")
        if c.strip() and c.strip().lower() != b"identity"
    ]
    if not codings:
        return body
    if len(codings) > 1 or codings[0] not in (b"gzip", b"x-gzip", b"deflate"):
        raise SourceError("http", f"unsupported content-encoding {b', '.join(codings)!r}")
    out: list[bytes] = []
    size = 0
    data = body
    try:
        while data:
            inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header
            # at most one byte past the cap is inflated: a bomb never unpacks
            out.append(inflater.decompress(data, max_bytes - size + 1))
            size += len(out[-1])
            if size > max_bytes or inflater.unconsumed_tail:
                raise SourceError("too_large", f"response exceeds {max_bytes} bytes once decoded")
            if not inflater.eof:
                raise SourceError("parse", "compressed body ends early")
            data = inflater.unused_data
    except zlib.error as exc:
        raise SourceError("parse", f"bad {codings[0].decode()} data: {exc}") from None
    return b"".join(out)


def error_from_probe(exc: BaseException) -> SourceError | None:
    """The failure reason of a probe exception; None when it is not a network or server
    failure (a bug of ours, which the runtime counts as internal)."""
    if isinstance(exc, SourceError):
        return exc
    if isinstance(exc, TimeoutError):
        return SourceError("timeout", str(exc) or "timed out")
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return SourceError("tls", f"TLS failure: {exc}")
    if isinstance(exc, h11.RemoteProtocolError):
        return SourceError("http", f"not a valid HTTP/1.1 answer: {exc}")
    if isinstance(exc, OSError):
        return SourceError("connect", f"connection failed: {exc or exc.__class__.__name__}")
    return None


def _not_after(der: bytes | None) -> float | None:
    if not der:
        return None
    return x509.load_der_x509_certificate(der).not_valid_after_utc.timestamp()


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def _ip_literal(host: str) -> socket.AddressFamily | None:
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except OSError:
            continue
        return family
    return None


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host
