"""The Grafana dashboards: built by exporter/mixin/dashboards/, rendered by
`teleport-cloud-exporter mixin`, linted, tied to the metric contract."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.core.catalogue import CATALOGUE
from exporter.mixin.config import parse_config
from exporter.mixin.dashboards import build
from exporter.mixin.generate import main_mixin

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD_DIR = ROOT / "grafana" / "dashboards"
RECORDING_RULES = ROOT / "prometheus" / "recording.yml"

UIDS = {
    "teleport-cloud-overview.json": "teleport-cloud-overview",
    "teleport-cloud-fleet.json": "teleport-cloud-fleet",
}

# A selector of a teleport_cloud_ family, with its matchers if any.
SELECTOR = re.compile(r"(?<![\w:])(teleport_cloud_[a-z0-9_]+)(?![\w:])\s*(\{[^}]*\})?")
# A name with a colon outside quotes and ranges: a recording rule (level:metric:operations).
RECORDING_RULE = re.compile(r"(?<![\w:\[])([a-zA-Z_][a-zA-Z0-9_]*:[a-zA-Z0-9_:]+)")
# The SLA ledger's errors are per replica and carry no tenant: scoped by cluster and job only.
SCOPE_FILTER = re.compile(
    r'^\{cluster=~"\$cluster", job=~"\$job", '
    r'(tenant=~"\$tenant"|tenant="\$agent_tenant"|page=~"\$page"|target=~"\$(tenant|page)"'
    r'|operation=~"\.\+")'
)
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ()}


def committed() -> dict[str, dict[str, Any]]:
    return {name: json.loads((DASHBOARD_DIR / name).read_text(encoding="utf-8")) for name in UIDS}


def walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in the document, depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def panels(model: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in build.all_panels(model) if p["type"] != "row"]


def all_exprs(model: dict[str, Any]) -> list[str]:
    """Expressions of panel targets, annotations and the variables' queries."""
    exprs = [expr for _, expr in build.panel_queries(model)]
    exprs += [a["expr"] for a in model["annotations"]["list"]]
    return exprs


def allowed_metric_names() -> set[str]:
    names: set[str] = set()
    for family in CATALOGUE:
        names.add(family.name)
        names.update(family.name + suffix for suffix in SUFFIXES[family.kind])
    return names


@pytest.fixture(scope="module", params=sorted(UIDS))
def dashboard(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    name: str = request.param
    return name, committed()[name]


def test_committed_json_is_what_build_writes() -> None:
    generated = build.dashboards()
    assert sorted(generated) == sorted(UIDS)
    assert sorted(p.name for p in DASHBOARD_DIR.glob("*.json")) == sorted(UIDS)
    for name, model in generated.items():
        text = (DASHBOARD_DIR / name).read_text(encoding="utf-8")
        assert text == build.render(model), f"{name} is stale: run teleport-cloud-exporter mixin"


def test_the_generator_renders_the_committed_dashboards(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main_mixin(None, ROOT, check=True) == 0, capsys.readouterr().err


def test_stable_uid_and_schema(dashboard: tuple[str, dict[str, Any]]) -> None:
    name, model = dashboard
    assert model["uid"] == UIDS[name]
    assert model["title"].startswith("Teleport Cloud / ")
    assert 36 <= model["schemaVersion"] <= 41
    assert model.get("id") is None  # no database id: imports cleanly anywhere
    assert "teleport-cloud" in model["tags"]


def test_links_to_the_other_dashboard(dashboard: tuple[str, dict[str, Any]]) -> None:
    _, model = dashboard
    links = [link for link in model["links"] if link["type"] == "dashboards"]
    assert any("teleport-cloud" in link["tags"] and link["includeVars"] for link in links)


def test_datasource_variable(dashboard: tuple[str, dict[str, Any]]) -> None:
    _, model = dashboard
    variables = {v["name"]: v for v in model["templating"]["list"]}
    datasource = variables["datasource"]
    assert datasource["type"] == "datasource"
    assert datasource["query"] == "prometheus"


def test_cluster_job_and_tenant_variables(dashboard: tuple[str, dict[str, Any]]) -> None:
    _, model = dashboard
    variables = {v["name"]: v for v in model["templating"]["list"]}
    assert list(variables)[:4] == ["datasource", "cluster", "job", "tenant"]
    for name, label in (("cluster", "cluster"), ("job", "job"), ("tenant", "tenant")):
        variable = variables[name]
        assert variable["type"] == "query"
        assert variable["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert variable["multi"] and variable["includeAll"] and variable["allValue"] == ".*"
        match = re.fullmatch(
            r"label_values\((teleport_cloud_[a-z_]+)\{[^}]*\}, *" + label + r"\)",
            variable["query"],
        )
        assert match, variable["query"]
        assert match.group(1) in {f.name for f in CATALOGUE}
    # the job variable offers the jobs the rules select
    assert 'job=~"(.+/)?teleport-cloud-exporter"' in variables["job"]["query"]


def test_no_hard_coded_datasource_uid(dashboard: tuple[str, dict[str, Any]]) -> None:
    _, model = dashboard
    datasources = [obj["datasource"] for obj in walk(model) if "datasource" in obj]
    assert datasources
    for datasource in datasources:
        assert isinstance(datasource, dict), datasource
        assert datasource.get("uid") == "${datasource}", datasource
    # and no other object anywhere carries a datasource-looking uid
    for obj in walk(model):
        if "uid" in obj and obj is not model:
            assert obj["uid"] == "${datasource}", obj


def test_every_panel_documented_with_unit(dashboard: tuple[str, dict[str, Any]]) -> None:
    _, model = dashboard
    found = panels(model)
    assert len(found) >= 10
    for panel in found:
        title = panel.get("title", "")
        assert title.strip(), panel
        assert panel.get("description", "").strip(), title
        assert panel["fieldConfig"]["defaults"].get("unit"), title
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, title
        assert panel["targets"], title
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"], title
            assert target["expr"].strip(), title
    titles = [p["title"] for p in found]
    assert len(titles) == len(set(titles)), "panel titles are not unique"


def test_rows_are_titled(dashboard: tuple[str, dict[str, Any]]) -> None:
    _, model = dashboard
    rows = [p for p in model["panels"] if p["type"] == "row"]
    assert len(rows) >= 3
    assert model["panels"][0]["type"] == "row"
    for row in rows:
        assert row["title"].strip()
        assert row["collapsed"] == bool(row["panels"])


# A selector of a family or of a recorded series (level:teleport_cloud_...:operations).
ANY_SELECTOR = re.compile(
    r"(?<![\w:])((?:[a-z_]+:)?teleport_cloud_[a-z0-9_]+(?::[a-z0-9_]+)?)(?![\w:])\s*(\{[^}]*\})?"
)


def test_every_query_filters_on_tenant_or_page(dashboard: tuple[str, dict[str, Any]]) -> None:
    """Every selector, raw or recorded, is scoped by cluster, job and tenant (or page)."""
    _, model = dashboard
    for expr in all_exprs(model):
        selectors = ANY_SELECTOR.findall(expr)
        assert selectors, expr
        for metric, matchers in selectors:
            assert SCOPE_FILTER.search(matchers), f"{metric} is not filtered in: {expr}"


def test_metric_names_are_in_the_contract(dashboard: tuple[str, dict[str, Any]]) -> None:
    _, model = dashboard
    allowed = allowed_metric_names()
    for expr in all_exprs(model):
        without_rules = RECORDING_RULE.sub(" ", expr)
        for metric, _ in SELECTOR.findall(without_rules):
            assert metric in allowed, f"{metric} is not a contract family ({expr})"


def test_recording_rules_exist(dashboard: tuple[str, dict[str, Any]]) -> None:
    _, model = dashboard
    used = {name for expr in all_exprs(model) for name in RECORDING_RULE.findall(expr)}
    if not used:
        return
    text = RECORDING_RULES.read_text(encoding="utf-8")
    defined = set(re.findall(r"record:\s*['\"]?([a-zA-Z_:][a-zA-Z0-9_:]*)", text))
    assert used <= defined, f"unknown recording rules: {sorted(used - defined)}"


def test_grid_positions(dashboard: tuple[str, dict[str, Any]]) -> None:
    _, model = dashboard
    everything = build.all_panels(model)
    ids = [p["id"] for p in everything]
    assert len(ids) == len(set(ids)), "panel ids are not unique"
    boxes = []
    for panel in everything:
        pos = panel["gridPos"]
        assert pos["w"] > 0 and pos["h"] > 0, panel["title"]
        assert pos["x"] >= 0 and pos["y"] >= 0, panel["title"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            assert (pos["x"], pos["w"], pos["h"]) == (0, 24, 1), panel["title"]
        boxes.append((panel["title"], pos["x"], pos["y"], pos["w"], pos["h"]))
    for a, b in itertools.combinations(boxes, 2):
        overlap_x = a[1] < b[1] + b[3] and b[1] < a[1] + a[3]
        overlap_y = a[2] < b[2] + b[4] and b[2] < a[2] + a[4]
        assert not (overlap_x and overlap_y), f"{a[0]!r} overlaps {b[0]!r}"


def test_table_panels_are_instant_tables(dashboard: tuple[str, dict[str, Any]]) -> None:
    _, model = dashboard
    for panel in panels(model):
        if panel["type"] == "table":
            for target in panel["targets"]:
                assert target["format"] == "table" and target["instant"], panel["title"]


def test_panel_queries_lists_every_target(dashboard: tuple[str, dict[str, Any]]) -> None:
    _, model = dashboard
    queries = build.panel_queries(model)
    assert len(queries) == sum(len(p["targets"]) for p in panels(model))
    assert {title for title, _ in queries} == {p["title"] for p in panels(model)}


def test_concrete_substitutes_every_variable(dashboard: tuple[str, dict[str, Any]]) -> None:
    _, model = dashboard
    for expr in all_exprs(model):
        out = build.concrete(expr, "demo", "status.example.com")
        assert "$" not in out, out


def test_concrete() -> None:
    expr = 'rate(x{tenant=~"$tenant", page=~"${page}"}[$__rate_interval]) [$__interval] $__range'
    assert build.concrete(expr, "acme", "status") == (
        'rate(x{tenant=~"acme", page=~"status"}[1m]) [1m] 1h'
    )
    assert build.concrete('{tenant=~"${tenant}"}', "a.b", "") == '{tenant=~"a\\\\.b"}'
    assert build.concrete('{tenant=~"$tenant"}', ".*", "", literal=False) == '{tenant=~".*"}'
    # single-valued, matched with `=`: the name as it is
    assert build.concrete('{tenant="$agent_tenant"}', "a.b", "") == '{tenant="a.b"}'
    with pytest.raises(ValueError, match="__range_s"):
        build.concrete("$__range_s", "a", "b")


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_queries_parse_as_promql(tmp_path: Path) -> None:
    """Each query, with variables substituted, parses (promtool check rules)."""
    lines = ["groups:", "  - name: dashboards", "    rules:"]
    for number, expr in enumerate(
        expr for model in build.dashboards().values() for expr in all_exprs(model)
    ):
        concrete = build.concrete(expr, "demo.example.teleport.sh", "status.example.com")
        lines += [
            f"      - record: dashboard:query{number}:check",
            f"        expr: {json.dumps(concrete)}",
        ]
    rules = tmp_path / "queries.yml"
    rules.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = subprocess.run(
        ["promtool", "check", "rules", str(rules)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


# The overview answers the on-call questions first, with the alerts' own thresholds


def _overview() -> dict[str, Any]:
    return committed()["teleport-cloud-overview.json"]


def _panel(model: dict[str, Any], title: str) -> dict[str, Any]:
    return next(p for p in build.all_panels(model) if p.get("title") == title)


def _steps(panel: dict[str, Any]) -> list[tuple[float | None, str]]:
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    return [(step["value"], step["color"]) for step in steps]


def test_overview_comes_first() -> None:
    """The first row: the per-tenant table across the top, the summary stats below it."""
    first_row = []
    for panel in _overview()["panels"][1:]:
        if panel["type"] == "row":
            break
        assert panel["gridPos"]["y"] < 12, panel["title"]  # above the fold
        first_row.append(panel["title"])
    assert first_row == [
        "Tenants: healthy, and can Cloud upgrade them?",
        "Next upgrade blocked",
        "Agents blocking the upgrade",
        "Agents not updating",
        "SLA budget left",
        "Probe failures (5m)",
        "Status page",
    ]
    table, *stats = _overview()["panels"][1:8]
    assert table["gridPos"] == {"x": 0, "y": 1, "w": 24, "h": table["gridPos"]["h"]}
    assert all(s["gridPos"]["y"] >= table["gridPos"]["y"] + table["gridPos"]["h"] for s in stats)


def _tenants_columns() -> tuple[dict[str, Any], dict[str, str], dict[str, dict[str, Any]]]:
    """The tenants table, its column name per target, and each column's override properties."""
    table = _panel(_overview(), "Tenants: healthy, and can Cloud upgrade them?")
    merge, organize = table["transformations"]
    assert merge["id"] == "merge" and organize["id"] == "organize"
    rename = organize["options"]["renameByName"]
    hidden = organize["options"]["excludeByName"]
    names = {}
    for target in table["targets"]:
        value = f"Value #{target['refId']}"
        if value in rename:
            names[rename[value]] = target["expr"]
        else:  # a label column: the value (always 1) is hidden, the label shown
            assert hidden[value], value
            label = re.search(r"by \(tenant, (\w+)\)", target["expr"])
            assert label, target["expr"]
            names[rename[label.group(1)]] = target["expr"]
    overrides = {
        o["matcher"]["options"]: {p["id"]: p["value"] for p in o["properties"]}
        for o in table["fieldConfig"]["overrides"]
    }
    return table, names, overrides


def test_tenants_table_answers_health_and_upgrade_per_tenant() -> None:
    table, columns, overrides = _tenants_columns()
    assert list(columns) == [
        "Problems", "Control plane", "Target agents", "Next upgrade", "Blocking",
        "Unsupported older", "Unsupported newer", "Not updating", "Budget left", "Probe",
        "Probe p95", "Data age",
    ]  # fmt: skip
    for target in table["targets"]:
        assert target["format"] == "table" and target["instant"]
        # one row per tenant: every query keeps the tenant label and merges on it
        assert re.search(r"by \(tenant[,)]", target["expr"]), target["expr"]
    assert "server_version" in columns["Control plane"]
    assert "teleport_cloud_agent_target_version_info" in columns["Target agents"]
    assert 'skew=~"one_major_behind|unsupported_old"' in columns["Blocking"]
    assert 'skew="unsupported_old"' in columns["Unsupported older"]
    assert 'skew="unsupported_newer"' in columns["Unsupported newer"]
    assert "teleport_cloud_source_last_success_timestamp_seconds" in columns["Data age"]
    assert columns["Data age"].startswith("time() - min by (tenant)")
    # worst first, and readable without colour
    assert table["options"]["sortBy"] == [{"desc": True, "displayName": "Problems"}]
    texts = {
        name: {k: v["text"] for k, v in props["mappings"][0]["options"].items()}
        for name, props in overrides.items()
        if "mappings" in props
    }
    assert texts == {"Next upgrade": {"0": "OK", "1": "BLOCKED"}, "Probe": {"0": "DOWN", "1": "UP"}}
    for name in columns:
        if name in ("Control plane", "Target agents"):
            continue
        assert overrides[name]["custom.cellOptions"] == {"type": "color-background"}, name
    assert overrides["Budget left"]["unit"] == "percentunit"
    assert overrides["Data age"]["unit"] == "s"
    th = parse_config().thresholds
    assert overrides["Budget left"]["thresholds"]["steps"][1] == {
        "color": "green",
        "value": th.budget_remaining_ratio,
    }
    assert f"< {th.budget_remaining_ratio}" in columns["Problems"]


def test_drill_down_tables() -> None:
    overview = _overview()
    tables = {p["title"]: p for p in panels(overview) if p["type"] == "table"}
    blocking = tables["Agents blocking the next upgrade"]["targets"][0]["expr"]
    assert "teleport_cloud_agent_major_versions_behind" in blocking and ">= 1" in blocking
    not_updating = tables["Agents pinned, disabled or without upgrader"]["targets"][0]["expr"]
    assert 'updater_status=~"disabled|pinned"' in not_updating
    assert 'upgrader="none"' in not_updating
    stuck = tables["Stuck update groups"]["targets"][0]["expr"]
    assert "tenant_group:teleport_cloud_autoupdate_group_agents_stuck:max" in stuck


def _alert_expr(name: str, severity: str = "") -> str:
    alerts = yaml.safe_load((ROOT / "prometheus" / "alerts.yml").read_text(encoding="utf-8"))
    for group in alerts["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == name and severity in ("", rule["labels"]["severity"]):
                return str(rule["expr"])
    raise AssertionError(f"no alert {name} {severity}")


def test_thresholds_are_the_alerts() -> None:
    """Colour changes where the alert fires: both come from the mixin's configuration."""
    th = parse_config().thresholds
    overview = _overview()
    assert _steps(_panel(overview, "SLA budget left")) == [
        (None, "red"),
        (th.budget_remaining_ratio, "green"),
    ]
    assert f"< {th.budget_remaining_ratio}" in _alert_expr("TeleportCloudSLAErrorBudgetLow")
    assert _steps(_panel(overview, "Probe failures (5m)"))[1] == (th.probe_failure_ratio, "red")
    assert f"> {th.probe_failure_ratio}" in _alert_expr("TeleportCloudProbeFailing")
    assert _steps(_panel(overview, "TLS certificate expires in")) == [
        (None, "red"),
        (th.tls_critical_days * 86400, "orange"),
        (th.tls_warning_days * 86400, "green"),
    ]
    assert f"< {th.tls_warning_days} * 86400" in _alert_expr(
        "TeleportCloudTLSCertificateExpiring", "warning"
    )
    assert f"< {th.tls_critical_days} * 86400" in _alert_expr(
        "TeleportCloudTLSCertificateExpiring", "critical"
    )
    assert _steps(_panel(overview, "Machine ID identity expires in"))[1] == (
        th.identity_expiry_seconds,
        "green",
    )
    assert f"< {th.identity_expiry_seconds}" in _alert_expr("TeleportCloudIdentityExpiring")
    assert _steps(_panel(overview, "Observed coverage"))[1] == (th.coverage_ratio, "green")
    assert f"< {th.coverage_ratio}" in _alert_expr("TeleportCloudSLACoverageLow")
    assert _steps(_panel(overview, "Probe latency"))[1] == (th.probe_latency_p95_seconds, "red")
    assert f"> {th.probe_latency_p95_seconds}" in _alert_expr("TeleportCloudProbeLatencyHigh")


def test_dashboards_read_the_recording_rules() -> None:
    used = {
        name
        for model in committed().values()
        for expr in all_exprs(model)
        for name in RECORDING_RULE.findall(expr)
    }
    recorded = set(re.findall(r"record: (\S+)", RECORDING_RULES.read_text(encoding="utf-8")))
    assert used <= recorded
    # every per-tenant aggregate an on-call person looks at comes from a rule
    assert len(used) >= 15, sorted(used)


def test_stats_of_info_series_show_the_label_not_the_value() -> None:
    """An `_info` series is always 1; a stat of one shows its legend (the version), not `1`."""
    seen = []
    for model in committed().values():
        for panel in panels(model):
            exprs = [t["expr"] for t in panel.get("targets", [])]
            if panel["type"] == "stat" and any(re.search(r"_info\{", e) for e in exprs):
                seen.append(panel["title"])
                assert panel["options"]["textMode"] == "name", panel["title"]
    assert "Target agent version" in seen


def test_sources_table_follows_the_tenant_and_page_filters_apart() -> None:
    """One `target=~"$tenant|$page"` matcher let "All" pages show every tenant's sources."""
    expr = _panel(_overview(), "Sources")["targets"][0]["expr"]
    assert "$tenant|$page" not in expr
    assert 'target=~"$tenant", source!="status_page"' in expr
    assert 'target=~"$page", source="status_page"' in expr


def test_uptime_reads_the_replica_that_observed_most_with_enough_decimals() -> None:
    uptime = _panel(_overview(), "Uptime this month")
    assert "tenant:teleport_cloud_sla_downtime_seconds:best" in uptime["targets"][0]["expr"]
    # 99.99 % and 99.95 % must read apart
    assert uptime["fieldConfig"]["defaults"]["decimals"] >= 3


def test_components_not_operational_lists_current_states_only() -> None:
    """`status_component` is a state set (every state, 0 when not current): without `== 1`
    the table listed every component in every state but operational."""
    expr = _panel(_overview(), "Components not operational")["targets"][0]["expr"]
    assert expr.rstrip().endswith("== 1)"), expr


def test_tables_colour_and_sort_their_value_column() -> None:
    """Every table colours its value column by its thresholds and shows the worst rows first."""
    for model in committed().values():
        for panel in panels(model):
            if panel["type"] != "table" or len(panel["targets"]) > 1:
                continue  # single-query tables; the merged update-groups table is tested below
            value = panel["transformations"][0]["options"]["renameByName"]["Value"]
            assert panel["options"]["sortBy"] == [{"desc": True, "displayName": value}]
            (override,) = panel["fieldConfig"]["overrides"]
            assert override["matcher"] == {"id": "byName", "options": value}
            assert override["properties"][0]["value"] == {"type": "color-background"}


def test_update_groups_have_the_promised_columns() -> None:
    """State, agents, up to date and stuck per group, joined on tenant and group."""
    fleet = committed()["teleport-cloud-fleet.json"]
    groups = _panel(fleet, "Update groups")
    exprs = [t["expr"] for t in groups["targets"]]
    assert [e.split("(")[2].split("{")[0] for e in exprs] == [
        "teleport_cloud_autoupdate_group_state",
        "teleport_cloud_autoupdate_group_agents",
        "teleport_cloud_autoupdate_group_agents_up_to_date",
        "tenant_group:teleport_cloud_autoupdate_group_agents_stuck:max",
    ]
    merge, organize = groups["transformations"]
    assert merge["id"] == "merge"
    assert list(organize["options"]["renameByName"].values()) == [
        "Current", "Agents", "Up to date", "Stuck"
    ]  # fmt: skip


PER_AGENT = re.compile(r"teleport_cloud_agent_(info|major_versions_behind)\{")


def test_per_agent_tables_read_one_tenant(dashboard: tuple[str, dict[str, Any]]) -> None:
    """Per-agent tables of every tenant read 100,000s of series (0.5-6 s at 50 tenants): they
    read the one tenant of the single-valued `agent_tenant` variable, offered among $tenant's."""
    _, model = dashboard
    variables = {v["name"]: v for v in model["templating"]["list"]}
    agent_tenant = variables["agent_tenant"]
    assert not agent_tenant["multi"] and not agent_tenant["includeAll"]
    assert 'tenant=~"$tenant"' in agent_tenant["query"]
    assert agent_tenant["query"].endswith(", tenant)")
    per_agent = []
    for title, expr in build.panel_queries(model):
        if PER_AGENT.search(expr):
            per_agent.append(title)
            assert '"$tenant"' not in expr, title
            for metric, matchers in ANY_SELECTOR.findall(expr):
                assert 'tenant="$agent_tenant"' in matchers, f"{metric} in {title}"
    assert per_agent


def test_tables_order_and_hide_fields_by_the_names_the_queries_give(
    dashboard: tuple[str, dict[str, Any]],
) -> None:
    # Grafana's organize step orders and hides fields before it renames them: a key naming a
    # field by its new name orders nothing, and that column lands wherever Grafana puts it.
    _, model = dashboard
    for panel in panels(model):
        for step in panel.get("transformations", []):
            if step["id"] != "organize":
                continue
            options = step["options"]
            renamed_only = set(options["renameByName"].values()) - set(options["renameByName"])
            for kind in ("indexByName", "excludeByName"):
                wrong = renamed_only & set(options[kind])
                assert not wrong, f"{panel['title']}: {kind} uses renamed names {sorted(wrong)}"
