"""The exporter as a user runs it: a real process against the simulated tenant over real TLS,
scraped over HTTP, linted by promtool, stopped by SIGTERM; and behind TLS, mTLS and basic auth."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import pytest
import trustme
import yaml

from exporter.core import catalogue as m
from exporter.simulator.demo import demo_config, start_simulator
from exporter.simulator.server import SimulatedTenant
from tests.conftest import parse_samples, series, value
from tests.unit.fleet.test_fleet import _valid

STARTUP_SECONDS = 30


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Exporter:
    def __init__(self, config: Path, workdir: Path, *extra: str, scheme: str = "http") -> None:
        self.port = free_port()
        self.base = f"{scheme}://127.0.0.1:{self.port}"
        self.log = workdir / f"exporter-{self.port}.log"
        command = [
            sys.executable,
            "-m",
            "exporter.cli",
            "serve",
            "--config",
            str(config),
            "--web.listen-address",
            f"127.0.0.1:{self.port}",
            *extra,
        ]
        self.process = subprocess.Popen(
            command, stdout=self.log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_ready(self, client: httpx.Client, path: str = "/readyz") -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            try:
                if client.get(self.base + path).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"exporter not ready in {STARTUP_SECONDS}s:\n{self.log.read_text()}")

    def stop(self) -> float:
        started = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return time.monotonic() - started


@pytest.fixture(scope="module")
def demo_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SimulatedTenant, Path]]:
    sim, tctl = start_simulator("demo", 300, tmp_path_factory.mktemp("e2e"))
    sim.start_in_thread()
    yield sim, tctl
    sim.stop()


def write_config(sim: SimulatedTenant, tctl: Path, **changes: Any) -> Path:
    config = demo_config(sim, sim.workdir, tctl, "127.0.0.1:0")
    config["tenants"][0]["ping"]["interval"] = "1s"
    config.update(changes)
    path = sim.workdir / f"config-{len(list(sim.workdir.glob('config-*')))}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def wait_until_collected(
    exporter: Exporter, client: httpx.Client, source: str, target: str
) -> None:
    """/readyz no longer waits for upstream sources: wait for the source's first refresh."""
    labels = f'{{source="{source}",target="{target}"'
    needle = f"teleport_cloud_source_last_success_timestamp_seconds{labels}}}"
    errors = f"teleport_cloud_source_errors_total{labels}"
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        for line in client.get(exporter.base + "/metrics").text.splitlines():
            if (line.startswith(needle) and not line.endswith(" 0.0")) or (
                line.startswith(errors) and not line.endswith(" 0.0")
            ):
                return
        time.sleep(0.2)
    raise AssertionError(f"{source} {target} never refreshed:\n{exporter.log.read_text()}")


@pytest.fixture(scope="module")
def running(demo_sim: tuple[SimulatedTenant, Path]) -> Iterator[tuple[Exporter, httpx.Client]]:
    sim, tctl = demo_sim
    exporter = Exporter(write_config(sim, tctl), sim.workdir)
    client = httpx.Client(timeout=5)
    try:
        exporter.wait_ready(client)
        wait_until_collected(exporter, client, "inventory", "demo")
        yield exporter, client
    finally:
        exporter.stop()
        client.close()


def test_scrape_has_every_family_with_right_values(
    running: tuple[Exporter, httpx.Client], demo_sim: tuple[SimulatedTenant, Path]
) -> None:
    exporter, client = running
    sim, _ = demo_sim
    deadline = time.monotonic() + 25  # the SLA publishes every 15 s
    while True:
        response = client.get(exporter.base + "/metrics")
        if (
            'teleport_cloud_sla_observed_seconds{tenant="demo"} 0.0' not in response.text
            or time.monotonic() > deadline
        ):
            break
        time.sleep(0.5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = parse_samples(response.text)
    names = {name for name, _ in samples}
    for spec in m.CATALOGUE:
        wanted = {"counter": spec.name + "_total", "histogram": spec.name + "_count"}.get(
            spec.kind, spec.name
        )
        assert wanted in names, f"{spec.name} missing from a demo scrape"
    assert value(samples, "teleport_cloud_probe_success", tenant="demo") == 1
    assert value(samples, "teleport_cloud_source_up", source="ping", target="demo") == 1
    assert value(samples, "teleport_cloud_source_up", source="inventory", target="demo") == 1
    assert value(samples, "teleport_cloud_source_up", source="status_page", target=sim.proxy) == 1
    assert value(samples, "teleport_cloud_control_plane_major_version", tenant="demo") == 18
    assert value(samples, "teleport_cloud_status_indicator", page=sim.proxy, indicator="minor") == 1
    assert value(samples, "teleport_cloud_sla_objective_ratio", tenant="demo") == 0.999
    assert value(samples, "teleport_cloud_sla_downtime_seconds", tenant="demo") == 0
    assert value(samples, "teleport_cloud_sla_observed_seconds", tenant="demo") >= 60
    assert (
        value(
            samples,
            "teleport_cloud_exporter_build_info",
            version=__import__("exporter").__version__,
        )
        == 1
    )
    assert sum(
        value(samples, "teleport_cloud_agents_by_skew", **s)
        for s in series(samples, "teleport_cloud_agents_by_skew")
    ) == len(series(samples, "teleport_cloud_agent_info"))


@pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool (Debian package prometheus) is required; scripts/test installs it",
)
def test_promtool_finds_no_problem(running: tuple[Exporter, httpx.Client]) -> None:
    exporter, client = running
    body = client.get(exporter.base + "/metrics").content
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=body, capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), (
        result.stdout + result.stderr
    ).decode()


def test_openmetrics_and_gzip_negotiation(running: tuple[Exporter, httpx.Client]) -> None:
    exporter, client = running
    plain = client.get(exporter.base + "/metrics", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    om = client.get(
        exporter.base + "/metrics",
        headers={
            "Accept": "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
            "Accept-Encoding": "gzip",
        },
    )
    assert om.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    assert om.headers["content-encoding"] == "gzip"
    assert om.text.endswith("# EOF\n")  # httpx decoded the gzip body
    assert "# TYPE teleport_cloud_source_errors counter" in om.text
    with httpx.stream(
        "GET", exporter.base + "/metrics", headers={"Accept-Encoding": "gzip"}
    ) as raw:
        compressed = b"".join(raw.iter_raw())
    assert gzip.decompress(compressed).startswith(b"# HELP ")
    assert len(compressed) < len(plain.content) / 4


def test_index_and_health(running: tuple[Exporter, httpx.Client]) -> None:
    exporter, client = running
    assert client.get(exporter.base + "/healthz").status_code == 200
    assert 'href="metrics"' in client.get(exporter.base + "/").text
    assert client.get(exporter.base + "/nope").status_code == 404
    assert client.post(exporter.base + "/metrics").status_code == 405


def test_sigterm_stops_within_five_seconds(demo_sim: tuple[SimulatedTenant, Path]) -> None:
    sim, tctl = demo_sim
    exporter = Exporter(write_config(sim, tctl), sim.workdir)
    with httpx.Client(timeout=5) as client:
        exporter.wait_ready(client, "/healthz")
    took = exporter.stop()
    assert exporter.process.returncode == 0, exporter.log.read_text()
    assert took < 5


def test_readyz_follows_the_exporter_not_upstream_health(
    demo_sim: tuple[SimulatedTenant, Path],
) -> None:
    sim, tctl = demo_sim
    page = f"127.0.0.1:{free_port()}"
    config = write_config(
        sim, tctl, status_page={"url": f"https://{page}", "ca_file": str(sim.ca_file)}
    )
    exporter = Exporter(config, sim.workdir)
    try:
        with httpx.Client(timeout=5) as client:
            exporter.wait_ready(client, "/readyz")
            wait_until_collected(exporter, client, "status_page", page)
            samples = parse_samples(client.get(exporter.base + "/metrics").text)
            up = value(samples, "teleport_cloud_source_up", source="status_page", target=page)
            assert up == 0, "the status page must be unreachable here"
            assert client.get(exporter.base + "/readyz").status_code == 200
    finally:
        exporter.stop()


def test_tls_mtls_and_basic_auth(demo_sim: tuple[SimulatedTenant, Path], tmp_path: Path) -> None:
    sim, tctl = demo_sim
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    client_cert = ca.issue_cert("prometheus@example")
    server.cert_chain_pems[0].write_to_path(str(tmp_path / "server.crt"))
    server.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.crt"))
    client_pem = tmp_path / "client.pem"
    client_cert.private_key_and_cert_chain_pem.write_to_path(str(client_pem))
    password_hash = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    web = tmp_path / "web.yaml"
    web.write_text(
        yaml.safe_dump(
            {
                "tls_server_config": {
                    "cert_file": "server.crt",
                    "key_file": "server.key",
                    "client_auth_type": "RequireAndVerifyClientCert",
                    "client_ca_file": "ca.crt",
                    "min_version": "TLS12",
                },
                "basic_auth_users": {"prometheus": password_hash},
            }
        )
    )
    exporter = Exporter(
        write_config(sim, tctl), sim.workdir, "--web.config.file", str(web), scheme="https"
    )
    context = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
    client_cert.configure_cert(context)
    try:
        with httpx.Client(verify=context, timeout=5, auth=("prometheus", "s3cret")) as client:
            exporter.wait_ready(client, "/healthz")
            assert client.get(exporter.base + "/metrics").status_code == 200
            assert (
                client.get(exporter.base + "/metrics", auth=("prometheus", "wrong")).status_code
                == 401
            )
            unauthenticated = client.get(exporter.base + "/metrics", auth=None)
            assert (
                unauthenticated.status_code == 401
                and "basic" in unauthenticated.headers["www-authenticate"].lower()
            )
        with (
            httpx.Client(
                verify=ssl.create_default_context(cafile=str(tmp_path / "ca.crt")), timeout=5
            ) as no_cert,
            pytest.raises(httpx.TransportError),
        ):
            no_cert.get(exporter.base + "/healthz")
    finally:
        exporter.stop()


def _tctl_json(tctl: Path, *args: str) -> Any:
    identity = tctl.parent / "identity"
    command = [str(tctl), "--auth-server=x:443", "-i", str(identity), *args, "--format=json"]
    env = {**os.environ, "TELEPORT_TOOLS_VERSION": "off"}
    done = subprocess.run(command, capture_output=True, env=env, timeout=60, check=True)
    return json.loads(done.stdout)


def _bare(version: str) -> str:
    return version[1:] if version[:1] == "v" and version[1:2].isdigit() else version


def test_rollout_in_progress_target_outdated_stuck_and_updater_status(
    running: tuple[Exporter, httpx.Client], demo_sim: tuple[SimulatedTenant, Path]
) -> None:
    """The demo tenant runs a rollout whose last group is unstarted, so ping (no group) reports
    the start version. Expected figures come from the fake tctl's own output, computed here."""
    exporter, client = running
    sim, tctl = demo_sim
    (rollout,) = _tctl_json(tctl, "get", "autoupdate_agent_rollout")
    start, target = rollout["spec"]["start_version"], rollout["spec"]["target_version"]
    groups = rollout["status"]["groups"]
    assert groups[-1]["state"].endswith("UNSTARTED") and start != target
    context = ssl.create_default_context(cafile=str(sim.ca_file))
    ping = httpx.get(sim.url + "/webapi/ping", verify=context, timeout=5).json()
    assert ping["auto_update"]["agent_version"] == start  # the precondition that misled

    records = [
        record
        for record in _tctl_json(tctl, "inventory", "ls")
        if _valid(record) and not {"Auth", "Proxy"} & set(record["spec"]["services"])
    ]
    outdated = sum(_bare(record["spec"]["version"]) != target for record in records)
    group_version = {
        group["name"]: target if group["state"].endswith(("ACTIVE", "DONE")) else start
        for group in groups
    }
    # Teleport's rules (halt-on-error, mode enabled): an unlisted or empty group is the last
    # group, v1 unit agents ask for `default`; active and done groups are asked; agents that
    # cannot update are never stuck.
    asked = {g["name"]: g["state"].endswith(("ACTIVE", "DONE", "ROLLEDBACK")) for g in groups}
    stuck = dict.fromkeys(group_version, 0)
    by_status: dict[tuple[str, str], int] = {}
    status_names = {1: "ok", 2: "disabled", 3: "pinned", 4: "unreadable"}
    for record in records:
        spec = record["spec"]
        info = spec.get("UpdaterInfo")
        status = status_names.get((info or {}).get("UpdaterStatus", 0), "unspecified")
        upgrader = spec.get("ext_upgrader", "none")
        named = "default" if upgrader == "unit" else (info or {}).get("UpdateGroup", "")
        group = named if named in group_version else groups[-1]["name"]
        able = upgrader != "none" and status not in ("disabled", "pinned", "unreadable")
        if asked[group] and able and _bare(spec["version"]) != group_version[group]:
            stuck[group] += 1
        key = (spec.get("ext_upgrader", "none"), status)
        by_status[key] = by_status.get(key, 0) + 1
    assert by_status.get(("binary", "pinned")) and by_status.get(("binary", "disabled"))

    # The rollout may land just after the first fleet; the fleet is then re-derived in a
    # worker thread and the target re-published by the next probe: wait for both to converge.
    deadline = time.monotonic() + 30
    while True:
        samples = parse_samples(client.get(exporter.base + "/metrics").text)
        target_series = series(samples, "teleport_cloud_agent_target_version_info")
        seen_outdated = value(samples, "teleport_cloud_agents_outdated", tenant="demo")
        if target_series == [{"tenant": "demo", "version": target}] and seen_outdated == outdated:
            break
        assert time.monotonic() < deadline, (target_series, seen_outdated, outdated)
        time.sleep(0.5)
    for group, count in stuck.items():
        assert (
            value(
                samples, "teleport_cloud_autoupdate_group_agents_stuck", tenant="demo", group=group
            )
            == count
        ), group
        assert (
            value(
                samples,
                "teleport_cloud_autoupdate_group_version_info",
                tenant="demo",
                group=group,
                version=group_version[group],
            )
            == 1
        )
    for (upgrader, status), count in by_status.items():
        assert (
            value(
                samples,
                "teleport_cloud_agents_by_updater_status",
                tenant="demo",
                upgrader=upgrader,
                status=status,
            )
            == count
        ), (upgrader, status)
    info = series(samples, "teleport_cloud_agent_info")
    assert sum(labels["updater_status"] == "pinned" for labels in info) == sum(
        count for (_, status), count in by_status.items() if status == "pinned"
    )
    assert value(samples, "teleport_cloud_tctl_compatible", tenant="demo") == 1
    assert series(samples, "teleport_cloud_tctl_version_info") == [{"version": "18.1.4"}]
    assert value(samples, "teleport_cloud_source_up", source="rollout", target="demo") == 1
    assert value(samples, "teleport_cloud_source_up", source="tctl_version", target="demo") == 1
