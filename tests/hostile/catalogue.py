"""The catalogue of hostile inputs and faults: each case names what is thrown at the exporter,
the outcome the exporter must show, and a check that observes the actual outcome.
"""

from __future__ import annotations

import base64
import errno
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import anyio
import bcrypt
import httpx

from exporter.core.http import retry_after_seconds
from exporter.core.logs import RateLimit
from exporter.fleet.model import InventoryParseError, parse_inventory
from exporter.rollout.model import RolloutParseError, parse_rollout
from exporter.simulator.scenarios import summary_body
from exporter.web.config import BasicAuth
from exporter.web.guard import FailureLimiter
from tests.hostile.env import CHANNEL_PATH, PING_PATH, SUMMARY_PATH, Env, Run


@dataclass(frozen=True)
class Case:
    name: str
    area: str
    expected: str
    check: Callable[[Env], str]
    slow: bool = False


CATALOGUE: list[Case] = []


def case(
    name: str, area: str, expected: str, *, slow: bool = False
) -> Callable[[Callable[[Env], str]], Callable[[Env], str]]:
    def register(check: Callable[[Env], str]) -> Callable[[Env], str]:
        CATALOGUE.append(Case(name, area, expected, check, slow))
        return check

    return register


# --- the probe: evidence about the tenant only ------------------------------------------------


def _probe(env: Env, late: float = 0.0, **tenant: Any) -> Run:
    run = Run(env, tenant)
    return run.refresh(run.ping, late=late)


def _probe_outcome(run: Run) -> str:
    ignored = run.value("teleport_cloud_source_ignored_fields_total", source="ping", target="t")
    text = f"probe={run.reason()} ledger={run.recorder.outcome()}"
    return text + (f" ignored={int(ignored)}" if ignored else "")


def _ping_field(name: str, path: list[str], value: Any) -> Callable[[Env], str]:
    def check(env: Env) -> str:
        def change(body: dict[str, Any]) -> None:
            node = body
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = value

        env.ping_with(change)
        return _probe_outcome(_probe(env))

    return check


for _name, _path, _value in [
    ("ping-jitter-seconds-float", ["auto_update", "agent_update_jitter_seconds"], 1.5),
    ("ping-fips-object", ["fips"], {"enabled": True}),
    ("ping-proxy-ssh-array", ["proxy", "ssh"], ["x"]),
    ("ping-cluster-name-number", ["cluster_name"], 12345),
    ("ping-auto-update-string", ["auto_update"], "enabled"),
    ("ping-public-addr-null-object", ["proxy", "db", "mysql_public_addr"], {"host": None}),
]:
    case(_name, "probe", "probe=ok ledger=up ignored=1")(_ping_field(_name, _path, _value))


def _ping_body(body: bytes, status: int = 200, **answer: Any) -> Callable[[Env], str]:
    def check(env: Env) -> str:
        env.script(PING_PATH, body=body, status=status, **answer)
        return _probe_outcome(_probe(env))

    return check


for _name, _body, _expected in [
    ("ping-body-array", b"[]", "parse"),
    ("ping-body-null", b"null", "parse"),
    ("ping-body-empty", b"", "parse"),
    ("ping-no-server-version", b'{"cluster_name": "x"}', "parse"),
    ("ping-numeric-server-version", b'{"server_version": 18}', "parse"),
    ("ping-truncated-json", b'{"server_version": "18.1', "parse"),
    ("ping-nested-100k-deep", b"[" * 100_000, "parse"),
    ("ping-not-utf8", b'{"server_version": "\xff\xfe"}', "parse"),
]:
    case(_name, "probe", f"probe={_expected} ledger=down")(_ping_body(_body))

case("ping-html-502", "probe", "probe=http ledger=down")(_ping_body(b"<html>502</html>", 502))
case("ping-redirect-not-followed", "probe", "probe=http ledger=down")(
    _ping_body(b"", 302, headers=[(b"location", b"https://evil.example/")])
)
case("ping-2mb-body", "probe", "probe=too_large ledger=down")(_ping_body(b" " * 65536, repeat=32))
case("ping-content-length-lie", "probe", "probe=too_large ledger=down")(
    _ping_body(b"{}", headers=[(b"content-length", b"999999999999")])
)


@case("ping-slow-proxy", "probe", "probe=timeout ledger=down")
def _ping_slow(env: Env) -> str:
    env.sim.state.apply({"ping": {"delay": 2.0}})
    return _probe_outcome(_probe(env, ping={"timeout": "0.5s"}))


@case("ping-tls-wrong-certificate", "probe", "probe=tls ledger=down")
def _ping_tls(env: Env) -> str:
    env.sim.state.apply({"tls_mismatch": True})
    return _probe_outcome(_probe(env))


@case("ping-503", "probe", "probe=http ledger=down")
def _ping_503(env: Env) -> str:
    env.sim.state.apply({"ping": {"status": 503}})
    return _probe_outcome(_probe(env))


@case("ping-late-start-blocked-loop", "probe", "probe=http ledger=none unobserved=loop_lag=1")
def _ping_late(env: Env) -> str:
    env.sim.state.apply({"ping": {"status": 503}})
    run = _probe(env, late=5.0)
    return f"{_probe_outcome(run)} unobserved={run.unobserved()}"


@case("ping-timeout-across-loop-stall", "probe", "ledger=none unobserved=loop_lag=1")
def _ping_stall(env: Env) -> str:
    env.sim.state.apply({"ping": {"delay": 2.0}})
    run = Run(env, {"ping": {"timeout": "1s"}})

    async def go() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(run.runtime.monitor.run)
            await anyio.sleep(0.15)
            group.start_soon(_block_loop, 1.2)
            await run.runtime.refresh_once(run.ping)
            group.cancel_scope.cancel()
        await run.ping.aclose()

    anyio.run(go)
    return f"ledger={run.recorder.outcome()} unobserved={run.unobserved()}"


async def _block_loop(seconds: float) -> None:
    await anyio.sleep(0.05)
    time.sleep(seconds)  # noqa: ASYNC251 (the point: a call that blocks the event loop)


def _ping_raising(make: Callable[[], BaseException]) -> Callable[[Env], str]:
    """The probe's HTTP client fails with `make()` (an error of the exporter's own host)."""

    def check(env: Env) -> str:
        run = Run(env)

        def get(*args: Any, **kwargs: Any) -> Any:
            raise make()

        run.ping._client.get = get  # type: ignore[method-assign]
        run.refresh(run.ping)
        return f"{_probe_outcome(run)} unobserved={run.unobserved()}"

    return check


def _emfile() -> BaseException:
    return OSError(errno.EMFILE, "Too many open files")  # as socket() raises it


case("ping-out-of-descriptors", "probe", "probe=connect ledger=none unobserved=resources=1")(
    _ping_raising(_emfile)
)
case("ping-out-of-buffers", "probe", "probe=connect ledger=none unobserved=resources=1")(
    _ping_raising(lambda: OSError(errno.ENOBUFS, "No buffer space available"))
)
case("ping-internal-bug", "probe", "probe=other ledger=none unobserved=internal=1")(
    _ping_raising(lambda: KeyError("a bug of ours"))
)


@case("ping-slow-ledger-write", "probe", "probe=timeout ledger=up")
def _ping_slow_write(env: Env) -> str:
    run = Run(env, {"ping": {"timeout": "0.5s"}})
    run.recorder.delay = 1.0
    return _probe_outcome(run.refresh(run.ping))


@case("ping-900kb-cluster-name", "probe", "probe=ok metrics<64KiB")
def _ping_long_name(env: Env) -> str:
    env.ping_with(lambda body: body.update(cluster_name="c" * 900_000))
    run = _probe(env)
    size = len(run.hub.exposition.body())
    return f"probe={run.reason()} metrics{'<' if size < 65536 else '>='}64KiB"


@case("ping-100kb-proxy-address", "probe", "probe=ok metrics<64KiB")
def _ping_long_address(env: Env) -> str:
    env.ping_with(lambda body: body["proxy"]["ssh"].update(public_addr="a" * 100_000 + ":443"))
    run = _probe(env)
    size = len(run.hub.exposition.body())
    return f"probe={run.reason()} metrics{'<' if size < 65536 else '>='}64KiB"


@case("ping-control-characters-in-labels", "probe", "probe=ok exposition parses")
def _ping_control(env: Env) -> str:
    env.ping_with(lambda body: body.update(cluster_name='a"b\\c\nd\x00e', edition="\u202e"))
    run = _probe(env)
    run.samples()  # raises if the exposition is not valid text format
    return f"probe={run.reason()} exposition parses"


# --- the v1 version channel ------------------------------------------------------------------


def _channel(env: Env, **tenant: Any) -> Run:
    env.sim.state.apply({"agent_version": None})
    run = Run(env, tenant)
    return run.refresh(run.ping, run.channel)


def _channel_outcome(run: Run) -> str:
    target = run.value("teleport_cloud_agent_target_version_info", tenant="t", version="17.5.2")
    return f"channel={run.reason(1)} probe={run.reason(0)} ledger={run.recorder.outcome()}" + (
        " target=17.5.2" if target else ""
    )


def _channel_answer(**answer: Any) -> Callable[[Env], str]:
    def check(env: Env) -> str:
        env.script(CHANNEL_PATH, **answer)
        return _channel_outcome(_channel(env, version_channel={"timeout": "1s"}))

    return check


case("channel-good", "version_channel", "channel=ok probe=ok ledger=up target=17.5.2")(
    _channel_answer(body=b"v17.5.2")
)
case("channel-slow", "version_channel", "channel=timeout probe=ok ledger=up")(
    _channel_answer(body=b"v17.5.2", delay=3.0)
)
case("channel-50mb-body", "version_channel", "channel=too_large probe=ok ledger=up")(
    _channel_answer(body=b"v" * 65536, repeat=800)
)
case("channel-html", "version_channel", "channel=parse probe=ok ledger=up")(
    _channel_answer(body=b"<html>oops</html>")
)
case("channel-500", "version_channel", "channel=http probe=ok ledger=up")(
    _channel_answer(status=500, body=b"")
)
case("channel-redirect-loop", "version_channel", "channel=http probe=ok ledger=up")(
    _channel_answer(status=302, headers=[(b"location", CHANNEL_PATH.encode())])
)
case("channel-redirect-other-host", "version_channel", "channel=http probe=ok ledger=up")(
    _channel_answer(status=301, headers=[(b"location", b"https://evil.example/v")])
)


@case("channel-not-polled-with-auto-update", "version_channel", "channel=ok requests=0")
def _channel_skip(env: Env) -> str:
    before = env.sim.state.requests.get(CHANNEL_PATH, 0)
    run = Run(env)
    run.refresh(run.ping, run.channel)
    after = env.sim.state.requests.get(CHANNEL_PATH, 0)
    return f"channel={run.reason()} requests={after - before}"


# --- the status page -------------------------------------------------------------------------


def _page(env: Env, **status: Any) -> Run:
    run = Run(env, **status)
    return run.refresh(run.status)


@case("status-retry-after-31-years", "status_page", "retry_after=3600")
def _status_retry(env: Env) -> str:
    env.script(SUMMARY_PATH, status=429, headers=[(b"retry-after", b"999999999")])
    run = _page(env)
    error = run.errors[-1]
    return f"retry_after={error.retry_after:g}" if error and error.retry_after else "none"


def _far_date() -> str:
    far = format_datetime(datetime.now(UTC) + timedelta(days=3650), usegmt=True)
    return f"retry_after={retry_after_seconds(far, time.time(), 600):g}"


case("status-retry-after-far-date", "status_page", "retry_after=6000")(lambda env: _far_date())
case("status-retry-after-garbage", "status_page", "retry_after=None")(
    lambda env: f"retry_after={retry_after_seconds('soon-ish', time.time(), 60)}"
)
case("status-retry-after-1e400-digits", "status_page", "retry_after=3600")(
    lambda env: f"retry_after={retry_after_seconds('9' * 400, time.time(), 60):g}"
)


def _page_redirect(location: bytes, expected: str) -> Callable[[Env], str]:
    def check(env: Env) -> str:
        env.script(SUMMARY_PATH, status=302, headers=[(b"location", location)])
        return f"status_page={_page(env).reason()}"

    case(f"status-redirect-{expected}", "status_page", "status_page=http")(check)
    return check


_page_redirect(SUMMARY_PATH.encode(), "loop")
_page_redirect(b"https://evil.example/api/v2/summary.json", "other-host")


@case("status-redirect-https-to-http", "status_page", "status_page=http")
def _page_downgrade(env: Env) -> str:
    sim = env.sim
    location = f"http://{sim.proxy}{SUMMARY_PATH}".encode()
    env.script(SUMMARY_PATH, status=301, headers=[(b"location", location)])
    return f"status_page={_page(env).reason()}"


@case("status-redirect-same-host-followed", "status_page", "status_page=ok")
def _page_moved(env: Env) -> str:
    body = json.dumps(summary_body(env.sim.state, datetime.now(UTC))).encode()
    env.script("/moved/api/v2/summary.json", body=body)
    env.script(SUMMARY_PATH, status=301, headers=[(b"location", b"/moved/api/v2/summary.json")])
    return f"status_page={_page(env).reason()}"


def _summary(components: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "page": {"id": "p", "name": "x"},
        "status": {"indicator": "none"},
        "components": [
            {"id": f"c{n:011d}", "name": "n" * 2000, "status": "operational"}
            for n in range(components)
        ],
        **extra,
    }


@case("status-3mb-page", "status_page", "status_page=ok component_series<=1250")
def _page_huge(env: Env) -> str:
    body = json.dumps(_summary(1400)).encode()
    assert len(body) > 2_800_000
    env.script(SUMMARY_PATH, body=body)
    run = _page(env)
    series = run.count("teleport_cloud_status_component")
    return f"status_page={run.reason()} component_series{'<=1250' if series <= 1250 else '>1250'}"


@case("status-100kb-component-name", "status_page", "metrics<64KiB")
def _page_long_name(env: Env) -> str:
    summary = _summary()
    summary["components"] = [{"id": "c1", "name": "n" * 100_000, "status": "operational"}]
    env.script(SUMMARY_PATH, body=json.dumps(summary).encode())
    size = len(_page(env).hub.exposition.body())
    return "metrics<64KiB" if size < 65536 else f"metrics={size}B"


@case("status-repeated-component-ids", "status_page", "status_page=ok component_series=5")
def _page_dupes(env: Env) -> str:
    summary = _summary()
    summary["components"] = [
        {"id": "sameid000001", "name": f"n{n}", "status": "operational"} for n in range(3)
    ]
    env.script(SUMMARY_PATH, body=json.dumps(summary).encode())
    run = _page(env)
    series = run.count("teleport_cloud_status_component")
    return f"status_page={run.reason()} component_series={series}"


def _incident(component: str | None) -> dict[str, Any]:
    return {
        "id": "i1",
        "name": "x",
        "status": "investigating",
        "impact": "major",
        "components": [{"id": component, "name": component}] if component else [],
    }


@case("status-incident-on-filtered-component", "status_page", "major=0")
def _page_filtered(env: Env) -> str:
    summary = _summary(1, incidents=[_incident("elsewhere001")])
    env.script(SUMMARY_PATH, body=json.dumps(summary).encode())
    run = _page(env, components=["c00000000000"])
    major = run.value("teleport_cloud_status_incidents", page=env.sim.proxy, impact="major")
    return f"major={int(major or 0)}"


@case("status-incident-listing-no-component", "status_page", "major=1")
def _page_unscoped(env: Env) -> str:
    summary = _summary(1, incidents=[_incident(None)])
    env.script(SUMMARY_PATH, body=json.dumps(summary).encode())
    run = _page(env, components=["c00000000000"])
    major = run.value("teleport_cloud_status_incidents", page=env.sim.proxy, impact="major")
    return f"major={int(major or 0)}"


@case("status-maintenance-on-filtered-component", "status_page", "in_maintenance=False")
def _page_maintenance(env: Env) -> str:
    from exporter.sla.service import SlaService

    maintenance = {**_incident("elsewhere001"), "status": "in_progress", "impact": "maintenance"}
    summary = _summary(1, scheduled_maintenances=[maintenance])
    env.script(SUMMARY_PATH, body=json.dumps(summary).encode())
    run = _page(env, components=["c00000000000"])
    service = SlaService(run.hub, None, _Clock())
    return f"in_maintenance={service.in_maintenance(time.time())}"


class _Clock:
    def now(self) -> float:
        return time.time()


@case("status-unknown-component-status", "status_page", "status_page=ok extra_state=1")
def _page_unknown(env: Env) -> str:
    summary = _summary()
    summary["components"] = [{"id": "c1", "name": "n", "status": "on_fire"}]
    env.script(SUMMARY_PATH, body=json.dumps(summary).encode())
    run = _page(env)
    state = run.value(
        "teleport_cloud_status_component",
        page=env.sim.proxy,
        component_id="c1",
        component="n",
        group="",
        status="on_fire",
    )
    return f"status_page={run.reason()} extra_state={int(state or 0)}"


def _page_answer(**answer: Any) -> Callable[[Env], str]:
    def check(env: Env) -> str:
        env.script(SUMMARY_PATH, **answer)
        return f"status_page={_page(env).reason()}"

    return check


case("status-no-status-object", "status_page", "status_page=parse")(
    _page_answer(body=b'{"page": {}}')
)
case("status-5mb-body", "status_page", "status_page=too_large")(
    _page_answer(body=b" " * 65536, repeat=80)
)


# --- basic auth and the HTTP server ----------------------------------------------------------

HASH = bcrypt.hashpw(b"secret", bcrypt.gensalt(rounds=4)).decode()


def _basic(user: str, password: bytes) -> str:
    return "Basic " + base64.b64encode(user.encode() + b":" + password).decode()


def _verdicts(auth: BasicAuth, *headers: str | None) -> str:
    async def go() -> list[str]:
        return [await auth.check(header, "client") for header in headers]

    return ",".join(anyio.run(go))


case("auth-password-over-72-bytes", "web", "invalid")(
    lambda env: _verdicts(BasicAuth({"alice": HASH}), _basic("alice", b"secret" + b"x" * 80))
)
case("auth-unknown-user", "web", "invalid")(
    lambda env: _verdicts(BasicAuth({"alice": HASH}), _basic("mallory", b"secret"))
)
case("auth-malformed-base64", "web", "invalid")(
    lambda env: _verdicts(BasicAuth({"alice": HASH}), "Basic %%%")
)
case("auth-no-colon", "web", "invalid")(
    lambda env: _verdicts(BasicAuth({"alice": HASH}), "Basic " + base64.b64encode(b"x").decode())
)
case("auth-non-utf8-user", "web", "invalid")(
    lambda env: _verdicts(
        BasicAuth({"alice": HASH}), "Basic " + base64.b64encode(b"\xff\xfe:secret").decode()
    )
)
case("auth-brute-force", "web", "invalid x3,rate_limited x2")(
    lambda env: _grouped(
        _verdicts(
            BasicAuth({"alice": HASH}, FailureLimiter(burst=3)),
            *[_basic("alice", f"guess{n}".encode()) for n in range(5)],
        )
    )
)


def _grouped(verdicts: str) -> str:
    items = verdicts.split(",")
    out: list[str] = []
    for item in dict.fromkeys(items):
        out.append(f"{item} x{items.count(item)}")
    return ",".join(out)


class _Collect(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__()
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@case("auth-over-72-bytes-http", "web", "status=401 tracebacks=0")
def _auth_http(env: Env) -> str:
    from tests.integration.web.test_web_guard import _Serving

    records: list[logging.LogRecord] = []
    handler = _Collect(records)
    logging.getLogger().addHandler(handler)
    disabled = logging.root.manager.disable
    logging.disable(logging.NOTSET)  # the runner silences logs; this case reads them
    try:
        with _Serving(BasicAuth({"alice": HASH})) as url:
            status = httpx.get(url + "/metrics", auth=("alice", "secret" + "x" * 100)).status_code
    finally:
        logging.disable(disabled)
        logging.getLogger().removeHandler(handler)
    return f"status={status} tracebacks={sum(1 for r in records if r.exc_info)}"


async def _wrong_password(client: httpx.AsyncClient, url: str, n: int) -> None:
    await client.get(url + "/metrics", auth=("alice", f"wrong-{n}"))


@case("auth-flood-200-wrong-passwords", "web", "hashed<=11 at_once<=2 scrape=200")
def _auth_flood(env: Env) -> str:
    from exporter.web import config as webconfig
    from tests.integration.web.test_web_guard import _Serving

    real = webconfig._checkpw
    running, most, checks = [0], [0], [0]
    lock = threading.Lock()

    def counting(password: bytes, hashed: bytes) -> bool:
        with lock:
            running[0] += 1
            checks[0] += 1
            most[0] = max(most[0], running[0])
        try:
            return real(password, hashed)
        finally:
            with lock:
                running[0] -= 1

    webconfig._checkpw = counting
    try:
        # the flood stands for many addresses (one address has a cap of its own)
        with _Serving(BasicAuth({"alice": HASH}), max_per_address=1000) as url:
            # Prometheus logs in once (1 hash), then the flood gets its burst of 10 at most
            httpx.get(url + "/metrics", auth=("alice", "secret"))

            async def flood() -> None:
                client = httpx.AsyncClient(timeout=60)
                async with client, anyio.create_task_group() as group:
                    for n in range(200):
                        group.start_soon(_wrong_password, client, url, n)

            anyio.run(flood)
            scrape = httpx.get(url + "/metrics", auth=("alice", "secret")).status_code
    finally:
        webconfig._checkpw = real
    return (
        f"hashed{'<=11' if checks[0] <= 11 else f'={checks[0]}'} "
        f"at_once{'<=2' if most[0] <= 2 else f'={most[0]}'} scrape={scrape}"
    )


@case("web-1mib-request-head", "web", "rejected")
def _web_big_header(env: Env) -> str:
    from tests.integration.web.test_web_guard import _Serving

    with _Serving(None) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            try:
                sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Junk: ")
                for _ in range(64):
                    sock.sendall(b"j" * 16384)
                answer = sock.recv(64)
            except OSError:
                return "rejected"  # closed while we were still sending
    return "rejected" if answer.startswith(b"HTTP/1.1 400") or not answer else repr(answer)


@case("web-idle-and-half-sent-connections", "web", "closed=13 scrape=200")
def _web_idle(env: Env) -> str:
    from tests.integration.web.test_web_guard import _closed_within, _Serving

    with _Serving(None, max_connections=8, header_timeout=0.5) as url:
        port = int(url.rsplit(":", 1)[1])
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(12)]
        half = socket.create_connection(("127.0.0.1", port))
        half.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        try:
            scrape = httpx.get(url + "/metrics").status_code
            closed = sum(_closed_within(s, 5.0) for s in [*held, half])
        finally:
            for s in [*held, half]:
                s.close()
    return f"closed={closed} scrape={scrape}"


@case("web-client-never-reads-answer", "web", "closed")
def _web_slow_reader(env: Env) -> str:
    from tests.integration.web.test_web_guard import test_a_client_that_stops_reading_is_closed

    test_a_client_that_stops_reading_is_closed()  # asserts the write_timeout close
    return "closed"


@case("web-accept-error-log-flood", "web", "passed=5 of 10000")
def _web_log_flood(env: Env) -> str:
    limit = RateLimit()
    passed = 0
    for n in range(10_000):
        record = logging.LogRecord(
            "asyncio", logging.ERROR, "x", 1, "socket.accept() out of system resource", None, None
        )
        record.created = 1000.0 + n / 1000
        passed += limit.filter(record)
    return f"passed={passed} of 10000"


@case("web-rlimit-1024-2000-connections", "web", "probes=up down=0 scrape=200", slow=True)
def _web_starvation(env: Env) -> str:
    from tests.hostile.starvation import starve

    return starve(env)


# --- configuration ---------------------------------------------------------------------------


def _config(raw: bytes, env_vars: dict[str, str] | None = None) -> str:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_bytes(raw)
        base = {k: v for k, v in os.environ.items() if not k.startswith("TCE_")}
        result = subprocess.run(
            [sys.executable, "-m", "exporter.cli", "check", "--config", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**base, **(env_vars or {})},
            check=False,
        )
    lines = result.stderr.strip().splitlines()
    return f"exit={result.returncode} lines={len(lines)} traceback={'Traceback' in result.stderr}"


def _config_check(raw: bytes, env_vars: dict[str, str] | None) -> Callable[[Env], str]:
    return lambda env: _config(raw, env_vars)


_TENANT = b"tenants:\n  - proxy: a.teleport.sh\n    inventory: {enabled: false}\n"
for _name, _raw, _env in [
    ("config-not-utf8", b'tenants:\n  - proxy: "a\xff.sh"\n', None),
    ("config-nul-in-state-dir", b'state_dir: "/tmp/a\\0b"\n' + _TENANT, None),
    (
        "config-nul-in-identity-file",
        b'tenants:\n  - proxy: a.sh\n    inventory: {identity_file: "/tmp/\\0"}\n',
        None,
    ),
    ("config-env-not-json", _TENANT, {"TCE_TENANTS": "[{oops"}),
    ("config-env-nested-not-json", _TENANT, {"TCE_STATUS_PAGE__COMPONENTS": "["}),
    ("config-yaml-error-spans-lines", b"tenants: [\n  - {\n", None),
    ("config-top-level-list", b"- a\n- b\n", None),
]:
    case(_name, "config", "exit=2 lines=1 traceback=False")(_config_check(_raw, _env))


# --- tctl inventory and rollout (delivered with the inventory work) ---------------------------


def _inventory(data: bytes) -> str:
    try:
        parsed = parse_inventory(data)
    except InventoryParseError:
        return "parse error (last fleet kept)"
    return f"fleet of {len(parsed.instances)}"


case("tctl-output-null", "inventory", "parse error (last fleet kept)")(
    lambda env: _inventory(b"null\n")
)
case("tctl-output-object", "inventory", "parse error (last fleet kept)")(
    lambda env: _inventory(b'{"kind": "instance"}\n')
)
case("tctl-output-garbage", "inventory", "parse error (last fleet kept)")(
    lambda env: _inventory(b"\x00\xff not json")
)


def _rollout(count: object) -> str:
    group = {"name": "prod", "state": "AUTO_UPDATE_AGENT_GROUP_STATE_ACTIVE"}
    group["present_count"] = count  # type: ignore[assignment]
    document = [{"spec": {"target_version": "18.1.4"}, "status": {"groups": [group]}}]
    try:
        rollout = parse_rollout(json.dumps(document).encode())
    except RolloutParseError:
        return "parse error"
    groups = rollout.status.groups if rollout is not None else []
    return "parse error" if not groups else f"accepted count={groups[0].present_count}"


case("rollout-negative-count", "inventory", "parse error")(lambda env: _rollout(-5))
case("rollout-non-numeric-count", "inventory", "parse error")(lambda env: _rollout("many"))


@case("tctl-long-server-ids-shared-prefix", "inventory", "duplicates=0")
def _long_ids(env: Env) -> str:
    from exporter.exposition.body import Exposition
    from exporter.fleet.derive import derive_fleet
    from exporter.fleet.families import fleet_families
    from tests.conftest import parse_samples

    records = [
        {
            "kind": "instance",
            "version": "v1",
            "metadata": {"name": "x" * 200 + str(n)},
            "spec": {"version": "18.1.4", "services": ["Node"], "hostname": f"h{n}"},
        }
        for n in range(3)
    ]
    instances = parse_inventory(json.dumps(records).encode()).instances
    exposition = Exposition()
    view = derive_fleet(instances, "18.1.4", "18.1.4")
    exposition.update(("fleet",), fleet_families("t", view, True))
    text = exposition.body().decode()
    lines = [line.rsplit(" ", 1)[0] for line in text.splitlines() if not line.startswith("#")]
    parse_samples(text)
    return f"duplicates={len(lines) - len(set(lines))}"


# The cases of these modules register themselves on import.
from tests.hostile import deployment, upstream, web  # noqa: E402, F401
