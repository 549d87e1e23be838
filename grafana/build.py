#!/usr/bin/env python3
"""Builds the Grafana dashboards of teleport-cloud-exporter as code.

    python grafana/build.py           rewrite grafana/dashboards/*.json
    python grafana/build.py --check   exit 1 if the committed JSON is not what it would write

Standard library only. Each panel kind has one small function (`stat`, `timeseries`, `table`,
`state_timeline`, `bar_gauge`); `Layout` places panels on Grafana's 24-column grid, row by row.
Every query filters on the `$tenant` variable (status-page series on `$page`) and goes through
the `$datasource` variable, so the JSON holds no datasource UID.

Other code (tests, end-to-end checks) imports `dashboards()`, `panel_queries()` and `concrete()`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

Json = dict[str, Any]

OUT_DIR: Final = Path(__file__).resolve().parent / "dashboards"
SCHEMA_VERSION: Final = 39
TAGS: Final = ["teleport", "teleport-cloud"]
DATASOURCE: Final[Json] = {"type": "prometheus", "uid": "${datasource}"}
GRID_WIDTH: Final = 24

TENANT_UID: Final = "teleport-cloud-tenant"
FLEET_UID: Final = "teleport-cloud-fleet"


# --------------------------------------------------------------------------------------------
# Query helpers


def m(name: str, *matchers: str) -> str:
    """A selector of `teleport_cloud_<name>` filtered on the tenant variable."""
    return "teleport_cloud_" + name + "{" + ", ".join(['tenant=~"$tenant"', *matchers]) + "}"


def pg(name: str, *matchers: str) -> str:
    """A selector of a status-page family (`page` label) filtered on the page variable."""
    return "teleport_cloud_" + name + "{" + ", ".join(['page=~"$page"', *matchers]) + "}"


def src(name: str, wrap: str = "{}") -> str:
    """A source-health family for the selected tenants and status pages (label `target`).

    The tenant sources (ping, inventory, rollout) filter on $tenant, status_page on $page; each
    selector is put into `wrap` (e.g. "rate({}[5m])") before the two are joined with `or`.
    """
    tenant = "teleport_cloud_" + name + '{source!="status_page", target=~"$tenant"}'
    page = "teleport_cloud_" + name + '{source="status_page", target=~"$page"}'
    return wrap.format(tenant) + " or " + wrap.format(page)


def weighted_state(selector: str, label: str, by: str, weights: Mapping[str, int]) -> str:
    """Turns a state set into one number per series: the weight of the current state.

    Each state's sample (1 when current, 0 otherwise) is multiplied by its weight and the maximum
    taken, so a value mapping can name and colour the state in stats and state timelines.
    A current state outside `weights` reads as 0.
    """
    name, _, matchers = selector.rstrip("}").partition("{")
    terms = [f'{name}{{{matchers}, {label}="{state}"}} * {w}' for state, w in weights.items()]
    return f"max by ({by}) (\n  " + "\n  or ".join(terms) + "\n)"


def query(expr: str, legend: str = "", *, instant: bool = False, table: bool = False) -> Json:
    """One Prometheus target; refIds are assigned by the panel."""
    target: Json = {"datasource": DATASOURCE, "editorMode": "code", "expr": expr}
    if table:
        target["format"] = "table"
    target["instant"] = instant or table
    target["range"] = not (instant or table)
    if legend:
        target["legendFormat"] = legend
    return target


# --------------------------------------------------------------------------------------------
# Field config helpers


def thresholds(base: str, *steps: tuple[float, str]) -> Json:
    """Absolute thresholds: `base` colour below the first step, then (value, colour) steps."""
    return {
        "mode": "absolute",
        "steps": [{"color": base, "value": None}]
        + [{"color": color, "value": value} for value, color in steps],
    }


def mappings(values: Mapping[str | int, tuple[str | None, str]]) -> list[Json]:
    """One value mapping: value -> (display text or None to keep the value, colour)."""
    options: Json = {}
    for index, (value, (text, color)) in enumerate(values.items()):
        option: Json = {"color": color, "index": index}
        if text is not None:
            option["text"] = text
        options[str(value)] = option
    return [{"type": "value", "options": options}]


def fixed_colors(colors: Mapping[str, str]) -> list[Json]:
    """Overrides giving the series (by display name) named in `colors` a fixed colour."""
    return [
        {
            "matcher": {"id": "byName", "options": name},
            "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": color}}],
        }
        for name, color in colors.items()
    ]


UP_DOWN: Final = mappings({0: ("Down", "red"), 1: ("Up", "green")})
NO_YES_BAD: Final = mappings({0: ("No", "green"), 1: ("Yes", "red")})
BURN_THRESHOLDS: Final = thresholds(
    "green", (1, "yellow"), (3, "orange"), (6, "red"), (14.4, "dark-red")
)
SKEW_COLORS: Final = {
    "current": "green",
    "one_major_behind": "orange",
    "unsupported_old": "red",
    "unsupported_newer": "purple",
    "unknown": "text",
}
COMPONENT_COLORS: Final = {
    "operational": "green",
    "degraded_performance": "yellow",
    "partial_outage": "orange",
    "major_outage": "red",
    "under_maintenance": "blue",
}
INDICATOR_WEIGHTS: Final = {"none": 0, "maintenance": 1, "minor": 2, "major": 3, "critical": 4}
INDICATOR_MAPPINGS: Final = mappings(
    {
        0: ("Operational", "green"),
        1: ("Maintenance", "blue"),
        2: ("Minor", "yellow"),
        3: ("Major", "orange"),
        4: ("Critical", "red"),
    }
)
GROUP_STATE_WEIGHTS: Final = {"unstarted": 1, "canary": 2, "active": 3, "done": 4, "rolledback": 5}
GROUP_STATE_MAPPINGS: Final = mappings(
    {
        0: ("Other", "text"),
        1: ("Unstarted", "#808080"),
        2: ("Canary", "purple"),
        3: ("Active", "blue"),
        4: ("Done", "green"),
        5: ("Rolled back", "red"),
    }
)


# --------------------------------------------------------------------------------------------
# Panels


def _panel(
    kind: str,
    title: str,
    description: str,
    unit: str,
    targets: Sequence[Json],
    *,
    defaults: Json,
    options: Json,
    overrides: Iterable[Json] = (),
    transformations: Iterable[Json] = (),
) -> Json:
    panel: Json = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": [{**target, "refId": chr(ord("A") + i)} for i, target in enumerate(targets)],
        "fieldConfig": {"defaults": {"unit": unit, **defaults}, "overrides": list(overrides)},
        "options": options,
    }
    if transformations:
        panel["transformations"] = list(transformations)
    return panel


def _reduce() -> Json:
    return {"calcs": ["lastNotNull"], "fields": "", "values": False}


def stat(
    title: str,
    description: str,
    unit: str,
    targets: Sequence[Json],
    *,
    steps: Json | None = None,
    value_mappings: Sequence[Json] = (),
    color_mode: str = "value",
    text_mode: str = "auto",
    decimals: int | None = None,
) -> Json:
    """A single value per series (the last one)."""
    defaults: Json = {
        "color": {"mode": "thresholds"},
        "thresholds": steps or thresholds("blue"),
        "mappings": list(value_mappings),
    }
    if decimals is not None:
        defaults["decimals"] = decimals
    options: Json = {
        "reduceOptions": _reduce(),
        "colorMode": color_mode,
        "graphMode": "none",
        "justifyMode": "auto",
        "orientation": "auto",
        "textMode": text_mode,
        "wideLayout": True,
        "showPercentChange": False,
    }
    return _panel("stat", title, description, unit, targets, defaults=defaults, options=options)


def timeseries(
    title: str,
    description: str,
    unit: str,
    targets: Sequence[Json],
    *,
    stack: bool = False,
    bars: bool = False,
    steps: Json | None = None,
    threshold_lines: bool = False,
    overrides: Iterable[Json] = (),
    soft_min: float | None = 0,
    decimals: int | None = None,
) -> Json:
    """A graph over the time range; `stack` stacks series (counts that add up)."""
    custom: Json = {
        "drawStyle": "bars" if bars else "line",
        "lineInterpolation": "stepAfter" if bars or stack else "linear",
        "lineWidth": 1,
        "fillOpacity": 60 if stack or bars else 10,
        "gradientMode": "none",
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"mode": "normal" if stack or bars else "none", "group": "A"},
        "thresholdsStyle": {"mode": "dashed" if threshold_lines else "off"},
    }
    if soft_min is not None:
        custom["axisSoftMin"] = soft_min
    defaults: Json = {
        "color": {"mode": "palette-classic"},
        "custom": custom,
        "thresholds": steps or thresholds("green"),
        "mappings": [],
    }
    if decimals is not None:
        defaults["decimals"] = decimals
    options: Json = {
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    return _panel(
        "timeseries",
        title,
        description,
        unit,
        targets,
        defaults=defaults,
        options=options,
        overrides=overrides,
    )


def table(
    title: str,
    description: str,
    targets: Sequence[Json],
    columns: Mapping[str, str],
    *,
    unit: str = "none",
    merge: bool = False,
    overrides: Iterable[Json] = (),
    sort_by: str | None = None,
) -> Json:
    """An instant table; `columns` maps field names (labels, `Value`) to headers, in order.

    Fields not listed (Time, __name__, job, instance, external labels) are left out, so the table
    looks the same whatever labels the scrape adds. `merge` joins several queries on their labels.
    """
    transformations: list[Json] = []
    if merge:
        transformations.append({"id": "merge", "options": {}})
    transformations += [
        {"id": "filterFieldsByName", "options": {"include": {"names": list(columns)}}},
        {
            "id": "organize",
            "options": {
                "excludeByName": {},
                "indexByName": {name: i for i, name in enumerate(columns)},
                "renameByName": dict(columns),
            },
        },
    ]
    defaults: Json = {
        "color": {"mode": "thresholds"},
        "custom": {"align": "auto", "cellOptions": {"type": "auto"}, "filterable": True},
        "thresholds": thresholds("green"),
        "mappings": [],
    }
    options: Json = {"showHeader": True, "cellHeight": "sm", "footer": {"show": False}}
    if sort_by is not None:
        options["sortBy"] = [{"displayName": sort_by, "desc": True}]
    return _panel(
        "table",
        title,
        description,
        unit,
        targets,
        defaults=defaults,
        options=options,
        overrides=overrides,
        transformations=transformations,
    )


def state_timeline(
    title: str,
    description: str,
    targets: Sequence[Json],
    value_mappings: Sequence[Json],
    *,
    unit: str = "none",
) -> Json:
    """States over time, one lane per series, named and coloured by value mappings."""
    defaults: Json = {
        "color": {"mode": "thresholds"},
        "custom": {"fillOpacity": 80, "lineWidth": 0},
        "thresholds": thresholds("text"),
        "mappings": list(value_mappings),
    }
    options: Json = {
        "mergeValues": True,
        "showValue": "never",
        "alignValue": "left",
        "rowHeight": 0.85,
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": False},
        "tooltip": {"mode": "single", "sort": "none"},
    }
    return _panel(
        "state-timeline", title, description, unit, targets, defaults=defaults, options=options
    )


def bar_gauge(
    title: str,
    description: str,
    unit: str,
    targets: Sequence[Json],
    *,
    steps: Json | None = None,
    overrides: Iterable[Json] = (),
    max_value: float | None = None,
    decimals: int | None = None,
) -> Json:
    """Horizontal bars, one per series, for comparing current values."""
    defaults: Json = {
        "color": {"mode": "thresholds"},
        "thresholds": steps or thresholds("blue"),
        "mappings": [],
        "min": 0,
    }
    if max_value is not None:
        defaults["max"] = max_value
    if decimals is not None:
        defaults["decimals"] = decimals
    options: Json = {
        "reduceOptions": _reduce(),
        "orientation": "horizontal",
        "displayMode": "basic",
        "valueMode": "color",
        "namePlacement": "auto",
        "showUnfilled": True,
        "sizing": "auto",
        "minVizHeight": 16,
        "minVizWidth": 8,
        "maxVizHeight": 300,
    }
    return _panel(
        "bargauge",
        title,
        description,
        unit,
        targets,
        defaults=defaults,
        options=options,
        overrides=overrides,
    )


# --------------------------------------------------------------------------------------------
# Layout


class Layout:
    """Places panels left to right on the 24-column grid, wrapping lines, under rows.

    Panels of a collapsed row are stored inside the row, with the positions they take when it is
    expanded; ids are unique across the dashboard.
    """

    def __init__(self) -> None:
        self.panels: list[Json] = []
        self._next_id = 1
        self._x = 0
        self._y = 0
        self._line_height = 0
        self._collapsed: Json | None = None

    def _new_line(self) -> None:
        self._y += self._line_height
        self._x = 0
        self._line_height = 0

    def _place(self, panel: Json, width: int, height: int) -> Json:
        placed: Json = {
            "id": self._next_id,
            "gridPos": {"h": height, "w": width, "x": self._x, "y": self._y},
            **panel,
        }
        self._next_id += 1
        return placed

    def row(self, title: str, *, collapsed: bool = False) -> None:
        self._new_line()
        row = self._place({"type": "row", "title": title, "collapsed": collapsed}, GRID_WIDTH, 1)
        row["panels"] = []
        self.panels.append(row)
        self._y += 1
        self._collapsed = row if collapsed else None

    def add(self, panel: Json, width: int, height: int) -> None:
        if self._x + width > GRID_WIDTH:
            self._new_line()
        placed = self._place(panel, width, height)
        (self._collapsed["panels"] if self._collapsed else self.panels).append(placed)
        self._x += width
        self._line_height = max(self._line_height, height)


# --------------------------------------------------------------------------------------------
# Dashboard scaffolding


def datasource_variable() -> Json:
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "includeAll": False,
        "multi": False,
        "options": [],
        "refresh": 1,
        "regex": "",
        "skipUrlSync": False,
    }


def query_variable(name: str, label: str, definition: str, description: str) -> Json:
    """A multi-value label_values() variable defaulting to All."""
    return {
        "name": name,
        "label": label,
        "description": description,
        "type": "query",
        "datasource": DATASOURCE,
        "query": definition,
        "definition": definition,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "hide": 0,
        "includeAll": True,
        "multi": True,
        "options": [],
        "refresh": 2,
        "regex": "",
        "skipUrlSync": False,
        "sort": 1,
    }


TENANT_VARIABLE_DESCRIPTION: Final = "Teleport Cloud tenants (the exporter's `tenant` label)."


def annotation(name: str, expr: str, title: str, text: str, color: str) -> Json:
    return {
        "name": name,
        "datasource": DATASOURCE,
        "enable": True,
        "hide": False,
        "iconColor": color,
        "expr": expr,
        "step": "60s",
        "titleFormat": title,
        "textFormat": text,
        "useValueForTime": False,
    }


CONTROL_PLANE_ANNOTATION: Final = annotation(
    "Control-plane major upgrades",
    f"changes({m('control_plane_major_version')}[10m]) > 0",
    "Control plane upgraded to a new major",
    "{{tenant}}",
    "purple",
)


def dashboard(
    uid: str,
    title: str,
    description: str,
    layout: Layout,
    *,
    variables: Sequence[Json],
    annotations: Sequence[Json],
) -> Json:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": TAGS,
        "editable": True,
        "graphTooltip": 1,
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "weekStart": "",
        "version": 1,
        "links": [
            {
                "title": "Teleport Cloud dashboards",
                "type": "dashboards",
                "tags": ["teleport-cloud"],
                "asDropdown": False,
                "includeVars": True,
                "keepTime": True,
                "targetBlank": False,
                "icon": "external link",
                "tooltip": "",
                "url": "",
            }
        ],
        "annotations": {"list": list(annotations)},
        "templating": {"list": [datasource_variable(), *variables]},
        "panels": layout.panels,
    }


# --------------------------------------------------------------------------------------------
# Teleport Cloud / Tenant


INDICATOR_SEVERITY: Final = weighted_state(
    pg("status_indicator"), "indicator", "page", INDICATOR_WEIGHTS
)


def tenant_dashboard() -> Json:
    lay = Layout()

    lay.row("Proxy probe (/webapi/ping)")
    lay.add(
        stat(
            "Probe success",
            "Whether the last probe of the proxy's /webapi/ping succeeded (TCP, TLS and a 2xx "
            "answer with valid JSON), like blackbox_exporter's probe_success.",
            "none",
            [query(m("probe_success"), "{{tenant}}", instant=True)],
            value_mappings=UP_DOWN,
            color_mode="background",
        ),
        4,
        4,
    )
    lay.add(
        stat(
            "Availability (time range)",
            "Share of scrapes in the selected time range at which the last probe had succeeded.",
            "percentunit",
            [
                query(
                    f"avg by (tenant) (avg_over_time({m('probe_success')}[$__range]))",
                    "{{tenant}}",
                    instant=True,
                )
            ],
            steps=thresholds("red", (0.99, "orange"), (0.999, "green")),
            decimals=3,
        ),
        4,
        4,
    )
    lay.add(
        stat(
            "HTTP status code",
            "HTTP status code of the last probe; 0 when no response arrived (DNS, connect or TLS "
            "failure, timeout).",
            "none",
            [query(m("probe_http_status_code"), "{{tenant}}", instant=True)],
            steps=thresholds("red", (200, "green"), (300, "orange"), (400, "red")),
            value_mappings=mappings({0: ("No response", "red")}),
        ),
        4,
        4,
    )
    lay.add(
        stat(
            "Last probe duration",
            "Duration of the last probe, from DNS resolution to the last byte.",
            "s",
            [query(m("probe_duration_seconds"), "{{tenant}}", instant=True)],
            steps=thresholds("green", (0.5, "orange"), (2, "red")),
        ),
        4,
        4,
    )
    lay.add(
        stat(
            "Mean latency (time range)",
            "Mean duration of the successful probes in the selected time range, from the "
            "teleport_cloud_probe_latency_seconds histogram.",
            "s",
            [
                query(
                    f"sum by (tenant) (rate({m('probe_latency_seconds_sum')}[$__range]))\n"
                    f"/ sum by (tenant) (rate({m('probe_latency_seconds_count')}[$__range]))",
                    "{{tenant}}",
                    instant=True,
                )
            ],
            steps=thresholds("green", (0.5, "orange"), (2, "red")),
        ),
        4,
        4,
    )
    lay.add(
        stat(
            "Certificate expires in",
            "Time left until the notAfter of the proxy's leaf TLS certificate. Teleport Cloud "
            "renews it automatically; a value that keeps shrinking under two weeks is worth a "
            "support ticket.",
            "dtdurations",
            [
                query(
                    f"{m('tls_cert_expiry_timestamp_seconds')} - time()", "{{tenant}}", instant=True
                )
            ],
            steps=thresholds("red", (7 * 86400, "orange"), (14 * 86400, "green")),
        ),
        4,
        4,
    )
    lay.add(
        state_timeline(
            "Probe success history",
            "Result of the last probe at each scrape: green up, red down.",
            [query(m("probe_success"), "{{tenant}}")],
            UP_DOWN,
        ),
        24,
        4,
    )
    lay.add(
        timeseries(
            "Probe duration by phase",
            "Phases of the last probe, stacked (blackbox_exporter's probe_http_duration_seconds): "
            "resolve (DNS), connect (TCP), tls (handshake), processing (until the first byte), "
            "transfer (the body).",
            "s",
            [query(m("probe_phase_duration_seconds"), "{{tenant}} {{phase}}")],
            stack=True,
        ),
        12,
        8,
    )
    lay.add(
        timeseries(
            "Latency percentiles",
            "p50, p90 and p99 of successful probe durations over each step, from the "
            "teleport_cloud_probe_latency_seconds histogram, with the last probe's duration.",
            "s",
            [
                *(
                    query(
                        f"histogram_quantile({q}, sum by (tenant, le) "
                        f"(rate({m('probe_latency_seconds_bucket')}[$__rate_interval])))",
                        f"{{{{tenant}}}} p{int(q * 100)}",
                    )
                    for q in (0.5, 0.9, 0.99)
                ),
                query(m("probe_duration_seconds"), "{{tenant}} last probe"),
            ],
        ),
        12,
        8,
    )

    lay.row("Cluster")
    lay.add(
        table(
            "Cluster",
            "Facts from the last successful /webapi/ping: cluster name, control-plane version, the "
            "oldest client version it accepts, edition, FIPS, TLS routing and whether automatic "
            "agent upgrades are on.",
            [query(m("cluster_info"), table=True)],
            {
                "tenant": "Tenant",
                "cluster_name": "Cluster",
                "server_version": "Version",
                "min_client_version": "Min client version",
                "edition": "Edition",
                "fips": "FIPS",
                "tls_routing_enabled": "TLS routing",
                "automatic_upgrades": "Automatic upgrades",
            },
        ),
        16,
        5,
    )
    lay.add(
        stat(
            "Control-plane major",
            "Major version of the tenant's Auth and Proxy Service. Agents must run this major or "
            "the one before it.",
            "none",
            [query(m("control_plane_major_version"), "{{tenant}}", instant=True)],
        ),
        4,
        5,
    )
    lay.add(
        stat(
            "Agent target version",
            "Version the tenant wants its agents to run (auto_update.agent_version, or the v1 "
            "version channel on older tenants).",
            "none",
            [query(m("agent_target_version_info"), "{{version}}", instant=True)],
            text_mode="name",
        ),
        4,
        5,
    )
    lay.add(
        table(
            "Proxy endpoints",
            "Public addresses published in the proxy settings of /webapi/ping (web, SSH, SSH "
            "tunnel, Kubernetes and database listeners).",
            [query(m("proxy_endpoint_info"), table=True)],
            {"tenant": "Tenant", "protocol": "Protocol", "address": "Address"},
        ),
        24,
        6,
    )

    lay.row("Status page")
    lay.add(
        stat(
            "Status page indicator",
            "Overall indicator of the vendor status page (Atlassian's blend, not the worst "
            "component): operational, maintenance, minor, major or critical.",
            "none",
            [query(INDICATOR_SEVERITY, "{{page}}", instant=True)],
            value_mappings=INDICATOR_MAPPINGS,
            color_mode="background",
        ),
        6,
        4,
    )
    lay.add(
        stat(
            "Unresolved incidents",
            "Incidents open on the status page, all impacts together.",
            "none",
            [query(f"sum by (page) ({pg('status_incidents')})", "{{page}}", instant=True)],
            steps=thresholds("green", (1, "red")),
        ),
        6,
        4,
    )
    lay.add(
        stat(
            "Components not operational",
            "Status-page components whose status is anything but operational.",
            "none",
            [
                query(
                    "sum by (page) (" + pg("status_component", 'status!="operational"') + ")",
                    "{{page}}",
                    instant=True,
                )
            ],
            steps=thresholds("green", (1, "orange")),
        ),
        6,
        4,
    )
    lay.add(
        stat(
            "Next maintenance",
            "Start of the earliest scheduled maintenance that has not begun yet; 'None scheduled' "
            "when there is none.",
            "dateTimeFromNow",
            [
                query(
                    f"{pg('status_next_maintenance_start_timestamp_seconds')} * 1000\n"
                    f"or on(page) (max by (page) ({pg('status_indicator')}) * 0)",
                    "{{page}}",
                    instant=True,
                )
            ],
            value_mappings=mappings({0: ("None scheduled", "green")}),
        ),
        6,
        4,
    )
    lay.add(
        state_timeline(
            "Status page indicator history",
            "The status page's overall indicator over time.",
            [query(INDICATOR_SEVERITY, "{{page}}")],
            INDICATOR_MAPPINGS,
        ),
        24,
        4,
    )
    lay.add(
        timeseries(
            "Unresolved incidents by impact",
            "Open incidents on the status page, stacked by impact (none, minor, major, critical).",
            "none",
            [query(pg("status_incidents"), "{{impact}}")],
            stack=True,
            overrides=fixed_colors(
                {"none": "text", "minor": "yellow", "major": "orange", "critical": "red"}
            ),
            decimals=0,
        ),
        12,
        7,
    )
    lay.add(
        timeseries(
            "Maintenances by state",
            "Scheduled maintenances that have not completed: scheduled, in progress, verifying.",
            "none",
            [query(pg("status_maintenances"), "{{state}}")],
            stack=True,
            overrides=fixed_colors(
                {"scheduled": "blue", "in_progress": "orange", "verifying": "yellow"}
            ),
            decimals=0,
        ),
        12,
        7,
    )
    lay.add(
        table(
            "Components",
            "Current status of each status-page component; group is the parent group's name "
            "(empty at top level).",
            [query(f"{pg('status_component')} == 1", table=True)],
            {"page": "Page", "group": "Group", "component": "Component", "status": "Status"},
            overrides=[
                {
                    "matcher": {"id": "byName", "options": "Status"},
                    "properties": [
                        {
                            "id": "mappings",
                            "value": mappings(
                                {state: (None, color) for state, color in COMPONENT_COLORS.items()}
                            ),
                        },
                        {"id": "custom.cellOptions", "value": {"type": "color-text"}},
                    ],
                }
            ],
        ),
        24,
        10,
    )

    lay.row("SLA (calendar month, UTC)")
    lay.add(
        stat(
            "SLA objective",
            "Monthly uptime objective of the tenant's SLA (99.9 %, or 99.99 % with multi-region "
            "high availability).",
            "percentunit",
            [query(m("sla_objective_ratio"), "{{tenant}}", instant=True)],
            decimals=2,
        ),
        4,
        4,
    )
    lay.add(
        stat(
            "Uptime this month",
            "1 - downtime / observed time since the start of the month. Minutes without a probe "
            "and down minutes inside a status-page maintenance (if excluded) do not count.",
            "percentunit",
            [query(m("sla_uptime_ratio"), "{{tenant}}", instant=True)],
            decimals=3,
        ),
        4,
        4,
    )
    lay.add(
        stat(
            "Error budget remaining",
            "1 - downtime / error budget of this month; negative once the budget is spent.",
            "percentunit",
            [query(m("sla_error_budget_remaining_ratio"), "{{tenant}}", instant=True)],
            steps=thresholds("red", (0, "orange"), (0.25, "yellow"), (0.5, "green")),
            decimals=1,
        ),
        4,
        4,
    )
    lay.add(
        stat(
            "SLA breached",
            "Yes once this month's downtime exceeds the error budget: time to claim the SLA "
            "credit.",
            "none",
            [query(m("sla_breached"), "{{tenant}}", instant=True)],
            value_mappings=NO_YES_BAD,
            color_mode="background",
        ),
        4,
        4,
    )
    lay.add(
        stat(
            "Observed coverage",
            "Share of the month so far that the exporter observed (minutes with at least one "
            "probe). Unobserved minutes count neither as up nor as down, so low coverage makes "
            "the uptime figure weaker evidence.",
            "percentunit",
            [
                query(
                    f"clamp_max({m('sla_observed_seconds')}\n"
                    f"/ (time() - {m('sla_period_start_timestamp_seconds')}), 1)",
                    "{{tenant}}",
                    instant=True,
                )
            ],
            steps=thresholds("red", (0.9, "orange"), (0.99, "green")),
            decimals=1,
        ),
        4,
        4,
    )
    lay.add(
        stat(
            "Period ends in",
            "Time left in the current SLA period (the calendar month, UTC).",
            "dtdurations",
            [
                query(
                    f"{m('sla_period_end_timestamp_seconds')} - time()", "{{tenant}}", instant=True
                )
            ],
        ),
        4,
        4,
    )
    lay.add(
        timeseries(
            "Downtime vs error budget",
            "Downtime counted this month against the month's error budget (dashed), and down "
            "time excluded because it fell inside a status-page maintenance.",
            "s",
            [
                query(m("sla_downtime_seconds"), "{{tenant}} downtime"),
                query(m("sla_error_budget_seconds"), "{{tenant}} budget"),
                query(m("sla_maintenance_seconds"), "{{tenant}} excluded maintenance"),
            ],
            overrides=[
                {
                    "matcher": {"id": "byRegexp", "options": ".* budget$"},
                    "properties": [
                        {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
                        {"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}},
                    ],
                }
            ],
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Burn rate by window",
            "Error-budget burn rate per trailing window: (down / observed minutes) / (1 - "
            "objective). 1 spends exactly the budget over a month; the dashed lines are the "
            "multi-window alert thresholds (14.4, 6, 3, 1).",
            "none",
            [query(m("sla_burn_rate"), "{{tenant}} {{window}}")],
            steps=BURN_THRESHOLDS,
            threshold_lines=True,
        ),
        8,
        8,
    )
    lay.add(
        bar_gauge(
            "Burn rate now",
            "Current burn rate of each window, shortest first; 1 spends exactly the month's "
            "budget, 14.4 spends 2 % of it in an hour.",
            "none",
            [
                query(m("sla_burn_rate", f'window="{window}"'), f"{{{{tenant}}}} {window}")
                for window in ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
            ],
            steps=BURN_THRESHOLDS,
            decimals=2,
        ),
        8,
        8,
    )

    lay.row("Exporter sources", collapsed=True)
    lay.add(
        state_timeline(
            "Source up",
            "Whether each source's last background refresh succeeded (ping, inventory, rollout "
            "for the tenant; status_page for the page). A failing source keeps its last good data "
            "exposed.",
            [query(src("source_up"), "{{source}} {{target}}")],
            UP_DOWN,
        ),
        24,
        6,
    )
    lay.add(
        bar_gauge(
            "Time since last success",
            "Age of each source's data: time since its last successful refresh.",
            "s",
            [
                query(
                    f"time() - ({src('source_last_success_timestamp_seconds')})",
                    "{{source}} {{target}}",
                    instant=True,
                )
            ],
            steps=thresholds("green", (600, "orange"), (1800, "red")),
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Refresh duration",
            "Wall-clock duration of each source's last refresh, successful or not.",
            "s",
            [query(src("source_duration_seconds"), "{{source}} {{target}}")],
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Refresh errors by reason",
            "Failed refreshes per minute by source and reason (timeout, connect, tls, http, parse, "
            "auth, exec, too_large, other). Details are in the exporter's logs.",
            "cpm",
            [
                query(
                    "60 * sum by (source, target, reason) (\n  "
                    + src("source_errors_total", "rate({}[$__rate_interval])")
                    + "\n)",
                    "{{source}} {{target}} {{reason}}",
                )
            ],
        ),
        8,
        8,
    )

    return dashboard(
        TENANT_UID,
        "Teleport Cloud / Tenant",
        "Reachability, latency and TLS of a Teleport Enterprise Cloud tenant's proxy, the vendor "
        "status page, and the monthly SLA with its error budget (teleport-cloud-exporter).",
        lay,
        variables=[
            query_variable(
                "tenant",
                "Tenant",
                "label_values(teleport_cloud_probe_success, tenant)",
                TENANT_VARIABLE_DESCRIPTION,
            ),
            query_variable(
                "page",
                "Status page",
                "label_values(teleport_cloud_status_indicator, page)",
                "Vendor status pages watched by the exporter (the `page` label).",
            ),
        ],
        annotations=[
            annotation(
                "Status-page maintenance",
                pg("status_maintenances", 'state="in_progress"') + " > 0",
                "Maintenance in progress",
                "{{page}}",
                "blue",
            ),
            CONTROL_PLANE_ANNOTATION,
        ],
    )


# --------------------------------------------------------------------------------------------
# Teleport Cloud / Agent fleet


def fleet_dashboard() -> Json:
    lay = Layout()
    agents = m("agents")

    lay.row("Overview")
    lay.add(
        stat(
            "Agents",
            "Customer agents in the inventory (Teleport-managed Auth and Proxy excluded).",
            "none",
            [query(f"sum by (tenant) ({agents})", "{{tenant}}", instant=True)],
        ),
        3,
        4,
    )
    lay.add(
        stat(
            "Control-plane major",
            "Major version of the tenant's control plane; agents may run this major or the one "
            "before it.",
            "none",
            [query(m("control_plane_major_version"), "{{tenant}}", instant=True)],
        ),
        3,
        4,
    )
    lay.add(
        stat(
            "Target agent version",
            "Version the tenant wants its agents to run.",
            "none",
            [query(m("agent_target_version_info"), "{{version}}", instant=True)],
            text_mode="name",
        ),
        3,
        4,
    )
    lay.add(
        stat(
            "Upgrade blocked",
            "Yes while any agent is one or more majors behind the control plane: Teleport Cloud "
            "withholds the next control-plane major upgrade until those agents are updated.",
            "none",
            [query(m("control_plane_upgrade_blocked"), "{{tenant}}", instant=True)],
            value_mappings=NO_YES_BAD,
            color_mode="background",
        ),
        3,
        4,
    )
    lay.add(
        stat(
            "One major behind",
            "Agents one major behind the control plane: still supported, but they block the next "
            "major upgrade.",
            "none",
            [
                query(
                    "sum by (tenant) (" + m("agents_by_skew", 'skew="one_major_behind"') + ")",
                    "{{tenant}}",
                    instant=True,
                )
            ],
            steps=thresholds("green", (1, "orange")),
        ),
        3,
        4,
    )
    lay.add(
        stat(
            "Unsupported",
            "Agents two or more majors behind, or newer than the control plane: outside "
            "Teleport's compatibility guarantee.",
            "none",
            [
                query(
                    "sum by (tenant) ("
                    + m("agents_by_skew", 'skew=~"unsupported_old|unsupported_newer"')
                    + ")",
                    "{{tenant}}",
                    instant=True,
                )
            ],
            steps=thresholds("green", (1, "red")),
        ),
        3,
        4,
    )
    lay.add(
        stat(
            "Not enrolled in updates",
            "Agents without an upgrader (ext_upgrader absent): nothing updates them automatically.",
            "none",
            [
                query(
                    "sum by (tenant) (" + m("agents", 'upgrader="none"') + ")\n"
                    f"or on(tenant) (sum by (tenant) ({agents}) * 0)",
                    "{{tenant}}",
                    instant=True,
                )
            ],
            steps=thresholds("green", (1, "orange")),
        ),
        3,
        4,
    )
    lay.add(
        stat(
            "Not on target version",
            "Agents whose version differs from the tenant's target agent version.",
            "none",
            [query(m("agents_outdated"), "{{tenant}}", instant=True)],
            steps=thresholds("green", (1, "yellow")),
        ),
        3,
        4,
    )

    lay.row("Agents needing attention")
    lay.add(
        table(
            "Agents one or more majors behind",
            "Agents whose major is one or more behind the control plane's, with host, version and "
            "upgrader. These block the next control-plane major upgrade. Needs per-agent metrics "
            "(per_agent_metrics: true).",
            [
                query(
                    f"{m('agent_info')}\n"
                    f"* on(tenant, server_id) group_left()\n"
                    f"({m('agent_major_versions_behind')} >= 1)",
                    table=True,
                )
            ],
            {
                "tenant": "Tenant",
                "hostname": "Hostname",
                "server_id": "Server ID",
                "version": "Version",
                "Value": "Majors behind",
                "services": "Services",
                "upgrader": "Upgrader",
                "upgrader_version": "Upgrader version",
                "update_group": "Update group",
            },
            sort_by="Majors behind",
        ),
        18,
        10,
    )
    lay.add(
        stat(
            "Oldest agent heartbeat",
            "Time since the least recent agent heartbeat recorded by the control plane. Needs "
            "per-agent metrics.",
            "s",
            [
                query(
                    f"time() - min by (tenant) ({m('agent_last_seen_timestamp_seconds')})",
                    "{{tenant}}",
                    instant=True,
                )
            ],
            steps=thresholds("green", (900, "orange"), (3600, "red")),
        ),
        6,
        10,
    )

    lay.row("Versions and skew")
    lay.add(
        bar_gauge(
            "Agents by version",
            "Current agent count per Teleport version.",
            "none",
            [query(f"sum by (version) ({agents})", "{{version}}", instant=True)],
        ),
        8,
        8,
    )
    lay.add(
        bar_gauge(
            "Agents by skew class",
            "Current agents by version skew against the control plane: current, one major "
            "behind, unsupported (older or newer), unknown (unparseable version).",
            "none",
            [
                query("sum(" + m("agents_by_skew", f'skew="{skew}"') + ")", skew)
                for skew in SKEW_COLORS
            ],
            overrides=fixed_colors(SKEW_COLORS),
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Agents not on the target version",
            "Agents whose version differs from the target agent version, labelled with that "
            "target.",
            "none",
            [
                query(
                    f"{m('agents_outdated')}\n"
                    f"* on(tenant) group_left(version) {m('agent_target_version_info')}\n"
                    f"or on(tenant) {m('agents_outdated')}",
                    "{{tenant}} target {{version}}",
                )
            ],
            decimals=0,
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Agents by version over time",
            "Agent count per Teleport version, stacked: watch old versions drain during upgrades.",
            "none",
            [query(f"sum by (version) ({agents})", "{{version}}")],
            stack=True,
            decimals=0,
        ),
        12,
        8,
    )
    lay.add(
        timeseries(
            "Agents by skew class over time",
            "Agents by version skew against the control plane, stacked.",
            "none",
            [query(f"sum by (skew) ({m('agents_by_skew')})", "{{skew}}")],
            stack=True,
            overrides=fixed_colors(SKEW_COLORS),
            decimals=0,
        ),
        12,
        8,
    )

    lay.row("Automatic updates")
    lay.add(
        bar_gauge(
            "Agents by upgrader",
            "Current agents per upgrader kind (ext_upgrader: unit, kube, binary, ...); none means "
            "not enrolled in automatic updates.",
            "none",
            [query(f"sum by (upgrader) ({agents})", "{{upgrader}}", instant=True)],
            overrides=fixed_colors({"none": "red"}),
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Enrolment by upgrader over time",
            "Agents per upgrader kind, stacked; none means not enrolled in automatic updates.",
            "none",
            [query(f"sum by (upgrader) ({agents})", "{{upgrader}}")],
            stack=True,
            overrides=fixed_colors({"none": "red"}),
            decimals=0,
        ),
        16,
        8,
    )
    lay.add(
        table(
            "Managed Updates rollout",
            "The tenant's Managed Updates v2 agent rollout: versions, mode, strategy and "
            "schedule. Empty when the tenant has no v2 rollout.",
            [query(m("autoupdate_rollout_info"), table=True)],
            {
                "tenant": "Tenant",
                "start_version": "Start version",
                "target_version": "Target version",
                "mode": "Mode",
                "strategy": "Strategy",
                "schedule": "Schedule",
            },
        ),
        24,
        5,
    )
    lay.add(
        state_timeline(
            "Rollout group state",
            "State of each rollout group over time: unstarted, canary, active, done, rolled back.",
            [
                query(
                    weighted_state(
                        m("autoupdate_group_state"), "state", "tenant, group", GROUP_STATE_WEIGHTS
                    ),
                    "{{tenant}} {{group}}",
                )
            ],
            GROUP_STATE_MAPPINGS,
        ),
        24,
        6,
    )
    lay.add(
        table(
            "Rollout groups",
            "Each rollout group's current state, its agents and how many already run the target "
            "version.",
            [
                query(f"{m('autoupdate_group_state')} == 1", table=True),
                query(m("autoupdate_group_agents"), table=True),
                query(m("autoupdate_group_agents_up_to_date"), table=True),
            ],
            {
                "tenant": "Tenant",
                "group": "Group",
                "state": "State",
                "Value #B": "Agents",
                "Value #C": "Up to date",
            },
            merge=True,
        ),
        12,
        8,
    )
    lay.add(
        bar_gauge(
            "Rollout group progress",
            "Share of each rollout group's agents already on the target version (0 for an empty "
            "group).",
            "percentunit",
            [
                query(
                    f"{m('autoupdate_group_agents_up_to_date')}\n"
                    f"/ clamp_min({m('autoupdate_group_agents')}, 1)",
                    "{{tenant}} {{group}}",
                    instant=True,
                )
            ],
            steps=thresholds("orange", (1, "green")),
            max_value=1,
        ),
        12,
        8,
    )

    lay.row("Services", collapsed=True)
    lay.add(
        bar_gauge(
            "Agents by service",
            "Current agents running each Teleport service (an agent with several services counts "
            "in each).",
            "none",
            [
                query(
                    f"sum by (teleport_service) ({m('agents_by_service')})",
                    "{{teleport_service}}",
                    instant=True,
                )
            ],
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Agents by service over time",
            "Agents running each Teleport service.",
            "none",
            [
                query(
                    f"sum by (teleport_service) ({m('agents_by_service')})", "{{teleport_service}}"
                )
            ],
            decimals=0,
        ),
        16,
        8,
    )

    return dashboard(
        FLEET_UID,
        "Teleport Cloud / Agent fleet",
        "Agent version skew against the control plane, automatic-update enrolment and Managed "
        "Updates v2 rollout progress of Teleport Enterprise Cloud tenants "
        "(teleport-cloud-exporter).",
        lay,
        variables=[
            query_variable(
                "tenant",
                "Tenant",
                "label_values(teleport_cloud_agents_by_skew, tenant)",
                TENANT_VARIABLE_DESCRIPTION,
            )
        ],
        annotations=[CONTROL_PLANE_ANNOTATION],
    )


# --------------------------------------------------------------------------------------------
# API for tests and end-to-end checks


def dashboards() -> dict[str, Json]:
    """File name under grafana/dashboards -> dashboard model."""
    return {
        "teleport-cloud-tenant.json": tenant_dashboard(),
        "teleport-cloud-fleet.json": fleet_dashboard(),
    }


def all_panels(dashboard: Mapping[str, Any]) -> list[Json]:
    """Every panel, rows included, with the panels of collapsed rows after their row."""
    out: list[Json] = []
    for panel in dashboard.get("panels", []):
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def panel_queries(dashboard: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL expression) for every target of every panel, in dashboard order."""
    return [
        (panel["title"], target["expr"])
        for panel in all_panels(dashboard)
        if panel.get("type") != "row"
        for target in panel.get("targets", [])
    ]


BUILTIN_VALUES: Final = {"__rate_interval": "1m", "__interval": "1m", "__range": "1h"}
_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")
_REGEX_META = re.compile(r"([.+*?()|\[\]{}^$\\])")


def _promql_regex_literal(value: str) -> str:
    """`value` matched literally by =~ inside a double-quoted PromQL string."""
    escaped = _REGEX_META.sub(r"\\\1", value)  # regex escaping: . -> \.
    return escaped.replace("\\", "\\\\").replace('"', '\\"')  # string escaping: \. -> \\.


def concrete(expr: str, tenant: str, page: str = "", *, literal: bool = True) -> str:
    """`expr` with Grafana's variables replaced, ready for Prometheus' HTTP API.

    $tenant / ${tenant} and $page / ${page} become the given names (regex-escaped unless
    `literal` is false, in which case they are inserted as regexes such as ".*");
    $__rate_interval and $__interval become 1m, $__range 1h. An unknown variable raises
    ValueError.
    """
    values = dict(BUILTIN_VALUES)
    for name, value in (("tenant", tenant), ("page", page)):
        values[name] = _promql_regex_literal(value) if literal else value

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise ValueError(f"unknown dashboard variable ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(substitute, expr)


def render(model: Mapping[str, Any]) -> str:
    return json.dumps(model, indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the committed JSON is not up to date"
    )
    args = parser.parse_args(argv)
    stale: list[str] = []
    for filename, model in dashboards().items():
        path = OUT_DIR / filename
        text = render(model)
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(str(path))
        else:
            OUT_DIR.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        print("out of date (run python grafana/build.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
