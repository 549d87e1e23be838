"""The identity family: when the tenant's Machine ID identity stops working.

teleport_cloud_identity_expiry_timestamp_seconds{tenant="prod"} 1.7956512e+09
"""

from __future__ import annotations

from prometheus_client.metrics_core import Metric

from exporter.core.catalogue import IDENTITY_EXPIRY


def identity_families(tenant: str, expiry: float) -> list[Metric]:
    return [IDENTITY_EXPIRY.single([tenant], expiry)]
