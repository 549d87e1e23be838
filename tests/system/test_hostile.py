"""The hostile-input catalogue (tests/hostile) under pytest: one test per case. Slow cases are
marked `slow`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.hostile.__main__ import run_case
from tests.hostile.catalogue import CATALOGUE, Case
from tests.hostile.env import Env


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    shared = Env()
    yield shared
    shared.close()


def _param(case: Case) -> object:
    marks = [pytest.mark.slow] if case.slow else []
    return pytest.param(case, id=case.name, marks=marks)


def test_catalogue_is_large_and_unique() -> None:
    names = [c.name for c in CATALOGUE]
    assert len(names) == len(set(names)) and len(names) >= 60


@pytest.mark.parametrize("case", [_param(c) for c in CATALOGUE])
def test_hostile_case(env: Env, case: Case) -> None:
    _, observed = run_case(env, case)
    assert observed == case.expected, f"{case.name}: expected {case.expected!r}, got {observed!r}"
