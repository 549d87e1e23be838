"""The per-tenant deriver: recomputes what depends on several sources, when any of them changed.

Data flows one way: a source stores its typed model on the tenant's state (`TenantState`) and
calls `Hub.changed`; it publishes only its own direct families. What needs several models (the
target version: rollout, ping and the v1 channel; the fleet: inventory, control-plane version,
target and the rollout's groups; tctl's compatibility: tctl and control-plane versions; the
agent report: report and rollout) is a `Derivation`, and every derivation of a tenant runs in
that tenant's one deriver task, started in the scheduler's task group.

The task waits for a change, then runs a pass in a worker thread (100,000 agents take about a
second): each derivation reads its inputs, and when they differ from those it last published it
derives and publishes under its own key. Changes that arrive during a pass set the flag again,
so they are picked up by the next pass: several changes coalesce into one derivation, and the
newest inputs are always derived last. One task per tenant, so no lock and no retry loop.

Without a running task (`check`, tests that drive sources by hand) `changed()` derives at once
in the caller, so every path publishes through the same derivations.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
from anyio.abc import TaskStatus
from prometheus_client.metrics_core import Metric

from exporter.core.keys import PublishKey

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Derivation:
    """One derived family set of a tenant. `key` is its publish key, owned by it alone;
    `inputs` reads what it depends on from the state (cheap: references and versions);
    `derive` turns those inputs into families (pure, runs in a worker thread)."""

    key: PublishKey
    inputs: Callable[[], Hashable]
    derive: Callable[[Any], Sequence[Metric]]


def _same(a: object, b: object) -> bool:
    """Inputs are tuples of models: the same objects (or equal small values) are no change. A
    model is compared by identity first, so an unchanged 100,000-agent inventory costs nothing."""
    if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b):
        return all(x is y or x == y for x, y in zip(a, b, strict=True))
    return a is b or a == b


_UNSET = object()


class Deriver:
    """The derivations of one tenant, run by one task."""

    def __init__(
        self,
        tenant: str,
        publish: Callable[[PublishKey, Iterable[Metric]], None],
        derivations: Sequence[Derivation],
    ) -> None:
        self.tenant = tenant
        self.publish = publish
        self.derivations = list(derivations)
        self._published: dict[PublishKey, object] = {d.key: _UNSET for d in derivations}
        self._dirty = anyio.Event()
        self._running = False
        self._again = False
        self._deriving = False
        self.passes = 0
        """Passes run (each derived only what changed): for tests and the figures."""

    def changed(self) -> None:
        """A source stored a new model. Wakes the task, or derives now when none runs."""
        if self._running:
            self._dirty.set()
        else:
            self.derive_now()

    def derive_now(self) -> None:
        """Derive in the caller's thread until nothing changed: a change made while a pass
        runs (by a derivation's caller, or a test) gets a pass of its own after it."""
        self._again = True
        if self._deriving:
            return
        self._deriving = True
        try:
            while self._again:
                self._again = False
                self._pass()
        finally:
            self._deriving = False

    def _pass(self) -> None:
        """Every derivation whose inputs changed since it last published."""
        self.passes += 1
        for derivation in self.derivations:
            inputs = derivation.inputs()
            if _same(inputs, self._published[derivation.key]):
                continue
            self.publish(derivation.key, derivation.derive(inputs))
            self._published[derivation.key] = inputs

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """The task (started with `TaskGroup.start`, so changes go to it from then on): a first
        pass, then one pass per wake-up, off the event loop. A failing derivation is logged and
        tried again at the next change; the last good families stay exposed."""
        self._running = True
        task_status.started()
        try:
            while True:
                try:
                    await anyio.to_thread.run_sync(self.derive_now)
                except Exception:
                    log.exception("tenant %s: derivation failed", self.tenant)
                await self._dirty.wait()
                self._dirty = anyio.Event()
        finally:
            self._running = False
