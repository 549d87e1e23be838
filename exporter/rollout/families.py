"""Managed Updates v2 rollout families (`tctl get autoupdate_agent_rollout`).

Series for tenant `prod`; none at all when the tenant has no rollout::

    teleport_cloud_autoupdate_rollout_info{tenant="prod",start_version="18.1.3",
        target_version="18.1.4",mode="enabled",strategy="halt-on-error",schedule="regular"} 1
    teleport_cloud_autoupdate_group_state{tenant="prod",group="dev",state="unstarted"} 0
    teleport_cloud_autoupdate_group_state{tenant="prod",group="dev",state="active"} 0
    teleport_cloud_autoupdate_group_state{tenant="prod",group="dev",state="done"} 1
    teleport_cloud_autoupdate_group_state{tenant="prod",group="dev",state="rolledback"} 0
    teleport_cloud_autoupdate_group_state{tenant="prod",group="dev",state="canary"} 0
    teleport_cloud_autoupdate_group_agents{tenant="prod",group="dev"} 120
    teleport_cloud_autoupdate_group_agents_up_to_date{tenant="prod",group="dev"} 118
    teleport_cloud_autoupdate_group_version_info{tenant="prod",group="dev",version="18.1.4"} 1

A group's version follows Teleport's rule (exporter.rollout.groups); a group in a state that rule
does not place has no version series, and an immediate schedule has no groups at all. The stuck
agents per group need the inventory too and are published with the fleet
(exporter.fleet.families).

A group state outside the five known ones (a newer Teleport) is kept as an extra state sample.
"""

from __future__ import annotations

from prometheus_client.metrics_core import Metric

from exporter.core.catalogue import (
    AGENT_TARGET_VERSION,
    ROLLOUT_GROUP_AGENTS,
    ROLLOUT_GROUP_STATE,
    ROLLOUT_GROUP_UP_TO_DATE,
    ROLLOUT_GROUP_VERSION,
    ROLLOUT_INFO,
)
from exporter.core.versions import normalise
from exporter.rollout.groups import plan_groups
from exporter.rollout.model import Rollout, RolloutGroup
from exporter.vocab import GROUP_STATES, cap_label


def rollout_families(tenant: str, rollout: Rollout | None) -> list[Metric]:
    """The rollout's families for one tenant; an empty list when there is no rollout."""
    if rollout is None:
        return []
    spec = rollout.spec
    info = ROLLOUT_INFO.single(
        [
            tenant,
            normalise(spec.start_version),
            normalise(spec.target_version),
            spec.autoupdate_mode,
            spec.strategy,
            spec.schedule,
        ],
        1.0,
    )
    # A group listed twice would duplicate series; the first entry wins. Group names are capped
    # as agent_info's update_group is, so the families join on the group label.
    unique: dict[str, RolloutGroup] = {}
    for group in rollout.status.groups:
        unique.setdefault(cap_label(group.name), group)
    states = ROLLOUT_GROUP_STATE.state_set(
        (([tenant, name], group.state) for name, group in unique.items()), GROUP_STATES
    )
    present, up_to_date = ROLLOUT_GROUP_AGENTS.new(), ROLLOUT_GROUP_UP_TO_DATE.new()
    for name, group in unique.items():
        present.add_metric([tenant, name], group.present_count)
        up_to_date.add_metric([tenant, name], group.up_to_date_count)
    versions = ROLLOUT_GROUP_VERSION.new()
    plan = plan_groups(rollout)
    for group_name, version in plan.versions.items() if plan is not None else ():
        versions.add_metric([tenant, cap_label(group_name), version], 1.0)
    return [info, states, present, up_to_date, versions]


def target_families(tenant: str, target: str | None) -> list[Metric]:
    """`agent_target_version_info`: the rollout's target whenever a rollout exists, else ping's
    `agent_version`, else the v1 channel's (`TenantState.target_agent_version`); derived by the
    tenant's deriver, so it follows whichever of them moved, at once."""
    if not target:
        return []
    return [AGENT_TARGET_VERSION.single([tenant, normalise(target)], 1.0)]
