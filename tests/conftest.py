"""Shared fixtures: a simulated tenant on loopback and exposition parsing."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.simulator.scenarios import SimState
from exporter.simulator.server import SimulatedTenant

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="session")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatedTenant]:
    sim = SimulatedTenant(SimState(), workdir=tmp_path_factory.mktemp("sim")).start_in_thread()
    assert sim.server.started, "simulator did not start"
    yield sim
    sim.stop()


@pytest.fixture
def sim(simulator: SimulatedTenant) -> Iterator[SimulatedTenant]:
    """The shared simulator, reset to the healthy scenario for each test."""
    simulator.state.apply(_fresh_state())
    yield simulator
    simulator.state.apply(_fresh_state())


def _fresh_state() -> dict[str, Any]:
    fresh = SimState()
    return {
        "scenario": fresh.scenario,
        "cluster_version": fresh.cluster_version,
        "agent_version": fresh.agent_version,
        "channel_version": fresh.channel_version,
        "ping": {},
        "status": {},
        "tls_mismatch": False,
        "jitter": 0.0,
    }


def parse_samples(text: str) -> Samples:
    """Every sample of a text exposition, keyed by (sample name, label set)."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    assert key in samples, (
        f"no sample {name}{labels}; have {sorted(k[0] for k in samples if k[0] == name)[:5]}"
    )
    return samples[key]


def series(samples: Samples, name: str) -> list[dict[str, str]]:
    return [dict(labels) for (sample_name, labels) in samples if sample_name == name]


def tenant_config(sim: SimulatedTenant, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "proxy": sim.proxy,
        "name": "t",
        "ca_file": str(sim.ca_file),
        "inventory": {"enabled": False},
        "rollout": {"enabled": False},
    }
    config.update(overrides)
    return config


def dev_tool(name: str) -> str:
    """A command from the dev extras: next to this interpreter (the venv), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found: install the dev extras (pip install -e '.[dev]')")
    return found


def write_identity(directory: Path) -> Path:
    path = directory / "identity"
    path.write_text("not a real identity\n")
    return path


TEST_KINDS = ("unit", "integration", "system")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by the tree it sits in (tests/unit, tests/integration, tests/system), so
    `-m unit` runs the fast pure tests alone."""
    root = Path(__file__).resolve().parent
    for item in items:
        relative = item.path.resolve().relative_to(root)
        if relative.parts and relative.parts[0] in TEST_KINDS:
            item.add_marker(relative.parts[0])
