"""The interpreter settings serving runs with (exporter.app.tune_interpreter)."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator

import pytest

from exporter.app import SWITCH_INTERVAL, tune_interpreter


@pytest.fixture
def restored() -> Iterator[None]:
    interval, thresholds = sys.getswitchinterval(), gc.get_threshold()
    yield
    sys.setswitchinterval(interval)
    gc.set_threshold(*thresholds)


def test_serving_hands_the_gil_to_the_event_loop_sooner_than_cpython_does(restored: None) -> None:
    sys.setswitchinterval(0.005)  # CPython's default
    tune_interpreter()
    # setswitchinterval rounds to the platform's clock; a scrape waits at most this per hand-off.
    assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL, rel=0.01)
    assert sys.getswitchinterval() < 0.005


def test_serving_collects_garbage_less_often_than_cpython_does(restored: None) -> None:
    gc.set_threshold(700, 10, 10)  # CPython's default
    tune_interpreter()
    assert gc.get_threshold()[0] > 700
