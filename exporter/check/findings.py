"""What `check` and the page at `/` tell a person: one assessment, two renderings.

`assess` turns an `Observation` (the tenants' last good models, the probes, the sources' health,
the SLA month to date) into an `Assessment`: per tenant the facts to show, and one list of
findings (something to act on: exit 1) and of failures (what could not be seen: exit 2). Pure:
no I/O, so `check` (which collects once) and the page (which reads the running exporter) share
every verdict and every word of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from exporter.config import Settings
from exporter.core.scheduler import Health
from exporter.core.state import Hub, TenantState
from exporter.core.versions import major_of, normalise, same_version
from exporter.fleet.derive import NOT_UPDATING, AgentView, FleetView, not_updating
from exporter.probe.model import ProbeFailure, ProbeResult
from exporter.rollout.agent_report_model import MergedReport
from exporter.rollout.groups import GroupPlan, plan_groups
from exporter.rollout.model import Rollout, RolloutGroup
from exporter.sla.derive import MonthToDate

EXIT_HEALTHY, EXIT_FINDINGS, EXIT_UNCOLLECTED = 0, 1, 2

# Teleport's Enterprise Cloud FAQ asks customers who plan to connect more than 10,000 agents to
# contact their account team or support first, so the tenant can be scaled. The same limit and
# share as the mixin's defaults (TeleportCloudAgentsNearTenantLimit).
TENANT_AGENT_LIMIT = 10_000
TENANT_AGENT_SHARE = 0.8


@dataclass(frozen=True)
class Finding:
    """Something to act on, about a tenant or the status page."""

    subject: str
    text: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.text}"


@dataclass(frozen=True)
class ProbeView:
    """The probe now: `ok`, `failing` (the tenant's proxy failed), `unobserved` (the exporter's
    own trouble) or `unknown` (no probe yet)."""

    state: Literal["ok", "failing", "unobserved", "unknown"]
    last: ProbeResult | None
    error: str = ""
    """`reason: message` of the failing probe."""
    unobserved_reason: str | None = None
    recent_failures: tuple[ProbeFailure, ...] = ()


@dataclass(frozen=True)
class WindowView:
    """The agent upgrade window (v1 `unit` and `kube` agents update in it), and the agents of
    those kinds behind the target that wait for it."""

    weekdays: tuple[int, ...]
    start_hour: int
    next_start: float
    open_now: bool
    waiting: int | None
    """unit/kube agents behind the target; None while the target is unknown."""
    waiting_blocking: int
    target: str | None


@dataclass(frozen=True)
class SizeView:
    """The tenant's agents against the 10,000 that Teleport asks to discuss first."""

    agents: int
    limit: int = TENANT_AGENT_LIMIT
    share: float = TENANT_AGENT_SHARE
    projected: int | None = None
    """Agents in `horizon_days` at the recent growth; None without history to project from
    (one collection has none: the alert projects from Prometheus' history)."""
    horizon_days: int = 30

    @property
    def ratio(self) -> float:
        return self.agents / self.limit

    @property
    def over_share(self) -> bool:
        return self.agents > self.share * self.limit

    @property
    def projected_over(self) -> bool:
        return self.projected is not None and self.projected > self.limit

    def line(self) -> str:
        growth = (
            f"; {self.projected:,} in {self.horizon_days} days at the recent growth"
            if self.projected is not None
            else "; growth not projected from one collection (the alert "
            "TeleportCloudAgentsNearTenantLimit projects it from Prometheus)"
        )
        return (
            f"{self.agents:,} of the {self.limit:,} agents Teleport asks to discuss first "
            f"({self.ratio:.0%}){growth}"
        )


@dataclass(frozen=True)
class ToolsView:
    """The tsh/tctl version the tenant wants clients to run, against the exporter's tctl."""

    wanted: str
    tctl: str | None
    majors_apart: int | None
    """None when either major is unknown."""


@dataclass(frozen=True)
class SourceView:
    """How fresh one source is."""

    kind: str
    target: str
    up: bool
    last_success: float | None
    consecutive_failures: int
    last_error: str | None


@dataclass(frozen=True)
class Frozen:
    """Agents whose updater is disabled or pinned: they never update by themselves."""

    agents: list[AgentView]
    by_status: dict[str, int]
    behind: list[AgentView]
    """Those of them behind the target or blocking the next upgrade (a finding)."""


@dataclass(frozen=True)
class GroupRow:
    name: str
    catch_all: bool
    state: str
    version: str
    up_to_date: int
    present: int
    members: int | None
    """Members by the inventory (Teleport's membership rules); None without an inventory."""
    why: str
    inventory_counts: tuple[int, int] | None = None
    """(present, up to date) by the inventory for the agents Teleport counts, when that differs
    from the rollout's own counts; None when they agree or cannot be compared."""


@dataclass(frozen=True)
class RolloutView:
    start_version: str
    target_version: str
    mode: str
    strategy: str
    schedule: str
    notes: list[str]
    groups: list[GroupRow]


@dataclass(frozen=True)
class StuckGroup:
    group: str
    version: str
    agents: list[AgentView]


@dataclass
class TenantView:
    name: str
    proxy: str
    probe: ProbeView
    control_plane: str | None
    cluster_name: str | None
    target_version: str | None
    tctl_version: str | None = None
    tctl_compatible: bool | None = None
    agent_report: MergedReport | None = None
    """Teleport's own agent reports (Teleport 18+), merged as Teleport merges them."""
    tctl_one_behind: bool = False
    """Supported, but a major behind the control plane: the next major drops it."""
    tools: ToolsView | None = None
    window: WindowView | None = None
    fleet: FleetView | None = None
    size: SizeView | None = None
    enrolment: dict[str, int] = field(default_factory=dict)
    frozen: Frozen | None = None
    rollout: RolloutView | None = None
    stuck: list[StuckGroup] = field(default_factory=list)
    sla: MonthToDate | None = None
    sources: list[SourceView] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def upgrade(self) -> Literal["blocked", "not blocked", "unknown"]:
        if self.fleet is None or self.fleet.upgrade_blocked is None:
            return "unknown"
        return "blocked" if self.fleet.upgrade_blocked else "not blocked"


@dataclass(frozen=True)
class Incident:
    impact: str
    name: str
    status: str


@dataclass(frozen=True)
class Maintenance:
    status: str
    name: str
    scheduled_for: float | None


@dataclass(frozen=True)
class StatusPageView:
    host: str
    indicator: str
    description: str
    incidents: list[Incident]
    maintenances: list[Maintenance]
    source: SourceView | None


@dataclass
class Assessment:
    now: float
    tenants: list[TenantView]
    status_page: StatusPageView | None
    findings: list[Finding]
    failures: list[str]
    """Sources that could not be collected: `<source> <target>: <reason>: <message>`."""

    @property
    def exit_code(self) -> int:
        if self.failures:
            return EXIT_UNCOLLECTED
        return EXIT_FINDINGS if self.findings else EXIT_HEALTHY


@dataclass(frozen=True)
class TctlView:
    version: str | None
    compatible: bool | None


@dataclass(frozen=True)
class ProbeObservation:
    last: ProbeResult | None
    unobserved_reason: str | None
    recent_failures: tuple[ProbeFailure, ...]


@dataclass
class Observation:
    """Everything the assessment reads, gathered by `check` (one collection) or by the page
    (the running exporter)."""

    settings: Settings
    hub: Hub
    now: float
    probes: dict[str, ProbeObservation]
    health: dict[tuple[str, str], Health]
    errors: dict[tuple[str, str], str]
    """The last refresh's error per failing source, `reason: message`."""
    fleets: dict[str, FleetView | None]
    tctls: dict[str, TctlView] = field(default_factory=dict)
    agent_reports: dict[str, MergedReport | None] = field(default_factory=dict)
    sla: dict[str, MonthToDate | None] = field(default_factory=dict)


def assess_all(observation: Observation) -> Assessment:
    findings: list[Finding] = []
    failures: list[str] = []
    tenants: list[TenantView] = []
    for (kind, target), error in observation.errors.items():
        probe = observation.probes.get(target)
        if kind == "ping" and probe is not None and probe.unobserved_reason is None:
            continue  # the tenant's proxy failed: a finding about the tenant
        failures.append(f"{kind} {target}: {error}")
    for tenant in observation.hub.tenants.values():
        view = _tenant(observation, tenant)
        tenants.append(view)
        findings.extend(view.findings)
    status_page = _status_page(observation, findings)
    return Assessment(observation.now, tenants, status_page, findings, failures)


def _tenant(observation: Observation, tenant: TenantState) -> TenantView:
    name = tenant.name
    probe = _probe(observation, name)
    view = TenantView(
        name=name,
        proxy=tenant.config.proxy,
        probe=probe,
        control_plane=tenant.control_plane_version,
        cluster_name=tenant.ping.cluster_name if tenant.ping else None,
        target_version=tenant.target_agent_version,
        sla=observation.sla.get(name),
        sources=[
            _source(kind, target, health, observation.errors.get((kind, target)))
            for (kind, target), health in observation.health.items()
            if target == name
        ],
    )
    if probe.state == "failing":
        view.findings.append(Finding(name, f"proxy probe failing: {probe.error}"))
    tctl = observation.tctls.get(name)
    if tctl is not None and tctl.version is not None:
        view.tctl_version, view.tctl_compatible = tctl.version, tctl.compatible
        if tctl.compatible is False:
            view.findings.append(
                Finding(
                    name,
                    f"tctl {tctl.version} is not supported by control plane "
                    f"{view.control_plane} (tctl must be on its major or one below)",
                )
            )
        elif tctl.compatible and major_of(tctl.version) != major_of(view.control_plane):
            view.tctl_one_behind = True
            view.findings.append(
                Finding(
                    name,
                    f"tctl {tctl.version} is one major behind control plane "
                    f"{view.control_plane}: update it before Cloud's next major upgrade",
                )
            )
    view.tools = _tools(tenant, tctl)
    fleet = observation.fleets.get(name)
    if fleet is not None:
        _fleet(view, fleet)
    view.window = _window(tenant, fleet, observation.now)
    if tenant.rollout is not None:
        view.rollout = _rollout(view, tenant.rollout, fleet)
        view.agent_report = observation.agent_reports.get(name)
        if fleet is not None:
            view.stuck = _stuck(view, fleet)
    if view.sla is not None and view.sla.summary.breached:
        view.findings.append(Finding(name, "SLA breached this month"))
    return view


def _tools(tenant: TenantState, tctl: TctlView | None) -> ToolsView | None:
    ping = tenant.ping
    wanted = ping.auto_update.tools_version if ping and ping.auto_update else ""
    if not wanted:
        return None
    version = tctl.version if tctl is not None else None
    tools_major, tctl_major = major_of(wanted), major_of(version)
    apart = (
        abs(tools_major - tctl_major)
        if version is not None and tools_major is not None and tctl_major is not None
        else None
    )
    return ToolsView(normalise(wanted), version, apart)


def _window(tenant: TenantState, fleet: FleetView | None, now: float) -> WindowView | None:
    """The agent upgrade window, and when agents that update in it next get their chance."""
    window = tenant.upgrade_window
    if window is None:
        return None
    start = window.next_start(datetime.fromtimestamp(now, UTC)).timestamp()
    waiting: int | None = None
    blocking = 0
    target = fleet.target_version if fleet is not None else None
    if fleet is not None and target is not None:
        behind = [
            agent
            for agent in fleet.agents
            if agent.upgrader in ("unit", "kube")
            and agent.updater_status not in NOT_UPDATING
            and not same_version(agent.version, target)
        ]
        waiting = len(behind)
        blocking = sum(1 for a in behind if a.majors_behind is not None and a.majors_behind >= 1)
    return WindowView(
        tuple(sorted(window.weekdays)),
        window.start_hour,
        start,
        start <= now,
        waiting,
        blocking,
        target,
    )


def _probe(observation: Observation, name: str) -> ProbeView:
    seen = observation.probes.get(name)
    if seen is None:
        return ProbeView("unknown", None)
    failures = seen.recent_failures
    last = seen.last
    if last is not None and last.success:
        return ProbeView("ok", last, recent_failures=failures)
    if seen.unobserved_reason is not None:
        return ProbeView("unobserved", last, "", seen.unobserved_reason, failures)
    error = observation.errors.get(("ping", name), "")
    if last is None and not error:
        return ProbeView("unknown", None)
    return ProbeView("failing", last, error, None, failures)


def _source(kind: str, target: str, health: Health, error: str | None) -> SourceView:
    return SourceView(
        kind, target, health.up, health.last_success, health.consecutive_failures, error
    )


def _fleet(view: TenantView, fleet: FleetView) -> None:
    view.fleet = fleet
    name = view.name
    view.size = size = SizeView(agents=fleet.total)
    if size.over_share or size.projected_over:
        view.findings.append(
            Finding(
                name,
                f"{size.line()}: contact the Teleport account team or support before the "
                f"tenant passes {size.limit:,} agents",
            )
        )
    unsupported = fleet.by_skew["unsupported_old"] + fleet.by_skew["unsupported_newer"]
    if unsupported:
        view.findings.append(Finding(name, f"{unsupported} agent(s) on an unsupported version"))
    if fleet.upgrade_blocked:
        view.findings.append(
            Finding(
                name,
                f"next control-plane upgrade blocked by {len(fleet.blocking_agents)} agent(s)",
            )
        )
    enrolment: dict[str, int] = {}
    for (_, upgrader), count in fleet.by_version_upgrader.items():
        enrolment[upgrader] = enrolment.get(upgrader, 0) + count
    view.enrolment = dict(sorted(enrolment.items()))
    if enrolment.get("none"):
        view.findings.append(
            Finding(name, f"{enrolment['none']} agent(s) not enrolled in automatic updates")
        )
    view.frozen = _frozen(fleet)
    if view.frozen is not None and view.frozen.behind:
        view.findings.append(
            Finding(
                name,
                f"{len(view.frozen.behind)} agent(s) with a disabled or pinned updater are "
                "behind the target or block the next upgrade",
            )
        )


def _frozen(fleet: FleetView) -> Frozen | None:
    """Agents whose updater is disabled or pinned never update by themselves: a finding when
    they are behind the target or block the next upgrade."""
    frozen = not_updating(fleet.agents)
    if not frozen:
        return None
    target = fleet.target_version
    behind = [
        agent
        for agent in frozen
        if (agent.majors_behind is not None and agent.majors_behind >= 1)
        or (target is not None and not same_version(agent.version, target))
    ]
    behind.sort(key=lambda agent: (-(agent.majors_behind or 0), agent.hostname))
    by_status = {
        status: sum(agent.updater_status == status for agent in frozen)
        for status in ("disabled", "pinned", "unreadable")
    }
    return Frozen(frozen, by_status, behind)


def _stuck(view: TenantView, fleet: FleetView) -> list[StuckGroup]:
    """Per update group, the agents Teleport is asking to update that are not on the group's
    version, as the fleet's derivation judged them (exporter.rollout.groups)."""
    if fleet.groups is None:
        return []
    stuck = []
    for group, (version, positions) in fleet.groups.stuck_agents.items():
        agents = sorted(
            (fleet.agents[position] for position in positions),
            key=lambda agent: (-(agent.majors_behind or 0), agent.hostname),
        )
        view.findings.append(
            Finding(
                view.name,
                f"{len(agents)} agent(s) of update group {group} are asked to update "
                f"and are not on its version {version}",
            )
        )
        stuck.append(StuckGroup(group, version, agents))
    return stuck


def _waiting_line(plan: GroupPlan, group: RolloutGroup, strategy: str) -> str:
    """Why a group's agents are or are not being asked to update now."""
    rule = plan.groups.get(group.name)
    if rule is None:
        return ""
    if rule.asked:
        return "asked to update now"
    if group.state == "unstarted":
        return "not started yet: its agents wait"
    if group.state == "done" and strategy == "time-based":
        return "outside its window: laggards wait for the next one"
    if group.state == "canary":
        return "canaries only"
    return "not asked"


def _rollout(view: TenantView, rollout: Rollout, fleet: FleetView | None) -> RolloutView:
    spec = rollout.spec
    notes = []
    if spec.autoupdate_mode in ("disabled", "suspended"):
        notes.append(
            f"updates {spec.autoupdate_mode}: Teleport asks no agent to update, so none "
            "is counted as stuck"
        )
    plan = plan_groups(rollout)
    if plan is not None and spec.schedule == "immediate":
        notes.append(
            f"immediate schedule: every agent should run {plan.target or '?'} now (no groups)"
        )
    versions = plan.versions if plan is not None else {}
    tallies = fleet.groups.groups if fleet is not None and fleet.groups is not None else {}
    rows = []
    for index, group in enumerate(rollout.status.groups):
        tally = tallies.get(group.name)
        counted = (fleet.teleport_counts or {}).get(group.name) if fleet is not None else None
        if counted == (group.present_count, group.up_to_date_count):
            counted = None
        rows.append(
            GroupRow(
                name=group.name,
                catch_all=index == len(rollout.status.groups) - 1,
                state=group.state,
                version=versions.get(group.name, "?"),
                up_to_date=group.up_to_date_count,
                present=group.present_count,
                members=tally.members if tally is not None else None,
                why=_waiting_line(plan, group, spec.strategy) if plan is not None else "",
                inventory_counts=counted,
            )
        )
        if group.state == "rolledback":
            view.findings.append(Finding(view.name, f"rollout group {group.name} rolled back"))
    return RolloutView(
        spec.start_version,
        spec.target_version,
        spec.autoupdate_mode,
        spec.strategy,
        spec.schedule,
        notes,
        rows,
    )


def _status_page(observation: Observation, findings: list[Finding]) -> StatusPageView | None:
    status = observation.hub.status
    if status is None:
        return None
    host = observation.settings.status_page.host
    incidents = [Incident(i.impact, i.name, i.status) for i in status.incidents]
    for incident in incidents:
        if incident.impact in ("major", "critical"):
            findings.append(Finding("status page", f"{incident.impact} incident: {incident.name}"))
    maintenances = [
        Maintenance(m.status, m.name, m.scheduled_for.timestamp() if m.scheduled_for else None)
        for m in status.scheduled_maintenances
        if m.status != "completed"
    ]
    health = observation.health.get(("status_page", host))
    source = (
        _source("status_page", host, health, observation.errors.get(("status_page", host)))
        if health is not None
        else None
    )
    return StatusPageView(
        host,
        status.status.indicator,
        status.status.description,
        incidents,
        maintenances,
        source,
    )
