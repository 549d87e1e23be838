"""Checks of the Prometheus rule files, their unit tests and the example Alertmanager config.

Runs `promtool check rules`, `promtool test rules` and `amtool check-config` (Debian packages
`prometheus` and `prometheus-alertmanager`; CI installs them, so a missing tool fails rather than
skips), then checks in Python what those tools do not: the alert conventions, that every alert
has a firing and a non-firing unit test, and that every metric a rule reads is in the exporter's
catalogue or recorded by recording.yml.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.core.catalogue import CATALOGUE

ROOT = Path(__file__).resolve().parents[3]
ALERTS = ROOT / "prometheus" / "alerts.yml"
RECORDING = ROOT / "prometheus" / "recording.yml"
ALERTMANAGER = ROOT / "prometheus" / "alertmanager.yml"
RUNBOOK = ROOT / "docs" / "runbook.md"  # the runbook_url anchors point at its sections
RULE_TESTS = sorted((ROOT / "tests" / "rules").glob("*.test.yml"))

RUNBOOK_BASE = (
    "https://github.com/teleport-cloud-exporter/teleport-cloud-exporter/blob/main/docs/runbook.md#"
)
SEVERITIES = {"critical", "warning", "info"}
# Prometheus identifiers, colons included, so recorded names are seen whole.
IDENTIFIER = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
# level:metric:operations
RECORDED_NAME = re.compile(r"^[a-z][a-z0-9_]*:[a-z][a-z0-9_]*:[a-z0-9_]+$")


@dataclass(frozen=True)
class Rule:
    """One rule of a rule file, with the name of its group."""

    group: str
    body: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.body.get("alert") or self.body.get("record"))

    @property
    def expr(self) -> str:
        return str(self.body["expr"])

    @property
    def labels(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in (self.body.get("labels") or {}).items()}

    @property
    def annotations(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in (self.body.get("annotations") or {}).items()}


def load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path}: expected a mapping at the top level"
    return data


@cache
def rules(path: Path) -> tuple[Rule, ...]:
    out: list[Rule] = []
    for group in load_yaml(path)["groups"]:
        out.extend(Rule(str(group["name"]), dict(body)) for body in group["rules"])
    return tuple(out)


def alert_rules() -> tuple[Rule, ...]:
    return tuple(rule for rule in rules(ALERTS) if "alert" in rule.body)


def recorded_names() -> set[str]:
    return {rule.name for rule in rules(RECORDING) if "record" in rule.body}


def exported_series_names() -> set[str]:
    """Series names the exporter exposes, from its catalogue of families."""
    names: set[str] = set()
    for family in CATALOGUE:
        if family.kind == "counter":
            names.add(family.name.removesuffix("_total") + "_total")
        elif family.kind == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_sum", "_count"))
        else:
            names.add(family.name)
    return names


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not on PATH; install Debian's `prometheus` (promtool) and "
            "`prometheus-alertmanager` (amtool) packages"
        )
    return path


def run(*args: str) -> str:
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"`{' '.join(args)}` exited with {proc.returncode}:\n{output}"
    return output


# The tools


def test_promtool_check_rules() -> None:
    run(tool("promtool"), "check", "rules", str(ALERTS), str(RECORDING))


def test_promtool_unit_tests() -> None:
    assert RULE_TESTS, "no tests/rules/*.test.yml found"
    run(tool("promtool"), "test", "rules", *map(str, RULE_TESTS))


def test_amtool_check_config() -> None:
    run(tool("amtool"), "check-config", str(ALERTMANAGER))


@pytest.mark.parametrize(
    ("severity", "receiver"),
    [("critical", "pager"), ("warning", "ticket"), ("info", "low-noise")],
)
def test_alertmanager_routes_by_severity(severity: str, receiver: str) -> None:
    run(
        tool("amtool"),
        "config",
        "routes",
        "test",
        f"--config.file={ALERTMANAGER}",
        f"--verify.receivers={receiver}",
        "alertname=TeleportCloudProbeFailing",
        "tenant=acme",
        f"severity={severity}",
    )


# Conventions


def test_group_names() -> None:
    for path in (ALERTS, RECORDING):
        for group in load_yaml(path)["groups"]:
            assert str(group["name"]).startswith("teleport-cloud-"), (path.name, group["name"])


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: f"{rule.name}")
def test_alert_conventions(rule: Rule) -> None:
    assert re.fullmatch(r"TeleportCloud[A-Z][A-Za-z0-9]*", rule.name), rule.name
    assert rule.labels.get("severity") in SEVERITIES, rule.labels
    annotations = rule.annotations
    assert annotations.get("summary"), "summary annotation missing"
    assert "{{" not in annotations["summary"], "summary must be static"
    assert "{{" in annotations.get("description", ""), "description must be templated"
    assert annotations.get("runbook_url") == RUNBOOK_BASE + rule.name.lower()


def test_every_alert_has_a_runbook_section() -> None:
    headings = set(re.findall(r"^## (\S+)\s*$", RUNBOOK.read_text(encoding="utf-8"), re.M))
    missing = {rule.name for rule in alert_rules()} - headings
    assert not missing, f"no `## <alert>` section in docs/runbook.md for {sorted(missing)}"


def test_recording_rule_names() -> None:
    for rule in rules(RECORDING):
        assert "record" in rule.body, f"alert {rule.name} belongs in alerts.yml"
        assert RECORDED_NAME.match(rule.name), f"{rule.name} is not level:metric:operations"
        assert "teleport_cloud_" in rule.name, rule.name


def test_rules_read_only_known_metrics() -> None:
    exported = exported_series_names()
    recorded = recorded_names()
    unknown: list[str] = []
    for path in (ALERTS, RECORDING):
        for rule in rules(path):
            # Annotations too: templates may query metrics.
            text = " ".join([rule.expr, *rule.annotations.values()])
            for token in IDENTIFIER.findall(text):
                if "teleport_cloud_" not in token:
                    continue
                known = recorded if ":" in token else exported
                if token not in known:
                    unknown.append(f"{path.name}: {rule.name}: {token}")
    assert not unknown, (
        "metrics neither in exporter.core.catalogue.CATALOGUE nor recorded:\n" + "\n".join(unknown)
    )


# Unit-test coverage


def unit_test_cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    for path in RULE_TESTS:
        for test in load_yaml(path).get("tests") or []:
            cases.extend(test.get("alert_rule_test") or [])
    return cases


def test_every_alert_has_a_firing_and_a_silent_unit_test() -> None:
    firing: dict[str, list[dict[str, str]]] = {}
    silent: set[str] = set()
    for case in unit_test_cases():
        name = str(case["alertname"])
        expected = case.get("exp_alerts") or []
        if expected:
            firing.setdefault(name, []).extend(
                {str(k): str(v) for k, v in (alert.get("exp_labels") or {}).items()}
                for alert in expected
            )
        else:
            silent.add(name)
    problems: list[str] = []
    for rule in alert_rules():
        if rule.name not in silent:
            problems.append(f"{rule.name}: no case with `exp_alerts: []`")
        # Each rule (alerts may share a name at several severities) must be seen firing: an
        # expected alert carrying all of the rule's static labels.
        if not any(rule.labels.items() <= labels.items() for labels in firing.get(rule.name, [])):
            problems.append(f"{rule.name} {rule.labels}: never expected to fire")
    assert not problems, "\n".join(problems)


def test_unit_tests_load_the_rule_files() -> None:
    for path in RULE_TESTS:
        files = load_yaml(path).get("rule_files") or []
        assert files, f"{path.name}: no rule_files"
        for name in files:
            assert (path.parent / str(name)).resolve().is_file(), f"{path.name}: {name} missing"


def test_unit_tests_evaluate_recording_rules_first() -> None:
    """Without group_eval_order promtool orders groups at random and `for:` edges move."""
    recording_groups = [str(g["name"]) for g in load_yaml(RECORDING)["groups"]]
    for path in RULE_TESTS:
        order = load_yaml(path).get("group_eval_order") or []
        assert order[: len(recording_groups)] == recording_groups, path.name


# Restarts and replicas


def _seconds(duration: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([smhd])", duration))


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: f"{rule.name}")
def test_no_long_for_on_a_restartable_series(rule: Rule) -> None:
    """A restart (new pod, new series, a gap until the first refresh) resets `for:`; an hour or
    more is measured with a subquery instead."""
    assert _seconds(str(rule.body.get("for", "0s"))) < 3600, rule.body.get("for")


# Alerts about one replica or about scrape targets, which name the replica on purpose.
PER_REPLICA_OR_TARGET = {
    "TeleportCloudSLALedgerErrors",
    "TeleportCloudExporterDown",
    "TeleportCloudExporterReplicaDown",
    "TeleportCloudSourceReplicaDown",
}


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: f"{rule.name}")
def test_alerts_fold_replicas(rule: Rule) -> None:
    """Alerts read recorded per-tenant series or aggregate `by (...)` without instance/pod, so
    one alert fires per tenant whatever the number of replicas. The ledger alert is per replica
    (each replica has its own ledger), the replica-down tickets name the replica, and
    ExporterDown is about targets."""
    if rule.name in PER_REPLICA_OR_TARGET:
        return
    raw = [
        token
        for token in IDENTIFIER.findall(rule.expr)
        if token.startswith("teleport_cloud_") and ":" not in token
    ]
    if raw:
        assert re.search(r"\b(max|min|sum|count) by \(", rule.expr), rule.expr
    for by in re.findall(r"by \(([^)]*)\)", rule.expr):
        assert not {"instance", "pod"} & {label.strip() for label in by.split(",")}, rule.expr
