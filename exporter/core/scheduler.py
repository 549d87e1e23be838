"""Scheduling: every source refreshes on its own interval in one anyio task group.

Each refresh runs under a timeout; a failure is logged, counted by reason and followed by a
jittered backoff (except for the probe, whose cadence is the SLA's measurement). Source health
is published as its own family set after every refresh, success or not:

    teleport_cloud_source_up{source="ping",target="prod"} 1
    teleport_cloud_source_last_success_timestamp_seconds{source="ping",target="prod"} 1.76e9
    teleport_cloud_source_duration_seconds{source="ping",target="prod"} 0.14
    teleport_cloud_source_errors_total{source="ping",target="prod",reason="timeout"} 0
    teleport_cloud_exporter_build_info{version="0.1.0"} 1
"""

from __future__ import annotations

import logging
import random
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import anyio
from prometheus_client.metrics_core import Metric

from exporter import __version__, vocab
from exporter.core import catalogue as m
from exporter.core.errors import SourceError, SourceUnavailableError
from exporter.core.http import resource_exhaustion
from exporter.core.keys import PublishKey
from exporter.core.source import Source
from exporter.core.state import Hub

log = logging.getLogger(__name__)

MAX_BACKOFF_FACTOR = 4.0
JITTER = 0.1
LATE_START_LIMIT = 1.0
"""A refresh starting this many seconds after it was due found the event loop blocked."""
STALL_TICK = 0.1
STALL_LIMIT = 0.25
"""A loop-monitor tick this much later than asked is a stall of the event loop."""


@dataclass
class Health:
    up: bool = False
    last_success: float | None = None
    duration: float = 0.0
    consecutive_failures: int = 0
    errors: dict[str, int] = field(default_factory=lambda: dict.fromkeys(vocab.ERROR_REASONS, 0))
    """Failed refreshes by reason since the start; every reason exported, 0 when none."""
    last_error: str | None = None
    """`reason: message` of the last refresh while it failed (check and the page show it)."""
    unavailable: str | None = None
    """Why the tenant cannot serve this source (SourceUnavailableError), logged once; None when it
    can."""


def health_families(
    kind: str, target: str, health: Health, response_bytes: int | None = None
) -> list[Metric]:
    """The health series of one source (`source_up`, `..._last_success_...`, `..._duration_...`,
    `source_errors_total` by reason). Each source publishes its own under its own key, so a
    refresh re-renders 12 series, not those of every source of every tenant."""
    labels = [kind, target]
    families: list[Metric] = [
        m.SOURCE_UP.single(labels, 1.0 if health.up else 0.0),
        m.SOURCE_DURATION.single(labels, health.duration),
    ]
    if health.last_success is not None:
        families.append(m.SOURCE_LAST_SUCCESS.single(labels, health.last_success))
    if response_bytes is not None:
        families.append(m.SOURCE_RESPONSE_BYTES.single(labels, response_bytes))
    families.append(
        m.SOURCE_ERRORS.counts(([*labels, reason], n) for reason, n in health.errors.items())
    )
    return families


class LoopMonitor:
    """Notices when the event loop itself stalls (a blocking call, CPU starvation), so a
    timeout measured across a stall can be told from a slow peer. Monotonic seconds."""

    def __init__(self, tick: float = STALL_TICK, keep: int = 256) -> None:
        self.tick = tick
        self.stalls: deque[tuple[float, float]] = deque(maxlen=keep)
        self.asleep_from: float | None = None

    def note(self, asleep_from: float, woke: float) -> None:
        if woke - asleep_from - self.tick > STALL_LIMIT:
            self.stalls.append((asleep_from + self.tick, woke))

    def stalled(self, start: float, end: float) -> float:
        """Seconds of stall overlapping [start, end], counting one still under way: a failure
        may be handled (a worker thread's answer) before the monitor wakes to note it."""
        stalls = list(self.stalls)
        if self.asleep_from is not None and end - self.asleep_from - self.tick > STALL_LIMIT:
            stalls.append((self.asleep_from + self.tick, end))
        return sum(max(0.0, min(end, s_end) - max(start, s_start)) for s_start, s_end in stalls)

    async def run(self) -> None:
        while True:
            self.asleep_from = before = time.monotonic()
            await anyio.sleep(self.tick)
            self.note(before, time.monotonic())


def own_fault(
    error: SourceError, *, late: float, stalled: float, timeout: float, internal: bool
) -> str | None:
    """Which UNOBSERVED_REASONS a failure belongs to when it is the exporter's own trouble
    rather than the peer's; None when it is evidence about the peer."""
    if internal:
        return "internal"
    if resource_exhaustion(error):
        return "resources"
    if late > LATE_START_LIMIT:
        return "loop_lag"
    if error.reason == "timeout" and stalled >= min(1.0, 0.2 * timeout):
        return "loop_lag"
    return None


def next_delay(
    source: Source, failures: int, retry_after: float | None, rng: random.Random
) -> float:
    """Seconds until the next refresh: the interval, stretched up to 4x by consecutive failures
    for sources that back off, never shorter than a server's Retry-After, with +-10% jitter so
    many exporters do not poll in step."""
    delay = source.interval
    if source.backoff and failures > 0:
        delay = source.interval * min(2.0 ** (failures - 1), MAX_BACKOFF_FACTOR)
    delay *= 1.0 + rng.uniform(-JITTER, JITTER)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


class Runtime:
    """Runs sources and publishes their health."""

    def __init__(self, hub: Hub, sources: Sequence[Source], seed: int | None = None) -> None:
        self.hub = hub
        self.sources = list(sources)
        self.health = {(s.kind, s.target): Health() for s in self.sources}
        self._rng = random.Random(seed)
        self.monitor = LoopMonitor()
        hub.publish(PublishKey("build"), [m.BUILD_INFO.single([__version__], 1.0)])
        for source in self.sources:
            self._publish_health(source)

    async def run(self) -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(self.monitor.run, name="loop-monitor")
            # Derivers first: from here on a source's change wakes its tenant's deriver task.
            for name, deriver in self.hub.derivers.items():
                await group.start(deriver.run, name=f"derive:{name}")
            for source in self.sources:
                group.start_soon(self._loop, source, name=f"{source.kind}:{source.target}")

    async def refresh_once(self, source: Source, late: float = 0.0) -> SourceError | None:
        """One refresh with timeout, health and error accounting; returns the failure, if any.
        `late`: seconds the refresh started after it was due."""
        health = self.health[(source.kind, source.target)]
        started = time.perf_counter()
        started_mono = time.monotonic()
        error: SourceError | None = None
        internal = False
        try:
            with anyio.fail_after(source.timeout + source.timeout_slack):
                await source.refresh()
        except TimeoutError:
            error = SourceError("timeout", f"no answer within {source.timeout:g}s")
        except SourceError as exc:
            error = exc
        except Exception as exc:
            log.exception("source=%s target=%s unexpected failure", source.kind, source.target)
            error = SourceError("other", f"{exc.__class__.__name__}: {exc}")
            error.__cause__ = exc
            internal = not resource_exhaustion(exc)
        health.duration = time.perf_counter() - started
        if isinstance(error, SourceUnavailableError):
            health.up = False
            if health.unavailable != error.message:
                log.warning(
                    "source=%s target=%s unavailable, checking again every %gs: %s",
                    source.kind,
                    source.target,
                    error.retry_after or source.interval,
                    error.message,
                )
            health.unavailable = error.message
        elif error is None:
            if health.unavailable is not None:
                log.info("source=%s target=%s available again", source.kind, source.target)
            health.unavailable = None
            health.up = True
            health.last_success = time.time()
            health.consecutive_failures = 0
            health.last_error = None
        else:
            health.up = False
            health.last_error = f"{error.reason}: {error.message}"
            health.consecutive_failures += 1
            health.errors[error.reason] = health.errors.get(error.reason, 0) + 1
            log.warning(
                "source=%s target=%s reason=%s refresh failed: %s",
                source.kind,
                source.target,
                error.reason,
                error.message,
            )
            reason = own_fault(
                error,
                late=late,
                stalled=self.monitor.stalled(started_mono, time.monotonic()),
                timeout=source.timeout,
                internal=internal,
            )
            if reason is None:
                await source.failed(error)
            else:
                await source.unobserved(reason, error)
        self._publish_health(source)
        return error

    async def _loop(self, source: Source) -> None:
        late = 0.0
        while True:
            error = await self.refresh_once(source, late)
            health = self.health[(source.kind, source.target)]
            delay = next_delay(
                source,
                health.consecutive_failures,
                error.retry_after if error else None,
                self._rng,
            )
            due = time.monotonic() + delay
            await anyio.sleep(delay)
            late = max(0.0, time.monotonic() - due)

    def _publish_health(self, source: Source) -> None:
        key = (source.kind, source.target)
        self.hub.publish(
            PublishKey("health", f"{source.kind}/{source.target}"),
            health_families(*key, self.health[key], source.response_bytes),
        )
