"""The page at `/`, read in Debian's headless Chromium (DevTools protocol) as a person reads it.

One exporter process, over TLS and behind basic auth, watches two simulated tenants: `calm`
(healthy fleet) and `busy` (the demo's skewed fleet, a v2 rollout, a month of SLA history with
two outages). `busy` is switched through the simulator's scenarios (demo, skewed, outage,
maintenance) and each state's content is asserted. Screenshots go to $TCE_SCREENSHOTS (docs/
keeps the ones the README shows) or the test's temporary directory.
"""

from __future__ import annotations

import io
import os
import re
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import bcrypt
import pytest
import trustme
import yaml

from exporter.check.collect import run_check
from exporter.check.findings import Assessment, Observation, TenantView, assess_all
from exporter.config import Settings
from exporter.core.state import Hub
from exporter.simulator.demo import demo_config, start_simulator
from exporter.simulator.history import simulated_history
from exporter.sla.ledger import Ledger
from exporter.web.server import PageCache
from tests.chromium import CHROMIUM, Browser, ChromiumError
from tests.system.test_end_to_end import Exporter

# scripts/test installs Chromium; in CI a missing browser is a failure, not a silent skip.
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("CI") != "true",
    reason="Debian's chromium is not installed (scripts/test installs it)",
)

USER, PASSWORD = "viewer", "page-s3cret"
DEADLINE = 60.0


class Stack:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.calm, calm_tctl = start_simulator("healthy", 20, work / "calm")
        self.busy, busy_tctl = start_simulator("demo", 250, work / "busy")
        self.calm.start_in_thread()
        self.busy.start_in_thread()
        state = work / "state"
        ledger = Ledger.open(state)
        ledger.import_minutes("busy", simulated_history(time.time()))
        ledger.close()
        calm = demo_config(self.calm, self.calm.workdir, calm_tctl, "127.0.0.1:0")["tenants"][0]
        busy_config = demo_config(self.busy, self.busy.workdir, busy_tctl, "127.0.0.1:0")
        busy = busy_config["tenants"][0]
        calm["name"], busy["name"] = "calm", "busy"
        for tenant in (calm, busy):
            tenant["ping"]["interval"] = "1s"
            tenant["inventory"]["interval"] = "5s"
            tenant["rollout"]["interval"] = "5s"
        config = {
            "listen_address": "127.0.0.1:0",
            "state_dir": str(state),
            "status_page": {**busy_config["status_page"], "interval": "2s"},
            "tenants": [calm, busy],
        }
        self.config = work / "config.yaml"
        self.config.write_text(yaml.safe_dump(config))
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1")
        cert.private_key_and_cert_chain_pem.write_to_path(str(work / "server.pem"))
        cert.private_key_pem.write_to_path(str(work / "server.key"))
        self.client_context = ssl.create_default_context()
        ca.configure_trust(self.client_context)
        hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
        (work / "web.yml").write_text(
            yaml.safe_dump(
                {
                    "tls_server_config": {"cert_file": "server.pem", "key_file": "server.key"},
                    "basic_auth_users": {USER: hashed},
                }
            )
        )
        self.exporter = Exporter(
            self.config, work, "--web.config.file", str(work / "web.yml"), scheme="https"
        )
        self.browser = Browser(width=1200, height=900)
        self.browser.authenticate(USER, PASSWORD)
        self.shots = Path(os.environ.get("TCE_SCREENSHOTS", str(work)))

    def get(self, path: str, auth: bool = True) -> tuple[int, bytes]:
        request = urllib.request.Request(self.exporter.base + path)
        if auth:
            import base64

            token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=10, context=self.client_context) as answer:
                return int(answer.status), answer.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def page_until(self, what: str, ready: Callable[[str], bool]) -> str:
        """Reload the page in Chromium until `ready(text)`; bounded."""
        deadline = time.monotonic() + DEADLINE
        text = ""
        while time.monotonic() < deadline:
            assert self.exporter.process.poll() is None, self.exporter.log.read_text()
            try:
                status = self.browser.open(self.exporter.base + "/")
            except ChromiumError:  # the server may not listen yet
                time.sleep(0.5)
                continue
            if status == 200:
                text = self.browser.text()
                if ready(text):
                    return text
            time.sleep(0.5)
        raise AssertionError(f"page never showed {what}:\n{text}")

    def scenario(self, name: str) -> None:
        self.busy.state.apply({"scenario": name})

    def section(self, text: str, tenant: str) -> str:
        start = text.index(f"Tenant {tenant} (")
        ends = [i for i in (text.find("Tenant ", start + 1), text.find("Status page ")) if i > 0]
        return text[start : min(ends)] if ends else text[start:]

    def shot(self, name: str, selector: str, greyscale: bool = False) -> Path:
        path = self.shots / name
        self.browser.screenshot(path, greyscale=greyscale, selector=selector, max_height=1100)
        assert path.stat().st_size > 10_000  # an image with content, not a blank
        return path

    def close(self) -> None:
        self.browser.close()
        self.exporter.stop()
        self.calm.stop()
        self.busy.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    built = Stack(tmp_path_factory.mktemp("page"))
    try:
        yield built
    finally:
        built.close()


def _collected(text: str) -> bool:
    """Both fleets in, the rollout read, and the busy tenant's probe answered."""
    return (
        text.count("Agents\t") == 2
        and "Managed Updates rollout" in text
        and "Status page " in text
        and "OK in" in text
    )


def test_page_needs_the_same_login_as_metrics(stack: Stack) -> None:
    stack.page_until("both tenants", _collected)
    assert stack.get("/", auth=False)[0] == 401
    assert stack.get("/metrics", auth=False)[0] == 401
    assert stack.get("/healthz", auth=False)[0] == 200
    status, body = stack.get("/")
    assert status == 200 and body.startswith(b"<!doctype html>")
    # Nothing to fetch: no script, no external style sheet, image or font.
    assert b"<script" not in body and b"src=" not in body and b"<link" not in body


def test_demo_state(stack: Stack) -> None:
    stack.scenario("demo")
    text = stack.page_until("the demo tenant", _collected)
    assert not [u for u in stack.browser.requested_urls() if not u.startswith(stack.exporter.base)]
    calm = stack.section(text, "calm")
    assert "Proxy probe\tOK in" in calm
    assert "Control plane\t18.1.4" in calm
    assert "not blocked Cloud can upgrade it" in calm
    assert "Agents\t20: current 20," in calm
    assert "Fleet size\t20 of the 10,000 agents Teleport asks to discuss first (0%)" in calm
    assert "Down intervals: none this month." in calm
    busy = stack.section(text, "busy")
    assert re.search(r"BLOCKED Cloud cannot upgrade the control plane: \d+ agent\(s\)", busy)
    assert "16.4.1" in busy  # the blocking versions are named
    assert "Agents that block the next upgrade" in busy
    assert "Agents that will not update by themselves" in busy
    assert "Managed Updates rollout" in busy
    tables = stack.browser.tables()
    groups = next(t for t in tables if t[0][:2] == ["group", "state"])
    assert [row[0] for row in groups[1:]] == ["dev", "staging", "prod (catch-all)"]
    assert [row[1] for row in groups[1:]] == ["done", "active", "unstarted"]
    assert re.search(r"Teleport's agent reports: \d+ agent\(s\) counted by 2 Auth server", busy)
    reasons = next(t for t in tables if t[0] == ["reason", "agents"])
    assert {row[0] for row in reasons[1:]} >= {"no_upgrader", "pinned", "disabled"}
    # The SLA month: the simulated history's two outages, one excused by a maintenance.
    intervals = next(t for t in tables if t[0][:1] == ["down from (UTC)"])
    assert [row[2:] for row in intervals[1:]] == [
        ["7 min", ""],
        ["4 min", "maintenance, excluded"],
    ]
    assert re.search(r"Downtime\t7 min of 4[34] min \d+ s budget", busy)
    sources = next(t for t in tables if t[0][:2] == ["source", "state"])
    assert {row[0] for row in sources[1:]} >= {
        "ping",
        "version_channel",
        "inventory",
        "identity",
        "rollout",
        "tctl_version",
    }
    assert "Status page 127.0.0.1" in text and "MINOR Minor Service Outage" in text
    assert "Elevated latency in Europe" in text
    # The summary is check's list of findings, word for word.
    assert "Findings: " in text and "busy: next control-plane upgrade blocked by" in text
    stack.shot("page-demo.png", "body")


def test_skewed_state(stack: Stack) -> None:
    stack.scenario("skewed")
    text = stack.page_until(
        "an operational status page", lambda t: "OK All Systems Operational" in t
    )
    page = text[text.index("Status page ") :]
    assert re.search(r"Unresolved incidents\s+None\.", page)


def test_outage_state_shows_the_failures_with_reasons(stack: Stack) -> None:
    stack.scenario("outage")
    text = stack.page_until(
        "the outage",
        lambda t: (
            "FAILING http: /webapi/ping answered HTTP 503" in t
            and "CRITICAL Major System Outage" in t
        ),
    )
    busy = stack.section(text, "busy")
    assert "Recent probe failures" in busy and "None since" not in busy
    failures = next(
        t for t in stack.browser.tables() if t[0] == ["at (UTC)", "reason", "what was seen"]
    )
    assert failures[1][1:] == ["http", "/webapi/ping answered HTTP 503"]
    sources = [t for t in stack.browser.tables() if t[0][:2] == ["source", "state"]]
    ping = next(row for table in sources for row in table if row[0] == "ping" and "DOWN" in row[1])
    assert "503" in ping[4]
    assert "busy: proxy probe failing: http: /webapi/ping answered HTTP 503" in text
    assert "CRITICAL Major System Outage" in text and "Proxy unavailable in us-west-2" in text
    # The calm tenant is untouched by the other tenant's outage.
    assert "Proxy probe\tOK in" in stack.section(text, "calm")
    stack.shot("page-outage.png", "#tenant-busy")
    stack.shot("page-outage-greyscale.png", "#tenant-busy", greyscale=True)


def test_page_and_check_share_their_findings(stack: Stack) -> None:
    # The same tenant state on both sides: check collects from scratch, so during an outage it
    # would not know the control-plane version the running exporter still holds.
    stack.scenario("demo")
    text = stack.page_until(
        "the demo again",
        lambda t: _collected(t) and "FAILING" not in t and "MINOR Minor Service Outage" in t,
    )
    summary = text[text.index("Findings: ") : text.index("Tenant calm (")]
    on_page = {line.strip() for line in summary.splitlines()[1:] if line.strip()}
    out = io.StringIO()
    code = run_check(Settings(**yaml.safe_load(stack.config.read_text())), out)
    report = out.getvalue()
    in_report = {
        line.strip()[2:]
        for line in report[report.index("Findings:") :].splitlines()[1:]
        if line.strip().startswith("- ")
    }
    assert code == 1, report
    assert on_page == in_report


def test_maintenance_state(stack: Stack) -> None:
    stack.scenario("maintenance")
    text = stack.page_until(
        "the maintenance",
        lambda t: "MAINTENANCE Service Under Maintenance" in t and "FAILING" in t,
    )
    maintenances = next(
        t
        for t in stack.browser.tables()
        if t[0] == ["status", "maintenance", "scheduled for (UTC)"]
    )
    assert maintenances[1][0] == "in_progress"
    assert "FAILING" in stack.section(text, "busy")
    stack.scenario("demo")


def test_every_state_is_written_in_words(stack: Stack) -> None:
    stack.page_until("both tenants", _collected)
    markers = stack.browser.evaluate(
        "[...document.querySelectorAll('.state')].map(e => e.innerText.trim())"
    )
    assert markers and all(re.fullmatch(r"[A-Za-z][A-Za-z ]*", m) for m in markers), markers
    # Real tables: header cells are <th> with a scope, so a screen reader can name each cell.
    unscoped = stack.browser.evaluate("document.querySelectorAll('th:not([scope])').length")
    assert unscoped == 0


def _assessment(tenant: str = "t") -> Assessment:
    settings = Settings(
        tenants=[
            {
                "proxy": "t.example:443",
                "name": tenant,
                "inventory": {"enabled": False},
                "rollout": {"enabled": False},
            }
        ],
        status_page={"url": ""},
    )
    hub = Hub(settings)
    return assess_all(Observation(settings, hub, 1_800_000_000.0, {}, {}, {}, {}))


def test_page_cache_builds_once_per_change() -> None:
    generation = [1]
    built: list[int] = []

    async def build() -> bytes:
        built.append(generation[0])
        await anyio.sleep(0.01)
        return f"page {generation[0]}".encode()

    cache = PageCache(lambda: generation[0], build)

    async def scenario() -> list[bytes]:
        pages: list[bytes] = []

        async def one() -> None:
            pages.append(await cache.get())

        async with anyio.create_task_group() as group:
            for _ in range(5):  # concurrent requests share one build
                group.start_soon(one)
        pages.append(await cache.get())
        generation[0] = 2
        pages.append(await cache.get())
        pages.append(await cache.get())
        return pages

    pages = anyio.run(scenario)
    assert built == [1, 2]
    assert pages == [b"page 1"] * 6 + [b"page 2"] * 2


def test_page_escapes_upstream_text() -> None:
    from exporter.check.page import render_page

    assessment = _assessment("<script>alert(1)</script>")
    page = render_page(assessment, "0.0.0").decode()
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    tenant: TenantView = assessment.tenants[0]
    assert tenant.probe.state == "unknown" and "not run yet" in page
