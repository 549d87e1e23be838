"""`tctl inventory ls --format=json`: a JSON array of InstanceV1 resources.

Only the fields the exporter reads are modelled; unknown keys are ignored so new Teleport
releases do not break parsing. Services and upgrader kinds are plain strings, so kinds this code
has never heard of stay visible as their own values.

The whole document is validated by one pydantic TypeAdapter pass in Rust (no per-record Python
calls), which keeps 10,000 agents in tens of milliseconds. The models are slotted pydantic
dataclasses rather than BaseModels: a BaseModel drags a __dict__ and a fields-set per object,
which at 50,000 objects makes the garbage collector cost more than the parsing itself.

A record that does not fit the model (wrong types, no server id) falls through to `Any` in a
left-to-right union instead of failing the fleet; `parse_inventory` drops such records and
counts them. A document that is not a JSON array fails as a whole, `null` and an object
included: tctl prints an empty fleet as `[\n  \n]`, never as `null`, so anything else means a
broken output whose fleet must not replace the last good one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass as model

UPDATER_STATUS_NAMES = ("unspecified", "ok", "disabled", "pinned", "unreadable")
"""UpdaterStatus by number (types.UpdaterStatus). tctl prints the number, omitted when 0; the
enum names (`UPDATER_STATUS_PINNED`, `PINNED`) are accepted too, defensively."""

_EPOCH_YEAR = 1970


_LENIENT = ConfigDict(extra="ignore")


@model(frozen=True, slots=True, config=_LENIENT)
class Metadata:
    name: Annotated[str, StringConstraints(min_length=1)]
    """The server id (a UUID); identifies the agent across records."""


@model(frozen=True, slots=True, config=_LENIENT)
class UpdaterInfo:
    # Go-style keys: the struct has no JSON tags.
    update_group: str = Field(default="", alias="UpdateGroup")
    update_uuid: str = Field(default="", alias="UpdateUUID")
    """The updater's id (base64 of 16 bytes); a rollout names its canaries by it."""
    updater_status: int | str = Field(default=0, alias="UpdaterStatus")

    @property
    def status_name(self) -> str:
        """UpdaterStatus as a label value (ok, pinned, ...), whichever form tctl printed."""
        return updater_status_name(self.updater_status)


def updater_status_name(status: int | str) -> str:
    """1 / `UPDATER_STATUS_OK` / `OK` -> `ok`; an unknown value stays visible as its own."""
    if isinstance(status, int):
        if 0 <= status < len(UPDATER_STATUS_NAMES):
            return UPDATER_STATUS_NAMES[status]
        return f"unknown_{status}"
    name = status.strip().lower().removeprefix("updater_status_")
    if name.isdigit():
        return updater_status_name(int(name))
    return name[:32] or "unspecified"


@model(frozen=True, slots=True, config=_LENIENT)
class InstanceSpec:
    version: str = ""
    services: list[str] = Field(default_factory=list)
    hostname: str = ""
    # A timestamp we cannot read should not cost us the agent: left-to-right keeps it as text.
    last_seen: Annotated[datetime | str | None, Field(union_mode="left_to_right")] = None
    ext_upgrader: str = ""
    ext_upgrader_version: str = ""
    updater_info: UpdaterInfo | None = Field(default=None, alias="UpdaterInfo")


@model(frozen=True, slots=True, config=_LENIENT)
class Instance:
    """One InstanceV1: a Teleport process (an agent, or a Teleport-managed Auth/Proxy)."""

    metadata: Metadata
    spec: InstanceSpec

    @property
    def server_id(self) -> str:
        return self.metadata.name

    @property
    def last_seen_timestamp(self) -> float | None:
        """last_seen as Unix time; None when absent, unreadable or Go's zero time."""
        seen = self.spec.last_seen
        if not isinstance(seen, datetime) or seen.year < _EPOCH_YEAR:
            return None
        return seen.timestamp()

    @property
    def update_group(self) -> str:
        info = self.spec.updater_info
        return info.update_group if info is not None else ""


@dataclass(frozen=True, slots=True)
class InventoryParse:
    instances: list[Instance]
    skipped: int
    """Records that were not a valid InstanceV1 and were left out."""
    skipped_examples: tuple[str, ...] = ()
    """The first SKIPPED_EXAMPLES of them, as `<id or #index>: <field>: <why>` for the log."""


SKIPPED_EXAMPLES = 3


_Record = Annotated[Instance | Any, Field(union_mode="left_to_right")]
_ADAPTER: TypeAdapter[list[Instance | Any]] = TypeAdapter(list[_Record])


class InventoryParseError(ValueError):
    """The document as a whole is not a JSON array."""


def parse_inventory(data: bytes | bytearray) -> InventoryParse:
    """Parse tctl's JSON output. Raise InventoryParseError for invalid JSON or a non-array
    (`null` included)."""
    try:
        records = _ADAPTER.validate_json(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        raise InventoryParseError(f"not a JSON array of instances: {first['msg']}") from None
    instances = [record for record in records if isinstance(record, Instance)]
    skipped = len(records) - len(instances)
    examples: list[str] = []
    for index, record in enumerate(records):
        if len(examples) == SKIPPED_EXAMPLES or len(examples) == skipped:
            break
        if not isinstance(record, Instance):
            examples.append(_why_skipped(index, record))
    return InventoryParse(instances, skipped, tuple(examples))


_INSTANCE: TypeAdapter[Instance] = TypeAdapter(Instance)


def _why_skipped(index: int, record: Any) -> str:
    """Which record (its server id when it has one, else its position) and why it is not an
    instance; capped, since upstream text ends up in a log line."""
    metadata = record.get("metadata") if isinstance(record, dict) else None
    name = metadata.get("name") if isinstance(metadata, dict) else None
    label = name[:64] if isinstance(name, str) and name else f"#{index}"
    try:
        _INSTANCE.validate_python(record)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "record"
        return f"{label}: {where}: {first['msg'][:80]}"
    return f"{label}: not an instance"
