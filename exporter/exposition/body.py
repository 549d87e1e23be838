"""Pre-rendered exposition: each publish renders and compresses only what it changed.

Each source refresh hands `Exposition.update()` the families it owns under a key (for example
`("fleet", "prod")`). Every (key, family) pair becomes one part: its sample lines, rendered once
and deflated once (exporter.exposition.gzip_parts), shared by the classic text format and
OpenMetrics (their sample syntax is the same for the types used here). Only the HELP/TYPE headers
differ between the formats; they are parts of their own. Parts of the same family from several
keys (one per tenant) sit together under one header, so the body stays valid for any number of
tenants.

After each change an immutable `Snapshot` is swapped in: per format and encoding, the list of
parts' bytes to write and, for gzip, the header and trailer (the CRC-32 combined from the parts'
CRCs). A scrape picks the snapshot without a lock and writes those bytes; it never renders, joins
or compresses.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample

from exporter.exposition import memtrim
from exporter.exposition.gzip_parts import (
    EMPTY_RUN,
    GZIP_HEADER,
    Part,
    Run,
    RunTree,
    append,
    combine,
    deflate_part,
    trailer,
)
from exporter.vocab import MAX_LABEL_VALUE, cap_label

TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
_EOF = deflate_part(b"# EOF\n")
_EOF_RUN = combine((_EOF,))
_KEEP_SAMPLES = 4096
_ENCODE_BATCH = 8192
_RELEASE_AFTER = 16 << 20
"""Bytes of replaced parts after which freed memory is handed back to the system."""


def format_value(value: float) -> str:
    """A sample value as Prometheus' Go parser expects it."""
    value = float(value)
    if value == math.inf:
        return "+Inf"
    if value == -math.inf:
        return "-Inf"
    if math.isnan(value):
        return "NaN"
    if value.is_integer() and abs(value) < 1e15:
        return f"{int(value)}.0"
    return repr(float(value))


_SURROGATE = re.compile("[\ud800-\udfff]")


def escape_label_value(value: str) -> str:
    # The families cap upstream text when they derive it (exporter.vocab.cap_label); this is
    # the same rule, for any value that did not pass through a derivation.
    if len(value) > MAX_LABEL_VALUE:
        value = cap_label(value)
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


@dataclass(frozen=True, slots=True)
class Rendered:
    """One family's samples from one key: the part, and the hashes of its series identities
    (name and labels) so that no series appears twice in the body."""

    name: str
    kind: str
    help: str
    part: Part
    series: frozenset[int]
    samples: list[Sample] | None = None
    """The samples it was rendered from, kept for small families only: a republished family
    that compares equal is not rendered again (health and SLA families are republished whole
    when one of their series changes)."""
    source: object | None = None
    """For a PreRendered family, the rows it was written from: compared the same way."""


def render_lines(family: Metric, exclude: frozenset[int] = frozenset()) -> tuple[bytes, set[int]]:
    """Sample lines of one family; `_created` samples are left out (they carry no information
    for cached gauges and double the size of counters). A series seen before in this family (or
    listed in `exclude`) is dropped: capping label values may make two series equal.

    Hot path at 100,000 agents (300,000 lines): samples with the label names of the previous
    one are filled into a format template, checked for anything to escape or cap at once on
    the whole series rather than per value, and lines are encoded a batch at a time, so no
    single join of tens of megabytes holds the GIL against a scrape."""
    chunks: list[bytes] = []
    lines: list[str] = []
    append = lines.append
    seen: set[int] = set()
    label_cache: dict[tuple[tuple[str, str], ...], str] = {}
    formatted: dict[float, str] = {}
    template_for: tuple[str, tuple[str, ...]] | None = None
    template = ""
    quotes = 0
    overhead = 0
    for sample in family.samples:
        name = sample.name
        if name.endswith("_created"):
            continue
        labels = sample.labels
        if labels:
            names = tuple(labels)
            if template_for != (name, names):
                template_for = (name, names)
                template = name + "{" + ",".join(f'{k}="%s"' for k in names) + "}"
                quotes = 2 * len(names)
                overhead = len(template) - 2 * len(names)
            candidate = template % tuple(labels.values())
            plain = (
                "\\" not in candidate
                and "\n" not in candidate
                and candidate.count('"') == quotes
                and (
                    len(candidate) - overhead <= MAX_LABEL_VALUE
                    or max(map(len, labels.values())) <= MAX_LABEL_VALUE
                )
            )
            series = candidate if plain else name + _rendered_labels(labels, label_cache)
        else:
            series = name
        identity = hash(series)
        if identity in seen or identity in exclude:
            continue
        seen.add(identity)
        value = sample.value
        text = formatted.get(value)
        if text is None:
            text = format_value(value)
            if len(formatted) < 256:
                formatted[value] = text
        append(f"{series} {text}\n")
        if len(lines) >= _ENCODE_BATCH:
            chunks.append(_encoded("".join(lines)))
            lines.clear()
    if lines:
        chunks.append(_encoded("".join(lines)))
    return _joined(chunks), seen


def _encoded(text: str) -> bytes:
    """UTF-8 of rendered lines. A lone surrogate from upstream text is written as U+FFFD, so
    the body stays UTF-8 and the other series are kept (`_joined` then drops repeated lines)."""
    try:
        return text.encode()
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text).encode() + _REPLACED


_REPLACED = b"\x00"
"""Marks a chunk in which a surrogate was replaced (never in rendered text otherwise)."""


def _joined(chunks: list[bytes]) -> bytes:
    """The chunks as one part; where surrogates were replaced, two series that became equal
    keep one line."""
    if not any(chunk.endswith(_REPLACED) for chunk in chunks):
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)
    lines = b"".join(chunk.removesuffix(_REPLACED) for chunk in chunks).splitlines(keepends=True)
    return b"".join(dict.fromkeys(lines))


Rows = list[tuple[tuple[str, ...], float]]
"""Label values (in label order, after the family's constant ones) and a value, per series."""


class PreRendered(Metric):
    """A gauge family given as rows of label values (`rendered_gauge`), for hot paths with one
    series per agent: its lines are written from the rows in one pass, with no
    prometheus_client sample per series, and not at all when the rows equal those the key's
    part was written from (at rest a fleet's `agent_info` does not change between refreshes).
    It has no `samples`."""

    def __init__(
        self,
        name: str,
        documentation: str,
        label_names: tuple[str, ...],
        rows: Rows,
        constant: tuple[str, ...] = (),
    ) -> None:
        super().__init__(name, documentation, "gauge")
        self.label_names = label_names
        self.constant = constant
        self.rows = rows
        self._rendered: tuple[bytes, frozenset[int]] | None = None

    @property
    def source(self) -> tuple[tuple[str, ...], tuple[str, ...], Rows]:
        """What the lines follow from: equal sources give equal lines."""
        return self.label_names, self.constant, self.rows

    def rendered(self) -> tuple[bytes, frozenset[int]]:
        """The lines, and the hashes of their series (written once, on first use)."""
        if self._rendered is None:
            self._rendered = _render_rows(self.name, self.label_names, self.rows, self.constant)
        return self._rendered


def rendered_gauge(
    name: str,
    documentation: str,
    label_names: tuple[str, ...],
    rows: Iterable[tuple[tuple[str, ...], float]],
    constant: tuple[str, ...] = (),
) -> PreRendered:
    """A gauge family of `rows` (label values in `label_names` order after the `constant`
    values every row shares, and a value), written as `render_lines` renders samples: values
    escaped and capped, a repeated series dropped."""
    return PreRendered(name, documentation, label_names, list(rows), constant)


def _render_rows(
    name: str, label_names: tuple[str, ...], rows: Rows, constant: tuple[str, ...]
) -> tuple[bytes, frozenset[int]]:
    fixed = ",".join(
        f'{k}="{escape_label_value(v)}"' for k, v in zip(label_names, constant, strict=False)
    )
    varying = label_names[len(constant) :]
    fields = [fixed.replace("%", "%%")] if fixed else []
    fields += [f'{k}="%s"' for k in varying]
    template = name + "{" + ",".join(fields) + "}"
    empty = template % (("",) * len(varying))
    marks = tuple(empty.count(c) for c in _ESCAPED)

    def slow(values: tuple[str, ...]) -> str:
        labels = dict(zip(label_names, (*constant, *values), strict=True))
        return name + _rendered_labels(labels, {})

    chunks: list[bytes] = []
    seen: set[int] = set()
    formatted: dict[float, str] = {}
    for start in range(0, len(rows), _ENCODE_BATCH):
        batch = rows[start : start + _ENCODE_BATCH]
        chunks.append(_rendered_batch(batch, template, empty, marks, slow, seen, formatted))
    return _joined(chunks) if chunks else b"", frozenset(seen)


_ESCAPED = ('"', "\\", "\n")
"""What a label value may hold that needs escaping (capping aside)."""


def _rendered_batch(
    batch: list[tuple[tuple[str, ...], float]],
    template: str,
    empty: str,
    marks: tuple[int, ...],
    slow: Callable[[tuple[str, ...]], str],
    seen: set[int],
    formatted: dict[float, str],
) -> bytes:
    """Lines of `batch`, filled into `template` and checked for characters to escape once
    per batch (escaping only ever adds quotes, backslashes or newlines, so equal counts mean
    none was needed); a batch that has some is rendered again row by row, escaping."""
    lines: list[str] = []
    append = lines.append
    added: list[int] = []
    room = MAX_LABEL_VALUE + len(empty)
    for escaping in (False, True):
        escaped: list[str] = []  # rows rendered by `slow`: their marks are counted apart
        plain = 0
        for values, value in batch:
            series = template % values
            fast = not escaping and (
                len(series) <= room or max(map(len, values)) <= MAX_LABEL_VALUE
            )
            if not fast:
                series = slow(values)
            identity = hash(series)
            if identity in seen:
                continue
            seen.add(identity)
            added.append(identity)
            if fast:
                plain += 1
            else:
                escaped.append(series)
            text = formatted.get(value)
            if text is None:
                text = format_value(value)
                if len(formatted) < 256:
                    formatted[value] = text
            append(f"{series} {text}\n")
        joined = "".join(lines)
        if escaping:
            return _encoded(joined)
        slow_marks = "".join(escaped)
        if all(
            joined.count(mark)
            == count * plain + slow_marks.count(mark) + (mark == "\n") * len(lines)
            for mark, count in zip(_ESCAPED, marks, strict=True)
        ):
            return _encoded(joined)
        seen.difference_update(added)
        lines.clear()
        added.clear()
    raise AssertionError("unreachable")


def _without(lines: bytes, exclude: frozenset[int]) -> tuple[bytes, set[int]]:
    """Pre-rendered `lines` less the series in `exclude` (rare: another key exports them)."""
    kept: list[bytes] = []
    seen: set[int] = set()
    for line in lines.splitlines(keepends=True):
        identity = hash(line.rsplit(b" ", 1)[0].decode())
        if identity not in exclude:
            kept.append(line)
            seen.add(identity)
    return b"".join(kept), seen


def _rendered_labels(labels: dict[str, str], cache: dict[tuple[tuple[str, str], ...], str]) -> str:
    """`{k="v",...}` with every value escaped and capped (repeated label sets are only common
    in small families: the cache stays small)."""
    key = tuple(labels.items())
    rendered = cache.get(key)
    if rendered is None:
        rendered = "{" + ",".join(f'{k}="{escape_label_value(v)}"' for k, v in labels.items()) + "}"
        if len(cache) < 64:
            cache[key] = rendered
    return rendered


def render_family(
    family: Metric, exclude: frozenset[int] = frozenset(), previous: Rendered | None = None
) -> Rendered:
    """Render and deflate; an unchanged family reuses `previous` (no compression, no CRC):
    sources republish all their families, most of them unchanged."""
    same_help = previous is not None and previous.help == family.documentation
    source = None
    if isinstance(family, PreRendered):
        if same_help and not exclude and previous and previous.source == family.source:
            return previous
        lines, series = family.rendered()
        raw, seen = _without(lines, exclude) if exclude else (lines, series)
        kept = None
        source = None if exclude else family.source
    else:
        if same_help and not exclude and previous and previous.samples == family.samples:
            return previous
        raw, seen = render_lines(family, exclude)
        kept = family.samples if len(family.samples) <= _KEEP_SAMPLES and not exclude else None
    if same_help and previous and previous.part.raw == raw:
        part = previous.part
    else:
        part = deflate_part(raw)
    return Rendered(
        family.name, family.type, family.documentation, part, frozenset(seen), kept, source
    )


def _headers(rendered: Rendered) -> tuple[Part, Part]:
    """The family's HELP/TYPE lines in the text format and in OpenMetrics (where a counter's
    family name has no `_total` and the unknown type is spelled `unknown`)."""
    help_text = _escape_help(rendered.help)
    typed = rendered.kind in ("counter", "gauge", "histogram")
    text_name = rendered.name + "_total" if rendered.kind == "counter" else rendered.name
    text_kind = rendered.kind if typed else "untyped"
    om_kind = rendered.kind if typed else "unknown"
    text = f"# HELP {text_name} {help_text}\n# TYPE {text_name} {text_kind}\n"
    om = f"# HELP {rendered.name} {help_text}\n# TYPE {rendered.name} {om_kind}\n"
    return deflate_part(text.encode()), deflate_part(om.encode())


@dataclass(frozen=True, slots=True)
class Body:
    """What a scrape writes, in order: `chunks` (already in the wanted format and encoding)."""

    chunks: tuple[bytes, ...]
    length: int

    def join(self) -> bytes:
        return b"".join(self.chunks)

    def batches(self, size: int = 1 << 18) -> Iterator[bytes]:
        """The chunks as writes of about `size` bytes: small parts are joined (a copy of at
        most `size` bytes), large ones go out as they are."""
        pending: list[bytes] = []
        pending_size = 0
        for chunk in self.chunks:
            if len(chunk) >= size:
                if pending:
                    yield b"".join(pending)
                    pending, pending_size = [], 0
                yield chunk
                continue
            pending.append(chunk)
            pending_size += len(chunk)
            if pending_size >= size:
                yield b"".join(pending)
                pending, pending_size = [], 0
        if pending:
            yield b"".join(pending)


@dataclass(frozen=True, slots=True)
class Snapshot:
    text: Body
    text_gzip: Body
    openmetrics: Body
    openmetrics_gzip: Body
    generation: int

    def body(self, openmetrics: bool, gzipped: bool) -> Body:
        if openmetrics:
            return self.openmetrics_gzip if gzipped else self.openmetrics
        return self.text_gzip if gzipped else self.text


class _Group:
    """One family name: its headers and its parts, in the order their keys first published.

    Each key holds a slot: its part's bytes in `raw` and `deflated` (what the bodies list) and
    its run in a CRC tree, so replacing one key's part re-combines O(log keys) runs. A key that
    leaves empties its slot; the slots are compacted once most of them are empty."""

    __slots__ = (
        "deflated",
        "headers",
        "kind",
        "name",
        "om_run",
        "owners",
        "parts",
        "raw",
        "slots",
        "stale",
        "text_run",
        "tree",
    )

    def __init__(self, first: Rendered) -> None:
        self.name = first.name
        self.kind = first.kind
        self.headers = _headers(first)
        self.parts: dict[Hashable, Rendered] = {}
        self.slots: dict[Hashable, int] = {}
        self.raw: list[bytes] = []
        self.deflated: list[bytes] = []
        self.tree = RunTree()
        self.text_run: Run = EMPTY_RUN
        self.om_run: Run = EMPTY_RUN
        self.stale = True
        """The header-and-parts runs are combined again at the next snapshot."""
        self.owners: dict[int, Hashable] = {}
        """Series hash -> the key that exports it (the first to publish it)."""

    def put(self, key: Hashable, item: Rendered) -> Rendered | None:
        """Set `key`'s part; the series it no longer has are free for other keys."""
        old = self.parts.get(key)
        self.parts[key] = item
        part = item.part
        slot = self.slots.get(key)
        if slot is None:  # a new key goes last; a replaced one keeps its place
            self.slots[key] = self.tree.append(part)
            self.raw.append(part.raw)
            self.deflated.append(part.deflated)
        else:
            self.tree.set(slot, part)
            self.raw[slot] = part.raw
            self.deflated[slot] = part.deflated
        self.stale = True
        owners = self.owners
        if old is not None:
            for series in old.series - item.series:
                if owners.get(series) == key:
                    del owners[series]
        for series in item.series:
            owners.setdefault(series, key)
        return old

    def drop(self, key: Hashable) -> Rendered | None:
        old = self.parts.pop(key, None)
        if old is None:
            return None
        owners = self.owners
        for series in old.series:
            if owners.get(series) == key:
                del owners[series]
        slot = self.slots.pop(key)
        self.tree.set(slot, EMPTY_RUN)
        self.raw[slot] = self.deflated[slot] = b""
        self.stale = True
        if len(self.raw) > 8 and len(self.slots) < len(self.raw) // 2:
            self._compact()
        return old

    def _compact(self) -> None:
        order = sorted(self.slots, key=self.slots.__getitem__)
        self.slots = {key: slot for slot, key in enumerate(order)}
        parts = [self.parts[key].part for key in order]
        self.raw = [part.raw for part in parts]
        self.deflated = [part.deflated for part in parts]
        self.tree.rebuild(list(parts))

    def runs(self) -> tuple[Run, Run]:
        """(text, OpenMetrics) runs of the header and the parts, combined again only when a
        part changed since."""
        if self.stale:
            samples = self.tree.run
            self.text_run = append(self.headers[0], samples)
            self.om_run = append(self.headers[1], samples)
            self.stale = False
        return self.text_run, self.om_run


def _gzip_body(runs: list[Run], deflated: list[bytes], tail: bytes = b"") -> Body:
    whole = combine(runs, shifted=False)
    chunks = (GZIP_HEADER, *deflated, tail, trailer(whole.crc, whole.size))
    return Body(chunks, sum(map(len, chunks)))


def _identity_body(raw: list[bytes]) -> Body:
    chunks = tuple(raw)
    return Body(chunks, sum(map(len, chunks)))


class Exposition:
    """The current /metrics body, in both formats and both encodings, from keyed family sets.

    `update()` renders and compresses in the caller's thread (sources with large family sets
    call it from a worker thread), then swaps parts in under a short lock that only publishers
    and the first reader after a change take. The snapshot is assembled on that first read, not
    on every publish: an exporter at rest publishes ten times a second (probes, their health,
    SLA ticks) and is scraped every 15-60 s, so chunk lists and the whole-body CRC are built
    once per scrape at most. Assembling costs no rendering, joining or compression: a list of
    the parts already made and one CRC combination per family. `snapshot()` returns an
    immutable object; reading an unchanged one takes no lock.
    """

    def __init__(self) -> None:
        self._keys: dict[Hashable, list[str]] = {}
        self._groups: dict[str, _Group] = {}
        self._lock = threading.Lock()
        self._generation = 0
        self._snapshot = self._build(0)

    @property
    def generation(self) -> int:
        """Counts the publishes that changed the body."""
        return self._generation

    def update(self, key: Hashable, families: Iterable[Metric]) -> None:
        """Replace the families owned by `key`: render outside the lock, swap inside it."""
        by_name: dict[str, Metric] = {}
        for family in families:
            if family.name in by_name:  # one family listed twice under a key: merge its samples
                merged = by_name[family.name]
                by_name[family.name] = _merged(merged, family)
            else:
                by_name[family.name] = family
        rendered = {
            name: render_family(family, previous=self._current(key, name))
            for name, family in by_name.items()
        }
        with self._lock:
            for name, item in rendered.items():
                taken = self._taken_elsewhere(key, name, item.series)
                if taken:  # rare: another key already exports some of these series
                    rendered[name] = render_family(by_name[name], taken)
            freed, changed = self._replace(key, rendered)
            if changed:  # most republishes change nothing: the snapshot stays then
                self._generation += 1
        if freed >= _RELEASE_AFTER:
            memtrim.release()

    def remove(self, key: Hashable) -> None:
        with self._lock:
            if key not in self._keys:
                return
            freed, _ = self._replace(key, None)
            self._generation += 1
        if freed >= _RELEASE_AFTER:
            memtrim.release()

    def _current(self, key: Hashable, name: str) -> Rendered | None:
        """The part `key` holds for `name` now (read without the lock: only ever compared)."""
        group = self._groups.get(name)
        return group.parts.get(key) if group is not None else None

    def _taken_elsewhere(self, key: Hashable, name: str, series: frozenset[int]) -> frozenset[int]:
        """The series of `series` that another key of the family already exports: a look-up
        per series, not a scan of the family's other parts (300 of them for source health)."""
        group = self._groups.get(name)
        if group is None:
            return frozenset()
        owners = group.owners
        return frozenset(h for h in series if owners.get(h, key) != key)

    def _replace(self, key: Hashable, rendered: dict[str, Rendered] | None) -> tuple[int, bool]:
        """Swap the parts of `key`; returns the size of the parts dropped and whether anything
        changed. An unchanged family comes back from `render_family` as the very object it
        replaces and is left alone."""
        freed = 0
        changed = False
        new_names = list(rendered) if rendered else []
        for name in self._keys.get(key, []):
            if rendered is not None and name in rendered:
                continue
            group = self._groups[name]
            old = group.drop(key)
            if old is not None:
                freed += old.part.size + len(old.part.deflated)
            changed = True
            if not group.parts:
                del self._groups[name]
        if rendered is None:
            self._keys.pop(key, None)
            return freed, changed
        for name, item in rendered.items():
            target = self._groups.get(name)
            if target is None:
                target = self._groups[name] = _Group(item)
            if target.parts.get(key) is item:
                continue
            old = target.put(key, item)
            if old is not None:
                freed += old.part.size + len(old.part.deflated)
            changed = True
        self._keys[key] = new_names
        return freed, changed

    def _build(self, generation: int) -> Snapshot:
        groups = list(self._groups.values())
        text_raw: list[bytes] = []
        om_raw: list[bytes] = []
        text_z: list[bytes] = []
        om_z: list[bytes] = []
        text_runs: list[Run] = []
        om_runs: list[Run] = []
        for group in groups:
            text_head, om_head = group.headers
            text_raw.append(text_head.raw)
            text_raw += group.raw
            om_raw.append(om_head.raw)
            om_raw += group.raw
            text_z.append(text_head.deflated)
            text_z += group.deflated
            om_z.append(om_head.deflated)
            om_z += group.deflated
            text_run, om_run = group.runs()
            text_runs.append(text_run)
            om_runs.append(om_run)
        om_raw.append(_EOF.raw)
        om_runs.append(_EOF_RUN)
        return Snapshot(
            text=_identity_body(text_raw),
            text_gzip=_gzip_body(text_runs, text_z),
            openmetrics=_identity_body(om_raw),
            openmetrics_gzip=_gzip_body(om_runs, om_z, _EOF.deflated),
            generation=generation,
        )

    def snapshot(self) -> Snapshot:
        """The body as of the last change; assembled here if a publish changed it since."""
        snapshot = self._snapshot
        if snapshot.generation == self._generation:
            return snapshot
        with self._lock:
            if self._snapshot.generation != self._generation:
                self._snapshot = self._build(self._generation)
            return self._snapshot

    def body(self, openmetrics: bool = False, gzipped: bool = False) -> bytes:
        """The whole body in one piece (tests and tools; the server writes the chunks)."""
        return self.snapshot().body(openmetrics, gzipped).join()


def _merged(first: Metric, second: Metric) -> Metric:
    if isinstance(first, PreRendered) and isinstance(second, PreRendered):
        assert (first.label_names, first.constant) == (second.label_names, second.constant)
        rows = [*first.rows, *second.rows]  # a repeated series keeps its first row
        return PreRendered(first.name, first.documentation, first.label_names, rows, first.constant)
    assert not isinstance(first, PreRendered) and not isinstance(second, PreRendered)
    merged = Metric(first.name, first.documentation, first.type)
    merged.samples = [*first.samples, *second.samples]
    return merged
