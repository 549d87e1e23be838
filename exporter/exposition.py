"""Pre-rendered exposition: families are rendered once per refresh, scrapes copy bytes.

Each source refresh hands `Exposition.update()` the families it owns under a key (for example
`("fleet", "prod")`). The sample lines of each family are rendered once, shared by the classic
text format and OpenMetrics (their sample syntax is the same for the types used here); only the
HELP/TYPE headers differ. Families with the same name from several keys (one per tenant) are
merged under one header when the body is assembled, so the output stays valid for any number of
tenants. Gzip is done at most once per body change, on the first scrape that asks for it.
"""

from __future__ import annotations

import gzip
import math
import threading
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

from prometheus_client.metrics_core import Metric

TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"


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


def escape_label_value(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


@dataclass(frozen=True)
class RenderedFamily:
    name: str
    kind: str
    help: str
    body: bytes


def render_family(family: Metric) -> RenderedFamily:
    """Sample lines of one family; `_created` samples are left out (they carry no information
    for cached gauges and double the size of counters)."""
    lines: list[str] = []
    append = lines.append
    label_cache: dict[tuple[tuple[str, str], ...], str] = {}
    for sample in family.samples:
        if sample.name.endswith("_created"):
            continue
        labels = sample.labels
        if labels:
            key = tuple(labels.items())
            rendered = label_cache.get(key)
            if rendered is None:
                rendered = (
                    "{"
                    + ",".join(f'{k}="{escape_label_value(v)}"' for k, v in labels.items())
                    + "}"
                )
                if len(label_cache) < 64:  # repeated label sets are only common in small families
                    label_cache[key] = rendered
            append(f"{sample.name}{rendered} {format_value(sample.value)}\n")
        else:
            append(f"{sample.name} {format_value(sample.value)}\n")
    return RenderedFamily(family.name, family.type, family.documentation, "".join(lines).encode())


def _text_header(rendered: RenderedFamily) -> bytes:
    name = rendered.name + "_total" if rendered.kind == "counter" else rendered.name
    kind = rendered.kind if rendered.kind in ("counter", "gauge", "histogram") else "untyped"
    return f"# HELP {name} {_escape_help(rendered.help)}\n# TYPE {name} {kind}\n".encode()


def _openmetrics_header(rendered: RenderedFamily) -> bytes:
    kind = rendered.kind if rendered.kind in ("counter", "gauge", "histogram") else "unknown"
    name = rendered.name
    return f"# HELP {name} {_escape_help(rendered.help)}\n# TYPE {name} {kind}\n".encode()


class Exposition:
    """The current /metrics body, in both formats, assembled from keyed family sets.

    `update()` runs on the event loop after a refresh (or in a worker thread for large fleets);
    `body()` is what a scrape calls. A lock keeps the two consistent across threads.
    """

    def __init__(self) -> None:
        self._parts: dict[Hashable, list[RenderedFamily]] = {}
        self._order: list[Hashable] = []
        self._lock = threading.Lock()
        self._bodies: dict[tuple[bool, bool], bytes] = {}
        self.generation = 0

    def update(self, key: Hashable, families: Iterable[Metric]) -> None:
        """Replace the families owned by `key` (render outside the lock, swap inside it)."""
        rendered = [render_family(f) for f in families]
        with self._lock:
            if key not in self._parts:
                self._order.append(key)
            self._parts[key] = rendered
            self._assemble()

    def remove(self, key: Hashable) -> None:
        with self._lock:
            if key in self._parts:
                del self._parts[key]
                self._order.remove(key)
                self._assemble()

    def _assemble(self) -> None:
        merged: dict[str, list[RenderedFamily]] = {}
        for key in self._order:
            for rendered in self._parts[key]:
                merged.setdefault(rendered.name, []).append(rendered)
        text: list[bytes] = []
        openmetrics: list[bytes] = []
        for group in merged.values():
            first = group[0]
            bodies = [r.body for r in group]
            text.append(_text_header(first))
            text.extend(bodies)
            openmetrics.append(_openmetrics_header(first))
            openmetrics.extend(bodies)
        openmetrics.append(b"# EOF\n")
        self._bodies = {(False, False): b"".join(text), (True, False): b"".join(openmetrics)}
        self.generation += 1

    def body(self, openmetrics: bool = False, gzipped: bool = False) -> bytes:
        """The rendered body; the gzip variant is compressed once per change, then cached."""
        with self._lock:
            bodies = self._bodies
            if not bodies:
                self._assemble()
                bodies = self._bodies
            cached = bodies.get((openmetrics, gzipped))
            if cached is None:
                cached = gzip.compress(bodies[(openmetrics, False)], compresslevel=5, mtime=0)
                bodies[(openmetrics, gzipped)] = cached
            return cached
