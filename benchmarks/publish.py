"""CPU of the publishes an exporter at rest makes, in one process, without sockets or timers.

An exposition is filled as 50 tenants x 1,000 agents fill it (fleet, probe, cluster, SLA and six
sources' health per tenant), then the at-rest cycle of one probe interval is replayed: per
tenant a probe result, its health, the other sources' health and an SLA tick, then one scrape's
snapshot. The figures are the CPU time per replayed cycle and what it comes to at the default
15 s interval (the part of the at-rest CPU that publishing costs, apart from the machine's
noise), and the CPU a scrape spends assembling the snapshot after those changes.
    python -m benchmarks.publish [--tenants 50] [--agents 1000] [--cycles 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

from benchmarks.fixtures import derive, families, tctl_output
from exporter.core import catalogue as m
from exporter.core.scheduler import Health, health_families
from exporter.exposition.body import Exposition
from exporter.probe.families import probe_families
from exporter.probe.model import ProbeResult
from exporter.sla.derive import SlaSummary
from exporter.sla.families import sla_families

SOURCES = ("ping", "version_channel", "inventory", "identity", "rollout", "tctl_version")
PROBE_INTERVAL = 15.0
WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")


def sla(step: int) -> SlaSummary:
    return SlaSummary(
        0.999,
        1_790_000_000,
        1_792_592_000,
        2592.0,
        60,
        0,
        600_000 + 60 * step,
        0.9999,
        0.97,
        dict.fromkeys(WINDOWS, 0.1 * (step % 3)),
    )


def probe(step: int) -> ProbeResult:
    result = ProbeResult(started_at=1.79e9 + step, success=True, duration=0.1 + step * 1e-4)
    result.status_code = 200
    result.cert_not_after = 1.8e9
    for phase in result.phases:
        result.phases[phase] = 0.01 + step * 1e-5
    return result


def fill(tenants: int, agents: int) -> tuple[Exposition, dict[tuple[str, str], Health]]:
    exposition = Exposition()
    view = derive(tctl_output(agents))
    health = {}
    exposition.update(("build",), [m.BUILD_INFO.single(["0"], 1.0)])
    for i in range(tenants):
        tenant = f"t{i:02d}"
        exposition.update(("fleet", tenant), families(view))
        exposition.update(("probe", tenant), probe_families(tenant, probe(0), []))
        exposition.update(("sla", tenant), sla_families(tenant, sla(0)))
        for source in SOURCES:
            state = health[(source, tenant)] = Health(up=True, last_success=1.79e9)
            exposition.update(("health", source, tenant), health_families(source, tenant, state))
    return exposition, health


def cycle(
    exposition: Exposition, health: dict[tuple[str, str], Health], tenants: int, step: int
) -> None:
    """One probe interval at rest: every probe and its health, the other sources at their
    own rates (inventory every 60 s, the rest every 300 s or less often), every SLA tick."""
    for i in range(tenants):
        tenant = f"t{i:02d}"
        exposition.update(("probe", tenant), probe_families(tenant, probe(step), []))
        for source, every in (("ping", 1), ("inventory", 4), ("version_channel", 20)):
            if (step + i) % every == 0:
                state = health[(source, tenant)]
                state.last_success = 1.79e9 + step * PROBE_INTERVAL
                state.duration = 0.1 + step * 1e-4
                exposition.update(
                    ("health", source, tenant), health_families(source, tenant, state)
                )
        exposition.update(("sla", tenant), sla_families(tenant, sla(step)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--agents", type=int, default=1_000)
    parser.add_argument("--cycles", type=int, default=5)
    args = parser.parse_args()
    exposition, health = fill(args.tenants, args.agents)
    timings = []
    assembly = []
    for step in range(1, args.cycles + 1):
        start = time.process_time()
        cycle(exposition, health, args.tenants, step)
        published = time.process_time()
        exposition.snapshot()  # the scrape that follows
        timings.append(time.process_time() - start)
        assembly.append(time.process_time() - published)
    per_cycle = statistics.median(timings)
    print(
        f"publishes at rest, {args.tenants} tenants x {args.agents} agents: "
        f"{per_cycle * 1000:.0f} ms of CPU per {PROBE_INTERVAL:.0f} s cycle "
        f"(min {min(timings) * 1000:.0f}, max {max(timings) * 1000:.0f}): "
        f"{100 * per_cycle / PROBE_INTERVAL:.2f} % of one core; of it, the scrape's snapshot "
        f"assembly {statistics.median(assembly) * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
