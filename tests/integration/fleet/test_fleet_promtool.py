"""A 10,000-agent fleet's exposition is valid and lint-clean for Prometheus' own checker."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from exporter.exposition.body import Exposition
from exporter.fleet.derive import derive_fleet
from exporter.fleet.families import fleet_families
from exporter.fleet.model import parse_inventory
from exporter.rollout.families import rollout_families
from exporter.rollout.model import parse_rollout
from exporter.simulator.fleetgen import generate_inventory, generate_rollout
from tests.conftest import parse_samples, series

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


@pytest.mark.skipif(not shutil.which(PROMTOOL), reason="promtool is not installed")
def test_10k_agent_exposition_passes_promtool() -> None:
    exposition = Exposition()
    # Two tenants, so families from several keys are merged under one header.
    for tenant, size, seed in (("big", 10_000, 1), ("small", 25, 2)):
        records = generate_inventory(size, mix="skewed", broken=5, seed=seed)
        parsed = parse_inventory(json.dumps(records, indent=2).encode())
        view = derive_fleet(parsed.instances, "18.1.4", "18.1.4")
        exposition.update(("fleet", tenant), fleet_families(tenant, view, per_agent=True))
        rollout = parse_rollout(json.dumps([generate_rollout(18, seed=seed)]).encode())
        exposition.update(("rollout", tenant), rollout_families(tenant, rollout))
    body = exposition.body()

    checked = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=body, capture_output=True, timeout=60, check=False
    )
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()
    assert checked.stdout == b"" and checked.stderr == b""

    samples = parse_samples(body.decode())
    info = series(samples, "teleport_cloud_agent_info")
    assert sum(labels["tenant"] == "big" for labels in info) == 10_000
    assert sum(labels["tenant"] == "small" for labels in info) == 25
