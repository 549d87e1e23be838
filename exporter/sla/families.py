"""SLA families of one tenant, from its month summary (exporter.sla.derive.SlaSummary).

Series for a tenant `prod` at 99.9 %, one day into November 2026, its first 2 minutes down:

    teleport_cloud_sla_objective_ratio{tenant="prod"} 0.999
    teleport_cloud_sla_period_start_timestamp_seconds{tenant="prod"} 1793491200.0
    teleport_cloud_sla_period_end_timestamp_seconds{tenant="prod"} 1796083200.0
    teleport_cloud_sla_error_budget_seconds{tenant="prod"} 2592.0
    teleport_cloud_sla_downtime_seconds{tenant="prod"} 120.0
    teleport_cloud_sla_maintenance_seconds{tenant="prod"} 0.0
    teleport_cloud_sla_observed_seconds{tenant="prod"} 86400.0
    teleport_cloud_sla_uptime_ratio{tenant="prod"} 0.9986111111111111
    teleport_cloud_sla_error_budget_remaining_ratio{tenant="prod"} 0.9537037037037037
    teleport_cloud_sla_burn_rate{tenant="prod",window="5m"} 0.0
    ... 30m 1h 2h 6h also 0.0: the outage is older than 6 hours
    teleport_cloud_sla_burn_rate{tenant="prod",window="1d"} 1.3888888888888888
    teleport_cloud_sla_burn_rate{tenant="prod",window="3d"} 1.3888888888888888
    teleport_cloud_sla_window_observed_seconds{tenant="prod",window="1d"} 86400.0
    teleport_cloud_sla_window_downtime_seconds{tenant="prod",window="1d"} 120.0
    ... one of each per burn-rate window
    teleport_cloud_sla_breached{tenant="prod"} 0.0

and, once per exporter (not per tenant), the ledger's health:

    teleport_cloud_sla_ledger_errors_total{operation="record"} 0.0
    teleport_cloud_sla_ledger_errors_total{operation="read"} 0.0
    teleport_cloud_sla_ledger_errors_total{operation="prune"} 0.0
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client.metrics_core import Metric

from exporter.core.catalogue import (
    SLA_BREACHED,
    SLA_BUDGET,
    SLA_BUDGET_REMAINING,
    SLA_BURN_RATE,
    SLA_DOWNTIME,
    SLA_LEDGER_ERRORS,
    SLA_MAINTENANCE,
    SLA_OBJECTIVE,
    SLA_OBSERVED,
    SLA_PERIOD_END,
    SLA_PERIOD_START,
    SLA_UPTIME,
    SLA_WINDOW_DOWNTIME,
    SLA_WINDOW_OBSERVED,
)
from exporter.sla.derive import SlaSummary
from exporter.vocab import BURN_WINDOWS, LEDGER_OPERATIONS


def sla_families(tenant: str, summary: SlaSummary) -> list[Metric]:
    labels = [tenant]
    burn = SLA_BURN_RATE.new()
    observed = SLA_WINDOW_OBSERVED.new()
    downtime = SLA_WINDOW_DOWNTIME.new()
    for window in BURN_WINDOWS:
        burn.add_metric([tenant, window], summary.burn_rates.get(window, 0.0))
        observed.add_metric([tenant, window], summary.window_observed.get(window, 0))
        downtime.add_metric([tenant, window], summary.window_downtime.get(window, 0))
    return [
        SLA_OBJECTIVE.single(labels, summary.objective),
        SLA_PERIOD_START.single(labels, summary.period_start),
        SLA_PERIOD_END.single(labels, summary.period_end),
        SLA_BUDGET.single(labels, summary.budget),
        SLA_DOWNTIME.single(labels, summary.downtime),
        SLA_MAINTENANCE.single(labels, summary.maintenance),
        SLA_OBSERVED.single(labels, summary.observed),
        # Absent while nothing was observed: an empty month is not 100 % uptime.
        *(
            []
            if summary.uptime_ratio is None
            else [SLA_UPTIME.single(labels, summary.uptime_ratio)]
        ),
        SLA_BUDGET_REMAINING.single(labels, summary.budget_remaining_ratio),
        burn,
        observed,
        downtime,
        SLA_BREACHED.single(labels, 1.0 if summary.breached else 0.0),
    ]


def ledger_error_families(counts: Mapping[str, int]) -> list[Metric]:
    """The ledger error counter; every operation is present (0 until it first fails)."""
    family = SLA_LEDGER_ERRORS.new()
    for operation in LEDGER_OPERATIONS:
        family.add_metric([operation], counts.get(operation, 0))
    return [family]
