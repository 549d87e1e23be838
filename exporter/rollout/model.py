"""`tctl get autoupdate_agent_rollout --format=json`: the Managed Updates v2 agent rollout.

tctl prints protojson: snake_case keys, enums as names, int64 counts as strings, timestamps as
RFC3339. The output is an array holding the one singleton resource. Enums are also accepted as
numbers (protojson prints numbers for values the printing binary does not know), and counts as
numbers or strings; unknown keys are ignored. Zero values are omitted by protojson, so every field
has a zero default. A count that is negative or not a whole number is no uint64: the document is
broken and fails to parse (the last good rollout stays).
"""

from __future__ import annotations

from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    TypeAdapter,
    ValidationError,
    field_validator,
)

_GROUP_STATE_PREFIX = "AUTO_UPDATE_AGENT_GROUP_STATE_"
_ROLLOUT_STATE_PREFIX = "AUTO_UPDATE_AGENT_ROLLOUT_STATE_"
# Enum numbers from api/proto/teleport/autoupdate/v1/autoupdate.proto.
_GROUP_STATES_BY_NUMBER = ("unspecified", "unstarted", "active", "done", "rolledback", "canary")
_ROLLOUT_STATES_BY_NUMBER = ("unspecified", "unstarted", "active", "done", "rolledback")


def _enum_name(value: object, prefix: str, by_number: tuple[str, ...]) -> object:
    """`AUTO_UPDATE_AGENT_GROUP_STATE_ACTIVE` or 2 -> `active`; unknown values stay visible."""
    if isinstance(value, int) and not isinstance(value, bool):
        return by_number[value] if 0 <= value < len(by_number) else f"unknown_{value}"
    if isinstance(value, str):
        return value.removeprefix(prefix).lower() or "unspecified"
    return value


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Canary(_Lenient):
    """One canary of a group in the canary state (18.x): it gets the target version first."""

    updater_id: str = ""
    host_id: str = ""
    hostname: str = ""
    success: bool = False


class RolloutGroup(_Lenient):
    name: str
    state: str = "unspecified"
    """unstarted, active, done, rolledback, canary (or unspecified / an unknown value)."""
    initial_count: NonNegativeInt = 0
    present_count: NonNegativeInt = 0
    up_to_date_count: NonNegativeInt = 0
    canary_count: NonNegativeInt = 0
    canaries: list[Canary] = []
    last_update_reason: str = ""
    config_days: list[str] = []
    """Weekdays of the group's window (`Mon`, `monday`, `*`); time-based strategy."""
    config_start_hour: int = 0
    """UTC hour the group's window opens (protojson omits 0)."""

    @field_validator("state", mode="before")
    @classmethod
    def _state(cls, value: object) -> object:
        return _enum_name(value, _GROUP_STATE_PREFIX, _GROUP_STATES_BY_NUMBER)


class RolloutSpec(_Lenient):
    start_version: str = ""
    target_version: str = ""
    schedule: str = ""
    autoupdate_mode: str = ""
    strategy: str = ""
    maintenance_window_duration: str = ""


class RolloutStatus(_Lenient):
    state: str = "unspecified"
    groups: list[RolloutGroup] = []

    @field_validator("state", mode="before")
    @classmethod
    def _state(cls, value: object) -> object:
        return _enum_name(value, _ROLLOUT_STATE_PREFIX, _ROLLOUT_STATES_BY_NUMBER)


class Rollout(_Lenient):
    kind: str = "autoupdate_agent_rollout"
    spec: RolloutSpec = Field(default_factory=RolloutSpec)
    status: RolloutStatus = Field(default_factory=RolloutStatus)


class RolloutParseError(ValueError):
    """The output is not a rollout resource (or an array of them)."""


_ADAPTER: TypeAdapter[list[Rollout] | Rollout | None] = TypeAdapter(list[Rollout] | Rollout | None)


def parse_rollout(data: bytes | bytearray) -> Rollout | None:
    """The rollout in tctl's output, or None when the output holds none (an empty array).

    Raise RolloutParseError for invalid JSON or a document of the wrong shape.
    """
    try:
        parsed: Any = _ADAPTER.validate_json(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        location = ".".join(str(part) for part in first["loc"])
        raise RolloutParseError(
            f"not an autoupdate_agent_rollout: {location}: {first['msg']}"
        ) from None
    if isinstance(parsed, list):
        return parsed[0] if parsed else None
    return parsed if isinstance(parsed, Rollout) else None
