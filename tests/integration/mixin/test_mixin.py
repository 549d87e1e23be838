"""The mixin: the shipped rules and dashboards are the rendering of its defaults, and another
configuration renders valid rules and dashboards with its job selector, cluster label, runbook
URL, severities and thresholds."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.cli import main
from exporter.mixin import config as mixin
from exporter.mixin import generate

ROOT = Path(__file__).resolve().parents[3]

CUSTOM = {
    "job_selector": 'job="tce"',
    "cluster_label": "k8s_cluster",
    "runbook_url": "https://runbooks.example.com/teleport/{alert}",
    "severities": {"page": "P1", "ticket": "P3"},
    "thresholds": {"tls_warning_days": 21, "budget_remaining_ratio": 0.4},
}


def test_shipped_files_are_the_rendering_of_the_defaults() -> None:
    files = generate.render_all(mixin.parse_config())
    assert {"prometheus/alerts.yml", "prometheus/recording.yml"} <= set(files)
    assert any(name.startswith("grafana/dashboards/") for name in files)
    shipped = {p.relative_to(ROOT).as_posix() for p in (ROOT / "grafana/dashboards").glob("*")}
    assert shipped == {name for name in files if name.startswith("grafana/")}
    for relative, text in files.items():
        assert (ROOT / relative).read_text(encoding="utf-8") == text, (
            f"{relative} is stale: run teleport-cloud-exporter mixin --out ."
        )


def test_cli_check_mode_on_the_checkout() -> None:
    assert main(["mixin", "--out", str(ROOT), "--check"]) == 0


def test_custom_configuration(tmp_path: Path) -> None:
    config = tmp_path / "mixin.yml"
    config.write_text(yaml.safe_dump(CUSTOM), encoding="utf-8")
    assert main(["mixin", "--config", str(config), "--out", str(tmp_path)]) == 0
    alerts = yaml.safe_load((tmp_path / "prometheus/alerts.yml").read_text(encoding="utf-8"))
    recording = (tmp_path / "prometheus/recording.yml").read_text(encoding="utf-8")
    rules = [rule for group in alerts["groups"] for rule in group["rules"]]
    severities = {rule["labels"]["severity"] for rule in rules}
    assert severities == {"P1", "P3", "info"}
    for rule in rules:
        assert rule["annotations"]["runbook_url"] == (
            "https://runbooks.example.com/teleport/" + rule["alert"]
        )
    assert 'job="tce"' in recording and "job=~" not in recording
    # the example Alertmanager configuration routes on the configured severities
    routes = yaml.safe_load((tmp_path / "prometheus/alertmanager.yml").read_text(encoding="utf-8"))
    matchers = {r["receiver"]: r["matchers"] for r in routes["route"]["routes"]}
    assert matchers["pager"] == ['severity="P1"'] and matchers["ticket"] == ['severity="P3"']
    if shutil.which("amtool"):
        checked = subprocess.run(
            ["amtool", "check-config", str(tmp_path / "prometheus/alertmanager.yml")],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "by (k8s_cluster, job, tenant)" in recording
    tls = [r for r in rules if r["alert"] == "TeleportCloudTLSCertificateExpiring"]
    assert any("< 21 * 86400" in r["expr"] for r in tls)
    # the dashboards follow: the cluster variable, and the thresholds of the alerts
    overview = json.loads(
        (tmp_path / "grafana/dashboards/teleport-cloud-overview.json").read_text(encoding="utf-8")
    )
    variables = {v["name"]: v for v in overview["templating"]["list"]}
    assert "k8s_cluster" in variables["cluster"]["query"]
    assert 'job="tce"' in variables["job"]["query"]
    budget = next(p for p in overview["panels"] if p["title"] == "SLA budget left")
    steps = budget["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in steps] == [None, 0.4]
    # ... and so do the Kubernetes objects, from the same run
    rule = yaml.safe_load((tmp_path / "k8s/base/prometheusrule.yaml").read_text(encoding="utf-8"))
    assert rule["spec"]["groups"] == alerts["groups"] + yaml.safe_load(recording)["groups"]
    configmaps = list(
        yaml.safe_load_all((tmp_path / "k8s/base/dashboards.yaml").read_text(encoding="utf-8"))
    )
    carried = {name: text for cm in configmaps for name, text in cm["data"].items()}
    assert json.loads(carried["teleport-cloud-overview.json"]) == overview
    assert main(["mixin", "--config", str(config), "--out", str(tmp_path), "--check"]) == 0
    if shutil.which("promtool"):
        checked = subprocess.run(
            ["promtool", "check", "rules", str(tmp_path / "prometheus/alerts.yml"),
             str(tmp_path / "prometheus/recording.yml")],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_settings_reach_the_rules(tmp_path: Path) -> None:
    config = mixin.parse_config(
        {
            "thresholds": {"source_down_for": "45m", "agent_limit_ratio": 0.5},
            "burn_rate_alerts": {"one_day": {"long_window": "6h", "short_window": "30m"}},
        }
    )
    alerts = yaml.safe_load(generate.render_rules(config)["prometheus/alerts.yml"])
    rules = {
        (r["alert"], r.get("labels", {}).get("window")): r
        for group in alerts["groups"]
        for r in group["rules"]
    }
    assert rules[("TeleportCloudSourceDown", None)]["for"] == "45m"
    burn = rules[("TeleportCloudSLAErrorBudgetBurn", "6h")]
    assert 'window="30m"' in burn["expr"] and "0.5 * 21600" in burn["expr"]
    assert "> 0.5 * 10000" in rules[("TeleportCloudAgentsNearTenantLimit", None)]["expr"]


def test_dashboard_settings(tmp_path: Path) -> None:
    def overview(override: dict[str, object]) -> dict[str, Any]:
        files = generate.render_all(mixin.parse_config(override))
        board = json.loads(files["grafana/dashboards/teleport-cloud-overview.json"])
        assert isinstance(board, dict)
        return board

    default = overview({})
    variables = {v["name"]: v for v in default["templating"]["list"]}
    # one cluster: the variable is there (queries use it) but hidden
    assert variables["cluster"]["hide"] == 2
    # variables offer every value, not only the ones already selected
    assert "$tenant" not in variables["tenant"]["query"]
    assert "$page" not in variables["page"]["query"]
    custom = overview({"dashboards": {"refresh": "5m", "tags": ["infra"], "multi_cluster": True}})
    assert custom["refresh"] == "5m" and custom["tags"] == ["infra"]
    variables = {v["name"]: v for v in custom["templating"]["list"]}
    assert variables["cluster"].get("hide", 0) == 0


def test_without_cluster_label(tmp_path: Path) -> None:
    rules = generate.render_rules(mixin.parse_config({"cluster_label": ""}))
    assert "by (job, tenant)" in rules["prometheus/recording.yml"]
    assert "cluster," not in rules["prometheus/recording.yml"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"thresholds": {"nope": 1}}, "thresholds.nope: unknown key"),
        ({"severities": {"page": ["x"]}}, "severities.page: expected a single value"),
        ({"thresholds": {"upgrade_blocked_for": "a day"}}, "thresholds.upgrade_blocked_for"),
        ({"cluster_label": "k8s-cluster"}, "cluster_label"),
        ({"runbook_url": "https://example.com/"}, "runbook_url"),
        # every `for:` is a setting, and a duration that does not parse is refused
        ({"thresholds": {"probe_failing_for": "5 minutes"}}, "thresholds.probe_failing_for"),
        ({"thresholds": {"exporter_down_for": "0s"}}, "thresholds.exporter_down_for"),
        # windows the exporter does not export are refused, not rendered into empty alerts
        ({"thresholds": {"coverage_window": "2d"}}, "thresholds.coverage_window: '2d' is not a"),
        ({"burn_rate_alerts": {"one_day": {"long_window": "12h"}}}, "one_day.long_window"),
        ({"burn_rate_alerts": {"one_day": {"short_window": "1d"}}}, "not shorter than 1d"),
        ({"burn_rate_alerts": {"one_day": {"factor": 0}}}, "one_day.factor"),
        ({"thresholds": {"partial_outage_window": "2h"}}, "partial_outage_window"),
        ({"thresholds": {"agent_limit_ratio": 1.5}}, "agent_limit_ratio: 1.5 is not a ratio"),
        ({"dashboards": {"table_rows": 0}}, "dashboards.table_rows"),
        ({"dashboards": {"tags": "teleport"}}, "dashboards.tags: expected a list"),
    ],
)
def test_bad_configuration(override: dict[str, object], message: str) -> None:
    with pytest.raises(mixin.MixinConfigError, match=message):
        mixin.parse_config(override)


def test_cli_bad_configuration_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "mixin.yml"
    config.write_text("thresholds: {tls_warn_days: 3}\n", encoding="utf-8")
    assert main(["mixin", "--config", str(config), "--out", str(tmp_path)]) == 2
    assert "thresholds.tls_warn_days" in capsys.readouterr().err
    assert not (tmp_path / "prometheus").exists()


def test_check_mode_reports_a_stale_file(tmp_path: Path) -> None:
    assert main(["mixin", "--out", str(tmp_path)]) == 0
    (tmp_path / "prometheus/alerts.yml").write_text("groups: []\n", encoding="utf-8")
    assert main(["mixin", "--out", str(tmp_path), "--check"]) == 1


def test_durations() -> None:
    assert mixin.promql_duration(mixin.seconds("24h")) == "1d"
    assert mixin.promql_duration(6900) == "1h55m"
    assert mixin.seconds(90) == 90
