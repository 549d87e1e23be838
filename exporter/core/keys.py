"""Publish keys: under which key each family set goes to the exposition, and who owns it.

A key names one family set: publishing under it replaces that set, and only its owner (the one
module listed in `OWNERS`) publishes under it, so no two writers race for a key.
`tests/unit/core/test_keys.py` walks the source and fails on a second writer. A key is a
NamedTuple of two strings, hashed as a plain tuple is on every publish.
"""

from __future__ import annotations

from typing import Literal, NamedTuple, get_args

Kind = Literal[
    "build",
    "health",
    "probe",
    "cluster",
    "unobserved",
    "ignored",
    "status_page",
    "rollout",
    "maintenance_config",
    "identity",
    "tctl_version_info",
    "sla",
    "ledger_errors",
    "web",
    "target",
    "fleet",
    "tctl_version",
    "agent_report",
]

KINDS: tuple[Kind, ...] = get_args(Kind)

OWNERS: dict[Kind, str] = {
    # process-wide
    "build": "exporter.core.scheduler",  # build_info, once at start
    "health": "exporter.core.scheduler",  # each source's health; target is "kind/target"
    "web": "exporter.web.server",  # refused logins and closed connections
    "tctl_version_info": "exporter.tctl.version_source",  # every tenant's tctl version
    "ledger_errors": "exporter.sla.service",  # SLA ledger read/write failures
    # one per tenant, published by its source
    "probe": "exporter.probe.source",  # probe_success, latency, phases
    "cluster": "exporter.probe.source",  # control-plane version and auto-update from ping
    "unobserved": "exporter.probe.source",  # probes that gave no evidence, by reason
    "ignored": "exporter.probe.source",  # ping fields of an unexpected type
    "rollout": "exporter.rollout.source",  # the Managed Updates v2 rollout
    "maintenance_config": "exporter.rollout.maintenance_config_source",  # upgrade window
    "identity": "exporter.tctl.identity_source",  # Machine ID certificate expiry
    "sla": "exporter.sla.service",  # the tenant's SLA windows from the ledger
    # one per status page
    "status_page": "exporter.status_page.source",
    # one per tenant, derived from several sources by the tenant's deriver
    "target": "exporter.derivations",  # agent_target_version_info
    "fleet": "exporter.derivations",  # the fleet's families
    "tctl_version": "exporter.derivations",  # tctl_compatible
    "agent_report": "exporter.derivations",  # the agent report, while a rollout exists
}


class PublishKey(NamedTuple):
    """`kind` says what is published, `target` which tenant or page ("" for process-wide)."""

    kind: Kind
    target: str = ""
