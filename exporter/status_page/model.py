"""Atlassian Statuspage `GET /api/v2/summary.json`: the fields the exporter reads.

Status values are kept as plain strings: an unknown value must show up in the metrics (as an
extra state), not fail validation and blank the whole page. Lists are cut at fixed counts (the
real page has a few dozen components and a handful of open incidents): a hostile or broken page
must not turn into an unbounded number of series.

`status_page.components` (ids or names to keep) scopes everything: components, and incidents and
maintenances, which count only when they list a kept component or list none (`concerns`).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, TypeAdapter

MAX_COMPONENTS = 250
MAX_INCIDENTS = 100
MAX_MAINTENANCES = 100
MAX_AFFECTED = 250


def _first(count: int) -> BeforeValidator:
    def cut(value: Any) -> Any:
        return value[:count] if isinstance(value, list) else value

    return BeforeValidator(cut)


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


class AffectedComponent(_Lenient):
    id: str = ""
    name: str = ""


class Incident(_Lenient):
    id: str
    name: str = ""
    status: str
    impact: str
    components: Annotated[list[AffectedComponent], _first(MAX_AFFECTED)] = []


class Maintenance(_Lenient):
    id: str
    name: str = ""
    status: str
    impact: str = ""
    scheduled_for: datetime | None = None
    scheduled_until: datetime | None = None
    components: Annotated[list[AffectedComponent], _first(MAX_AFFECTED)] = []


class Summary(_Lenient):
    page: Page = Page()
    status: Status
    components: Annotated[list[Component], _first(MAX_COMPONENTS)] = []
    incidents: Annotated[list[Incident], _first(MAX_INCIDENTS)] = []
    scheduled_maintenances: Annotated[list[Maintenance], _first(MAX_MAINTENANCES)] = []


def kept(component: Component | AffectedComponent, keep: Collection[str]) -> bool:
    """Whether `status_page.components` keeps a component (an empty filter keeps all)."""
    return not keep or component.id in keep or component.name in keep


def concerns(item: Incident | Maintenance, keep: Collection[str]) -> bool:
    """An incident or maintenance counts when it lists a kept component, or lists none."""
    return not keep or not item.components or any(kept(c, keep) for c in item.components)


SUMMARY_ADAPTER: TypeAdapter[Summary] = TypeAdapter(Summary)
