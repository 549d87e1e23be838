"""Builds the Grafana dashboards of teleport-cloud-exporter with grafana-foundation-sdk.

`teleport-cloud-exporter mixin` writes them (and `--check` compares them) with the rules and
the Kubernetes objects; the committed JSON is the rendering of the mixin's defaults.

`teleport-cloud-exporter mixin --config FILE --out DIR` renders the same dashboards from another
configuration: the `job` and `cluster` variables follow its job selector and cluster label, and
every threshold is the alert's, read from the same configuration.

Panels read the recording rules (replicas folded, one series per tenant) wherever one exists.
Other code (tests, the live check against Prometheus) imports `dashboards()`, `panel_queries()`
and `concrete()`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final

from grafana_foundation_sdk.cog.encoder import JSONEncoder

from exporter.mixin.config import MixinConfig, parse_config
from exporter.mixin.dashboards.fleet import fleet
from exporter.mixin.dashboards.overview import overview

Json = dict[str, Any]


# --------------------------------------------------------------------------------------------
# Rendering and the helpers other code uses


def _model(builder: Any) -> Json:
    """The dashboard as plain JSON, with unique panel ids (the SDK leaves them 0)."""
    model: Json = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    for number, panel in enumerate(all_panels(model), start=1):
        panel["id"] = number
    return model


def dashboards(config: MixinConfig | None = None) -> dict[str, Json]:
    config = config or parse_config()
    return {
        "teleport-cloud-overview.json": _model(overview(config)),
        "teleport-cloud-fleet.json": _model(fleet(config)),
    }


def render(model: Mapping[str, Any]) -> str:
    return json.dumps(model, indent=2, sort_keys=True) + "\n"


def render_all(config: MixinConfig) -> dict[str, str]:
    return {name: render(model) for name, model in dashboards(config).items()}


def all_panels(dashboard: Mapping[str, Any]) -> list[Json]:
    """Every panel, rows included, with the panels of collapsed rows after their row."""
    out: list[Json] = []
    for panel in dashboard.get("panels", []):
        out.append(panel)
        out.extend(panel.get("panels") or [])
    return out


def panel_queries(dashboard: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL expression) for every target of every panel, in dashboard order."""
    return [
        (panel["title"], target["expr"])
        for panel in all_panels(dashboard)
        if panel.get("type") != "row"
        for target in panel.get("targets") or []
    ]


BUILTIN_VALUES: Final = {
    "__rate_interval": "1m",
    "__interval": "1m",
    "__range": "1h",
    "cluster": ".*",
    "job": ".*",
}
_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")
_REGEX_META = re.compile(r"([.+*?()|\[\]{}^$\\])")


def concrete(expr: str, tenant: str, page: str = "", *, literal: bool = True) -> str:
    """`expr` with Grafana's variables replaced, ready for Prometheus' HTTP API.

    $tenant and $page become the given names (regex-escaped unless `literal` is false), and
    $agent_tenant the tenant as it is;
    $cluster and $job match anything; $__rate_interval and $__interval become 1m, $__range 1h.
    An unknown variable raises ValueError.
    """
    values = dict(BUILTIN_VALUES)
    for name, value in (("tenant", tenant), ("page", page)):
        values[name] = _REGEX_META.sub(r"\\\\\1", value) if literal else value
    # $agent_tenant is single-valued and matched with `=`: the name itself, never escaped.
    values["agent_tenant"] = tenant

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise ValueError(f"unknown dashboard variable ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(substitute, expr)
