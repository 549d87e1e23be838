"""`tctl get autoupdate_agent_report --format=json` (Teleport 18+): one report per Auth server.

Each Auth server writes its report every minute, only while a Managed Updates v2 rollout exists,
from the agents connected to it: per update group and version the agents' count, and the agents
it left out by reason (Teleport-managed instances, agents registered less than a minute ago,
pinned or disabled updaters, ...). tctl prints protojson: snake_case keys, int64 values as
strings (int32 as numbers), zero values omitted, an array of resources.

Teleport itself only trusts reports younger than a minute (`ValidReports`): an Auth server that
stopped writing must not count its agents twice or forever. `merge_reports` keeps the reports
written within `MAX_REPORT_AGE` of the newest one (so the exporter's own clock does not decide),
and sums them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, TypeAdapter, ValidationError

MAX_REPORT_AGE = 60.0
"""Seconds: reports older than the newest by more than this are dropped, as Teleport drops
reports older than a minute."""


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class VersionCount(_Lenient):
    count: NonNegativeInt = 0


class GroupReport(_Lenient):
    versions: dict[str, VersionCount] = Field(default_factory=dict)


class Omitted(_Lenient):
    count: NonNegativeInt = 0
    reason: str = ""


class ReportSpec(_Lenient):
    timestamp: datetime | None = None
    groups: dict[str, GroupReport] = Field(default_factory=dict)
    omitted: list[Omitted] = Field(default_factory=list)


class ReportMetadata(_Lenient):
    name: str = ""


class AgentReport(_Lenient):
    """One Auth server's report; `metadata.name` names the Auth server."""

    metadata: ReportMetadata = Field(default_factory=ReportMetadata)
    spec: ReportSpec = Field(default_factory=ReportSpec)


class AgentReportParseError(ValueError):
    """The output is not a list of autoupdate_agent_report resources."""


_ADAPTER: TypeAdapter[list[AgentReport] | AgentReport | None] = TypeAdapter(
    list[AgentReport] | AgentReport | None
)


def parse_agent_reports(data: bytes | bytearray) -> list[AgentReport]:
    """Every report in tctl's output (an empty list when there is none)."""
    try:
        parsed: Any = _ADAPTER.validate_json(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        location = ".".join(str(part) for part in first["loc"])
        raise AgentReportParseError(
            f"not an autoupdate_agent_report list: {location}: {first['msg']}"
        ) from None
    if parsed is None:
        return []
    return parsed if isinstance(parsed, list) else [parsed]


@dataclass(frozen=True, slots=True)
class MergedReport:
    agents: dict[tuple[str, str], int]
    """(group, version) -> agents, summed over the valid reports."""
    omitted: dict[str, int]
    """Reason -> agents left out, summed over the valid reports."""
    timestamp: float
    """The newest report's time (Unix seconds)."""
    used: tuple[str, ...]
    """The Auth servers whose reports were merged."""
    dropped: tuple[str, ...]
    """The Auth servers whose reports were too old (or had no timestamp)."""


def merge_reports(
    reports: list[AgentReport], max_age: float = MAX_REPORT_AGE
) -> MergedReport | None:
    """The reports written within `max_age` seconds of the newest one, summed; None when no
    report carries a timestamp."""
    stamped = [(r, r.spec.timestamp.timestamp()) for r in reports if r.spec.timestamp is not None]
    if not stamped:
        return None
    newest = max(when for _, when in stamped)
    agents: dict[tuple[str, str], int] = {}
    omitted: dict[str, int] = {}
    used: list[str] = []
    dropped = [r.metadata.name for r in reports if r.spec.timestamp is None]
    for report, when in stamped:
        if newest - when > max_age:
            dropped.append(report.metadata.name)
            continue
        used.append(report.metadata.name)
        for group, detail in report.spec.groups.items():
            for version, entry in detail.versions.items():
                key = (group, version)
                agents[key] = agents.get(key, 0) + entry.count
        for item in report.spec.omitted:
            omitted[item.reason] = omitted.get(item.reason, 0) + item.count
    return MergedReport(agents, omitted, newest, tuple(used), tuple(dropped))
