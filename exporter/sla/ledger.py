"""The SLA ledger: per tenant and UTC minute, probes made and failed, in SQLite under state_dir.

One row per tenant-minute, upserted by every probe in its own committed transaction, so a crash
(`kill -9`) at any moment loses nothing that was committed; only the minute in progress can be
incomplete, and a restart simply goes on counting into it.

Durability: WAL with `synchronous=FULL`, so every commit is fsynced to the WAL before
`record_probe` returns. WAL with NORMAL would already survive a process crash (a committed
transaction sits in the OS page cache, which a killed process cannot lose), but a power cut or
kernel crash could then lose every commit since the last checkpoint: tens of minutes at probe
rates. One fsync per probe (a few per minute per tenant) is cheap, so the ledger pays it.

The schema version is `PRAGMA user_version`; `_MIGRATIONS[i]` takes version i to i + 1, each in
one transaction with the version bump, so an interrupted migration leaves the old version intact.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from exporter.sla.derive import MinuteRecord, minute_floor, month_bounds, shift_month

log = logging.getLogger(__name__)

DB_NAME = "ledger.sqlite3"
DIR_MODE = 0o700
FILE_MODE = 0o600
"""The ledger is the evidence of a credit claim: only the exporter's user may read or change it.
SQLite gives its -wal and -shm files the database file's mode."""
KEEP_MONTHS = 13
"""Whole months kept before the current one: a year back plus one, for last year's same month."""

_MIGRATIONS: list[tuple[str, ...]] = [
    # 0 -> 1
    (
        """
        CREATE TABLE minutes (
            tenant      TEXT    NOT NULL,
            minute      INTEGER NOT NULL,  -- Unix seconds, a multiple of 60
            probes      INTEGER NOT NULL CHECK (probes >= 0),
            failed      INTEGER NOT NULL CHECK (failed >= 0 AND failed <= probes),
            maintenance INTEGER NOT NULL CHECK (maintenance IN (0, 1)),
            PRIMARY KEY (tenant, minute)
        ) WITHOUT ROWID
        """,
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    ),
]
SCHEMA_VERSION = len(_MIGRATIONS)

_UPSERT = """
INSERT INTO minutes (tenant, minute, probes, failed, maintenance) VALUES (?, ?, 1, ?, ?)
ON CONFLICT (tenant, minute) DO UPDATE SET
    probes = probes + 1,
    failed = failed + excluded.failed,
    maintenance = maintenance | excluded.maintenance
"""


class LedgerError(Exception):
    """The ledger cannot be opened or used; the message says which path and why."""


class Ledger:
    """Thread-safe (one call at a time, behind a lock) access to the ledger database."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._db = connection
        self._lock = threading.Lock()
        self.path = path

    @classmethod
    def open(cls, state_dir: Path, *, readonly: bool = False) -> Ledger:
        """Open (creating the directory, database and schema) the ledger under `state_dir`.

        `readonly` opens an existing ledger for reports, alongside a running exporter; it never
        creates anything. Raises LedgerError naming the path when anything is wrong.
        """
        path = state_dir / DB_NAME
        if readonly:
            if not path.is_file():
                raise LedgerError(f"no SLA ledger at {str(path)!r}")
        else:
            _prepare_dir(state_dir)
            _prepare_file(path)
        try:
            if readonly:
                db = sqlite3.connect(
                    f"{path.resolve().as_uri()}?mode=ro",
                    uri=True,
                    isolation_level=None,
                    check_same_thread=False,
                )
            else:
                # isolation_level=None: autocommit; transactions are explicit below.
                db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot open SLA ledger {str(path)!r}: {exc}") from exc
        try:
            db.execute("PRAGMA busy_timeout = 5000")
            if readonly:
                _check_version(db, path, readonly=True)
            else:
                mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise LedgerError(f"SLA ledger {str(path)!r}: cannot enable WAL (got {mode})")
                db.execute("PRAGMA synchronous = FULL")
                _migrate(db, path)
                # A real write, so a database file we may read but not write fails now, at
                # start, instead of on the first probe.
                db.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('last_opened', ?)",
                    (str(int(time.time())),),
                )
        except sqlite3.Error as exc:
            db.close()
            raise LedgerError(f"cannot use SLA ledger {str(path)!r}: {exc}") from exc
        except LedgerError:
            db.close()
            raise
        return cls(db, path)

    def record_probe(self, tenant: str, at: float, success: bool, maintenance: bool) -> None:
        """Count one probe into its minute (committed before returning).

        A time earlier than previous ones (the clock stepped back) just counts into that earlier
        minute's row: rows are independent, so nothing else changes.
        """
        with self._lock:
            self._db.execute(
                _UPSERT, (tenant, minute_floor(at), 0 if success else 1, int(maintenance))
            )

    def import_minutes(self, tenant: str, records: Iterable[MinuteRecord]) -> None:
        """Write whole minutes at once, in one transaction, replacing what was there (the
        simulator's history and tests; the exporter records probe by probe)."""
        rows = [(tenant, r.minute_start, r.probes, r.failed, int(r.maintenance)) for r in records]
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    "INSERT OR REPLACE INTO minutes (tenant, minute, probes, failed, maintenance)"
                    " VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def minutes(self, tenant: str, start: float, end: float) -> list[MinuteRecord]:
        """The tenant's minutes starting in [start, end), in time order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT minute, probes, failed, maintenance FROM minutes"
                " WHERE tenant = ? AND minute >= ? AND minute < ? ORDER BY minute",
                (tenant, int(start), int(end)),
            ).fetchall()
        return [MinuteRecord(row[0], row[1], row[2], bool(row[3])) for row in rows]

    def months(self, tenant: str) -> list[str]:
        """`YYYY-MM` of every month holding a record of the tenant, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT strftime('%Y-%m', minute, 'unixepoch') FROM minutes"
                " WHERE tenant = ? ORDER BY 1",
                (tenant,),
            ).fetchall()
        return [row[0] for row in rows]

    def tenants(self) -> list[str]:
        with self._lock:
            rows = self._db.execute("SELECT DISTINCT tenant FROM minutes ORDER BY 1").fetchall()
        return [row[0] for row in rows]

    def prune(self, now: float) -> int:
        """Delete months more than KEEP_MONTHS before the current one; returns rows deleted."""
        cutoff = shift_month(month_bounds(now)[0], -KEEP_MONTHS)
        with self._lock:
            cursor = self._db.execute("DELETE FROM minutes WHERE minute < ?", (cutoff,))
        return cursor.rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _prepare_dir(state_dir: Path) -> None:
    try:
        state_dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    except OSError as exc:
        raise LedgerError(
            f"state_dir {str(state_dir)!r}: cannot create the directory: {exc.strerror or exc}"
        ) from exc
    if not state_dir.is_dir():
        raise LedgerError(f"state_dir {str(state_dir)!r}: not a directory")
    # Try a real file rather than os.access(): root passes access checks on a read-only mount.
    try:
        with tempfile.NamedTemporaryFile(dir=state_dir, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise LedgerError(
            f"state_dir {str(state_dir)!r}: cannot write there: {exc.strerror or exc}"
        ) from exc
    _warn_if_foreign(state_dir, "state_dir")
    db = state_dir / DB_NAME
    if db.exists() and not os.access(db, os.R_OK | os.W_OK):
        raise LedgerError(f"SLA ledger {str(db)!r}: not readable and writable")


def _prepare_file(path: Path) -> None:
    """Create the database file 0600 (or tighten ours to it); refuse a symlink at the ledger's
    path or its journals', which would let whoever placed it redirect the evidence."""
    for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
        if candidate.is_symlink():
            raise LedgerError(f"SLA ledger {str(candidate)!r} is a symbolic link; refusing it")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    except OSError as exc:
        raise LedgerError(f"SLA ledger {str(path)!r}: cannot open: {exc.strerror or exc}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise LedgerError(f"SLA ledger {str(path)!r}: not a regular file")
        if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) & ~FILE_MODE:
            os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    _warn_if_foreign(path, "SLA ledger")


def _warn_if_foreign(path: Path, what: str) -> None:
    """A warning when another user owns `path`: that user can rewrite the ledger."""
    owner = path.stat().st_uid
    if owner != os.geteuid():
        log.warning(
            "%s %r is owned by uid %d, not by the exporter's uid %d: that user can change the "
            "SLA evidence",
            what,
            str(path),
            owner,
            os.geteuid(),
        )


def _check_version(db: sqlite3.Connection, path: Path, *, readonly: bool) -> int:
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise LedgerError(
            f"SLA ledger {str(path)!r} has schema version {version}, newer than this exporter "
            f"knows ({SCHEMA_VERSION}); run a newer exporter or move the file away"
        )
    if readonly and version < SCHEMA_VERSION:
        raise LedgerError(
            f"SLA ledger {str(path)!r} has schema version {version}; start the exporter once "
            f"to migrate it to {SCHEMA_VERSION}"
        )
    return version


def _migrate(db: sqlite3.Connection, path: Path) -> None:
    # BEGIN IMMEDIATE takes the write lock before reading the version, so two processes
    # starting at once cannot both run the same migration.
    db.execute("BEGIN IMMEDIATE")
    try:
        version = _check_version(db, path, readonly=False)
        for target in range(version + 1, SCHEMA_VERSION + 1):
            for statement in _MIGRATIONS[target - 1]:
                db.execute(statement)
        if version != SCHEMA_VERSION:
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        raise
