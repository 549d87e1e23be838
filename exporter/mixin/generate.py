"""`teleport-cloud-exporter mixin`: the one generator. From one mixin configuration it renders
the alert and recording rules (prometheus/), the Grafana dashboards (grafana/dashboards/, when
grafana-foundation-sdk is installed: the `mixin` extra) and the Kubernetes objects that carry
both (k8s/base/prometheusrule.yaml, k8s/base/dashboards.yaml); `--check` compares all of them."""

from __future__ import annotations

import importlib
import importlib.util
import string
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from exporter.mixin.config import MixinConfig, MixinConfigError, load_config, render_rule_file
from exporter.mixin.k8s import InputError, read_dashboards, render_k8s
from exporter.mixin.rules import alert_groups, recording_groups

ALERTS_HEADER = """\
Alerting rules for teleport-cloud-exporter, rendered by `teleport-cloud-exporter mixin` from
its configuration: edit the configuration (or the mixin), not this file.

Load together with recording.yml: the alerts read its per-tenant series, in which exporter
replicas are folded and `instance`/`pod` are gone, so each alert fires once per tenant.
Severity `critical` pages someone, `warning` opens a ticket, `info` is for a low-noise channel.
`summary` is static, `description` templated, `runbook_url` points at the runbook (docs/runbook.md).
Every alert has a firing and a non-firing unit test in tests/rules/ (`promtool test rules`)."""

RECORDING_HEADER = """\
Recording rules for teleport-cloud-exporter, rendered by `teleport-cloud-exporter mixin` from
its configuration: edit the configuration (or the mixin), not this file.

Names follow level:metric:operations; the level names the labels kept besides the cluster
label. Exporter replicas are folded: fleet facts with max over the replicas whose source is not
failing (a replica whose inventory failed keeps days-old data), SLA figures from the replica
that observed the tenant most (per burn-rate window too), probe results with the best replica
(one replica with broken egress is not an outage). The alerts and the Grafana dashboards read
these series."""


def render_alertmanager(config: MixinConfig) -> str:
    """The example Alertmanager configuration, routing on the configured severities."""
    template = resources.files("exporter.mixin").joinpath("alertmanager.yml")
    return string.Template(template.read_text(encoding="utf-8")).substitute(config.severities)


def render_rules(config: MixinConfig) -> dict[str, str]:
    """Relative path -> text of each rule file, and the Alertmanager example that routes them."""

    return {
        "prometheus/alertmanager.yml": render_alertmanager(config),
        "prometheus/alerts.yml": render_rule_file(ALERTS_HEADER, alert_groups(config), config),
        "prometheus/recording.yml": render_rule_file(
            RECORDING_HEADER, recording_groups(config), config
        ),
    }


def render_all(config: MixinConfig) -> dict[str, str]:
    """The rule files, plus the dashboards when the builder's SDK is installed."""
    files = render_rules(config)
    build = _dashboard_builder()
    if build is None:
        return files
    for name, text in build.render_all(config).items():
        files[f"grafana/dashboards/{name}"] = text
    return files


def _dashboard_builder() -> Any:
    """The dashboard builder, when grafana-foundation-sdk is installed (the `mixin` extra)."""
    if importlib.util.find_spec("grafana_foundation_sdk") is None:
        return None
    return importlib.import_module("exporter.mixin.dashboards.build")


def main_mixin(config_path: Path | None, out: Path, *, check: bool = False) -> int:
    """`mixin` subcommand: renders prometheus/, grafana/dashboards/ and the Kubernetes objects
    under `out` from one configuration. 0 written (or up to date), 1 stale (--check), 2 a bad
    configuration or input."""
    try:
        files = render_all(load_config(config_path))
        dashboards_rendered = any(name.startswith("grafana/") for name in files)
        # Without the SDK the Kubernetes objects carry the dashboards already under `out`.
        inputs = files if dashboards_rendered else {**read_dashboards(out), **files}
        objects, notes = render_k8s(inputs)
    except (MixinConfigError, InputError) as exc:
        print(f"teleport-cloud-exporter: mixin: {exc}", file=sys.stderr)
        return 2
    files.update(objects)
    for note in notes:
        print(f"mixin: note: {note}", file=sys.stderr)
    stale = []
    for relative, text in files.items():
        path = out / relative
        if check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(relative)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    if not dashboards_rendered:
        print(
            "dashboards skipped: they need grafana-foundation-sdk "
            "(pip install 'teleport-cloud-exporter[mixin]')",
            file=sys.stderr,
        )
    for relative in stale:
        print(f"{relative} differs from the rendering", file=sys.stderr)
    return 1 if stale else 0
