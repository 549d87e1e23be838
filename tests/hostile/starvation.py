"""The exporter as systemd starts it (RLIMIT_NOFILE 1024) under 2,000 idle and half-sent
connections: probes must keep running and the ledger must gain no false down minute."""

from __future__ import annotations

import os
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import httpx

from tests.conftest import parse_samples
from tests.hostile.env import Env

NOFILE = 1024
ATTACK_CONNECTIONS = 2000
HOLD_SECONDS = 8.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _limit_descriptors() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


def starve(env: Env) -> str:
    sim = env.sim
    work = env.tmp / "starve"
    work.mkdir(exist_ok=True)
    port = _free_port()
    config = work / "config.yaml"
    config.write_text(
        f"listen_address: 127.0.0.1:{port}\nstate_dir: {work / 'state'}\n"
        'status_page: {url: ""}\n'
        f"tenants:\n  - proxy: '{sim.proxy}'\n    name: t\n    ca_file: {sim.ca_file}\n"
        "    ping: {interval: 1s, timeout: 2s}\n    version_channel: {enabled: false}\n"
        "    inventory: {enabled: false}\n    rollout: {enabled: false}\n"
    )
    log = (work / "stderr.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "exporter.cli", "serve", "--config", str(config)],
        stderr=log,
        stdout=subprocess.DEVNULL,
        preexec_fn=_limit_descriptors,  # noqa: PLW1509 (the point: systemd's default limit)
        env={k: v for k, v in os.environ.items() if not k.startswith("TCE_")},
    )
    url = f"http://127.0.0.1:{port}/metrics"
    attack: list[socket.socket] = []
    try:
        _wait_for(url)
        for n in range(ATTACK_CONNECTIONS):
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=2)
            except OSError:
                continue
            if n % 2:
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never finished
            attack.append(s)
        threading.Event().wait(HOLD_SECONDS)
        scrape = httpx.get(url, timeout=10)
        samples = parse_samples(scrape.text)
        probe = samples.get(("teleport_cloud_probe_success", frozenset({("tenant", "t")})))
    finally:
        for s in attack:
            s.close()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()  # a wedged exporter is the failure being reported, not a leak
            process.wait(timeout=15)
        log.close()
    probes, down = _ledger(work / "state" / "ledger.sqlite3")
    log_bytes = (work / "stderr.log").stat().st_size
    state = "up" if probe == 1 and probes >= HOLD_SECONDS / 2 else f"stalled({probes})"
    result = f"probes={state} down={down} scrape={scrape.status_code}"
    return result if log_bytes < 1_000_000 else f"{result} log={log_bytes}B"


def _wait_for(url: str) -> None:
    for _ in range(80):
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        threading.Event().wait(0.25)
    raise RuntimeError("the exporter did not start")


def _ledger(path: Path) -> tuple[int, int]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        row = db.execute(
            "SELECT COALESCE(SUM(probes), 0), COALESCE(SUM(failed * 2 > probes), 0) FROM minutes"
        ).fetchone()
    return int(row[0]), int(row[1])
