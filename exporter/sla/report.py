"""`teleport-cloud-exporter sla report`: a month's SLA per tenant, with the down intervals.

The evidence a customer attaches to a service-credit claim: objective, budget, downtime,
maintenance, how much of the month was observed, uptime, and every down interval (consecutive
down minutes, UTC). Read from the ledger only (opened read-only, so it can run next to the
exporter); nothing is collected.

With several ledgers (`--ledger DIR` repeated: the state directories of the replicas), the report
merges them minute by minute (exporter.sla.merge): a minute is down only when every replica that
observed it saw it down, observed when any did.
"""

from __future__ import annotations

import json
import math
import sqlite3
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TextIO

from exporter.config import Settings, SlaConfig
from exporter.sla.derive import (
    down_intervals,
    month_bounds,
    month_label,
    parse_month,
    summarize,
)
from exporter.sla.ledger import Ledger, LedgerError
from exporter.sla.merge import MergedLedgers, MinuteSource


class ReportTenant(Protocol):
    """What the report needs of a tenant (a TenantConfig has it)."""

    @property
    def name(self) -> str: ...

    @property
    def sla(self) -> SlaConfig: ...


@dataclass(frozen=True)
class LedgerTenant:
    """A tenant found in the ledgers when no configuration names it: the default objective."""

    name: str
    sla: SlaConfig


def iso(ts: float) -> str:
    """Unix seconds -> `2026-11-03T14:05:00Z`."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def human_duration(seconds: float) -> str:
    """`2d 3h 4m`, `43m 12s`, `0s`: the largest units, zero parts left out."""
    remaining = round(seconds)
    if remaining <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts)


def percent(ratio: float, digits: int = 4) -> str:
    """A ratio as a percentage, truncated (not rounded) so 99.99996 % never reads as 100 %."""
    scale = 10**digits
    # round() first: 0.9999 * 1e6 is 999899.9999999999 in binary floating point.
    value = math.floor(round(ratio * 100 * scale, 6)) / scale
    return f"{value:.{digits}f}".rstrip("0").rstrip(".") + " %"


def build_report(
    ledger: MinuteSource,
    tenants: Iterable[ReportTenant],
    month: str | None,
    now: float,
) -> dict[str, Any]:
    """The report of `month` (`YYYY-MM`, default the current one) for each tenant.

    Coverage is observed time over the elapsed part of the month (the whole month once it is
    over). Raises ValueError on a malformed month.
    """
    start, end = parse_month(month) if month else month_bounds(now)
    complete = now >= end
    # summarize() takes the month from its `now`: pin it inside the requested month.
    as_of = min(max(now, start), end - 1)
    elapsed = max(0.0, min(now, end) - start)
    out: list[dict[str, Any]] = []
    for tenant in tenants:
        sla = tenant.sla
        # Burn rates are for alerting, not part of the report: the month's records suffice.
        minutes = ledger.minutes(tenant.name, start, end)
        summary = summarize(minutes, sla.objective, sla.exclude_maintenance, as_of)
        intervals = down_intervals(minutes, sla.exclude_maintenance)
        out.append(
            {
                "tenant": tenant.name,
                "objective": sla.objective,
                "exclude_maintenance": sla.exclude_maintenance,
                "budget_seconds": summary.budget,
                "downtime_seconds": summary.downtime,
                "maintenance_seconds": summary.maintenance,
                "observed_seconds": summary.observed,
                "elapsed_seconds": elapsed,
                "coverage_ratio": summary.observed / elapsed if elapsed else 0.0,
                "uptime_ratio": summary.uptime_ratio,
                "budget_remaining_ratio": summary.budget_remaining_ratio,
                "breached": summary.breached,
                "down_intervals": [
                    {
                        "start": iso(i.start),
                        "end": iso(i.end),
                        "duration_seconds": i.duration,
                        "duration": human_duration(i.duration),
                        "in_maintenance": i.in_maintenance,
                        "counted": not i.excluded,
                    }
                    for i in intervals
                ],
            }
        )
    replicas = len(ledger.ledgers) if isinstance(ledger, MergedLedgers) else 1
    return {
        "month": month_label(start),
        "replicas": replicas,
        "period_start": iso(start),
        "period_end": iso(end),
        "complete": complete,
        "generated_at": iso(now),
        "tenants": out,
    }


def format_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2) + "\n"


def format_text(report: dict[str, Any]) -> str:
    lines = [
        f"SLA report {report['month']} (UTC {report['period_start']} to {report['period_end']}"
        f"{'' if report['complete'] else ', month to date'}), generated {report['generated_at']}",
    ]
    if report.get("replicas", 1) > 1:
        lines.append(
            f"Merged from {report['replicas']} replicas' ledgers: a minute is down only when "
            "every replica that observed it saw it down."
        )
    for t in report["tenants"]:
        budget = t["budget_seconds"]
        downtime = t["downtime_seconds"]
        used = f", {downtime / budget * 100:.1f} % of the budget" if budget else ""
        maintenance_note = "excluded" if t["exclude_maintenance"] else "counted as downtime"
        lines += [
            "",
            f"Tenant {t['tenant']}",
            f"  Objective     {percent(t['objective'])}",
            f"  Error budget  {_seconds(budget)}",
            f"  Downtime      {_seconds(downtime)}{used}",
            f"  Maintenance   {_seconds(t['maintenance_seconds'])} down in maintenance, "
            f"{maintenance_note}",
            f"  Observed      {_seconds(t['observed_seconds'])}, "
            f"{percent(t['coverage_ratio'], 2)} of the "
            f"{'month' if report['complete'] else 'month so far'}",
            "  Uptime        "
            + (
                "not measured: nothing was observed"
                if t["uptime_ratio"] is None
                else f"{percent(t['uptime_ratio'])} of observed time"
            ),
            f"  Breached      {'YES' if t['breached'] else 'no'}",
        ]
        intervals = t["down_intervals"]
        if not intervals:
            lines.append("  Down intervals: none")
            continue
        lines.append("  Down intervals (UTC):")
        lines.append(f"    {'start':<21} {'end':<21} {'duration':<12} note")
        for i in intervals:
            note = ""
            if i["in_maintenance"]:
                note = "maintenance" + ("" if i["counted"] else " (excluded)")
            lines.append(f"    {i['start']:<21} {i['end']:<21} {i['duration']:<12} {note}".rstrip())
    return "\n".join(lines) + "\n"


def _seconds(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{text} s ({human_duration(value)})"


def _open_all(directories: Sequence[Path]) -> list[Ledger]:
    opened: list[Ledger] = []
    try:
        for directory in directories:
            # A path to the database file itself is accepted too.
            state_dir = directory.parent if directory.is_file() else directory
            opened.append(Ledger.open(state_dir, readonly=True))
    except LedgerError:
        for ledger in opened:
            ledger.close()
        raise
    return opened


def _tenants(settings: Settings | None, ledgers: Sequence[Ledger]) -> list[ReportTenant]:
    if settings is not None:
        return list(settings.tenants)
    names = sorted({name for ledger in ledgers for name in ledger.tenants()})
    return [LedgerTenant(name, SlaConfig()) for name in names]


def main_report(
    settings: Settings | None,
    month: str | None,
    fmt: str,
    out: TextIO,
    now: float | None = None,
    ledgers: Sequence[Path] = (),
) -> int:
    """The `sla report` command: 0 when printed, 2 when a ledger or the arguments are unusable.

    `ledgers` (state directories or database files) replace the configuration's state_dir and
    are merged; without a configuration, every tenant found in them is reported with the default
    SLA settings. Errors go to stderr as one line; `out` receives the report only.
    """
    if fmt not in ("text", "json"):
        print(f"sla report: unknown format {fmt!r}: expected text or json", file=sys.stderr)
        return 2
    if month is not None:
        try:
            parse_month(month)
        except ValueError as exc:
            print(f"sla report: {exc}", file=sys.stderr)
            return 2
    directories = list(ledgers) or ([settings.state_dir] if settings is not None else [])
    if not directories:
        print("sla report: no ledger: pass --config FILE or --ledger DIR", file=sys.stderr)
        return 2
    try:
        opened = _open_all(directories)
    except LedgerError as exc:
        print(f"sla report: {exc}", file=sys.stderr)
        return 2
    try:
        when = datetime.now(UTC).timestamp() if now is None else now
        source: MinuteSource = opened[0] if len(opened) == 1 else MergedLedgers(opened)
        report = build_report(source, _tenants(settings, opened), month, when)
    except sqlite3.Error as exc:
        # A damaged or locked database is "unreadable", not a traceback.
        paths = ", ".join(repr(str(ledger.path)) for ledger in opened)
        print(f"sla report: cannot read {paths}: {exc}", file=sys.stderr)
        return 2
    finally:
        for ledger in opened:
            ledger.close()
    out.write(format_json(report) if fmt == "json" else format_text(report))
    return 0
