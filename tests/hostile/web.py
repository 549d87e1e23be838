"""Hostile clients of the exporter's own HTTP server: connection caps counted from accept,
the TLS handshake deadline, pipelining, slow readers, health probes under basic auth, the web
configuration's refusals. Every server here is the real one (uvicorn with the exporter's
protocol) on a loopback port; other client addresses are other loopback addresses (127.0.0.x).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import trustme
from prometheus_client.core import GaugeMetricFamily

from exporter.web.config import BasicAuth, TLSServerConfig, WebConfig
from tests.conftest import parse_samples
from tests.hostile.catalogue import case
from tests.hostile.env import Env

HASH = bcrypt.hashpw(b"secret", bcrypt.gensalt(rounds=4)).decode()
CLOSED = "teleport_cloud_web_connections_closed_total"


def _closed(url: str, reason: str, at_least: float, verify: Any = True) -> int:
    """The closed-connection counter for `reason`, read until it reaches `at_least` (it is
    published at most once a second) or 5 s pass."""
    count = 0.0
    with httpx.Client(verify=verify, auth=("alice", "secret")) as client:
        for _ in range(25):
            samples = parse_samples(client.get(url + "/metrics").text)
            count = samples.get((CLOSED, frozenset({("reason", reason)})), 0.0)
            if count >= at_least:
                break
            time.sleep(0.2)
    return int(count)


def _is_closed(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass  # an answer already sent; the close comes after it
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def _connect(port: int, source: str = "127.0.0.1", rcvbuf: int = 0) -> socket.socket:
    sock = socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


@contextlib.contextmanager
def _tls_files() -> Iterator[tuple[Path, trustme.CA]]:
    ca = trustme.CA()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        leaf = ca.issue_cert("127.0.0.1")
        leaf.cert_chain_pems[0].write_to_path(str(base / "server.crt"))
        leaf.private_key_pem.write_to_path(str(base / "server.key"))
        ca.cert_pem.write_to_path(str(base / "ca.crt"))
        yield base, ca


def _tls_web(base: Path) -> WebConfig:
    return WebConfig(
        tls_server_config=TLSServerConfig(
            cert_file=base / "server.crt", key_file=base / "server.key"
        )
    )


def _big_family(rows: int = 60_000) -> GaugeMetricFamily:
    family = GaugeMetricFamily("big", "a large body", labels=["n"])
    for n in range(rows):
        family.add_metric([f"{n:0>60}"], float(n))
    return family


# --- pipelining ------------------------------------------------------------------------------


@case("web-5000-pipelined-requests-never-read", "web", "closed pipelined=1 scrape=200")
def _pipelined(env: Env) -> str:
    from tests.integration.web.test_web_guard import _Serving

    with _Serving(None) as url:
        with _connect(_port(url)) as sock:
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 5000)
            closed = _is_closed(sock, 5.0)
        scrape = httpx.get(url + "/metrics").status_code
        count = _closed(url, "pipelined", 1)
    return f"{'closed' if closed else 'open'} pipelined={count} scrape={scrape}"


def _rss_peak_reset() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM, the peak resident size


def _rss(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise LookupError(field)


@case("web-20-connections-pipelining-4000-each", "web", "closed=20 peak_growth<64MiB scrape=200")
def _pipelined_memory(env: Env) -> str:
    """The review's attack: 20 connections that each pipeline thousands of requests for the
    metrics and never read. Before the bound it took the exporter past its 512 MiB limit."""
    from tests.integration.web.test_web_guard import _Serving

    serving = _Serving(None)
    with serving as url:
        serving.exposition.update(("big",), [_big_family(20_000)])
        port = _port(url)
        burst = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 4000
        _rss_peak_reset()
        before = _rss("VmRSS")
        socks = [_connect(port, rcvbuf=4096) for _ in range(20)]
        try:
            for sock in socks:
                sock.setblocking(False)
                with contextlib.suppress(BlockingIOError, ConnectionResetError, BrokenPipeError):
                    sock.send(burst)
            time.sleep(1.0)
            closed = sum(_is_closed(sock, 5.0) for sock in socks)
        finally:
            for sock in socks:
                sock.close()
        growth = _rss("VmHWM") - before
        scrape = httpx.get(url + "/metrics").status_code
    verdict = "<64MiB" if growth < 64 * 2**20 else f"={growth / 2**20:.0f}MiB"
    return f"closed={closed} peak_growth{verdict} scrape={scrape}"


# --- TLS: connections counted from accept, the handshake's deadline -------------------------


@case(
    "web-tls-handshakes-never-finished",
    "web",
    "refused=4 handshake_timeout=8 scrape=200",
)
def _handshakes(env: Env) -> str:
    """12 TCP connections that never send a ClientHello, against a cap of 8: each counts from
    accept (the last 4 are refused at once), and the 8 are closed at the handshake deadline."""
    from tests.integration.web.test_web_guard import _Serving

    with (
        _tls_files() as (base, ca),
        _Serving(
            BasicAuth({"alice": HASH}),
            _tls_web(base),
            max_connections=8,
            handshake_timeout=0.5,
        ) as url,
    ):
        port = _port(url)
        socks = [_connect(port) for _ in range(12)]
        try:
            time.sleep(0.15)  # well inside the deadline
            refused = sum(_is_closed(sock, 0.01) for sock in socks)
            time.sleep(0.6)
            verify = ca.cert_pem.bytes().decode()
            context = ssl.create_default_context(cadata=verify)
            with httpx.Client(verify=context) as client:
                scrape = client.get(url + "/metrics", auth=("alice", "secret")).status_code
            timed_out = _closed(url, "handshake_timeout", 8, context)
        finally:
            for sock in socks:
                sock.close()
    return f"refused={refused} handshake_timeout={timed_out} scrape={scrape}"


@case("web-tls-handshakes-from-one-address", "web", "held=4 address_limit=6 other_address=200")
def _handshakes_one_address(env: Env) -> str:
    """One address opens 10 connections and sends nothing: it holds at most its cap, and a
    client at another address is served at once."""
    from tests.integration.web.test_web_guard import _Serving

    with (
        _tls_files() as (base, ca),
        _Serving(None, _tls_web(base), max_per_address=4, handshake_timeout=5.0) as url,
    ):
        port = _port(url)
        socks = [_connect(port, "127.0.0.2") for _ in range(10)]
        try:
            time.sleep(0.15)
            held = sum(not _is_closed(sock, 0.01) for sock in socks)
            context = ssl.create_default_context(cadata=ca.cert_pem.bytes().decode())
            with httpx.Client(verify=context) as client:
                other = client.get(url + "/healthz").status_code
            limited = _closed(url, "address_limit", 6, context)
        finally:
            for sock in socks:
                sock.close()
    return f"held={held} address_limit={limited} other_address={other}"


@case("web-tls12-cbc-cipher-refused", "web", "cbc=refused gcm=ok")
def _ciphers(env: Env) -> str:
    from tests.integration.web.test_web_guard import _Serving

    outcomes = []
    with _tls_files() as (base, ca), _Serving(None, _tls_web(base)) as url:
        for cipher in ("ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES128-GCM-SHA256"):
            context = ssl.create_default_context(cadata=ca.cert_pem.bytes().decode())
            context.maximum_version = ssl.TLSVersion.TLSv1_2
            context.set_ciphers(cipher)
            try:
                with socket.create_connection(("127.0.0.1", _port(url)), timeout=5) as raw:
                    context.wrap_socket(raw, server_hostname="127.0.0.1").close()
                outcomes.append("ok")
            except ssl.SSLError:
                outcomes.append("refused")
    return f"cbc={outcomes[0]} gcm={outcomes[1]}"


# --- slow readers ------------------------------------------------------------------------------


def _slow_readers(port: int, sources: list[str]) -> list[socket.socket]:
    """Connections that each ask for the (large) metrics and never read the answer."""
    socks = []
    for source in sources:
        sock = _connect(port, source, rcvbuf=4096)
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        socks.append(sock)
    time.sleep(0.5)  # the answers fill the windows and the server stops writing
    return socks


@case(
    "web-one-address-holds-slow-readers",
    "web",
    "held=4 address_limit=4 other_address=200",
)
def _one_address(env: Env) -> str:
    """One address asks for the body 8 times and never reads: the address keeps its cap of
    4 (its oldest slow reader makes room for its newest), and another client gets in."""
    from tests.integration.web.test_web_guard import _Serving

    serving = _Serving(None, max_per_address=4)
    with serving as url:
        serving.exposition.update(("big",), [_big_family()])
        socks = _slow_readers(_port(url), ["127.0.0.3"] * 8)
        try:
            held = sum(not _is_closed(sock, 0.2) for sock in socks)
            serving.exposition.update(("big",), [])
            other = httpx.get(url + "/healthz").status_code
            limited = _closed(url, "address_limit", 4)
        finally:
            for sock in socks:
                sock.close()
    return f"held={held} address_limit={limited} other_address={other}"


@case(
    "web-slow-readers-evicted-first",
    "web",
    "scrape=200 evicted=oldest slow reader",
)
def _slow_first(env: Env) -> str:
    """Every slot held by slow readers from different addresses: a new scrape closes the
    slow reader that stopped reading first, not a connection whose answer flows."""
    from tests.integration.web.test_web_guard import _Serving

    serving = _Serving(None, max_connections=6)
    with serving as url:
        serving.exposition.update(("big",), [_big_family()])
        socks = _slow_readers(_port(url), [f"127.0.0.{10 + n}" for n in range(6)])
        try:
            serving.exposition.update(("big",), [])
            scrape = httpx.get(url + "/healthz").status_code
            closed = [n for n, sock in enumerate(socks) if _is_closed(sock, 0.2)]
        finally:
            for sock in socks:
                sock.close()
    evicted = "oldest slow reader" if closed == [0] else f"{closed}"
    return f"scrape={scrape} evicted={evicted}"


# --- basic auth and the health probes ------------------------------------------------------


@case(
    "web-health-probes-under-basic-auth",
    "web",
    "healthz=200:OK readyz=200:OK metrics=401 index=401 post_healthz=401 login_metrics=200",
)
def _health(env: Env) -> str:
    """A kubelet cannot log in: the probes answer without auth and say nothing but OK;
    the metrics and the page need the login."""
    from tests.integration.web.test_web_guard import _Serving

    with _Serving(BasicAuth({"alice": HASH})) as url, httpx.Client() as client:
        healthz = client.get(url + "/healthz")
        readyz = client.get(url + "/readyz")
        metrics = client.get(url + "/metrics").status_code
        index = client.get(url + "/").status_code
        post = client.post(url + "/healthz").status_code
        login = client.get(url + "/metrics", auth=("alice", "secret")).status_code
    return (
        f"healthz={healthz.status_code}:{healthz.text.strip()} "
        f"readyz={readyz.status_code}:{readyz.text.strip()} metrics={metrics} index={index} "
        f"post_healthz={post} login_metrics={login}"
    )


@case("auth-unknown-user-costs-the-highest-cost", "web", "dummy_cost=8")
def _dummy_cost(env: Env) -> str:
    """Users with costs 4 and 8: an unknown user is hashed at 8, so a user of cost 8 does not
    stand out by taking longer than a name that does not exist."""
    cheap = bcrypt.hashpw(b"a", bcrypt.gensalt(rounds=4)).decode()
    dear = bcrypt.hashpw(b"b", bcrypt.gensalt(rounds=8)).decode()
    auth = BasicAuth({"cheap": cheap, "dear": dear})
    return f"dummy_cost={int(auth._dummy.split(b'$')[2])}"


# --- the web configuration ------------------------------------------------------------------


def _serve_with_web_config(text: str, base: Path) -> str:
    config = base / "config.yaml"
    config.write_text("tenants:\n  - proxy: a.teleport.sh\n    inventory: {enabled: false}\n")
    web = base / "web.yml"
    web.write_text(text)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "exporter.cli",
            "serve",
            "--config",
            str(config),
            "--web.config.file",
            str(web),
            "--web.listen-address",
            "127.0.0.1:0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "TCE_STATE_DIR": str(base / "state")},
    )
    lines = result.stderr.strip().splitlines()
    return f"exit={result.returncode} lines={len(lines)} traceback={'Traceback' in result.stderr}"


@case("webconfig-key-does-not-match-cert", "config", "exit=2 lines=1 traceback=False")
def _key_mismatch(env: Env) -> str:
    with _tls_files() as (base, ca):
        other = ca.issue_cert("other")
        other.private_key_pem.write_to_path(str(base / "other.key"))
        return _serve_with_web_config(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: other.key\n", base
        )


@case("webconfig-require-any-cert-without-ca", "config", "exit=2 lines=1 traceback=False")
def _require_any(env: Env) -> str:
    with _tls_files() as (base, _):
        return _serve_with_web_config(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
            "  client_auth_type: RequireAnyClientCert\n",
            base,
        )


@case("webconfig-request-cert-without-ca", "web", "no_certificate=200 with_certificate=200")
def _request_cert(env: Env) -> str:
    """RequestClientCert never verifies (exporter-toolkit's meaning): a client with or without
    a certificate gets in."""
    from tests.integration.web.test_web_guard import _Serving

    with _tls_files() as (base, ca):
        web = WebConfig(
            tls_server_config=TLSServerConfig(
                cert_file=base / "server.crt",
                key_file=base / "server.key",
                client_auth_type="RequestClientCert",
            )
        )
        client_cert = trustme.CA().issue_cert("stranger")  # from an unknown CA
        pem = base / "client.pem"
        client_cert.private_key_and_cert_chain_pem.write_to_path(str(pem))
        with _Serving(None, web) as url:
            plain = ssl.create_default_context(cadata=ca.cert_pem.bytes().decode())
            with_cert = ssl.create_default_context(cadata=ca.cert_pem.bytes().decode())
            with_cert.load_cert_chain(str(pem))
            first = httpx.get(url + "/healthz", verify=plain).status_code
            second = httpx.get(url + "/healthz", verify=with_cert).status_code
    return f"no_certificate={first} with_certificate={second}"
