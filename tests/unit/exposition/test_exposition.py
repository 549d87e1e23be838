"""The pre-rendered exposition: merging per-tenant parts, escaping, both formats, gzip cache."""

from __future__ import annotations

import gzip
import math
import random
import shutil
import subprocess
import zlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import Counter
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families

from exporter import vocab
from exporter.core import catalogue as m
from exporter.core.scheduler import next_delay
from exporter.core.source import Source
from exporter.exposition import body as exposition_module
from exporter.exposition import gzip_parts as gzipparts
from exporter.exposition import memtrim
from exporter.exposition.body import (
    Exposition,
    escape_label_value,
    format_value,
    rendered_gauge,
)
from exporter.vocab import MAX_LABEL_VALUE, cap_label
from tests.conftest import parse_samples, value
from tests.exposition_fixtures import tenant_families


def test_same_family_from_two_tenants_has_one_header() -> None:
    exposition = Exposition()
    exposition.update(("probe", "a"), [m.PROBE_SUCCESS.single(["a"], 1)])
    exposition.update(
        ("status",), [m.STATUS_INDICATOR.state_set([(["p"], "none")], vocab.STATUS_INDICATORS)]
    )
    exposition.update(("probe", "b"), [m.PROBE_SUCCESS.single(["b"], 0)])
    text = exposition.body().decode()
    assert text.count("# TYPE teleport_cloud_probe_success gauge") == 1
    samples = parse_samples(text)
    assert value(samples, "teleport_cloud_probe_success", tenant="a") == 1
    assert value(samples, "teleport_cloud_probe_success", tenant="b") == 0
    # a family's samples stay together even though tenant b's part came after another family
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    probe = [i for i, line in enumerate(lines) if line.startswith("teleport_cloud_probe_success")]
    assert probe == list(range(probe[0], probe[0] + 2))


def test_replacing_and_removing_a_part() -> None:
    exposition = Exposition()
    exposition.update("k", [m.PROBE_SUCCESS.single(["a"], 1)])
    exposition.update("k", [m.PROBE_SUCCESS.single(["a"], 0)])
    assert (
        value(parse_samples(exposition.body().decode()), "teleport_cloud_probe_success", tenant="a")
        == 0
    )
    exposition.remove("k")
    assert "teleport_cloud_probe_success" not in exposition.body().decode()


def test_label_values_are_escaped() -> None:
    exposition = Exposition()
    nasty = 'host "quoted"\\back\nslash'
    exposition.update("k", [m.AGENT_LAST_SEEN.single(["t", nasty], 1.5)])
    samples = parse_samples(exposition.body().decode())
    assert (
        value(
            samples, "teleport_cloud_agent_last_seen_timestamp_seconds", tenant="t", server_id=nasty
        )
        == 1.5
    )


def test_openmetrics_body_parses_and_names_counters_without_total() -> None:
    exposition = Exposition()
    errors = Counter(
        m.SOURCE_ERRORS.name, m.SOURCE_ERRORS.help, m.SOURCE_ERRORS.labels, registry=None
    )
    errors.labels("ping", "a", "timeout").inc(3)
    exposition.update("k", [*errors.collect(), m.PROBE_DURATION.single(["a"], 0.25)])
    om = exposition.body(openmetrics=True).decode()
    assert om.endswith("# EOF\n")
    assert "# TYPE teleport_cloud_source_errors counter" in om
    assert "_created" not in om
    families = {f.name: f for f in parse_om(om)}  # type: ignore[no-untyped-call]
    assert families["teleport_cloud_source_errors"].samples[0].value == 3
    text = exposition.body().decode()
    assert "# TYPE teleport_cloud_source_errors_total counter" in text


@pytest.fixture
def compressed(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every piece the exposition deflates from now on."""
    seen: list[bytes] = []
    real = gzipparts.deflate_part

    def spy(raw: bytes, level: int | None = None) -> gzipparts.Part:
        seen.append(raw)
        return real(raw, level)

    monkeypatch.setattr(exposition_module, "deflate_part", spy)
    return seen


def test_a_publish_compresses_only_what_it_changed(compressed: list[bytes]) -> None:
    exposition = Exposition()
    for tenant in ("a", "b", "c"):
        exposition.update(("probe", tenant), [m.PROBE_SUCCESS.single([tenant], 1)])
    before = exposition.snapshot()
    compressed.clear()
    exposition.update(("probe", "b"), [m.PROBE_SUCCESS.single(["b"], 0)])
    assert compressed == [b'teleport_cloud_probe_success{tenant="b"} 0.0\n']
    after = exposition.snapshot()
    # the other tenants' compressed parts are the very same objects, not copies
    shared = {id(c) for c in before.text_gzip.chunks} & {id(c) for c in after.text_gzip.chunks}
    assert len(shared) >= 3  # a's and c's parts and the family header
    assert gzip.decompress(after.text_gzip.join()) == after.text.join()
    assert after.generation == before.generation + 1


def test_an_unchanged_family_is_not_compressed_again(compressed: list[bytes]) -> None:
    exposition = Exposition()
    families = [m.PROBE_SUCCESS.single(["a"], 1), m.PROBE_DURATION.single(["a"], 0.5)]
    exposition.update("a", families)
    compressed.clear()
    exposition.update("a", [m.PROBE_SUCCESS.single(["a"], 1), m.PROBE_DURATION.single(["a"], 0.7)])
    assert compressed == [b'teleport_cloud_probe_duration_seconds{tenant="a"} 0.7\n']
    assert gzip.decompress(exposition.body(gzipped=True)) == exposition.body()


def test_an_unchanged_republish_keeps_the_snapshot_and_a_change_combines_a_path_of_one_tree(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exposition = Exposition()
    sources = [("ping", f"t{i}") for i in range(300)]
    for kind, target in sources:
        exposition.update(
            ("health", kind, target),
            [m.SOURCE_UP.single([kind, target], 1), m.SOURCE_DURATION.single([kind, target], 1)],
        )
    before = exposition.snapshot()
    combined: list[int] = []
    real = gzipparts.append

    def spy(first: gzipparts.Part | gzipparts.Run, second: gzipparts.Part | gzipparts.Run) -> Any:
        combined.append(first.size + second.size)
        return real(first, second)

    monkeypatch.setattr(gzipparts, "append", spy)
    monkeypatch.setattr(exposition_module, "append", spy)
    exposition.update(
        ("health", "ping", "t7"),
        [m.SOURCE_UP.single(["ping", "t7"], 1), m.SOURCE_DURATION.single(["ping", "t7"], 1)],
    )
    assert exposition.snapshot() is before and combined == []
    exposition.update(
        ("health", "ping", "t7"),
        [m.SOURCE_UP.single(["ping", "t7"], 1), m.SOURCE_DURATION.single(["ping", "t7"], 2)],
    )
    # one leaf of one family's tree changed: the 9 nodes above it (512 slots), not 300 parts
    assert len(combined) == 9
    assert [g.name for g in exposition._groups.values() if g.stale] == [m.SOURCE_DURATION.name]
    after = exposition.snapshot()
    assert len(combined) == 9 + 2  # and that family's header, in text and in OpenMetrics
    assert after.generation == before.generation + 1
    assert gzip.decompress(after.text_gzip.join()) == after.text.join()
    assert b'source="ping",target="t7"} 2.0' in after.text.join()


def test_snapshots_are_assembled_on_read_not_per_publish(monkeypatch: pytest.MonkeyPatch) -> None:
    exposition = Exposition()
    builds: list[int] = []
    real = Exposition._build

    def spy(self: Exposition, generation: int) -> exposition_module.Snapshot:
        builds.append(generation)
        return real(self, generation)

    monkeypatch.setattr(Exposition, "_build", spy)
    for seconds in range(5):
        exposition.update(("probe", "a"), [m.PROBE_DURATION.single(["a"], seconds)])
    assert builds == []
    assert b'{tenant="a"} 4.0' in exposition.body()
    assert exposition.body(gzipped=True) and builds == [5]


def test_text_and_openmetrics_share_sample_parts() -> None:
    exposition = Exposition()
    exposition.update(("fleet", "t"), tenant_families("t", 50, seed=1))
    snapshot = exposition.snapshot()
    text = {id(c) for c in snapshot.text.chunks}
    om = {id(c) for c in snapshot.openmetrics.chunks}
    samples = [c for c in snapshot.text.chunks if not c.startswith(b"# HELP")]
    assert samples and all(id(c) in om for c in samples)
    assert not {id(c) for c in snapshot.openmetrics.chunks if c.startswith(b"# HELP")} & text


def test_values_format_as_go_parses_them() -> None:
    assert format_value(1) == "1.0"
    assert format_value(0.1) == "0.1"
    assert format_value(math.inf) == "+Inf"
    assert format_value(-math.inf) == "-Inf"
    assert format_value(math.nan) == "NaN"
    assert format_value(1.7e9) == "1700000000.0"


class _Fixed(Source):
    kind = "status_page"

    async def refresh(self) -> None:
        raise NotImplementedError


class _Probe(_Fixed):
    kind = "ping"
    backoff = False


def test_backoff_stretches_to_four_intervals_but_not_for_the_probe() -> None:
    rng = random.Random(1)
    polled, probe = _Fixed("p", 60, 10), _Probe("t", 15, 5)
    delays = [next_delay(polled, failures, None, rng) for failures in range(6)]
    assert 54 <= delays[0] <= 66 and 108 <= delays[2] <= 132
    assert all(216 <= d <= 264 for d in delays[3:]), delays
    assert all(13.5 <= next_delay(probe, f, None, rng) <= 16.5 for f in range(6))
    assert next_delay(polled, 1, 900, rng) >= 900


PROMTOOL = shutil.which("promtool")


def _promtool(body: bytes) -> str:
    assert PROMTOOL
    checked = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=body, capture_output=True, timeout=120, check=False
    )
    return (checked.stdout + checked.stderr).decode()


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed")
@pytest.mark.parametrize("tenants", [1, 50])
def test_bodies_pass_promtool(tenants: int) -> None:
    exposition = Exposition()
    for i in range(tenants):
        exposition.update(("tenant", i), tenant_families(f"t{i}", 40, seed=i + 1))
    text, om = exposition.body(), exposition.body(openmetrics=True)
    assert _promtool(text) == ""
    # promtool 2.42 lints the text format only: it reads an OpenMetrics counter's samples
    # (`x_total` under `# TYPE x counter`) as a family of their own. Every other rule must hold.
    counters = {f"{m.SOURCE_ERRORS.name}_total no help text"}
    assert set(_promtool(om).splitlines()) <= counters
    assert_valid(text, om)
    assert text.count(b"# TYPE teleport_cloud_agent_info gauge") == 1
    assert len(series_lines(text)) == len(series_lines(om[: -len(b"# EOF\n")]))
    assert sum(1 for _ in series_lines(text) if _.startswith("teleport_cloud_agent_info{")) == (
        40 * tenants
    )


def series_lines(body: bytes) -> list[str]:
    return [line for line in body.decode().split("\n") if line and not line.startswith("#")]


def assert_valid(text: bytes, om: bytes) -> None:
    """What Prometheus requires of a body, in both formats: parseable, one HELP and one TYPE
    per family, each family's samples together, no series twice, `# EOF` last in OpenMetrics."""
    for body in (text, om):
        lines = body.decode().split("\n")
        helps = [line.split(" ")[2] for line in lines if line.startswith("# HELP ")]
        types = [line.split(" ")[2] for line in lines if line.startswith("# TYPE ")]
        assert len(helps) == len(set(helps)) and helps == types
        identities = [line.rsplit(" ", 1)[0] for line in series_lines(body)]
        assert len(identities) == len(set(identities))
    assert om.endswith(b"# EOF\n") and om.count(b"# EOF") == 1
    list(text_string_to_metric_families(text.decode()))
    list(parse_om(om.decode()))  # type: ignore[no-untyped-call]


def decoded_as_one_member(gzipped: bytes) -> bytes:
    """Decompress as curl and httpx do: one gzip member, anything after it ignored."""
    decompressor = zlib.decompressobj(wbits=31)
    data = decompressor.decompress(gzipped)
    assert decompressor.eof and decompressor.unused_data == b""
    return data


def test_long_label_values_are_capped_and_stay_distinct() -> None:
    exposition = Exposition()
    prefix = "h" * 300
    family = GaugeMetricFamily("test_long", "Long labels.", labels=["id"])
    for suffix in ("a", "b", 'quo"te'):
        family.add_metric([prefix + suffix], 1)
    family.add_metric(["short"], 2)
    exposition.update("k", [family])
    samples = parse_samples(exposition.body().decode())
    ids = sorted(dict(labels)["id"] for _, labels in samples)
    assert len(ids) == 4 and all(len(i) <= MAX_LABEL_VALUE for i in ids)
    assert "short" in ids and len({i for i in ids if i.startswith("hhh")}) == 3
    assert cap_label(prefix + "a") in ids


def test_a_series_exported_by_two_keys_appears_once() -> None:
    exposition = Exposition()
    exposition.update("a", [m.PROBE_SUCCESS.single(["same"], 1)])
    exposition.update("b", [m.PROBE_SUCCESS.single(["same"], 0), m.PROBE_SUCCESS.single(["b"], 1)])
    text = exposition.body().decode()
    assert text.count('teleport_cloud_probe_success{tenant="same"}') == 1
    assert 'teleport_cloud_probe_success{tenant="b"} 1.0' in text
    assert text.count("# TYPE teleport_cloud_probe_success") == 1


_LABELS = st.one_of(
    st.sampled_from(["a", "b", "x" * 200 + "1", "x" * 200 + "2", 'q"\\\n']),
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=160),
)
_SAMPLES = st.lists(st.tuples(st.integers(0, 2), _LABELS, st.floats(allow_nan=False)), max_size=8)
_OPS = st.lists(
    st.tuples(st.sampled_from(["publish", "publish", "remove"]), st.integers(0, 3), _SAMPLES),
    min_size=1,
    max_size=12,
)


def _families(samples: list[tuple[int, str, float]]) -> list[Metric]:
    kinds: list[GaugeMetricFamily | CounterMetricFamily] = [
        GaugeMetricFamily("test_gauge", "A gauge.", labels=["tenant"]),
        CounterMetricFamily("test_events", "A counter.", labels=["tenant"]),
        GaugeMetricFamily("test_other", "Another\\ gauge\nwith a newline.", labels=["tenant"]),
    ]
    for index, label, number in samples:
        family = kinds[index]
        family.add_metric([label], abs(number) if index == 1 else number)
    return [f for i, f in enumerate(kinds) if any(s[0] == i for s in samples) or i == 2]


def _series_of(samples: list[tuple[int, str, float]]) -> set[str]:
    names = ("test_gauge", "test_events_total", "test_other")
    return {f'{names[i]}{{tenant="{escape_label_value(label)}"}}' for i, label, _ in samples}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_OPS)
def test_any_publish_sequence_gives_a_valid_body_that_gzip_decodes_to(
    ops: list[tuple[str, int, list[tuple[int, str, float]]]],
) -> None:
    exposition = Exposition()
    live: dict[int, set[str]] = {}
    for op, key, samples in ops:
        if op == "remove":
            exposition.remove(key)
            live.pop(key, None)
        else:
            exposition.update(key, _families(samples))
            live[key] = _series_of(samples)
        text, om = exposition.body(), exposition.body(openmetrics=True)
        assert decoded_as_one_member(exposition.body(gzipped=True)) == text
        assert decoded_as_one_member(exposition.body(openmetrics=True, gzipped=True)) == om
        assert gzip.decompress(exposition.body(gzipped=True)) == text
        assert_valid(text, om)
        exported = {line.rsplit(" ", 1)[0] for line in series_lines(text)}
        assert exported <= set().union(*live.values())
        if op == "publish":
            assert live[key] <= exported


@given(st.binary(max_size=300), st.binary(max_size=300))
def test_crc32_combine_matches_zlib(first: bytes, second: bytes) -> None:
    combined = gzipparts.crc32_combine(zlib.crc32(first), zlib.crc32(second), len(second))
    assert combined == zlib.crc32(first + second)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.binary(min_size=1, max_size=64), st.integers(0, 1200)), max_size=6))
def test_runs_of_long_and_short_parts_have_the_crc_of_the_whole(
    pieces: list[tuple[bytes, int]],
) -> None:
    """Parts on both sides of the short/long threshold, combined in one go and pairwise."""
    raws = [pattern * repeat for pattern, repeat in pieces]
    parts = [gzipparts.deflate_part(raw) for raw in raws]
    whole = b"".join(raws)
    assert gzipparts.combine(parts).crc == zlib.crc32(whole)
    assert gzipparts.combine(parts, shifted=False).crc == zlib.crc32(whole)
    run: gzipparts.Part | gzipparts.Run = gzipparts.EMPTY_RUN
    for part in parts:
        run = gzipparts.append(run, part)
    assert (run.crc, run.size) == (zlib.crc32(whole), len(whole))
    if run.size > gzipparts.SMALL:
        assert run.shift == gzipparts.crc32_shift(run.size)
    body = gzipparts.GZIP_HEADER + b"".join(p.deflated for p in parts)
    assert decoded_as_one_member(body + gzipparts.trailer(run.crc, run.size)) == whole


_PIECES = st.tuples(st.binary(min_size=1, max_size=16), st.integers(0, 2200))
_TREE_OPS = st.lists(
    st.tuples(st.sampled_from(["append", "set", "empty", "rebuild"]), st.integers(0, 40), _PIECES),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(_TREE_OPS)
def test_a_crc_tree_gives_the_crc_zlib_gives_the_whole(
    ops: list[tuple[str, int, tuple[bytes, int]]],
) -> None:
    """Appends, replacements, emptied slots and rebuilds, with pieces on both sides of the
    short/long threshold: the root is always the run of the leaves in order."""
    tree = gzipparts.RunTree()
    leaves: list[bytes] = []
    for op, index, (pattern, repeat) in ops:
        raw = pattern * repeat
        if op == "append" or not leaves:
            tree.append(gzipparts.deflate_part(raw))
            leaves.append(raw)
        elif op == "set":
            tree.set(index % len(leaves), gzipparts.deflate_part(raw))
            leaves[index % len(leaves)] = raw
        elif op == "empty":
            tree.set(index % len(leaves), gzipparts.EMPTY_RUN)
            leaves[index % len(leaves)] = b""
        else:
            leaves = [leaf for leaf in leaves if leaf]
            tree.rebuild([gzipparts.deflate_part(leaf) for leaf in leaves])
        whole = b"".join(leaves)
        assert (tree.run.crc, tree.run.size) == (zlib.crc32(whole), len(whole))
        if tree.run.size > gzipparts.SMALL:
            assert tree.run.shift == gzipparts.crc32_shift(tree.run.size)
    assert len(tree) == len(leaves)


def test_a_family_left_by_most_keys_is_compacted_and_keeps_its_order() -> None:
    exposition = Exposition()
    for i in range(20):
        exposition.update(i, [m.PROBE_SUCCESS.single([f"t{i:02d}"], 1)])
    for i in range(0, 20, 3):
        exposition.remove(i)
    for i in range(1, 20, 3):
        exposition.remove(i)
    group = exposition._groups[m.PROBE_SUCCESS.name]
    # emptied slots are dropped once they are most of the family: at most as many as kept
    assert len(group.parts) == 6 and len(group.raw) <= 12
    lines = series_lines(exposition.body())
    assert [line[37:40] for line in lines] == [f"t{i:02d}" for i in range(2, 20, 3)]
    assert gzip.decompress(exposition.body(gzipped=True)) == exposition.body()


def test_an_empty_exposition_is_a_valid_empty_gzip_body() -> None:
    exposition = Exposition()
    assert exposition.body() == b""
    assert decoded_as_one_member(exposition.body(gzipped=True)) == b""
    assert decoded_as_one_member(exposition.body(openmetrics=True, gzipped=True)) == b"# EOF\n"


def test_memory_is_handed_back_after_a_large_part_is_replaced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    releases: list[int] = []
    monkeypatch.setattr(exposition_module, "_RELEASE_AFTER", 2_000)

    def release() -> bool:
        releases.append(1)
        return True

    monkeypatch.setattr(memtrim, "release", release)
    big = GaugeMetricFamily("test_big", "Many series.", labels=["id"])
    for i in range(100):
        big.add_metric([f"agent-{i:04d}"], i)
    exposition = Exposition()
    exposition.update("fleet", [big])
    exposition.update("probe", [m.PROBE_SUCCESS.single(["a"], 1)])
    exposition.update("probe", [m.PROBE_SUCCESS.single(["a"], 0)])
    assert releases == []  # nothing large was dropped yet
    exposition.update("fleet", [m.PROBE_DURATION.single(["a"], 1)])
    assert releases == [1]
    exposition.remove("probe")
    assert releases == [1]


@pytest.mark.parametrize("tenant", ["prod", 'a%s"b\\c', "x" * 200])
def test_pre_rendered_gauge_lines_are_the_rendered_samples_lines(tenant: str) -> None:
    rows = [
        (("plain", "1"), 1.0),
        (('quo"te', "2"), 2.0),
        (("back\\slash", "3"), 3.0),
        (("new\nline", "4"), 4.0),
        (("lone \ud800 surrogate", "5"), 5.0),
        (("lone \udfff surrogate", "5"), 5.0),  # the same series as the previous once written
        (("y" * 300, "6"), 6.0),
        (("y" * 300, "6"), 7.0),  # a repeated series
        (("%s%d", "8"), 8.0),
    ]
    names = ("tenant", "host", "id")
    samples = GaugeMetricFamily("test_agents", "Per agent.", labels=list(names))
    for (host, ident), number in rows:
        samples.add_metric([tenant, host, ident], number)
    expected = Exposition()
    expected.update("k", [samples])
    lines = rendered_gauge("test_agents", "Per agent.", names, rows, constant=(tenant,))
    actual = Exposition()
    actual.update("k", [lines])
    assert actual.body() == expected.body()
    assert decoded_as_one_member(actual.body(gzipped=True)) == expected.body()


def test_the_collector_stays_paused_until_the_last_refresh_ends() -> None:
    import gc
    import threading

    assert gc.isenabled()
    inside = threading.Event()
    release = threading.Event()

    def other_refresh() -> None:
        with memtrim.collector_paused():
            inside.set()
            release.wait(10)

    worker = threading.Thread(target=other_refresh)
    with memtrim.collector_paused():
        assert not gc.isenabled()
        worker.start()
        assert inside.wait(10)
    assert not gc.isenabled()  # the other refresh still runs
    release.set()
    worker.join(10)
    assert gc.isenabled()
    gc.disable()
    try:
        with memtrim.collector_paused():
            pass
        assert not gc.isenabled()  # a collector that was off stays off
    finally:
        gc.enable()


def test_pre_rendered_rows_equal_to_the_last_ones_are_not_written_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    written: list[int] = []
    real = exposition_module._render_rows

    def spy(*args: Any) -> tuple[bytes, frozenset[int]]:
        written.append(len(args[2]))
        return real(*args)

    monkeypatch.setattr(exposition_module, "_render_rows", spy)
    names = ("tenant", "id")

    def family(values: list[float]) -> exposition_module.PreRendered:
        rows = [((f"a{i}",), value) for i, value in enumerate(values)]
        return rendered_gauge("test_seen", "Seen.", names, rows, constant=("t",))

    exposition = Exposition()
    exposition.update("fleet", [family([1.0, 2.0])])
    before = exposition.snapshot()
    exposition.update("fleet", [family([1.0, 2.0])])  # new objects, equal rows
    assert written == [2] and exposition.snapshot() is before
    exposition.update("fleet", [family([1.0, 3.0])])
    assert written == [2, 2]
    assert b'test_seen{tenant="t",id="a1"} 3.0' in exposition.body()
