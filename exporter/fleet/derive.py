"""Fleet version skew and update enrolment: a pure function of the inventory and two versions.

Teleport's rule (docs: compatibility): the control plane supports agents on its own major or one
major behind; agents on a newer major are unsupported too. Teleport Cloud withholds the next
control-plane major while any agent is one (or more) majors behind, so those agents are what a
platform team must upgrade first.

Teleport-managed control-plane instances (services containing Auth or Proxy) appear in the
inventory on Cloud but are not customer agents; they are left out of everything here.

Before ping has succeeded the control-plane version is unknown: every agent's skew is then
`unknown`, and the verdicts that depend on it (`upgrade_blocked`, majors behind) are None rather
than a reassuring 0. Likewise `outdated` is None while the target agent version is unknown.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

import msgspec

from exporter.core.versions import Version, normalise, parse
from exporter.fleet.model import Instance, updater_status_name
from exporter.rollout.groups import (
    Agent,
    Assessment,
    GroupPlan,
    assess_fleet,
    not_updating_counts,
    teleport_counts,
)
from exporter.vocab import NO_UPGRADER, SKEW_CLASSES, UPDATER_STATUSES, Skew, cap_label

CONTROL_PLANE_SERVICES = frozenset({"Auth", "Proxy"})
NOT_UPDATING = frozenset({"disabled", "pinned", "unreadable"})
"""Updater statuses of agents that have an upgrader yet will not update by themselves."""


class AgentView(msgspec.Struct, frozen=True, gc=False):
    """One customer agent, with its label values ready for the exposition. (A struct the
    garbage collector does not track: as cheap to build as a NamedTuple, a third of a frozen
    dataclass, and 100,000 of them add nothing to the collector's passes.)"""

    server_id: str
    hostname: str
    version: str
    """Normalised (no leading v); an unparseable version keeps its raw text, capped."""
    services: str
    """Sorted and comma-separated, so the series does not churn with tctl's ordering."""
    upgrader: str
    """ext_upgrader, or `none` when the agent is not enrolled in automatic updates."""
    upgrader_version: str
    update_group: str
    updater_status: str
    """ok, disabled, pinned, unreadable, or unspecified when the agent reports none."""
    skew: Skew
    majors_behind: int | None
    """Control-plane major minus the agent's; negative when newer; None when either is unknown."""
    last_seen: float | None
    updater_id: str = ""
    """The updater's id as reported (`UpdateUUID`); canaries are named by it."""


@dataclass(frozen=True, slots=True)
class FleetView:
    agents: list[AgentView]
    by_version_upgrader: dict[tuple[str, str], int]
    by_service: dict[str, int]
    by_updater_status: dict[tuple[str, str], int]
    """(upgrader, status) -> agents; every status of UPDATER_STATUSES per upgrader present."""
    by_skew: dict[Skew, int]
    """Every skew class, 0 when no agent is in it."""
    outdated: int | None
    """Agents whose version differs from the target; None while the target is unknown."""
    upgrade_blocked: bool | None
    """Any agent one or more majors behind; None while the control-plane version is unknown."""
    blocking_agents: list[AgentView]
    """Agents one or more majors behind, furthest behind first, then by hostname."""
    control_plane_version: str | None
    control_plane_major: int | None
    target_version: str | None
    excluded_control_plane: int
    """Teleport-managed Auth/Proxy instances left out."""
    not_updating: dict[str, int] | None = None
    """Agents that will not update by themselves, by reason (exporter.rollout.groups)."""
    groups: Assessment | None = None
    """Per Managed Updates v2 group: members, asked and stuck agents; None without a rollout."""
    teleport_counts: dict[str, tuple[int, int]] | None = None
    """Per rollout group, (present, up to date) as Teleport itself counts them."""

    @property
    def stuck_by_group(self) -> dict[str, int] | None:
        """Per group, agents Teleport asks to update that are not on the group's version."""
        return self.groups.stuck if self.groups is not None else None

    @property
    def total(self) -> int:
        return len(self.agents)


def classify(control_plane_major: int | None, agent: Version | None) -> tuple[Skew, int | None]:
    """The skew class of an agent version against the control plane, and majors behind."""
    if control_plane_major is None or agent is None:
        return "unknown", None
    behind = control_plane_major - agent.major
    if behind == 0:
        return "current", 0
    if behind == 1:
        return "one_major_behind", 1
    if behind > 1:
        return "unsupported_old", behind
    return "unsupported_newer", behind


def _same_version(
    raw: str, parsed: Version | None, target: str, target_parsed: Version | None
) -> bool:
    if parsed is not None and target_parsed is not None:
        return parsed == target_parsed
    return normalise(raw) == target


def _seen_later(candidate: Instance, current: Instance) -> bool:
    new, old = candidate.last_seen_timestamp, current.last_seen_timestamp
    return new is not None and (old is None or new > old)


def derive_fleet(
    instances: Iterable[Instance],
    control_plane_version: str | None,
    target_version: str | None,
    groups: GroupPlan | None = None,
) -> FleetView:
    """Skew, enrolment and outdated counts of the customer agents in `instances`; with
    `groups` (a rollout's GroupPlan) also the stuck agents per update group."""
    control_plane = parse(control_plane_version) if control_plane_version else None
    cp_major = control_plane.major if control_plane is not None else None
    target = normalise(target_version) if target_version else None
    target_parsed = parse(target) if target else None

    # A server id seen twice (a record not yet expired after a restart) is one agent: keep the
    # most recently seen record, else the series would be duplicated.
    chosen: dict[str, Instance] = {}
    excluded = 0
    for instance in instances:
        roles = instance.spec.services
        if "Auth" in roles or "Proxy" in roles:
            excluded += 1
            continue
        server_id = instance.metadata.name
        previous = chosen.get(server_id)
        if previous is None or _seen_later(instance, previous):
            chosen[server_id] = instance

    # Fleets have few distinct versions and service sets: classify each once.
    version_facts: dict[str, tuple[str, Skew, int | None, bool]] = {}
    upgrader_versions: dict[str, str] = {}
    statuses: dict[int | str, str] = {}
    by_updater_status: dict[tuple[str, str], int] = {}
    service_labels: dict[tuple[str, ...], str] = {}
    service_sets: dict[tuple[str, ...], int] = {}
    by_version_upgrader: dict[tuple[str, str], int] = {}
    by_skew: dict[Skew, int] = dict.fromkeys(SKEW_CLASSES, 0)
    outdated = 0
    agents: list[AgentView] = []
    members: list[Agent] = []

    for server_id, instance in chosen.items():
        spec = instance.spec
        raw_version = spec.version
        facts = version_facts.get(raw_version)
        if facts is None:
            parsed = parse(raw_version)
            skew, behind = classify(cp_major, parsed)
            label = str(parsed) if parsed is not None else normalise(raw_version)
            differs = target is not None and not _same_version(
                raw_version, parsed, target, target_parsed
            )
            facts = version_facts[raw_version] = (label, skew, behind, differs)
        version, skew, behind, differs = facts

        service_key = tuple(spec.services)
        services = service_labels.get(service_key)
        if services is None:
            services = service_labels[service_key] = cap_label(",".join(sorted(set(service_key))))
        service_sets[service_key] = service_sets.get(service_key, 0) + 1

        upgrader = cap_label(spec.ext_upgrader) or NO_UPGRADER
        key = (version, upgrader)
        by_version_upgrader[key] = by_version_upgrader.get(key, 0) + 1
        by_skew[skew] += 1
        outdated += differs

        raw_upgrader_version = spec.ext_upgrader_version
        upgrader_version = upgrader_versions.get(raw_upgrader_version)
        if upgrader_version is None:
            upgrader_version = upgrader_versions[raw_upgrader_version] = normalise(
                raw_upgrader_version
            )
        info = spec.updater_info
        if info is None:
            status = "unspecified"
        else:
            raw_status = info.updater_status
            status = statuses.get(raw_status) or statuses.setdefault(
                raw_status, updater_status_name(raw_status)
            )
        members.append(
            Agent(
                server_id,
                info.update_group if info is not None else "",
                info.update_uuid if info is not None else "",
                version,
                upgrader,
                status,
            )
        )
        status_key = (upgrader, status)
        by_updater_status[status_key] = by_updater_status.get(status_key, 0) + 1
        agents.append(
            AgentView(
                cap_label(server_id),
                cap_label(spec.hostname),
                version,
                services,
                upgrader,
                upgrader_version,
                cap_label(info.update_group) if info is not None else "",
                status,
                skew,
                behind,
                instance.last_seen_timestamp,
                cap_label(info.update_uuid) if info is not None else "",
            )
        )

    by_service: dict[str, int] = {}
    for service_key, count in service_sets.items():
        for service in set(service_key):
            name = cap_label(service)
            by_service[name] = by_service.get(name, 0) + count

    # Every status per upgrader kind present, so a status that empties reads 0, not absent.
    for upgrader in {upgrader for upgrader, _ in by_updater_status}:
        for status in UPDATER_STATUSES:
            by_updater_status.setdefault((upgrader, status), 0)
    assessment = assess_fleet(members, groups) if groups is not None else None
    counted = teleport_counts(members, groups) if groups is not None else None

    blocking = sorted(
        (agent for agent in agents if agent.majors_behind is not None and agent.majors_behind >= 1),
        key=lambda agent: (-(agent.majors_behind or 0), agent.hostname, agent.server_id),
    )
    return FleetView(
        agents=agents,
        by_version_upgrader=by_version_upgrader,
        by_service=dict(sorted(by_service.items())),
        by_updater_status=dict(sorted(by_updater_status.items())),
        by_skew=by_skew,
        outdated=outdated if target is not None else None,
        upgrade_blocked=bool(blocking) if cp_major is not None else None,
        blocking_agents=blocking,
        control_plane_version=normalise(control_plane_version) if control_plane_version else None,
        control_plane_major=cp_major,
        target_version=target,
        excluded_control_plane=excluded,
        not_updating=not_updating_counts(members),
        groups=assessment,
        teleport_counts=counted,
    )


class VersionSummary(NamedTuple):
    """Agents sharing one version, for a report: most urgent first."""

    version: str
    majors_behind: int | None
    agents: int
    upgraders: tuple[str, ...]
    """Upgrader kinds among them, sorted."""


def summarise_by_version(agents: Iterable[AgentView]) -> list[VersionSummary]:
    """`agents` grouped by version: furthest behind first, then by count (largest first)."""
    counts: dict[str, int] = {}
    behind: dict[str, int | None] = {}
    upgraders: dict[str, set[str]] = {}
    for agent in agents:
        counts[agent.version] = counts.get(agent.version, 0) + 1
        behind[agent.version] = agent.majors_behind
        upgraders.setdefault(agent.version, set()).add(agent.upgrader)
    rows = [
        VersionSummary(version, behind[version], count, tuple(sorted(upgraders[version])))
        for version, count in counts.items()
    ]
    return sorted(rows, key=lambda row: (-(row.majors_behind or 0), -row.agents, row.version))


def not_updating(agents: Iterable[AgentView]) -> list[AgentView]:
    """Agents whose updater is disabled, pinned or unreadable: enrolled on paper, yet never
    updating by themselves (agents with no upgrader are reported as not enrolled)."""
    return [agent for agent in agents if agent.updater_status in NOT_UPDATING]
