"""Shared set-up for the benchmarks: a fleet as tctl prints it, and a full exposition."""

from __future__ import annotations

import json
import os
import resource
from datetime import UTC, datetime, timedelta

from prometheus_client.metrics_core import Metric

from exporter.app import tune_interpreter
from exporter.exposition import memtrim
from exporter.exposition.body import Exposition
from exporter.fleet.derive import FleetView, derive_fleet
from exporter.fleet.families import fleet_families
from exporter.fleet.model import parse_inventory
from exporter.simulator.fleetgen import generate_inventory

tune_interpreter()  # as the exporter serves (GC thresholds, GIL switch interval)

CONTROL_PLANE = "18.1.4"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def tctl_output(agents: int, later: float = 0.0) -> bytes:
    """What `tctl inventory ls --format=json` prints for a skewed fleet of `agents`; `later`
    seconds on, the same fleet has heartbeated since (every last_seen moved)."""
    now = NOW + timedelta(seconds=later)
    return json.dumps(generate_inventory(agents, 18, mix="skewed", now=now), indent=2).encode()


def derive(data: bytes) -> FleetView:
    return derive_fleet(parse_inventory(data).instances, CONTROL_PLANE, CONTROL_PLANE)


def families(view: FleetView) -> list[Metric]:
    return fleet_families("bench", view, per_agent=True)


def refresh(data: bytes, exposition: Exposition) -> None:
    """The inventory refresh path: parse, derive, build families, render, with the collector
    paused as the inventory source pauses it."""
    with memtrim.collector_paused():
        exposition.update(("fleet", "bench"), families(derive(data)))


def rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
