"""`tctl inventory ls --format=json`: a JSON array of InstanceV1 resources.

Only the fields the exporter reads are modelled; unknown keys are ignored so new Teleport
releases do not break parsing. Services and upgrader kinds are plain strings, so kinds this code
has never heard of stay visible as their own values.

The document is decoded by msgspec straight into typed structs, in C: a 100,000-agent fleet
(60 MB of tctl's indented JSON) in about a tenth of a second, a fifth of what a pydantic pass
took, a few megabytes per call so that the GIL is let go between them. The structs are frozen
and untracked by the garbage collector (`gc=False`: they hold only strings, numbers and other
such structs), so half a million objects add nothing to the collector's passes.

A record that does not fit the model (wrong types, no server id) must not cost the fleet: when
the one-pass decode meets one, the array is decoded again as raw records and each is decoded on
its own; `parse_inventory` drops the records that fail and counts them. A last_seen that is not a
timestamp keeps its agent (with no last-seen time). A document that is not a JSON array fails as
a whole, `null` and an object included: tctl prints an empty fleet as `[\n  \n]`, never as
`null`, so anything else means a broken output whose fleet must not replace the last good one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

import msgspec

UPDATER_STATUS_NAMES = ("unspecified", "ok", "disabled", "pinned", "unreadable")
"""UpdaterStatus by number (types.UpdaterStatus). tctl prints the number, omitted when 0; the
enum names (`UPDATER_STATUS_PINNED`, `PINNED`) are accepted too, defensively."""

_EPOCH_YEAR = 1970


class _Model(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """Unknown keys are ignored (msgspec's default), so new fields never break parsing."""


class Metadata(_Model, frozen=True):
    name: Annotated[str, msgspec.Meta(min_length=1)]
    """The server id (a UUID); identifies the agent across records."""


class UpdaterInfo(
    _Model,
    frozen=True,
    rename={
        "update_group": "UpdateGroup",
        "update_uuid": "UpdateUUID",
        "updater_status": "UpdaterStatus",
    },
):
    # Go-style keys: the struct has no JSON tags.
    update_group: str = ""
    update_uuid: str = ""
    """The updater's id (base64 of 16 bytes); a rollout names its canaries by it."""
    updater_status: int | str = 0

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


class InstanceSpec(_Model, frozen=True, rename={"updater_info": "UpdaterInfo"}):
    version: str = ""
    services: tuple[str, ...] = ()
    """A tuple: it holds only strings, so the collector stops tracking it."""
    hostname: str = ""
    last_seen: datetime | None = None
    """None also when tctl printed something that is not a timestamp (the agent is kept)."""
    ext_upgrader: str = ""
    ext_upgrader_version: str = ""
    updater_info: UpdaterInfo | None = None


class Instance(_Model, frozen=True):
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
        if seen is None or seen.year < _EPOCH_YEAR:
            return None
        return seen.timestamp()

    @property
    def update_group(self) -> str:
        info = self.spec.updater_info
        return info.update_group if info is not None else ""


class _LooseSpec(InstanceSpec, frozen=True, kw_only=True):
    """A spec whose last_seen is not a timestamp: read as text, then dropped."""

    last_seen: object = None  # type: ignore[assignment]


class _LooseInstance(_Model, frozen=True):
    metadata: Metadata
    spec: _LooseSpec


@dataclass(frozen=True, slots=True)
class InventoryParse:
    instances: list[Instance]
    skipped: int
    """Records that were not a valid InstanceV1 and were left out."""
    skipped_examples: tuple[str, ...] = ()
    """The first SKIPPED_EXAMPLES of them, as `<id or #index>: <field>: <why>` for the log."""


SKIPPED_EXAMPLES = 3


_DECODE_FLEET = msgspec.json.Decoder(list[Instance])
_DECODE_RECORDS = msgspec.json.Decoder(list[msgspec.Raw])
_DECODE_RECORD = msgspec.json.Decoder(Instance)
_DECODE_LOOSE = msgspec.json.Decoder(_LooseInstance)


class InventoryParseError(ValueError):
    """The document as a whole is not a JSON array."""


def parse_inventory(data: bytes | bytearray) -> InventoryParse:
    """Parse tctl's JSON output. Raise InventoryParseError for invalid JSON or a non-array
    (`null` included)."""
    try:
        return InventoryParse(_decode_in_slices(data), 0)
    except msgspec.DecodeError:
        pass  # a broken record, or a broken document: tell them apart below
    try:
        records = _DECODE_RECORDS.decode(data)
    except msgspec.DecodeError as exc:
        raise InventoryParseError(f"not a JSON array of instances: {exc}") from None
    instances: list[Instance] = []
    examples: list[str] = []
    for index, record in enumerate(records):
        instance = _record(record)
        if instance is not None:
            instances.append(instance)
        elif len(examples) < SKIPPED_EXAMPLES:
            examples.append(_why_skipped(index, record))
    return InventoryParse(instances, len(records) - len(instances), tuple(examples))


SLICE_BYTES = 4 << 20
_BETWEEN_RECORDS = b"\n  },\n  {"
"""Where one record ends and the next begins in tctl's output (Go's MarshalIndent, two spaces):
a raw newline cannot occur inside a JSON string, so at this indentation it is the array's."""


def _decode_in_slices(data: bytes | bytearray) -> list[Instance]:
    """The fleet decoded a few megabytes at a time: one call over 60 MB would hold the GIL
    for a tenth of a second (msgspec does not release it), and a scrape waiting on it would be
    that late. Output laid out otherwise is decoded in one call."""
    instances: list[Instance] = []
    start = 0
    opening = b""
    while len(data) - start > SLICE_BYTES:
        cut = data.find(_BETWEEN_RECORDS, start + SLICE_BYTES)
        if cut < 0:
            break
        instances += _DECODE_FLEET.decode(opening + data[start : cut + 4] + b"]")
        start, opening = cut + 5, b"["
    instances += _DECODE_FLEET.decode(opening + data[start:])
    return instances


def _record(raw: msgspec.Raw) -> Instance | None:
    """One record, or None when it is not an instance. An unreadable last_seen keeps the agent."""
    try:
        return _DECODE_RECORD.decode(raw)
    except msgspec.DecodeError:
        pass
    try:
        loose = _DECODE_LOOSE.decode(raw)
    except msgspec.DecodeError:
        return None
    fields = {f: getattr(loose.spec, f) for f in InstanceSpec.__struct_fields__}
    fields["last_seen"] = None
    return Instance(loose.metadata, InstanceSpec(**fields))


def _why_skipped(index: int, raw: msgspec.Raw) -> str:
    """Which record (its server id when it has one, else its position) and why it is not an
    instance; capped, since upstream text ends up in a log line."""
    record = msgspec.json.decode(raw)
    metadata = record.get("metadata") if isinstance(record, dict) else None
    name = metadata.get("name") if isinstance(metadata, dict) else None
    label = name[:64] if isinstance(name, str) and name else f"#{index}"
    try:
        _DECODE_LOOSE.decode(raw)
    except msgspec.DecodeError as exc:
        why, _, path = str(exc).partition(" - at `$")
        where = path.rstrip("`").lstrip(".") or "record"
        return f"{label}: {where}: {why[:80]}"
    return f"{label}: not an instance"
