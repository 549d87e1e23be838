"""Atlassian Statuspage `GET /api/v2/summary.json`: the fields the exporter reads.

Status values are kept as plain strings: an unknown value must show up in the metrics (as an
extra state), not fail validation and blank the whole page.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, TypeAdapter


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Page(_Lenient):
    id: str = ""
    name: str = ""
    url: str = ""


class Status(_Lenient):
    indicator: str
    description: str = ""


class Component(_Lenient):
    id: str
    name: str
    status: str
    group: bool = False
    group_id: str | None = None


class Incident(_Lenient):
    id: str
    name: str = ""
    status: str
    impact: str


class Maintenance(_Lenient):
    id: str
    name: str = ""
    status: str
    impact: str = ""
    scheduled_for: datetime | None = None
    scheduled_until: datetime | None = None


class Summary(_Lenient):
    page: Page = Page()
    status: Status
    components: list[Component] = []
    incidents: list[Incident] = []
    scheduled_maintenances: list[Maintenance] = []


SUMMARY_ADAPTER: TypeAdapter[Summary] = TypeAdapter(Summary)
