"""What a tenant's deriver computes from several sources' models (exporter.core.deriver).

Each derivation owns one publish key kind (exporter.core.keys); no source publishes under them:

    target         agent_target_version_info: rollout, else ping, else v1 channel
    fleet          the fleet's families: inventory, control-plane and target versions, the
                   rollout's groups
    tctl_version   tctl_compatible: tctl's and the control plane's versions
    agent_report   the agent report's families, present only while a rollout is
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from prometheus_client.metrics_core import Metric

from exporter.core.deriver import Derivation, Deriver
from exporter.core.keys import PublishKey
from exporter.core.state import Hub, TenantState
from exporter.exposition import memtrim
from exporter.fleet.derive import derive_fleet
from exporter.fleet.families import fleet_families
from exporter.fleet.model import Instance
from exporter.rollout.agent_report_families import agent_report_families
from exporter.rollout.agent_report_model import MergedReport
from exporter.rollout.families import target_families
from exporter.rollout.groups import GroupPlan, plan_groups
from exporter.tctl.version_families import compatibility_families
from exporter.tctl.version_source import tctl_compatible

log = logging.getLogger(__name__)

FleetInputs = tuple[list[Instance] | None, str | None, str | None, GroupPlan | None]


def tenant_derivations(tenant: TenantState) -> list[Derivation]:
    name = tenant.name

    def target(version: str | None) -> Sequence[Metric]:
        return target_families(name, version)

    def fleet(inputs: FleetInputs) -> Sequence[Metric]:
        instances, control_plane, target_version, groups = inputs
        if instances is None:
            return []
        with memtrim.collector_paused():  # a large fleet allocates without cycles
            view = derive_fleet(instances, control_plane, target_version, groups)
            tenant.fleet = view
            return fleet_families(name, view, tenant.config.inventory.per_agent_metrics)

    def compatibility(inputs: tuple[str | None, str | None]) -> Sequence[Metric]:
        tctl, control_plane = inputs
        if tctl is None:
            return []
        compatible = tctl_compatible(tctl, control_plane)
        if compatible is False:
            log.warning(
                "tenant %s: tctl %s is not supported by control plane %s (tctl must be on its "
                "major or one below); upgrade the tctl the exporter runs",
                name,
                tctl,
                control_plane,
            )
        return compatibility_families(name, compatible)

    def agent_report(inputs: tuple[MergedReport | None, bool]) -> Sequence[Metric]:
        report, rollout_exists = inputs  # reports exist only while a rollout does
        return agent_report_families(name, report if rollout_exists else None)

    return [
        Derivation(PublishKey("target", name), lambda: tenant.target_agent_version, target),
        Derivation(
            PublishKey("fleet", name),
            lambda: (
                tenant.inventory,
                tenant.control_plane_version,
                tenant.target_agent_version,
                plan_groups(tenant.rollout),
            ),
            fleet,
        ),
        Derivation(
            PublishKey("tctl_version", name),
            lambda: (tenant.tctl_version, tenant.control_plane_version),
            compatibility,
        ),
        Derivation(
            PublishKey("agent_report", name),
            lambda: (tenant.agent_report, tenant.rollout is not None),
            agent_report,
        ),
    ]


def attach_derivers(hub: Hub) -> Hub:
    """Give every tenant of `hub` its deriver: the scheduler runs them (exporter.core.scheduler);
    without it, a change is derived at once in the caller (`check`, tests)."""
    for tenant in hub.tenants.values():
        hub.derivers[tenant.name] = Deriver(tenant.name, hub.publish, tenant_derivations(tenant))
    return hub
