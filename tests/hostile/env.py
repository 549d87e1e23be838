"""What the hostile cases run against: the simulated tenant (real TLS on loopback, with scripted
answers per path), the exporter's sources under its runtime, and small observers."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

from exporter.config import Settings
from exporter.core.errors import SourceError
from exporter.core.scheduler import Runtime
from exporter.core.source import Source
from exporter.core.state import Hub
from exporter.derivations import attach_derivers
from exporter.probe.source import PING_PATH, PingSource
from exporter.rollout.version_channel import CHANNEL_PATH, VersionChannelSource
from exporter.simulator.scenarios import SimState, ping_body
from exporter.simulator.server import Scripted, SimulatedTenant
from exporter.status_page.source import SUMMARY_PATH, StatusPageSource
from tests.conftest import Samples, _fresh_state, parse_samples

__all__ = ["CHANNEL_PATH", "PING_PATH", "SUMMARY_PATH", "Env", "Run", "Scripted"]


class Recorder:
    """Stands in for the SLA ledger: what the probe asked to record."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[bool] = []
        self.delay = delay

    async def __call__(self, tenant: str, at: float, success: bool) -> None:
        self.calls.append(success)
        if self.delay:
            await anyio.sleep(self.delay)

    def outcome(self) -> str:
        return ",".join("up" if ok else "down" for ok in self.calls) or "none"


class Run:
    """One hub with the probe, version channel and status page of one simulated tenant."""

    def __init__(self, env: Env, tenant: dict[str, Any] | None = None, **status: Any) -> None:
        sim = env.sim
        page = {"url": sim.url, "ca_file": str(sim.ca_file), "timeout": "2s", **status}
        config = {
            "proxy": sim.proxy,
            "name": "t",
            "ca_file": str(sim.ca_file),
            "inventory": {"enabled": False},
            "rollout": {"enabled": False},
            **(tenant or {}),
        }
        self.settings = Settings(state_dir=env.tmp, status_page=page, tenants=[config])
        self.hub = attach_derivers(Hub(self.settings))
        self.recorder = Recorder()
        self.ping = PingSource(self.hub, self.hub.tenants["t"], self.recorder)
        self.channel = VersionChannelSource(self.hub, self.hub.tenants["t"])
        self.status = StatusPageSource(self.hub, self.settings.status_page)
        self.runtime = Runtime(self.hub, [self.ping, self.channel, self.status])
        self.errors: list[SourceError | None] = []

    def refresh(self, *steps: Source | Callable[[], Any], late: float = 0.0) -> Run:
        """Refresh sources (and run plain callables) in order, in one event loop."""

        async def go() -> None:
            try:
                for step in steps:
                    if isinstance(step, Source):
                        self.errors.append(await self.runtime.refresh_once(step, late))
                    else:
                        step()
            finally:
                for source in (self.ping, self.channel, self.status):
                    await source.aclose()

        anyio.run(go)
        return self

    def reason(self, index: int = -1) -> str:
        error = self.errors[index]
        return "ok" if error is None else error.reason

    def samples(self) -> Samples:
        return parse_samples(self.hub.exposition.body().decode())

    def value(self, name: str, **labels: str) -> float | None:
        return self.samples().get((name, frozenset(labels.items())))

    def count(self, name: str) -> int:
        return sum(1 for sample, _ in self.samples() if sample == name)

    def unobserved(self) -> str:
        name = "teleport_cloud_probe_unobserved_total"
        found = {
            reason: int(self.value(name, tenant="t", reason=reason) or 0)
            for reason in ("loop_lag", "resources", "internal")
        }
        return " ".join(f"{r}={n}" for r, n in found.items() if n) or "none"


class Env:
    """A lazily started simulated tenant shared by the cases, reset before each."""

    def __init__(self) -> None:
        self._sim: SimulatedTenant | None = None
        self.tmp = Path(tempfile.mkdtemp(prefix="tce-hostile-"))

    @property
    def sim(self) -> SimulatedTenant:
        if self._sim is None:
            workdir = self.tmp / "sim"
            workdir.mkdir(exist_ok=True)
            self._sim = SimulatedTenant(SimState(), workdir=workdir).start_in_thread()
        return self._sim

    def reset(self) -> None:
        if self._sim is not None:
            self._sim.state.apply(_fresh_state())
            self._sim.app.scripted.clear()

    def script(self, path: str, **answer: Any) -> None:
        self.sim.app.scripted[path] = Scripted(**answer)

    def ping_with(self, change: Callable[[dict[str, Any]], None]) -> None:
        """Serve the simulated ping answer after `change` edits it."""
        body = ping_body(self.sim.state, "127.0.0.1")
        change(body)
        self.script(PING_PATH, body=json.dumps(body).encode())

    def close(self) -> None:
        if self._sim is not None:
            self._sim.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)
