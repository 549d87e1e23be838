"""/readyz: ready while the exporter can serve (listener up, ledger open), not tied to Teleport."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio

from exporter.app import Readiness
from exporter.exposition.body import Exposition
from exporter.sla.ledger import Ledger
from exporter.web.server import App, build_server


async def _get(app: App, path: str) -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    scope = {"type": "http", "method": "GET", "path": path, "headers": []}
    await app(scope, receive, send)
    return sent[0]["status"], sent[1]["body"]


def test_ready_only_while_listening_with_the_ledger_open(tmp_path: Path) -> None:
    app = App(Exposition(), lambda: False)
    server = build_server(app, None)
    ledger = Ledger.open(tmp_path)
    readiness = Readiness(server, ledger)
    app.ready = readiness
    try:
        assert anyio.run(_get, app, "/readyz")[0] == 503  # not listening yet
        server.started = True
        assert anyio.run(_get, app, "/readyz") == (200, b"OK\n")
        server.should_exit = True  # draining: leave the Service's endpoints
        status, body = anyio.run(_get, app, "/readyz")
        assert status == 503 and b"shutting down" in body
        server.should_exit = False
        readiness.ledger_closed()
        assert anyio.run(_get, app, "/readyz")[0] == 503
    finally:
        ledger.close()
    # Liveness never depends on any of it.
    assert anyio.run(_get, app, "/healthz")[0] == 200


def test_without_a_ledger_the_listener_decides() -> None:
    app = App(Exposition(), lambda: False)
    server = build_server(app, None)
    readiness = Readiness(server, None)
    assert not readiness()
    server.started = True
    assert readiness()
