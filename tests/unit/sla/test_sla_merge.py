"""Merging replicas' SLA ledgers: down only when every replica that observed a minute saw it down.

The ledgers are real SQLite files written by the exporter's Ledger; the report is the real
`sla report` command line.
"""

from __future__ import annotations

import calendar
import io
import json
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from exporter.cli import main
from exporter.sla.derive import MinuteRecord, classify
from exporter.sla.ledger import DB_NAME, Ledger
from exporter.sla.merge import merge_replicas

OCT = calendar.timegm((2026, 10, 5, 12, 0, 0))  # inside 2026-10, a complete month by now


def _minute(n: int) -> float:
    return OCT + n * 60 + 7


def _record(ledger: Ledger, n: int, outcomes: str, maintenance: bool = False) -> None:
    """`outcomes`: one letter per probe, `o` ok and `x` failed."""
    for i, outcome in enumerate(outcomes):
        ledger.record_probe("acme", _minute(n) + i, outcome == "o", maintenance)


def _write_replicas(tmp_path: Path) -> tuple[Path, Path]:
    a_dir, b_dir = tmp_path / "replica-0", tmp_path / "replica-1"
    a, b = Ledger.open(a_dir), Ledger.open(b_dir)
    try:
        _record(a, 0, "xxxx")  # replica 0's network failed; replica 1 saw the proxy up
        _record(b, 0, "oooo")
        _record(a, 1, "xxxx")  # both saw it down
        _record(b, 1, "xxx")
        _record(a, 2, "xxxx")  # only replica 0 observed: its view stands
        _record(a, 3, "xx")  # both down, one inside a maintenance
        _record(b, 3, "xx", maintenance=True)
        _record(b, 5, "oxo")  # only replica 1 observed, up
        _record(a, 6, "xxxo")  # both down
        _record(b, 6, "xxoo")  # a tie is up: not down
    finally:
        a.close()
        b.close()
    return a_dir, b_dir


def _report(*args: str) -> dict[str, Any]:
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["sla", "report", "--month", "2026-10", "--format", "json", *args]) == 0
    report: dict[str, Any] = json.loads(out.getvalue())
    return report


def test_report_merges_replica_ledgers(tmp_path: Path) -> None:
    a, b = _write_replicas(tmp_path)
    report = _report("--ledger", str(a), "--ledger", str(b))
    assert report["replicas"] == 2
    (tenant,) = report["tenants"]
    assert tenant["tenant"] == "acme"
    # Observed: minutes 0, 1, 2, 3, 5 and 6. Down: 1 and 2; 3 is maintenance (excluded).
    assert tenant["observed_seconds"] == 6 * 60
    assert tenant["downtime_seconds"] == 2 * 60
    assert tenant["maintenance_seconds"] == 60
    intervals = [
        (i["start"], i["duration_seconds"], i["counted"]) for i in tenant["down_intervals"]
    ]
    assert intervals == [
        ("2026-10-05T12:01:00Z", 120, True),
        ("2026-10-05T12:03:00Z", 60, False),
    ]


def test_each_replica_alone_tells_a_different_story(tmp_path: Path) -> None:
    a, b = _write_replicas(tmp_path)
    alone_a = _report("--ledger", str(a))["tenants"][0]
    alone_b = _report("--ledger", str(b / DB_NAME))["tenants"][0]  # the file itself works too
    # Its own network failure (minute 0) counts, and minute 3 had no maintenance flag here.
    assert alone_a["downtime_seconds"] == 5 * 60
    assert alone_b["downtime_seconds"] == 60
    merged = _report("--ledger", str(a), "--ledger", str(b))["tenants"][0]
    assert merged["downtime_seconds"] < alone_a["downtime_seconds"]


def test_text_report_says_it_is_merged(tmp_path: Path) -> None:
    a, b = _write_replicas(tmp_path)
    out = io.StringIO()
    with redirect_stdout(out):
        assert (
            main(["sla", "report", "--month", "2026-10", "--ledger", str(a), "--ledger", str(b)])
            == 0
        )
    assert "Merged from 2 replicas' ledgers" in out.getvalue()
    assert "Tenant acme" in out.getvalue()


def test_missing_ledger_exits_2(tmp_path: Path) -> None:
    a, _ = _write_replicas(tmp_path)
    assert main(["sla", "report", "--ledger", str(a), "--ledger", str(tmp_path / "nope")]) == 2


records = st.lists(
    st.tuples(st.integers(0, 5), st.integers(1, 6), st.integers(0, 6), st.booleans()).map(
        lambda t: MinuteRecord(t[0] * 60, t[1], min(t[2], t[1]), t[3])
    ),
    max_size=6,
    unique_by=lambda r: r.minute_start,
)


@given(st.lists(records, min_size=1, max_size=4))
def test_merged_minute_is_down_only_when_every_observer_saw_it_down(
    replicas: list[list[MinuteRecord]],
) -> None:
    merged = {r.minute_start: r for r in merge_replicas(replicas)}
    observers: dict[int, list[MinuteRecord]] = {}
    for replica in replicas:
        for record in replica:
            observers.setdefault(record.minute_start, []).append(record)
    assert set(merged) == set(observers)  # observed when any replica observed it
    for minute, seen in observers.items():
        all_down = all(classify(r) == "down" for r in seen)
        assert (classify(merged[minute]) == "down") == all_down
        assert merged[minute].maintenance == any(r.maintenance for r in seen)
