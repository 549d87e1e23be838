"""Fleet families from a FleetView (`tctl inventory ls`, Auth/Proxy instances excluded).

Series for tenant `prod` (control plane 18, target 18.1.4)::

    teleport_cloud_agents{tenant="prod",version="18.1.4",upgrader="binary"} 812
    teleport_cloud_agents{tenant="prod",version="17.5.2",upgrader="none"} 40
    teleport_cloud_agents_by_service{tenant="prod",teleport_service="Node"} 790
    teleport_cloud_agents_by_updater_status{tenant="prod",upgrader="binary",status="ok"} 800
    teleport_cloud_agents_by_updater_status{tenant="prod",upgrader="binary",status="pinned"} 12
    ...                                       # all five statuses for every upgrader present
    teleport_cloud_agents_by_skew{tenant="prod",skew="current"} 812      # all five classes
    teleport_cloud_agents_by_skew{tenant="prod",skew="one_major_behind"} 40
    teleport_cloud_agents_by_skew{tenant="prod",skew="unsupported_old"} 0
    teleport_cloud_agents_by_skew{tenant="prod",skew="unsupported_newer"} 0
    teleport_cloud_agents_by_skew{tenant="prod",skew="unknown"} 0
    teleport_cloud_agents_outdated{tenant="prod"} 40                      # absent: target unknown
    teleport_cloud_control_plane_upgrade_blocked{tenant="prod"} 1         # absent: ping not yet
    teleport_cloud_agents_not_updating{tenant="prod",reason="pinned"} 12  # every reason
    teleport_cloud_autoupdate_group_agents_stuck{tenant="prod",group="dev"} 3  # absent: no rollout
    # per agent, unless per_agent_metrics is false:
    teleport_cloud_agent_info{tenant="prod",server_id="4c2e...",hostname="web-1",version="17.5.2",
        services="App,Node",upgrader="none",upgrader_version="",update_group="",
        updater_status="unspecified"} 1
    teleport_cloud_agent_major_versions_behind{tenant="prod",server_id="4c2e..."} 1
    teleport_cloud_agent_last_seen_timestamp_seconds{tenant="prod",server_id="4c2e..."} 1.76e+09

An agent whose version (or the control plane's) is unknown has no majors-behind sample; one
without a readable last_seen has no last-seen sample.
"""

from __future__ import annotations

from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample

from exporter.core.catalogue import (
    AGENT_INFO,
    AGENT_LAST_SEEN,
    AGENT_MAJORS_BEHIND,
    AGENTS,
    AGENTS_BY_SERVICE,
    AGENTS_BY_SKEW,
    AGENTS_BY_UPDATER_STATUS,
    AGENTS_NOT_UPDATING,
    AGENTS_OUTDATED,
    ROLLOUT_GROUP_STUCK,
    UPGRADE_BLOCKED,
)
from exporter.exposition.body import rendered_gauge
from exporter.fleet.derive import FleetView
from exporter.vocab import NOT_UPDATING_REASONS, SKEW_CLASSES, cap_label

# _per_agent writes label values by position, in this order; a test holds it to the catalogue's.
INFO_LABEL_ORDER = (
    "tenant",
    "server_id",
    "hostname",
    "version",
    "services",
    "upgrader",
    "upgrader_version",
    "update_group",
    "updater_status",
)
AGENT_LABEL_ORDER = ("tenant", "server_id")


def fleet_families(
    tenant: str, view: FleetView, per_agent: bool, *, samples: bool = False
) -> list[Metric]:
    """The fleet's families for one tenant; per-agent families only when `per_agent`, as
    pre-rendered lines for the exposition, or as prometheus_client samples with `samples`."""
    agents = AGENTS.new()
    for (version, upgrader), count in view.by_version_upgrader.items():
        agents.add_metric([tenant, version, upgrader], count)
    by_service = AGENTS_BY_SERVICE.new()
    for service, count in view.by_service.items():
        by_service.add_metric([tenant, service], count)
    by_skew = AGENTS_BY_SKEW.new()
    for skew in SKEW_CLASSES:
        by_skew.add_metric([tenant, skew], view.by_skew.get(skew, 0))
    by_status = AGENTS_BY_UPDATER_STATUS.new()
    for (upgrader, status), count in view.by_updater_status.items():
        by_status.add_metric([tenant, upgrader, status], count)
    families: list[Metric] = [agents, by_service, by_status, by_skew]
    if view.not_updating is not None:
        not_updating = AGENTS_NOT_UPDATING.new()
        for reason in NOT_UPDATING_REASONS:
            not_updating.add_metric([tenant, reason], view.not_updating.get(reason, 0))
        families.append(not_updating)
    if view.outdated is not None:
        families.append(AGENTS_OUTDATED.single([tenant], view.outdated))
    if view.upgrade_blocked is not None:
        families.append(UPGRADE_BLOCKED.single([tenant], 1.0 if view.upgrade_blocked else 0.0))
    if view.stuck_by_group is not None:
        stuck = ROLLOUT_GROUP_STUCK.new()
        for group, count in view.stuck_by_group.items():
            stuck.add_metric([tenant, cap_label(group)], count)
        families.append(stuck)
    if per_agent:
        families.extend(per_agent_samples(tenant, view) if samples else _per_agent(tenant, view))
    return families


def _per_agent(tenant: str, view: FleetView) -> list[Metric]:
    # Hot path at 100,000 agents: the lines are written straight from the agent views
    # (exposition.rendered_gauge), with no prometheus_client sample per series.
    agents = view.agents
    info = rendered_gauge(
        AGENT_INFO.name,
        AGENT_INFO.help,
        INFO_LABEL_ORDER,
        (
            (
                (
                    agent.server_id,
                    agent.hostname,
                    agent.version,
                    agent.services,
                    agent.upgrader,
                    agent.upgrader_version,
                    agent.update_group,
                    agent.updater_status,
                ),
                1.0,
            )
            for agent in agents
        ),
        constant=(tenant,),
    )
    behind = rendered_gauge(
        AGENT_MAJORS_BEHIND.name,
        AGENT_MAJORS_BEHIND.help,
        AGENT_LABEL_ORDER,
        (
            ((agent.server_id,), agent.majors_behind)
            for agent in agents
            if agent.majors_behind is not None
        ),
        constant=(tenant,),
    )
    last_seen = rendered_gauge(
        AGENT_LAST_SEEN.name,
        AGENT_LAST_SEEN.help,
        AGENT_LABEL_ORDER,
        (((agent.server_id,), agent.last_seen) for agent in agents if agent.last_seen is not None),
        constant=(tenant,),
    )
    return [info, behind, last_seen]


def per_agent_samples(tenant: str, view: FleetView) -> list[Metric]:
    """The per-agent families as prometheus_client samples, for a registry that renders on
    each scrape (the benchmarks' peer); the exposition is served `_per_agent`'s lines."""
    info, behind, last_seen = AGENT_INFO.new(), AGENT_MAJORS_BEHIND.new(), AGENT_LAST_SEEN.new()
    for agent in view.agents:
        info.samples.append(
            Sample(
                info.name,
                dict(
                    zip(
                        INFO_LABEL_ORDER,
                        (
                            tenant,
                            agent.server_id,
                            agent.hostname,
                            agent.version,
                            agent.services,
                            agent.upgrader,
                            agent.upgrader_version,
                            agent.update_group,
                            agent.updater_status,
                        ),
                        strict=True,
                    )
                ),
                1.0,
            )
        )
        labels = {"tenant": tenant, "server_id": agent.server_id}
        if agent.majors_behind is not None:
            behind.samples.append(Sample(behind.name, labels, agent.majors_behind))
        if agent.last_seen is not None:
            last_seen.samples.append(Sample(last_seen.name, labels, agent.last_seen))
    return [info, behind, last_seen]
