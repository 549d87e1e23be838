"""The pre-rendered exposition: merging per-tenant parts, escaping, both formats, gzip cache."""

from __future__ import annotations

import gzip
import math
import random

from prometheus_client import Counter
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om

from exporter import metrics as m
from exporter.exposition import Exposition, format_value
from exporter.runtime import next_delay
from exporter.sources.base import Source
from tests.conftest import parse_samples, value


def test_same_family_from_two_tenants_has_one_header() -> None:
    exposition = Exposition()
    exposition.update(("probe", "a"), [m.PROBE_SUCCESS.single(["a"], 1)])
    exposition.update(
        ("status",), [m.STATUS_INDICATOR.state_set([(["p"], "none")], m.STATUS_INDICATORS)]
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


def test_gzip_is_computed_once_per_change() -> None:
    exposition = Exposition()
    exposition.update("k", [m.PROBE_SUCCESS.single(["a"], 1)])
    first = exposition.body(gzipped=True)
    assert exposition.body(gzipped=True) is first
    assert gzip.decompress(first) == exposition.body()
    exposition.update("k", [m.PROBE_SUCCESS.single(["a"], 0)])
    assert exposition.body(gzipped=True) is not first


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
