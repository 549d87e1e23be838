"""The shipped pieces together, as a user runs them: the simulator's skewed tenant, the exporter,
Debian's Prometheus scraping it with the rule files loaded, and Debian's Alertmanager routing
with the example configuration to a webhook receiver in this test.

Only `for:` durations are shortened (30 minutes cannot be waited for in a test); expressions,
labels, annotations and routing are the shipped ones.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from exporter.mixin.dashboards import build
from exporter.simulator.demo import start_simulator
from tests.system.test_end_to_end import Exporter, free_port, write_config

ROOT = Path(__file__).resolve().parents[2]
DEADLINE_SECONDS = 90
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None or ALERTMANAGER is None,
    reason="needs Debian's prometheus and prometheus-alertmanager (scripts/test installs them)",
)


class Webhook:
    """An Alertmanager webhook receiver: remembers every notification."""

    def __init__(self) -> None:
        self.notifications: list[dict[str, Any]] = []
        received = self.notifications

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                received.append({"path": self.path, **json.loads(self.rfile.read(length))})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alerts(self) -> list[tuple[str, dict[str, Any]]]:
        """(receiver path, alert) for every alert of every notification."""
        return [(n["path"], a) for n in self.notifications for a in n["alerts"]]


def _shortened_rules(target: Path) -> list[str]:
    files = []
    for name in ("alerts.yml", "recording.yml"):
        rules = yaml.safe_load((ROOT / "prometheus" / name).read_text())
        for group in rules["groups"]:
            group["interval"] = "1s"
            for rule in group["rules"]:
                if "for" in rule:
                    rule["for"] = "0s"
        (target / name).write_text(yaml.safe_dump(rules, sort_keys=False))
        files.append(str(target / name))
    return files


def _alertmanager_config(target: Path, webhook: Webhook) -> Path:
    config = yaml.safe_load((ROOT / "prometheus" / "alertmanager.yml").read_text())
    config["route"]["group_wait"] = "1s"
    config["route"]["group_interval"] = "1s"
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = f"http://127.0.0.1:{webhook.port}/{receiver['name']}"
    path = target / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


class Process:
    def __init__(self, command: list[str], log: Path) -> None:
        self.log = log
        self.process = subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_alertmanager(work: Path, webhook: Webhook) -> tuple[Process, int]:
    """Debian's Alertmanager on loopback, routing to `webhook`; returns it and its port."""
    port = free_port()
    process = Process(
        [
            ALERTMANAGER or "",
            f"--config.file={_alertmanager_config(work, webhook)}",
            f"--storage.path={work / 'am'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        work / "alertmanager.log",
    )
    return process, port


def _wait(what: str, check: Any, logs: list[Path]) -> Any:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        try:
            result = check()
        except httpx.TransportError:
            result = None
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(
        f"{what} did not happen in {DEADLINE_SECONDS}s\n"
        + "\n".join(p.read_text()[-3000:] for p in logs)
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    work = tmp_path_factory.mktemp("stack")
    sim, tctl = start_simulator("skewed", 120, work / "sim")
    sim.start_in_thread()
    exporter = Exporter(write_config(sim, tctl), work)
    webhook = Webhook()
    alertmanager, am_port = start_alertmanager(work, webhook)
    prom_port = free_port()
    prometheus_config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": _shortened_rules(work),
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]
        },
        "scrape_configs": [
            {
                "job_name": "teleport-cloud-exporter",
                "static_configs": [{"targets": [f"127.0.0.1:{exporter.port}"]}],
            }
        ],
    }
    (work / "prometheus.yml").write_text(yaml.safe_dump(prometheus_config))
    prometheus = Process(
        [
            "prometheus",
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        work / "prometheus.log",
    )
    try:
        yield {
            "sim": sim,
            "webhook": webhook,
            "prometheus": f"http://127.0.0.1:{prom_port}",
            "logs": [prometheus.log, alertmanager.log, exporter.log],
        }
    finally:
        prometheus.stop()
        alertmanager.stop()
        exporter.stop()
        webhook.server.shutdown()
        sim.stop()


def _query(base: str, expr: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{base}/api/v1/query", params={"query": expr}, timeout=10)
    body = response.json()
    assert body["status"] == "success", f"{expr}: {body}"
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def test_unsupported_version_alert_reaches_the_webhook(stack: dict[str, Any]) -> None:
    webhook: Webhook = stack["webhook"]

    def arrived() -> list[Any]:
        return [
            (path, a)
            for path, a in webhook.alerts()
            if a["labels"]["alertname"] == "TeleportCloudAgentUnsupportedVersion"
        ]

    path, alert = _wait(
        "TeleportCloudAgentUnsupportedVersion at the webhook", arrived, stack["logs"]
    )[0]
    assert alert["status"] == "firing"
    assert alert["labels"]["tenant"] == "demo"
    assert alert["labels"]["skew"] in ("unsupported_old", "unsupported_newer")
    assert alert["labels"]["severity"] == "warning" and path == "/" + _receiver_for("warning")
    assert alert["annotations"]["runbook_url"].endswith("#teleportcloudagentunsupportedversion")
    assert "demo" in alert["annotations"]["description"]


def _receiver_for(severity: str) -> str:
    config = yaml.safe_load((ROOT / "prometheus" / "alertmanager.yml").read_text())
    for route in config["route"].get("routes", []):
        matchers = " ".join(route.get("matchers", []))
        if (
            f'severity="{severity}"' in matchers.replace("'", '"')
            or f"severity={severity}" in matchers
        ):
            return str(route["receiver"])
    return str(config["route"]["receiver"])


def test_prometheus_scrapes_openmetrics_without_errors(stack: dict[str, Any]) -> None:
    base = stack["prometheus"]
    up = _wait(
        "a successful scrape",
        lambda: _query(base, 'up{job="teleport-cloud-exporter"} == 1'),
        stack["logs"],
    )
    assert up
    targets = httpx.get(f"{base}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
    assert targets[0]["health"] == "up" and not targets[0]["lastError"]
    rules = httpx.get(f"{base}/api/v1/rules", timeout=10).json()["data"]["groups"]
    unhealthy = [r["name"] for g in rules for r in g["rules"] if r.get("health") == "err"]
    assert not unhealthy, unhealthy


def test_every_dashboard_panel_returns_data(stack: dict[str, Any]) -> None:
    base, sim = stack["prometheus"], stack["sim"]
    # rates need a few scrapes and the fleet needs its first tctl run
    _wait("fleet series", lambda: _query(base, "teleport_cloud_agent_info"), stack["logs"])
    _wait(
        "rollout series",
        lambda: _query(base, "teleport_cloud_autoupdate_group_state"),
        stack["logs"],
    )
    # absent until the ledger has observed a minute (no data is not 100 %), then published
    # within the SLA service's interval
    _wait("SLA uptime", lambda: _query(base, "teleport_cloud_sla_uptime_ratio"), stack["logs"])
    time.sleep(5)
    # Every component of the simulated status page is operational in this scenario (its
    # series are there, in state `operational`): this table must be empty, not list the states
    # the components are not in.
    assert _query(base, 'teleport_cloud_status_component{status="operational"} == 1')
    empty_when_healthy = {"Components not operational"}
    empty: list[str] = []
    tenant_columns: list[tuple[str, list[Any]]] = []
    for name, dashboard in build.dashboards().items():
        for title, expr in build.panel_queries(dashboard):
            query = build.concrete(expr, "demo", sim.proxy)
            rows = _query(base, query)
            if title.startswith("Tenants:"):
                tenant_columns.append((query, [r["metric"].get("tenant") for r in rows]))
            if title in empty_when_healthy:
                assert not rows, f"{title} lists components that are operational: {rows}"
            elif not rows:
                empty.append(f"{name}: {title}: {query}")
    assert not empty, "panels without data:\n" + "\n".join(empty)
    # The overview's tenants table merges its columns on `tenant`: each column's query gives
    # exactly one series for the tenant, labelled with it.
    assert len(tenant_columns) == 12
    for query, tenants in tenant_columns:
        assert tenants == ["demo"], f"{query}: {tenants}"
