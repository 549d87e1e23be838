"""The per-tenant deriver: changes coalesce, derivations run off the event loop in one task,
only what changed is derived and published, and the newest inputs are always derived last."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterable, Sequence

import anyio
import pytest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.config import Settings
from exporter.core.deriver import Derivation, Deriver
from exporter.core.keys import PublishKey
from exporter.core.state import Hub
from exporter.derivations import attach_derivers

KEYS = {"a": PublishKey("target", "t"), "b": PublishKey("fleet", "t")}
KEY_A = KEYS["a"]


class Recorder:
    def __init__(self) -> None:
        self.published: list[tuple[Hashable, float]] = []
        self.threads: set[int] = set()

    def publish(self, key: PublishKey, families: Iterable[Metric]) -> None:
        self.threads.add(threading.get_ident())
        for family in families:
            self.published.append((key, family.samples[0].value))


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(1000):  # bounded: ten seconds at most
        if condition():
            return
        await anyio.sleep(0.01)
    raise AssertionError("the deriver did not publish in time")


def _gauge(value: float) -> Sequence[Metric]:
    family = GaugeMetricFamily("x", "x")
    family.add_metric([], value)
    return [family]


def test_changes_coalesce_and_the_newest_inputs_are_derived_last() -> None:
    state = {"a": 0}
    derived: list[int] = []

    def slow(value: int) -> Sequence[Metric]:
        derived.append(value)
        time.sleep(0.05)  # a large fleet: changes keep arriving while this derives
        return _gauge(value)

    recorder = Recorder()
    deriver = Deriver("t", recorder.publish, [Derivation(KEY_A, lambda: state["a"], slow)])
    loop_thread = threading.get_ident()

    async def main() -> None:
        async with anyio.create_task_group() as group:
            await group.start(deriver.run)
            for value in range(1, 21):
                state["a"] = value
                deriver.changed()
                await anyio.sleep(0.01)
            await _until(lambda: recorder.published[-1:] == [(KEY_A, 20)])
            group.cancel_scope.cancel()

    anyio.run(main)
    assert recorder.published[-1] == (KEY_A, 20)
    assert len(derived) < 15, f"20 changes should coalesce, derived {derived}"
    assert derived == sorted(derived), "an older input was derived after a newer one"
    assert loop_thread not in recorder.threads, "derived and rendered on the event loop"


def test_only_derivations_whose_inputs_changed_run() -> None:
    state = {"a": 1, "b": 1}
    runs: list[str] = []

    def derive(name: str) -> Derivation:
        def run(value: int) -> Sequence[Metric]:
            runs.append(name)
            return _gauge(value)

        return Derivation(KEYS[name], lambda: state[name], run)

    deriver = Deriver("t", Recorder().publish, [derive("a"), derive("b")])
    deriver.changed()
    assert sorted(runs) == ["a", "b"]
    state["b"] = 2
    deriver.changed()
    assert sorted(runs) == ["a", "b", "b"]
    deriver.changed()  # nothing new
    assert sorted(runs) == ["a", "b", "b"]


def test_a_failing_derivation_keeps_the_last_good_families_and_tries_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    state = {"a": 1}

    def fragile(value: int) -> Sequence[Metric]:
        if value == 2:
            raise ValueError("bug")
        return _gauge(value)

    recorder = Recorder()
    deriver = Deriver("t", recorder.publish, [Derivation(KEY_A, lambda: state["a"], fragile)])

    async def main() -> None:
        async with anyio.create_task_group() as group:
            await group.start(deriver.run)
            await anyio.sleep(0.1)
            state["a"] = 2
            deriver.changed()
            await anyio.sleep(0.2)
            state["a"] = 3
            deriver.changed()
            await _until(lambda: recorder.published[-1][1] == 3)
            group.cancel_scope.cancel()

    anyio.run(main)
    assert [value for _, value in recorder.published] == [1, 3]
    assert "derivation failed" in caplog.text


def test_each_derived_key_has_one_deriver(tmp_path: object) -> None:
    settings = Settings(
        state_dir=str(tmp_path),
        tenants=[
            {
                "proxy": f"{name}.example.com",
                "inventory": {"enabled": False},
                "rollout": {"enabled": False},
            }
            for name in ("a", "b")
        ],
    )
    hub = attach_derivers(Hub(settings))
    keys = [d.key for deriver in hub.derivers.values() for d in deriver.derivations]
    assert len(keys) == len(set(keys))
    assert {key.kind for key in keys} == {"target", "fleet", "tctl_version", "agent_report"}
