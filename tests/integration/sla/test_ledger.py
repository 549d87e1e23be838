"""The SQLite ledger: schema, kill -9 durability, restarts, rollover, clock steps, pruning."""

from __future__ import annotations

import calendar
import contextlib
import errno
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from exporter.sla.derive import MinuteRecord, month_bounds, summarize
from exporter.sla.ledger import DB_NAME, SCHEMA_VERSION, Ledger, LedgerError

NOV_2026 = calendar.timegm((2026, 11, 1, 0, 0, 0))
DEC_2026 = calendar.timegm((2026, 12, 1, 0, 0, 0))
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    opened = Ledger.open(tmp_path / "state")
    yield opened
    opened.close()


def _raw(path: Path) -> contextlib.closing[sqlite3.Connection]:
    # Autocommit, and closed on exit (sqlite3's own context manager only commits).
    return contextlib.closing(sqlite3.connect(path / DB_NAME, isolation_level=None))


def test_open_creates_dir_wal_database_and_schema(tmp_path: Path) -> None:
    state = tmp_path / "a" / "b"
    Ledger.open(state).close()
    with _raw(state) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    # Reopening an up-to-date ledger migrates nothing and keeps the rows.
    first = Ledger.open(state)
    first.record_probe("t", NOV_2026, False, False)
    first.close()
    second = Ledger.open(state)
    assert second.minutes("t", NOV_2026, DEC_2026) == [MinuteRecord(NOV_2026, 1, 1, False)]
    second.close()


def test_record_counts_probes_failures_and_maintenance(ledger: Ledger) -> None:
    minute = NOV_2026 + 5 * 60
    ledger.record_probe("t", minute + 1, True, False)
    ledger.record_probe("t", minute + 59.9, False, True)
    ledger.record_probe("t", minute + 30, False, False)  # maintenance is OR-ed, never cleared
    ledger.record_probe("t", minute + 60, True, False)  # next minute
    ledger.record_probe("other", minute, False, False)
    assert ledger.minutes("t", NOV_2026, DEC_2026) == [
        MinuteRecord(minute, 3, 2, True),
        MinuteRecord(minute + 60, 1, 0, False),
    ]
    assert ledger.minutes("t", minute + 60, DEC_2026) == [MinuteRecord(minute + 60, 1, 0, False)]
    assert ledger.minutes("other", NOV_2026, DEC_2026) == [MinuteRecord(minute, 1, 1, False)]
    assert ledger.tenants() == ["other", "t"]


_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from exporter.sla.ledger import Ledger

    ledger = Ledger.open(Path(sys.argv[1]))
    start = int(sys.argv[2])
    n = 0
    while True:
        # Four probes a minute, every fourth failing: the minute rows keep changing.
        ledger.record_probe("t", start + n * 15, n % 4 != 0, False)
        n += 1
        print(n, flush=True)
    """
)


def test_sigkill_loses_nothing_committed(tmp_path: Path) -> None:
    state = tmp_path / "state"
    child = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(state), str(NOV_2026)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert child.stdout is not None
    committed = 0
    try:
        for line in child.stdout:
            committed = int(line)
            if committed >= 300:
                break
        # Killed while it keeps writing: the kill lands at an arbitrary point of a commit.
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert committed >= 300

    ledger = Ledger.open(state)
    rows = ledger.minutes("t", NOV_2026, DEC_2026)
    ledger.close()
    total = sum(r.probes for r in rows)
    # Every probe reported as committed is there; at most the few committed after the last
    # line the test read (pipe buffering) are extra.
    assert total >= committed
    assert all(r.minute_start == NOV_2026 + i * 60 for i, r in enumerate(rows))
    assert all(r.failed == (r.probes + 3) // 4 for r in rows)
    with _raw(state) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_restart_keeps_downtime_and_the_gap_is_unobserved(tmp_path: Path) -> None:
    state = tmp_path / "state"
    before = Ledger.open(state)
    for minute in range(10):  # 10 minutes, 3 of them down
        for probe in range(4):
            before.record_probe("t", NOV_2026 + minute * 60 + probe * 15, minute < 7, False)
    before.close()
    # Down for 50 minutes; then 10 more minutes all up, after the restart.
    after = Ledger.open(state)
    for minute in range(60, 70):
        after.record_probe("t", NOV_2026 + minute * 60, True, False)
    records = after.minutes("t", *month_bounds(NOV_2026))
    after.close()
    summary = summarize(records, 0.999, True, NOV_2026 + 70 * 60)
    assert summary.downtime == 180
    assert summary.observed == 20 * 60  # the 50-minute gap is not up time
    assert summary.uptime_ratio == pytest.approx(1 - 3 / 20)


def test_month_rollover_resets_the_period_and_keeps_history(ledger: Ledger) -> None:
    for at in (DEC_2026 - 120, DEC_2026 - 60, DEC_2026, DEC_2026 + 60):
        ledger.record_probe("t", at, at == DEC_2026 + 60, False)  # down until 00:01
    assert ledger.months("t") == ["2026-11", "2026-12"]
    now = DEC_2026 + 90
    records = ledger.minutes("t", now - 3 * 86400, month_bounds(now)[1])
    december = summarize(records, 0.999, True, now)
    assert (december.period_start, december.downtime, december.observed) == (DEC_2026, 60, 120)
    assert december.burn_rates["5m"] == pytest.approx((3 / 4) / 0.001)
    november = summarize(ledger.minutes("t", NOV_2026, DEC_2026), 0.999, True, DEC_2026 - 1)
    assert (november.period_start, november.downtime) == (NOV_2026, 120)


def test_clock_stepping_back_updates_earlier_rows_only(tmp_path: Path, ledger: Ledger) -> None:
    now = DEC_2026 + 3600
    ledger.record_probe("t", now, False, False)
    ledger.record_probe("t", now - 7200, True, False)  # back two hours, across into November
    ledger.record_probe("t", now - 7200 + 5, False, False)
    ledger.record_probe("t", now - 7200 + 10, False, False)
    ledger.record_probe("t", now, False, False)  # forward again
    assert ledger.minutes("t", NOV_2026, now + 60) == [
        MinuteRecord(DEC_2026 - 3600, 3, 2, False),
        MinuteRecord(now, 2, 2, False),
    ]
    with _raw(tmp_path / "state") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT count(*) FROM minutes").fetchone()[0] == 2


def test_prune_keeps_13_months_before_the_current_one(ledger: Ledger) -> None:
    oct_2025 = calendar.timegm((2025, 10, 1, 0, 0, 0))
    ledger.record_probe("t", oct_2025 - 60, True, False)  # September 2025: 14 months back
    ledger.record_probe("t", oct_2025, True, False)
    ledger.record_probe("t", NOV_2026, True, False)
    ledger.record_probe("u", oct_2025 - 86400, True, False)
    assert ledger.prune(NOV_2026 + 14 * 86400) == 2
    assert ledger.months("t") == ["2025-10", "2026-11"]
    assert ledger.months("u") == []
    assert ledger.prune(NOV_2026 + 14 * 86400) == 0


def test_state_dir_under_a_regular_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(LedgerError, match=r"state_dir '.*file/sub': cannot create the directory"):
        Ledger.open(blocker / "sub")
    with pytest.raises(LedgerError, match=r"state_dir '.*file'"):
        Ledger.open(blocker)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through directory permissions")
def test_read_only_state_dir(tmp_path: Path) -> None:
    state = tmp_path / "ro"
    state.mkdir()
    state.chmod(0o555)
    try:
        with pytest.raises(LedgerError, match="cannot write there"):
            Ledger.open(state)
    finally:
        state.chmod(0o755)


def test_read_only_file_system(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # What a read-only mount does, even to root: creating a file fails with EROFS.
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr("exporter.sla.ledger.tempfile.NamedTemporaryFile", refuse)
    with pytest.raises(LedgerError, match="cannot write there: Read-only file system"):
        Ledger.open(tmp_path / "state")


def test_not_a_database(tmp_path: Path) -> None:
    (tmp_path / DB_NAME).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(LedgerError, match="not a database"):
        Ledger.open(tmp_path)


def test_schema_from_a_newer_exporter_is_refused(tmp_path: Path) -> None:
    Ledger.open(tmp_path).close()
    with _raw(tmp_path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(LedgerError, match="newer than this exporter"):
        Ledger.open(tmp_path)
    with pytest.raises(LedgerError, match="newer than this exporter"):
        Ledger.open(tmp_path, readonly=True)


def test_readonly_reads_alongside_a_writer_and_never_writes(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="no SLA ledger"):
        Ledger.open(tmp_path / "missing", readonly=True)
    assert not (tmp_path / "missing").exists()
    writer = Ledger.open(tmp_path)
    writer.record_probe("t", NOV_2026, False, False)
    reader = Ledger.open(tmp_path, readonly=True)
    writer.record_probe("t", NOV_2026 + 1, False, False)
    assert reader.minutes("t", NOV_2026, DEC_2026) == [MinuteRecord(NOV_2026, 2, 2, False)]
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader.record_probe("t", NOV_2026, True, False)
    reader.close()
    writer.close()


def test_concurrent_writers_from_threads_lose_no_probe(ledger: Ledger) -> None:
    def write(offset: int) -> None:
        for i in range(50):
            ledger.record_probe("t", NOV_2026 + (i % 3) * 60 + offset, i % 2 == 0, False)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rows = ledger.minutes("t", NOV_2026, DEC_2026)
    assert sum(r.probes for r in rows) == 200
    assert sum(r.failed for r in rows) == 100
