"""Basic auth that costs an attacker more than it costs us, and HTTP server limits, against the
real uvicorn server on loopback."""

from __future__ import annotations

import base64
import logging
import socket
import threading
from typing import Any

import anyio
import bcrypt
import httpx
import pytest

from exporter.core.logs import RateLimit
from exporter.exposition.body import Exposition
from exporter.web import config as webconfig
from exporter.web.config import BCRYPT_MAX_PASSWORD, HASH_WORKERS, BasicAuth, WebConfig
from exporter.web.guard import FailureLimiter, QuietServer
from exporter.web.server import App, bind, build_server
from tests.conftest import parse_samples, value

HASH = bcrypt.hashpw(b"secret", bcrypt.gensalt(rounds=4)).decode()


def _basic(user: str, password: bytes | str) -> str:
    raw = password if isinstance(password, bytes) else password.encode()
    return "Basic " + base64.b64encode(user.encode() + b":" + raw).decode()


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_failure_limiter_refills_and_stays_bounded() -> None:
    clock = FakeClock()
    limiter = FailureLimiter(burst=3, refill_seconds=10, clock=clock, max_clients=5)
    for _ in range(3):
        assert limiter.allowed("a")
        limiter.failed("a")
    assert not limiter.allowed("a")
    assert limiter.allowed("b"), "limits are per client"
    assert limiter.retry_after("a") == 10
    clock.now = 10.0
    assert limiter.allowed("a")
    for n in range(20):
        limiter.failed(f"spray-{n}")
    assert len(limiter._buckets) == 5


class CheckSpy:
    """Wraps bcrypt's check: which hash it got, from which thread, how many at once."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.hashes: list[bytes] = []
        self.threads: set[int] = set()
        self.running = 0
        self.most = 0
        self._lock = threading.Lock()
        real = webconfig._checkpw

        def spy(password: bytes, hashed: bytes) -> bool:
            with self._lock:
                self.hashes.append(hashed)
                self.threads.add(threading.get_ident())
                self.running += 1
                self.most = max(self.most, self.running)
            try:
                return real(password, hashed)
            finally:
                with self._lock:
                    self.running -= 1

        monkeypatch.setattr(webconfig, "_checkpw", spy)


def test_basic_auth_verdicts(monkeypatch: pytest.MonkeyPatch) -> None:
    spy = CheckSpy(monkeypatch)
    auth = BasicAuth({"alice": HASH})

    async def run() -> list[str]:
        return [
            await auth.check(_basic("alice", "secret"), "c1"),
            await auth.check(_basic("alice", "secret"), "c1"),  # remembered: no bcrypt
            await auth.check(_basic("alice", "wrong"), "c2"),
            await auth.check(_basic("mallory", "secret"), "c3"),
            await auth.check(_basic("alice", b"x" * (BCRYPT_MAX_PASSWORD + 1)), "c4"),
            await auth.check("Bearer abc", "c5"),
            await auth.check("Basic !!!", "c5"),
        ]

    verdicts = anyio.run(run)
    assert verdicts == ["ok", "ok", "invalid", "invalid", "invalid", "invalid", "invalid"]
    assert len(spy.hashes) == 3, "cached success, over-long and malformed cost no bcrypt"
    dummy = spy.hashes[2]
    assert dummy != HASH.encode() and dummy.split(b"$")[2] == b"04", (
        "an unknown user is checked against a dummy hash of the same cost"
    )
    assert threading.get_ident() not in spy.threads


def test_over_long_password_of_a_valid_user_is_401_without_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with _Serving(BasicAuth({"alice": HASH})) as url, httpx.Client() as client:
        response = client.get(url + "/metrics", auth=("alice", "secret" + "x" * 100))
    assert response.status_code == 401
    assert not [r for r in caplog.records if r.exc_info]


def test_failed_logins_are_rate_limited_per_client(monkeypatch: pytest.MonkeyPatch) -> None:
    spy = CheckSpy(monkeypatch)
    with _Serving(BasicAuth({"alice": HASH})) as url, httpx.Client() as client:
        statuses = [
            client.get(url + "/metrics", auth=("alice", f"guess-{n}")).status_code
            for n in range(15)
        ]
        limited = client.get(url + "/metrics", auth=("alice", "wrong"))
        body = client.get(url + "/metrics", auth=("alice", "secret"))
    assert statuses[:10] == [401] * 10 and statuses[10:] == [429] * 5
    assert int(limited.headers["retry-after"]) >= 1
    assert len(spy.hashes) == 10, "a rate-limited client costs no bcrypt"
    assert body.status_code == 429, "a locked-out client waits, even with the right password"


def test_flood_of_bad_logins_runs_bcrypt_off_the_loop_in_a_bounded_pool(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spy = CheckSpy(monkeypatch)
    auth = BasicAuth({"alice": HASH}, FailureLimiter(burst=1000))
    # The flood stands for many addresses: one address is held to MAX_PER_ADDRESS connections.
    with _Serving(auth, max_per_address=1000) as url:
        with httpx.Client() as good:
            assert good.get(url + "/metrics", auth=("alice", "secret")).status_code == 200

        async def flood() -> list[int]:
            async with httpx.AsyncClient(timeout=30) as client:
                statuses: list[int] = []

                async def one(n: int) -> None:
                    response = await client.get(url + "/metrics", auth=("alice", f"bad-{n}"))
                    statuses.append(response.status_code)

                async with anyio.create_task_group() as group:
                    for n in range(40):
                        group.start_soon(one, n)
                return statuses

        statuses = anyio.run(flood)
        with httpx.Client() as good:
            scrape = good.get(url + "/metrics", auth=("alice", "secret"))
    assert set(statuses) <= {401, 429} and statuses.count(401) >= 1
    assert scrape.status_code == 200
    assert spy.most <= HASH_WORKERS
    samples = parse_samples(scrape.text)
    refused = sum(
        value(samples, "teleport_cloud_web_auth_failures_total", reason=r)
        for r in ("invalid", "busy")
    )
    assert refused >= 1


def test_idle_and_half_sent_connections_are_closed_and_capped() -> None:
    with _Serving(None, max_connections=8, header_timeout=0.5) as url:
        port = int(url.rsplit(":", 1)[1])
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(12)]
        half = socket.create_connection(("127.0.0.1", port))
        half.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never finishes its headers
        try:
            with httpx.Client() as client:
                scrape = client.get(url + "/metrics")
            assert scrape.status_code == 200, "a new client still gets in"
            closed = sum(_closed_within(s, 5.0) for s in [*idle, half])
            assert closed == 13, "over-limit connections and missed header deadlines are closed"
            over, late = _closed_counts(url)
            assert over >= 5 and late >= 1 and over + late >= 13
        finally:
            for s in [*idle, half]:
                s.close()


def test_an_oversized_request_head_is_refused_and_a_kept_alive_connection_is_timed_again() -> None:
    with _Serving(None, header_timeout=0.5) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as big:
            big.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            try:
                for _ in range(20):  # 20 KiB of header in pieces, never a complete head
                    big.sendall(b"X-Pad: " + b"a" * 1015 + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused before the rest was sent: a slow client sees this, not a hang
            big.settimeout(5)
            try:
                answer = big.recv(4096)
            except ConnectionResetError:
                answer = b""  # closed with our unread bytes in its buffer: the kernel resets
            assert answer == b"" or answer.startswith(b"HTTP/1.1 400"), answer[:40]
            assert _closed_within(big, 5.0)
        with socket.create_connection(("127.0.0.1", port)) as kept:
            kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            kept.settimeout(5)
            answer = b""
            for _ in range(10):  # head and body may come in separate segments
                answer += kept.recv(4096)
                if answer.endswith(b"\r\n\r\nOK\n"):
                    break
            assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"OK\n"), answer
            kept.sendall(b"GET /healthz HTTP/1.1\r\n")  # a second request that stalls
            assert _closed_within(kept, 5.0), "the header deadline applies to every request"


def _closed_counts(url: str) -> tuple[float, float]:
    """The closed-connection counters, once published (they are published at most once a
    second, so a few bounded reads)."""
    name = "teleport_cloud_web_connections_closed_total"
    over = late = 0.0
    with httpx.Client() as client:
        for _ in range(15):
            samples = parse_samples(client.get(url + "/metrics").text)
            over = value(samples, name, reason="over_limit")
            late = value(samples, name, reason="header_timeout")
            if over + late >= 13:
                break
            threading.Event().wait(0.2)
    return over, late


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_rate_limit_filter_drops_repeats_and_says_how_many() -> None:
    limit = RateLimit(burst=2, window=60)
    records = [
        logging.LogRecord("asyncio", logging.ERROR, "x", 1, "accept failed", None, None)
        for _ in range(10)
    ]
    for n, record in enumerate(records):
        record.created = 1000.0 + n
    passed = [limit.filter(r) for r in records]
    assert passed == [True, True] + [False] * 8
    later = logging.LogRecord("asyncio", logging.ERROR, "x", 1, "accept failed", None, None)
    later.created = 1100.0
    assert limit.filter(later) and "8 identical lines suppressed" in later.getMessage()
    other = logging.LogRecord("asyncio", logging.ERROR, "x", 1, "another", None, None)
    other.created = 1010.0
    assert limit.filter(other)


class _Serving:
    """The exporter's HTTP server on a loopback port, in a thread, for one test."""

    def __init__(self, auth: BasicAuth | None, web: WebConfig | None = None, **limits: Any) -> None:
        self.exposition = Exposition()
        self.sock = bind("127.0.0.1:0")
        self.server = build_server(App(self.exposition, lambda: True, auth), web, 1.0, **limits)
        assert isinstance(self.server, QuietServer)
        self.thread = threading.Thread(
            target=lambda: anyio.run(lambda: self.server.serve(sockets=[self.sock])), daemon=True
        )

    def __enter__(self) -> str:
        self.thread.start()
        for _ in range(100):
            if self.server.started:
                break
            threading.Event().wait(0.05)
        scheme = "https" if self.server.config.http_protocol_class.tls else "http"  # type: ignore[attr-defined]
        return f"{scheme}://127.0.0.1:{self.sock.getsockname()[1]}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


def test_concurrent_guesses_cannot_outrun_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    spy = CheckSpy(monkeypatch)
    auth = BasicAuth({"alice": HASH}, FailureLimiter(burst=5))

    async def run() -> list[str]:
        verdicts: list[str] = []

        async def guess(n: int) -> None:
            verdicts.append(await auth.check(_basic("alice", f"guess-{n}"), "attacker"))

        async with anyio.create_task_group() as group:
            for n in range(30):
                group.start_soon(guess, n)
        verdicts.append(await auth.check(_basic("alice", "secret"), "someone-else"))
        return verdicts

    verdicts = anyio.run(run)
    assert len(spy.hashes) == 6, "5 guesses hashed, then the limit; plus the other client"
    assert verdicts.count("invalid") == 5 and verdicts.count("rate_limited") == 25
    assert verdicts[-1] == "ok"


def test_a_client_that_stops_reading_is_closed() -> None:
    from prometheus_client.core import GaugeMetricFamily

    family = GaugeMetricFamily("big", "a large body", labels=["n"])
    for n in range(150_000):
        family.add_metric([f"{n:0>60}"], float(n))
    serving = _Serving(None, write_timeout=0.5)
    with serving as url:
        port = int(url.rsplit(":", 1)[1])
        serving.exposition.update(("big",), [family])
        reader = socket.socket()
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        reader.connect(("127.0.0.1", port))
        try:
            reader.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")  # and never read
            threading.Event().wait(0.3)  # let the answer start before the body shrinks again
            serving.exposition.update(("big",), [])
            name = "teleport_cloud_web_connections_closed_total"
            stalled = 0.0
            with httpx.Client() as client:
                for _ in range(25):
                    threading.Event().wait(0.2)
                    samples = parse_samples(client.get(url + "/metrics").text)
                    stalled = value(samples, name, reason="write_timeout")
                    if stalled:
                        break
            assert stalled == 1
        finally:
            reader.close()
