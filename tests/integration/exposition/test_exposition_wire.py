"""The cached body on the wire: chunked ASGI responses read whole by curl --compressed, httpx and
Debian's Prometheus (which ingests every series from the gzip body)."""

from __future__ import annotations

import gzip
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import yaml

from exporter.exposition.body import Exposition
from exporter.web.guard import QuietServer
from exporter.web.server import App, Message, Receive, Scope, Send, bind, build_server
from tests.exposition_fixtures import tenant_families
from tests.system.test_end_to_end import free_port

DEADLINE_SECONDS = 90
OPENMETRICS = "application/openmetrics-text; version=1.0.0"


def _exposition() -> Exposition:
    exposition = Exposition()
    for i, agents in enumerate((3_000, 500, 40)):
        exposition.update(("tenant", i), tenant_families(f"t{i}", agents, seed=i + 1))
    return exposition


class Recording:
    """ASGI middleware remembering each request's headers (to see what Prometheus asked for)."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.requests: list[dict[str, str]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.requests.append({k.decode(): v.decode() for k, v in scope["headers"]})
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Exposition, Recording, str]]:
    exposition = _exposition()
    recording = Recording(App(exposition, lambda: True))
    sock = bind("127.0.0.1:0")
    server = build_server(recording.app, None)
    server.config.loaded_app = recording  # uvicorn calls the recording wrapper first
    assert isinstance(server, QuietServer)
    thread = threading.Thread(target=lambda: anyio.run(server.serve, [sock]), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started
    yield exposition, recording, f"http://127.0.0.1:{sock.getsockname()[1]}/metrics"
    server.should_exit = True
    thread.join(10)


def test_a_scrape_is_sent_in_chunks_never_joined_whole() -> None:
    exposition = _exposition()
    app = App(exposition, lambda: True)
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    headers = [(b"accept", OPENMETRICS.encode()), (b"accept-encoding", b"gzip")]
    scope = {"type": "http", "method": "GET", "path": "/metrics", "headers": headers}
    anyio.run(app, scope, receive, send)
    start, *bodies = sent
    length = int(dict(start["headers"])[b"content-length"])
    whole = exposition.body(openmetrics=True, gzipped=True)
    assert length == len(whole) and b"".join(m["body"] for m in bodies) == whole
    assert len(bodies) > 2 and all(len(m["body"]) < len(whole) for m in bodies)
    assert [m.get("more_body") for m in bodies] == [True] * (len(bodies) - 1) + [False]
    assert gzip.decompress(whole) == exposition.body(openmetrics=True)

    sent.clear()
    anyio.run(app, {**scope, "method": "HEAD"}, receive, send)
    assert [m["body"] for m in sent[1:]] == [b""]
    assert int(dict(sent[0]["headers"])[b"content-length"]) == len(whole)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
@pytest.mark.parametrize("accept", ["text/plain", OPENMETRICS])
def test_curl_compressed_reads_the_whole_body(
    served: tuple[Exposition, Recording, str], accept: str
) -> None:
    exposition, _, url = served
    result = subprocess.run(
        ["curl", "-sS", "--compressed", "--max-time", "30", "-H", f"Accept: {accept}", url],
        capture_output=True,
        timeout=60,
        check=True,
    )
    assert result.stdout == exposition.body(openmetrics=accept == OPENMETRICS)


@pytest.mark.parametrize("accept", ["text/plain", OPENMETRICS])
def test_httpx_reads_the_whole_body(served: tuple[Exposition, Recording, str], accept: str) -> None:
    exposition, _, url = served
    response = httpx.get(url, headers={"Accept": accept, "Accept-Encoding": "gzip"}, timeout=30)
    assert response.headers["content-encoding"] == "gzip"
    assert response.content == exposition.body(openmetrics=accept == OPENMETRICS)
    assert int(response.headers["content-length"]) == len(
        exposition.body(openmetrics=accept == OPENMETRICS, gzipped=True)
    )


def _query(base: str, expr: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{base}/api/v1/query", params={"query": expr}, timeout=10)
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs Debian's prometheus")
def test_prometheus_ingests_every_series_of_the_gzip_body(
    served: tuple[Exposition, Recording, str], tmp_path: Path
) -> None:
    exposition, recording, url = served
    expected = sum(
        1 for line in exposition.body().decode().split("\n") if line and not line.startswith("#")
    )
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "exposition",
                "static_configs": [{"targets": [url.split("/")[2]]}],
            }
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = tmp_path / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    stored: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while time.monotonic() < deadline:
            try:
                stored = _query(base, 'count({job="exposition", __name__=~"teleport_cloud_.+"})')
                up = _query(base, 'up{job="exposition"}')
            except (httpx.TransportError, KeyError, ValueError):
                stored, up = [], []
            if stored and up and int(stored[0]["value"][1]) == expected:
                break
            time.sleep(0.5)
    finally:
        process.terminate()
        process.wait(20)
    assert stored, log.read_text()[-3000:]
    assert int(stored[0]["value"][1]) == expected, log.read_text()[-3000:]
    assert up[0]["value"][1] == "1"
    scrapes = [r for r in recording.requests if "prometheus" in r.get("user-agent", "").lower()]
    assert scrapes and all("gzip" in r.get("accept-encoding", "") for r in scrapes)
    assert all("application/openmetrics-text" in r.get("accept", "") for r in scrapes)
