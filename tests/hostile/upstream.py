"""Hostile upstreams and a hostile host: compressed bombs, proxy variables, stale maintenance,
lone surrogates, and what tctl, the logs and the ledger let through."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import logging
import os
import stat
import sys
import tempfile
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio

from exporter.core.logs import _Formatter
from exporter.fleet.model import InventoryParseError, parse_inventory
from exporter.sla.ledger import DB_NAME, Ledger, LedgerError
from exporter.tctl.runner import run_tctl_version
from tests.hostile.catalogue import _Clock, _page, _probe, _probe_outcome, case
from tests.hostile.env import CHANNEL_PATH, PING_PATH, SUMMARY_PATH, Env, Run

GIB = 2**30


def _gzip_twice(size: int) -> bytes:
    """`size` zero bytes, gzipped twice: 1 GiB fits in 2 KiB on the wire."""
    inner = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(2**24)
    parts = [inner.compress(chunk) for _ in range(size // len(chunk))]
    parts.append(inner.flush())
    return gzip.compress(b"".join(parts), 9)


def _gzip_once(size: int) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9) as handle:
        chunk = bytes(2**20)
        for _ in range(size // len(chunk)):
            handle.write(chunk)
    return out.getvalue()


_BOMBS: dict[str, bytes] = {}


def _bomb(kind: str) -> bytes:
    if kind not in _BOMBS:
        _BOMBS[kind] = _gzip_twice(GIB) if kind == "twice" else _gzip_once(64 * 2**20)
    return _BOMBS[kind]


@contextlib.contextmanager
def _peak() -> Iterator[list[int]]:
    """The peak of Python allocations inside the block, in bytes (zlib's output included)."""
    result = [0]
    tracemalloc.start()
    try:
        yield result
    finally:
        result[0] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


def _mib(peak: int) -> str:
    return "<16MiB" if peak < 16 * 2**20 else f"={peak / 2**20:.0f}MiB"


def _bomb_case(path: str, kind: str, outcome: Callable[[Env], str]) -> Callable[[Env], str]:
    def check(env: Env) -> str:
        coding = b"gzip, gzip" if kind == "twice" else b"gzip"
        env.script(path, body=_bomb(kind), headers=[(b"content-encoding", coding)])
        with _peak() as peak:
            observed = outcome(env)
        return f"{observed} peak{_mib(peak[0])}"

    return check


def _ping_only(env: Env) -> str:
    return _probe_outcome(_probe(env))


def _channel_only(env: Env) -> str:
    env.sim.state.apply({"agent_version": None})
    run = Run(env, {"version_channel": {"timeout": "2s"}})
    run.refresh(run.ping, run.channel)
    return f"channel={run.reason(1)}"


def _status_only(env: Env) -> str:
    return f"status_page={_page(env).reason()}"


for _kind, _why, _ping, _channel, _status in [
    (
        "twice",
        "gzip-gzip-1gib-in-2kib",
        "probe=http ledger=down",
        "channel=http",
        "status_page=http",
    ),
    (
        "once",
        "gzip-64mib",
        "probe=too_large ledger=down",
        "channel=too_large",
        "status_page=too_large",
    ),
]:
    case(f"ping-{_why}", "probe", f"{_ping} peak<16MiB")(_bomb_case(PING_PATH, _kind, _ping_only))
    case(f"channel-{_why}", "version_channel", f"{_channel} peak<16MiB")(
        _bomb_case(CHANNEL_PATH, _kind, _channel_only)
    )
    case(f"status-{_why}", "status_page", f"{_status} peak<16MiB")(
        _bomb_case(SUMMARY_PATH, _kind, _status_only)
    )


@case("upstream-gzip-within-cap-still-read", "status_page", "status_page=ok")
def _gzip_small(env: Env) -> str:
    """A page that compresses although asked not to is still read, when it fits the cap."""
    from exporter.simulator.scenarios import summary_body

    body = json.dumps(summary_body(env.sim.state, __import__("datetime").datetime.now())).encode()
    env.script(SUMMARY_PATH, body=gzip.compress(body), headers=[(b"content-encoding", b"gzip")])
    return _status_only(env)


@case("upstream-asks-for-identity", "upstream", "ping=identity channel=identity status=identity")
def _identity(env: Env) -> str:
    env.sim.state.apply({"agent_version": None})
    run = Run(env, {"version_channel": {"timeout": "2s"}})
    run.refresh(run.ping, run.channel, run.status)
    asked = env.sim.app.accept_encoding
    return (
        f"ping={asked.get(PING_PATH)} channel={asked.get(CHANNEL_PATH)} "
        f"status={asked.get(SUMMARY_PATH)}"
    )


@case("upstream-proxy-variables-ignored", "upstream", "probe=ok channel=ok status_page=ok")
def _proxy_env(env: Env) -> str:
    """Proxy variables pointing at a dead proxy: every source still goes direct."""
    dead = "http://127.0.0.1:9"  # discard: nothing listens
    names = ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]
    saved = {name: os.environ.get(name) for name in [*names, "NO_PROXY", "no_proxy"]}
    os.environ.update(dict.fromkeys(names, dead))
    os.environ.pop("NO_PROXY", None)
    os.environ.pop("no_proxy", None)
    try:
        env.sim.state.apply({"agent_version": None})
        run = Run(env, {"version_channel": {"timeout": "2s"}})
        run.refresh(run.ping, run.channel, run.status)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return f"probe={run.reason(0)} channel={run.reason(1)} status_page={run.reason(2)}"


# --- SLA evidence: only a fresh summary excuses a minute --------------------------------------


@case("status-stale-maintenance-excuses-nothing", "sla", "fresh=True stale=False")
def _stale(env: Env) -> str:
    """The page says a maintenance is in progress, then becomes unreachable: within three of
    its intervals the summary still excuses a minute, after that nothing does."""
    from exporter.sla.service import FRESH_INTERVALS, SlaService

    maintenance = {
        "id": "m1",
        "name": "upgrade",
        "status": "in_progress",
        "impact": "maintenance",
        "components": [],
    }
    summary = {
        "page": {"id": "p", "name": "x"},
        "status": {"indicator": "maintenance"},
        "components": [],
        "scheduled_maintenances": [maintenance],
    }
    env.script(SUMMARY_PATH, body=json.dumps(summary).encode())
    run = _page(env, interval="60s")
    fetched = time.time()
    env.script(SUMMARY_PATH, status=503)
    run.refresh(run.status)  # unreachable now: the last good summary stays
    service = SlaService(run.hub, None, _Clock())
    fresh = service.in_maintenance(fetched + 60)
    stale = service.in_maintenance(fetched + FRESH_INTERVALS * 60 + 61)
    return f"fresh={fresh} stale={stale}"


# --- lone surrogates ---------------------------------------------------------------------------


@case("ping-lone-surrogate-cluster-name", "probe", "probe=ok ledger=up ignored=1")
def _ping_surrogate(env: Env) -> str:
    env.ping_with(lambda body: body.update(cluster_name="SURROGATE"))
    scripted = env.sim.app.scripted[PING_PATH]
    env.script(PING_PATH, body=scripted.body.replace(b'"SURROGATE"', b'"\\ud800"'))
    return _probe_outcome(_probe(env))


@case("ping-lone-surrogate-server-version", "probe", "probe=parse ledger=down")
def _ping_surrogate_version(env: Env) -> str:
    env.script(PING_PATH, body=b'{"server_version": "18.1.4\\udfff"}')
    return _probe_outcome(_probe(env))


@case("status-lone-surrogate-component-name", "status_page", "status_page=parse")
def _status_surrogate(env: Env) -> str:
    body = (
        b'{"page": {"id": "p"}, "status": {"indicator": "none"}, "components": '
        b'[{"id": "c1", "name": "\\ud83d", "status": "operational"}]}'
    )
    env.script(SUMMARY_PATH, body=body)
    return _status_only(env)


@case("tctl-lone-surrogate-hostname", "inventory", "parse error (last fleet kept)")
def _tctl_surrogate(env: Env) -> str:
    record = (
        b'[{"kind": "instance", "version": "v1", "metadata": {"name": "a"}, '
        b'"spec": {"version": "18.1.4", "services": ["Node"], "hostname": "\\ud800"}}]'
    )
    try:
        parse_inventory(record)
    except InventoryParseError:
        return "parse error (last fleet kept)"
    return "accepted"


@case("exposition-lone-surrogate-label", "exposition", "parses replaced=1")
def _exposition_surrogate(env: Env) -> str:
    from prometheus_client.core import GaugeMetricFamily

    from exporter.exposition.body import Exposition
    from tests.conftest import parse_samples

    family = GaugeMetricFamily("x", "x", labels=["name"])
    family.add_metric(["\ud800"], 1.0)
    family.add_metric(["fine"], 2.0)
    exposition = Exposition()
    exposition.update(("x",), [family])
    text = exposition.body().decode()
    parse_samples(text)
    return f"parses replaced={text.count(chr(0xFFFD))}"


# --- logs -------------------------------------------------------------------------------------


@case("log-terminal-escapes-from-upstream", "logs", "lines=1 control_chars=0")
def _log_escapes(env: Env) -> str:
    """tctl's stderr (or a server's error) with a terminal escape, a forged line and a bidi
    override: one logfmt line, no control character left."""
    hostile = "denied\x1b[2J\x1b]0;owned\x07\r\nts=x level=error msg=forged\u202e\x85\ud800"
    record = logging.LogRecord("exporter", logging.WARNING, "x", 1, "%s", (hostile,), None)
    line = _Formatter("logfmt").format(record)
    controls = sum(
        1
        for c in line
        if c < " " or "\x7f" <= c <= "\x9f" or c == "\u202e" or "\ud800" <= c <= "\udfff"
    )
    return f"lines={len(line.splitlines())} control_chars={controls}"


# --- tctl's environment -----------------------------------------------------------------------


@case(
    "tctl-environment-allowlist",
    "inventory",
    "HOME,HTTPS_PROXY,LC_ALL,PATH,TELEPORT_TOOLS_VERSION secrets=0",
)
def _tctl_env(env: Env) -> str:
    """The exporter's environment holds cloud credentials and its own settings: tctl sees
    only the allowlist (and TELEPORT_TOOLS_VERSION=off)."""
    with tempfile.TemporaryDirectory() as tmp:
        fake = Path(tmp) / "tctl"
        fake.write_text(f"#!{sys.executable}\nimport os\nprint(','.join(sorted(os.environ)))\n")
        fake.chmod(0o755)
        secrets = {
            "AWS_SECRET_ACCESS_KEY": "x",
            "GOOGLE_APPLICATION_CREDENTIALS": "/x",
            "TCE_TENANTS": "[]",
            "TELEPORT_AUTH_SERVER": "evil.example:443",
        }
        kept = {
            "PATH": "/usr/bin:/bin",
            "HOME": "/nonexistent",
            "HTTPS_PROXY": "http://p:3128",
            "LC_ALL": "C.UTF-8",  # set, so the fake's Python adds no LC_CTYPE of its own
        }
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update({**secrets, **kept})
        try:
            output = anyio.run(lambda: run_tctl_version(str(fake), timeout=10))
        finally:
            os.environ.clear()
            os.environ.update(saved)
    names = bytes(output).decode().strip()
    leaked = sum(1 for name in secrets if name in names.split(","))
    return f"{names} secrets={leaked}"


# --- the ledger on disk -----------------------------------------------------------------------


def _mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))[2:].rjust(4, "0")


@case("ledger-created-private", "ledger", "dir=0700 db=0600 wal=0600 shm=0600")
def _ledger_modes(env: Env) -> str:
    old = os.umask(0o022)  # the usual default: files 0644 unless the exporter says otherwise
    try:
        with tempfile.TemporaryDirectory() as tmp:
            state = Path(tmp) / "state"
            ledger = Ledger.open(state)
            try:
                db = state / DB_NAME
                modes = [_mode(state), _mode(db), _mode(Path(f"{db}-wal"))]
                modes.append(_mode(Path(f"{db}-shm")))
            finally:
                ledger.close()
    finally:
        os.umask(old)
    return "dir={} db={} wal={} shm={}".format(*modes)


@case("ledger-symlink-refused", "ledger", "refused target_untouched=True")
def _ledger_symlink(env: Env) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        state.mkdir()
        target = Path(tmp) / "elsewhere"
        target.write_bytes(b"someone else's file")
        (state / DB_NAME).symlink_to(target)
        try:
            Ledger.open(state).close()
            verdict = "opened"
        except LedgerError:
            verdict = "refused"
        untouched = target.read_bytes() == b"someone else's file"
    return f"{verdict} target_untouched={untouched}"


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@case("ledger-foreign-owner-warned", "ledger", "warnings=2 opened=True")
def _ledger_owner(env: Env) -> str:
    """The state directory and ledger belong to another user (who could rewrite the evidence):
    the exporter opens them and says so, once for each."""
    records = _Records()
    logger = logging.getLogger("exporter.sla.ledger")
    logger.addHandler(records)
    disabled = logging.root.manager.disable
    logging.disable(logging.NOTSET)
    real = os.geteuid
    try:
        with tempfile.TemporaryDirectory() as tmp:
            state = Path(tmp) / "state"
            Ledger.open(state).close()
            owner = state.stat().st_uid
            os.geteuid = lambda: owner + 1  # stands for "another user owns them"
            try:
                Ledger.open(state).close()
                opened = True
            except LedgerError:
                opened = False
    finally:
        os.geteuid = real
        logging.disable(disabled)
        logger.removeHandler(records)
    warnings = sum("owned by uid" in m for m in records.messages)
    return f"warnings={warnings} opened={opened}"
