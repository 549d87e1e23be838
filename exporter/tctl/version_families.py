"""tctl compatibility families (`tctl version` against each control plane).

teleport_cloud_tctl_version_info{version="18.1.4"} 1      # one per distinct tctl in use
teleport_cloud_tctl_compatible{tenant="prod"} 1           # absent until ping has answered
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.metrics_core import Metric

from exporter.core.catalogue import TCTL_COMPATIBLE, TCTL_VERSION_INFO


def version_info_families(versions: Iterable[str]) -> list[Metric]:
    family = TCTL_VERSION_INFO.new()
    for version in sorted(set(versions)):
        family.add_metric([version], 1.0)
    return [family]


def compatibility_families(tenant: str, compatible: bool | None) -> list[Metric]:
    if compatible is None:
        return []
    return [TCTL_COMPATIBLE.single([tenant], 1.0 if compatible else 0.0)]
