"""A newcomer's first hour: the demo commands as a user runs them, in real processes.

`serve --demo` honours the web configuration, refuses a configuration file it would ignore,
leaves no temporary files behind however it is stopped, and logs its start once; `check` tells
an outage (exit 1) from what the exporter cannot see (exit 2); `sla report --demo` and
`serve --version` work; an unknown scenario is refused; the simulator is documented.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import fields
from pathlib import Path

import bcrypt
import pytest

from exporter.check.collect import run_check
from exporter.config import Settings
from exporter.simulator.demo import demo_config, start_simulator
from exporter.simulator.scenarios import SCENARIOS, SimState

ROOT = Path(__file__).resolve().parents[2]
EXPORTER = [sys.executable, "-m", "exporter.cli"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EXPORTER, *args], capture_output=True, text=True, timeout=120, env=env, check=False
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _leftovers(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.iterdir() if p.name.startswith("tce-"))


def test_serve_version() -> None:
    result = run("serve", "--version")
    assert result.returncode == 0 and result.stdout.startswith("teleport-cloud-exporter ")


def test_unknown_scenario_is_refused() -> None:
    result = run("simulate", "--scenario", "outgae")
    assert result.returncode == 2
    assert "unknown scenario 'outgae'" in result.stderr and "outage" in result.stderr


def test_demo_refuses_a_configuration_it_would_ignore(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("tenants: []\n")
    for command in ("serve", "check"):
        result = run(command, "--demo", "--config", str(config))
        assert result.returncode == 2
        assert result.stderr.startswith("teleport-cloud-exporter: configuration error: --config:")
        assert "simulate --workdir" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_sla_report_demo_shows_a_simulated_month(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    text = run("sla", "report", "--demo", env=env)
    assert text.returncode == 0, text.stderr
    assert "Tenant demo" in text.stdout and "simulated month" in text.stderr
    assert re.search(r"Downtime\s+420 s \(7m\)", text.stdout), text.stdout
    assert "maintenance (excluded)" in text.stdout
    report = json.loads(run("sla", "report", "--demo", "--format", "json", env=env).stdout)
    (tenant,) = report["tenants"]
    intervals = tenant["down_intervals"]
    assert [i["duration_seconds"] for i in intervals] == [420, 240]
    assert [i["counted"] for i in intervals] == [True, False]
    assert _leftovers(tmp_path) == []


def test_check_demo_leaves_nothing_behind(tmp_path: Path) -> None:
    result = run("check", "--demo", env={**os.environ, "TMPDIR": str(tmp_path)})
    assert result.returncode == 1, result.stdout + result.stderr  # the demo has findings
    assert "Tenant demo" in result.stdout
    assert _leftovers(tmp_path) == []


def _start(args: list[str], tmp_path: Path, ready: str) -> tuple[subprocess.Popen[str], str]:
    """Start a command, wait (bounded) for `ready` in its stderr; return it and what it said."""
    process = subprocess.Popen(
        [*EXPORTER, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    assert process.stderr is not None
    seen = ""
    deadline = time.monotonic() + 60
    while ready not in seen and time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        seen += line
    assert ready in seen, seen
    return process, seen


def _get(url: str, auth: str | None = None) -> int:
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_demo_honours_the_web_config_and_cleans_up(
    tmp_path: Path, stop: signal.Signals
) -> None:
    web = tmp_path / "web.yml"
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    web.write_text(f"basic_auth_users:\n  prometheus: '{hashed}'\n")
    port = _free_port()
    process, said = _start(
        [
            "serve",
            "--demo",
            "--web.listen-address",
            f"127.0.0.1:{port}",
            "--web.config.file",
            str(web),
        ],
        tmp_path,
        "/_sim/state",
    )
    try:
        assert "(basic auth on)" in said
        assert re.search(
            r"curl --cacert \S+simulator-ca.pem -d '\{.*\}' https://\S+/_sim/state", said
        )
        url = f"http://127.0.0.1:{port}/metrics"
        deadline = time.monotonic() + 30
        status = 0
        while time.monotonic() < deadline:
            try:
                status = _get(url)
                break
            except OSError:
                time.sleep(0.2)
        assert status == 401
        assert _get(url, "prometheus:wrong") == 401
        assert _get(url, "prometheus:s3cret") == 200
        assert len(_leftovers(tmp_path)) == 1  # the demo's files while it runs
    finally:
        process.send_signal(stop)
        _, rest = process.communicate(timeout=30)
    assert process.returncode == 0, rest
    assert _leftovers(tmp_path) == []
    log = said + rest
    # One start line of ours; uvicorn's lifecycle lines (two servers here) only at debug.
    assert log.count("listening on") == 1
    assert "Started server process" not in log and "startup complete" not in log


def test_serve_demo_with_a_bad_web_config_stops_before_starting(tmp_path: Path) -> None:
    web = tmp_path / "web.yml"
    web.write_text("basic_auth_users:\n  prometheus: plaintext\n")
    result = run(
        "serve",
        "--demo",
        "--web.config.file",
        str(web),
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    assert result.returncode == 2 and "bcrypt" in result.stderr
    assert _leftovers(tmp_path) == []


def test_simulate_cleans_up_on_sigterm_and_keeps_a_workdir(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [*EXPORTER, "simulate", "--scenario", "healthy", "--agents", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    assert process.stdout is not None
    first = process.stdout.readline()
    assert first.startswith("simulated tenant (healthy) at https://127.0.0.1:")
    assert len(_leftovers(tmp_path)) == 1
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=30)
    assert _leftovers(tmp_path) == []

    kept = tmp_path / "kept"
    process = subprocess.Popen(
        [*EXPORTER, "simulate", "--agents", "5", "--workdir", str(kept)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    process.stdout.readline()
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=30)
    assert (kept / "config.yaml").is_file() and (kept / "simulator-ca.pem").is_file()


def _check(scenario: str, tmp_path: Path, tctl_broken: bool = False) -> tuple[int, str]:
    sim, tctl = start_simulator(scenario, 20, tmp_path / "sim")
    if tctl_broken:
        tctl = tmp_path / "no-such-tctl"
    sim.start_in_thread()
    try:
        out = io.StringIO()
        code = run_check(Settings(**demo_config(sim, sim.workdir, tctl, "127.0.0.1:0")), out)
    finally:
        sim.stop()
    return code, out.getvalue()


def test_check_during_an_outage_is_a_finding_not_a_collection_failure(tmp_path: Path) -> None:
    code, text = _check("outage", tmp_path)
    assert code == 1, text
    assert "Proxy probe     FAILING: http: /webapi/ping answered HTTP 503" in text
    assert "Could not collect" not in text
    assert "demo: proxy probe failing: http: /webapi/ping answered HTTP 503" in text


def test_check_exits_2_when_the_exporter_cannot_see(tmp_path: Path) -> None:
    code, text = _check("outage", tmp_path, tctl_broken=True)
    assert code == 2, text
    assert "Could not collect:" in text and "inventory demo: exec" in text
    assert "proxy probe failing" in text  # the outage is still reported


def test_simulator_is_documented() -> None:
    development = (ROOT / "docs" / "development.md").read_text()
    table = development[development.index("## The simulator") :]
    for scenario in SCENARIOS:
        assert f"| `{scenario}` |" in table, scenario
    for field in fields(SimState):
        if field.name != "requests":  # a counter the simulator keeps, not a setting
            assert f"`{field.name}`" in table, field.name
    assert "`--workdir DIR`" in table and "/_sim/state" in table
