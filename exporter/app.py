"""Assembly: settings -> hub, sources, SLA service, HTTP server, all in one task group.

SIGTERM or SIGINT stops the HTTP server (in-flight scrapes finish) and cancels the sources;
the whole shutdown is bounded well under 5 seconds.
"""

from __future__ import annotations

import gc
import logging
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

import anyio
import uvicorn

from exporter import __version__
from exporter.check.findings import assess_all
from exporter.check.observe import observe_running, sla_months
from exporter.check.page import render_page
from exporter.config import ConfigError, Settings
from exporter.core.clock import SystemClock
from exporter.core.scheduler import Runtime
from exporter.core.source import Source
from exporter.core.state import Hub
from exporter.derivations import attach_derivers
from exporter.sla.ledger import Ledger, LedgerError
from exporter.sla.service import SlaService
from exporter.sources import build_sources, close_sources
from exporter.web.config import BasicAuth, WebConfig
from exporter.web.server import App, PageCache, bind, build_server

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 3.0


class Readiness:
    """What /readyz reports: the listener is up and not draining, and the ledger is open.

    The configuration is loaded before any of this exists. Upstream health is deliberately not
    part of it: that is what the metrics report.
    """

    def __init__(self, server: uvicorn.Server, ledger: Ledger | None) -> None:
        self._server = server
        self._ledger_open = ledger is not None
        self._needs_ledger = ledger is not None

    def ledger_closed(self) -> None:
        self._ledger_open = False

    def __call__(self) -> bool:
        listening = self._server.started and not self._server.should_exit
        return listening and (self._ledger_open or not self._needs_ledger)


async def _stop_on_signal(
    scope: anyio.CancelScope, stop_server: Callable[[], Awaitable[None]]
) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            log.info("received %s, shutting down", signal.Signals(signum).name)
            with anyio.move_on_after(SHUTDOWN_GRACE_SECONDS):
                await stop_server()
            scope.cancel()
            return


def _page_builder(
    settings: Settings, hub: Hub, sources: list[Source], runtime: Runtime, sla: SlaService
) -> Callable[[], Awaitable[bytes]]:
    """The page at `/` from the same assessment as `check`: state is read on the event loop,
    the SLA month, the verdicts and the HTML are made in a worker thread."""

    async def build() -> bytes:
        now = time.time()
        observation = observe_running(settings, hub, sources, runtime, now)

        def finish() -> bytes:
            observation.sla = sla_months(hub, sla, now)
            return render_page(assess_all(observation), __version__)

        return await anyio.to_thread.run_sync(finish)

    return build


async def run_exporter(
    settings: Settings,
    sock: socket.socket,
    ledger: Ledger | None,
    web: WebConfig | None = None,
    extra_tasks: Sequence[Callable[[], Coroutine[Any, Any, None]]] = (),
) -> None:
    """Serve until SIGTERM/SIGINT."""
    hub = attach_derivers(Hub(settings))
    sla = SlaService(hub, ledger, SystemClock())
    sources = build_sources(hub, sla.record)
    runtime = Runtime(hub, sources)
    auth = BasicAuth(web.basic_auth_users) if web and web.basic_auth_users else None
    page = PageCache(
        lambda: hub.exposition.generation, _page_builder(settings, hub, sources, runtime, sla)
    )
    app = App(hub.exposition, lambda: False, auth, page)
    server = build_server(app, web)
    readiness = Readiness(server, ledger)
    app.ready = readiness
    served = anyio.Event()

    async def serve() -> None:
        try:
            await server.serve(sockets=[sock])
        finally:
            served.set()

    async def stop_server() -> None:
        server.should_exit = True
        await served.wait()

    log.info(
        "listening on %s with %d tenant(s), %d source(s)",
        settings.listen_address,
        len(settings.tenants),
        len(sources),
    )
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(_stop_on_signal, group.cancel_scope, stop_server)
            group.start_soon(serve)
            group.start_soon(runtime.run)
            group.start_soon(sla.run)
            for task in extra_tasks:
                group.start_soon(task)
    finally:
        await close_sources(sources)
        if ledger is not None:
            readiness.ledger_closed()
            ledger.close()


def serve(
    settings: Settings,
    web: WebConfig | None = None,
    extra_tasks: Sequence[Callable[[], Coroutine[Any, Any, None]]] = (),
    *,
    listen_flag: str = "listen_address",
    listening: Callable[[], None] | None = None,
) -> int:
    """`serve`, and `serve --demo` with the simulated tenant as an extra task: open the ledger,
    listen, and run until SIGTERM or SIGINT. A ledger or an address that cannot be used stops
    the start with a ConfigError naming `state_dir` or `listen_flag`; `listening` is called once
    both are open."""
    try:
        ledger = Ledger.open(settings.state_dir)
    except LedgerError as exc:
        raise ConfigError(f"state_dir: {exc}") from exc
    try:
        sock = bind(settings.listen_address)
    except OSError as exc:
        ledger.close()
        raise ConfigError(
            f"{listen_flag}: cannot listen on {settings.listen_address}: {exc.strerror}"
        ) from exc
    if listening is not None:
        listening()
    tune_interpreter()
    anyio.run(run_exporter, settings, sock, ledger, web, extra_tasks)
    return 0


SWITCH_INTERVAL = 0.0005
"""Seconds a thread may hold the GIL while another waits for it (CPython's default is 5 ms)."""


def tune_interpreter() -> None:
    """Interpreter settings for serving, shared with the benchmarks so they measure the same.

    A refresh allocates a few hundred thousand short-lived objects per 10,000 agents; with the
    default thresholds the collector runs dozens of times per refresh for nothing. A large
    refresh runs in a worker thread while the event loop writes scrapes: the loop takes the GIL
    back after every socket wait, and a 10 MB body is about 40 such waits. At the default 5 ms
    interval they cost a scrape up to 200 ms; at 0.5 ms a 100,000-agent refresh measured the
    same CPU (within run-to-run spread) and halved the scrapes' median (docs/benchmarks.md)."""
    gc.set_threshold(20_000, 10, 10)
    sys.setswitchinterval(SWITCH_INTERVAL)
