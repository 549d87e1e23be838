"""One vocabulary: every family exports exactly the label values exporter.vocab lists, in the
catalogue's label order, and one label cap joins the families that carry the same upstream
text. (These were `assert`s at import time, which `python -O` strips.)"""

from __future__ import annotations

import json
from typing import Any

import pytest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric

from exporter import vocab
from exporter.core import catalogue as m
from exporter.core.errors import SourceError
from exporter.core.scheduler import Health, health_families
from exporter.exposition.body import Exposition
from exporter.fleet.derive import derive_fleet
from exporter.fleet.families import AGENT_LABEL_ORDER, INFO_LABEL_ORDER, fleet_families
from exporter.fleet.model import UPDATER_STATUS_NAMES, parse_inventory, updater_status_name
from exporter.probe.families import probe_families
from exporter.probe.model import ProbeResult
from exporter.rollout.families import rollout_families
from exporter.rollout.groups import plan_groups
from exporter.rollout.model import parse_rollout
from exporter.simulator.fleetgen import generate_rollout
from exporter.sla.derive import WINDOW_SECONDS, summarize
from exporter.sla.families import sla_families
from tests.conftest import parse_samples

LONG_GROUP = "staging-" + "g" * 300


def _family(families: list[Metric], spec: m.Family) -> Metric:
    (family,) = [f for f in families if f.name == spec.name.removesuffix("_total")]
    return family


def _values(family: Metric, label: str) -> list[str]:
    return [sample.labels[label] for sample in family.samples]


def _agent(name: str, version: str, group: str, status: int = 1) -> dict[str, Any]:
    return {
        "kind": "instance",
        "version": "v1",
        "metadata": {"name": name},
        "spec": {
            "version": version,
            "services": ["Node"],
            "hostname": name,
            "last_seen": "2025-06-15T15:00:00Z",
            "ext_upgrader": "binary",
            "UpdaterInfo": {"UpdateGroup": group, "UpdaterStatus": status},
        },
    }


def _fleet(per_agent: bool = True) -> list[Metric]:
    rollout = parse_rollout(
        json.dumps(
            [generate_rollout(groups=[LONG_GROUP, "prod"], states=["active", "unstarted"])]
        ).encode()
    )
    instances = parse_inventory(
        json.dumps([_agent("a", "17.0.0", LONG_GROUP), _agent("b", "18.1.4", "prod")]).encode()
    ).instances
    view = derive_fleet(instances, "18.1.4", "18.1.4", plan_groups(rollout))
    return [*fleet_families("t", view, per_agent), *rollout_families("t", rollout)]


def test_every_family_is_built_as_its_kind() -> None:
    built = {"gauge": GaugeMetricFamily, "counter": CounterMetricFamily}
    built["histogram"] = HistogramMetricFamily
    for spec in m.CATALOGUE:
        family = spec.new()
        assert isinstance(family, built[spec.kind]), spec.name
        assert family.name == spec.name.removesuffix("_total")


def test_fleet_families_list_every_skew_class_and_reason() -> None:
    families = _fleet()
    assert _values(_family(families, m.AGENTS_BY_SKEW), "skew") == list(vocab.SKEW_CLASSES)
    reasons = _values(_family(families, m.AGENTS_NOT_UPDATING), "reason")
    assert reasons == list(vocab.NOT_UPDATING_REASONS)
    statuses = {
        sample.labels["status"] for sample in _family(families, m.AGENTS_BY_UPDATER_STATUS).samples
    }
    assert statuses == set(vocab.UPDATER_STATUSES)


def test_updater_statuses_from_teleport_are_in_the_vocabulary() -> None:
    names = {updater_status_name(number) for number in range(len(UPDATER_STATUS_NAMES))}
    assert names == set(vocab.UPDATER_STATUSES)


def test_per_agent_lines_carry_each_value_under_its_catalogue_label() -> None:
    assert m.AGENT_INFO.labels == INFO_LABEL_ORDER
    assert AGENT_LABEL_ORDER == m.AGENT_MAJORS_BEHIND.labels == m.AGENT_LAST_SEEN.labels
    exposition = Exposition()
    exposition.update("fleet", _fleet())
    samples = parse_samples(exposition.body().decode())
    (info,) = [
        dict(labels)
        for name, labels in samples
        if name == m.AGENT_INFO.name and dict(labels)["server_id"] == "a"
    ]
    assert info == {
        "tenant": "t",
        "server_id": "a",
        "hostname": "a",
        "version": "17.0.0",
        "services": "Node",
        "upgrader": "binary",
        "upgrader_version": "",
        "update_group": vocab.cap_label(LONG_GROUP),
        "updater_status": "ok",
    }
    behind = {
        dict(labels)["server_id"]: v
        for (n, labels), v in samples.items()
        if n == m.AGENT_MAJORS_BEHIND.name
    }
    assert behind == {"a": 1.0, "b": 0.0}


def test_a_long_update_group_has_one_label_value_in_every_family() -> None:
    families = _fleet()
    capped = vocab.cap_label(LONG_GROUP)
    for spec in (m.ROLLOUT_GROUP_STATE, m.ROLLOUT_GROUP_AGENTS, m.ROLLOUT_GROUP_VERSION):
        assert capped in _values(_family(families, spec), "group"), spec.name
    assert capped in _values(_family(families, m.ROLLOUT_GROUP_STUCK), "group")
    # ... and the exposition leaves an already capped value as it is, so the series join.
    exposition = Exposition()
    exposition.update("fleet", families)
    samples = parse_samples(exposition.body().decode())
    exposed = {dict(labels).get("update_group") for _, labels in samples} | {
        dict(labels).get("group") for _, labels in samples
    }
    assert capped in exposed and LONG_GROUP not in exposed


def test_cap_keeps_long_values_distinct_and_is_stable() -> None:
    a, b = "x" * 200 + "a", "x" * 200 + "b"
    assert vocab.cap_label(a) != vocab.cap_label(b)
    assert len(vocab.cap_label(a)) == vocab.MAX_LABEL_VALUE
    assert vocab.cap_label(vocab.cap_label(a)) == vocab.cap_label(a)
    assert vocab.cap_label("short") == "short"


def test_probe_phases_are_the_vocabulary() -> None:
    assert tuple(ProbeResult(started_at=0.0).phases) == vocab.PROBE_PHASES
    families = probe_families("t", ProbeResult(started_at=0.0), [])
    phases = _values(_family(families, m.PROBE_PHASE_DURATION), "phase")
    assert phases == list(vocab.PROBE_PHASES)


def test_burn_windows_are_the_vocabulary() -> None:
    assert tuple(WINDOW_SECONDS) == vocab.BURN_WINDOWS
    summary = summarize([], 0.999, True, 1_750_000_000.0)
    windows = _values(_family(sla_families("t", summary), m.SLA_BURN_RATE), "window")
    assert windows == list(vocab.BURN_WINDOWS)


@pytest.mark.parametrize("reason", vocab.ERROR_REASONS)
def test_every_error_reason_is_exported_from_the_start(reason: vocab.Reason) -> None:
    health = Health()
    errors = _family(health_families("ping", "t", health), m.SOURCE_ERRORS)
    assert _values(errors, "reason") == list(vocab.ERROR_REASONS)
    assert SourceError(reason, "x").reason in vocab.ERROR_REASONS
