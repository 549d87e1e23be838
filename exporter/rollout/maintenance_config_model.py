"""`tctl get cluster_maintenance_config --format=json`: the tenant's agent upgrade window.

The resource (api/types/clustermaintenanceconfig.go, `ClusterMaintenanceConfigV1`) is printed by
tctl as gogo JSON in an array: `spec.agent_upgrades` holds `utc_start_hour` (0-23, omitted when
0) and `weekdays` (names such as `Mon` or `monday`; omitted when empty). v1 `unit` updaters and
the kube updater update inside this window (an hour from the start hour); with no weekdays
Teleport treats every day as a window day. A tenant without the resource answers NotFound.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from exporter.core.clock import WEEKDAY_NUMBERS

WINDOW_LENGTH = timedelta(hours=1)


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class AgentUpgrades(_Lenient):
    utc_start_hour: int = Field(default=0, ge=0, le=23)
    weekdays: list[str] = Field(default_factory=list)


class MaintenanceSpec(_Lenient):
    agent_upgrades: AgentUpgrades | None = None


class MaintenanceConfig(_Lenient):
    spec: MaintenanceSpec = Field(default_factory=MaintenanceSpec)


class MaintenanceConfigParseError(ValueError):
    """Not a cluster_maintenance_config resource (or an array of them)."""


_ADAPTER: TypeAdapter[list[MaintenanceConfig] | MaintenanceConfig | None] = TypeAdapter(
    list[MaintenanceConfig] | MaintenanceConfig | None
)


@dataclass(frozen=True, slots=True)
class UpgradeWindow:
    weekdays: frozenset[int]
    """Monday = 0 ... Sunday = 6; every day when the resource names none."""
    start_hour: int

    def next_start(self, now: datetime) -> datetime:
        """The start of the window `now` is in, or else of the next one."""
        now = now.astimezone(UTC)
        today = now.replace(hour=self.start_hour, minute=0, second=0, microsecond=0)
        for offset in range(-1, 8):
            start = today + timedelta(days=offset)
            if start.weekday() in self.weekdays and now < start + WINDOW_LENGTH:
                return start
        raise AssertionError("a week always holds a window day")  # weekdays is never empty


def parse_maintenance_config(data: bytes | bytearray) -> UpgradeWindow | None:
    """The agent upgrade window, or None when the resource sets none (or names no day this code
    can read). Raise MaintenanceConfigParseError for a document of the wrong shape."""
    try:
        parsed: Any = _ADAPTER.validate_json(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        location = ".".join(str(part) for part in first["loc"])
        raise MaintenanceConfigParseError(
            f"not a cluster_maintenance_config: {location}: {first['msg']}"
        ) from None
    if isinstance(parsed, list):
        parsed = parsed[0] if parsed else None
    if parsed is None or parsed.spec.agent_upgrades is None:
        return None
    upgrades = parsed.spec.agent_upgrades
    names = [day.strip().lower() for day in upgrades.weekdays]
    if not names or "*" in names:
        days = frozenset(range(7))
    else:
        days = frozenset(WEEKDAY_NUMBERS[name] for name in names if name in WEEKDAY_NUMBERS)
        if not days:
            return None
    return UpgradeWindow(days, upgrades.utc_start_hour)
