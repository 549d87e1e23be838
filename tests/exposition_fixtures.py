"""Realistic family sets for exposition tests: a tenant's fleet, rollout, probe histogram and
error counters, as the sources publish them."""

from __future__ import annotations

import json

from prometheus_client import Counter, Histogram
from prometheus_client.metrics_core import Metric

from exporter.core import catalogue as m
from exporter.fleet.derive import derive_fleet
from exporter.fleet.families import fleet_families
from exporter.fleet.model import parse_inventory
from exporter.rollout.families import rollout_families
from exporter.rollout.model import parse_rollout
from exporter.simulator.fleetgen import generate_inventory, generate_rollout


def tenant_families(tenant: str, agents: int, seed: int) -> list[Metric]:
    records = generate_inventory(agents, mix="skewed", broken=2, seed=seed)
    parsed = parse_inventory(json.dumps(records).encode())
    view = derive_fleet(parsed.instances, "18.1.4", "18.1.4")
    rollout = parse_rollout(json.dumps([generate_rollout(18, seed=seed)]).encode())
    errors = Counter(
        m.SOURCE_ERRORS.name, m.SOURCE_ERRORS.help, m.SOURCE_ERRORS.labels, registry=None
    )
    errors.labels("ping", tenant, "timeout").inc(seed)
    latency = Histogram(
        m.PROBE_LATENCY.name, m.PROBE_LATENCY.help, m.PROBE_LATENCY.labels, registry=None
    )
    latency.labels(tenant).observe(0.05 * seed)
    return [
        *fleet_families(tenant, view, per_agent=True),
        *rollout_families(tenant, rollout),
        *errors.collect(),
        *latency.collect(),
        m.PROBE_SUCCESS.single([tenant], 1),
    ]
