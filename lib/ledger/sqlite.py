"""The local upload ledger: a SQLite file under the lake root that several ``lake`` processes
may use at once."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import fields
from pathlib import Path

from lib.lake.paths import local_path, to_uri
from lib.lake.sqlite_store import SqliteStore
from lib.ledger.base import Ledger
from lib.ledger.records import (
    CLAIMING,
    RECEIVED,
    TRANSITIONS,
    ConflictError,
    DuplicateContentError,
    HistoryEntry,
    IllegalTransition,
    LedgerError,
    LockBusyError,
    UnknownUploadError,
    UploadRecord,
    check_change,
    stamp_new,
    utc_now,
)

_COLUMNS = [f.name for f in fields(UploadRecord)]
_INTEGERS = ("size_bytes", "rows_read", "clean", "quarantined", "duplicates_removed",
             "job_version", "record_count", "longest_record_bytes", "multiline", "interruptions",
             "held")
_COLUMN_DDL = ", ".join(f"{c} {'INTEGER' if c in _INTEGERS else 'TEXT'}"
                        for c in _COLUMNS if c != "upload_id")
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS uploads (
    upload_id TEXT PRIMARY KEY,
    {_COLUMN_DDL}
);
CREATE INDEX IF NOT EXISTS uploads_by_dataset_status ON uploads (dataset, status);
CREATE UNIQUE INDEX IF NOT EXISTS uploads_content_claim ON uploads (dataset, sha256)
    WHERE status IN ({", ".join(f"'{s}'" for s in CLAIMING)});
CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    upload_id TEXT NOT NULL REFERENCES uploads (upload_id),
    at TEXT NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL,
    note TEXT
);
CREATE INDEX IF NOT EXISTS history_by_upload ON history (upload_id, seq);
"""


class SqliteLedger(Ledger):
    """The ledger as a SQLite database file. Each call is one short transaction; a change takes
    the write lock up front (``BEGIN IMMEDIATE``), so concurrent processes serialise on
    SQLite's lock (waiting up to ``timeout`` seconds, then a clear error) and a status check
    and its update can never interleave. The file is opened as
    :class:`lib.lake.sqlite_store.SqliteStore` opens it: created whole, never started anew
    over a damaged one, read-only where the lake root is."""

    def __init__(self, path: str | Path, timeout: float = 30.0) -> None:
        self.path = Path(path)
        self._store = SqliteStore(
            self.path, what="the upload ledger", table="uploads", schema=_SCHEMA,
            error=LedgerError, timeout=timeout,
            hint="restore it from a backup; or, to start a new ledger knowingly, move the file "
            "aside (the uploads already in the raw zone are then unknown to the lake and must "
            "be uploaded again)")
        if not self._store.exists():
            return  # created by the first change; until then reads find nothing
        if self._store.writable():
            self._migrate()
        else:
            self._store.connect(write=False).close()  # a damaged file is refused now

    def _migrate(self) -> None:
        """A ledger written by an earlier version lacks the newer fields: add them."""
        db = self._store.connect(write=True)
        try:
            have = {row[1] for row in db.execute("PRAGMA table_info(uploads)")}
            missing = [c for c in _COLUMNS if c not in have]
            if not missing:
                return
            db.execute("BEGIN IMMEDIATE")
            for c in missing:
                kind = "INTEGER" if c in _INTEGERS else "TEXT"
                default = " NOT NULL DEFAULT 0" if c in ("interruptions", "held") else ""
                db.execute(f"ALTER TABLE uploads ADD COLUMN {c} {kind}{default}")
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self._store.translate(exc) from None
        finally:
            db.close()

    @contextlib.contextmanager
    def _tx(self, write: bool = True) -> Iterator[sqlite3.Connection]:
        """One transaction: a write takes SQLite's write lock up front (``BEGIN IMMEDIATE``),
        so that a status check and its update never interleave; a read needs no lock but a
        snapshot (``BEGIN``), and works on a read-only lake root. Every SQLite error comes
        out as a :class:`LedgerError` naming the file."""
        if write and not self._store.exists():
            self._store.create()
        db = self._store.connect(write=write)
        db.row_factory = sqlite3.Row
        try:
            db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self._store.translate(exc) from None
        finally:
            db.close()

    def _read(self, sql: str, params: Sequence[object]) -> list[sqlite3.Row]:
        """The rows of one read; none from a ledger never created (reading creates nothing)."""
        if not self._store.exists():
            return []
        with self._tx(write=False) as db:
            return db.execute(sql, params).fetchall()

    @staticmethod
    def _record(row: sqlite3.Row) -> UploadRecord:
        values = dict(row)
        values["warnings"] = json.loads(values["warnings"] or "[]")
        if values["multiline"] is not None:
            values["multiline"] = bool(values["multiline"])
        values["interruptions"] = values["interruptions"] or 0
        values["held"] = bool(values["held"])
        return UploadRecord(**values)

    @staticmethod
    def _encode(name: str, value: object) -> object:
        return json.dumps(value) if name == "warnings" else value

    def _history(self, db: sqlite3.Connection, upload_id: str, at: str, old: str | None,
                 new: str, note: str | None) -> None:
        db.execute("INSERT INTO history (upload_id, at, from_status, to_status, note) "
                   "VALUES (?, ?, ?, ?, ?)", (upload_id, at, old, new, note))

    def create(self, record: UploadRecord, note: str | None = None) -> UploadRecord:
        now = stamp_new(record)
        with self._tx() as db:
            try:
                db.execute(f"INSERT INTO uploads ({', '.join(_COLUMNS)}) "
                           f"VALUES ({', '.join('?' for _ in _COLUMNS)})",
                           [self._encode(c, getattr(record, c)) for c in _COLUMNS])
            except sqlite3.IntegrityError as exc:
                raise LedgerError(f"upload {record.upload_id} already exists") from exc
            self._history(db, record.upload_id, now, None, RECEIVED, note)
        return record

    def get(self, upload_id: str) -> UploadRecord:
        rows = self._read("SELECT * FROM uploads WHERE upload_id = ?", (upload_id,))
        if not rows:
            raise UnknownUploadError(upload_id)
        return self._record(rows[0])

    def find(self, dataset: str | None = None,
             statuses: Sequence[str] | None = None) -> list[UploadRecord]:
        sql, params = "SELECT * FROM uploads WHERE 1 = 1", []
        if dataset is not None:
            sql += " AND dataset = ?"
            params.append(dataset)
        if statuses is not None:
            sql += f" AND status IN ({', '.join('?' for _ in statuses)})"
            params += list(statuses)
        return [self._record(r) for r in self._read(sql + " ORDER BY received_at, upload_id",
                                                    params)]

    def history(self, upload_id: str) -> list[HistoryEntry]:
        rows = self._read("SELECT upload_id, at, from_status, to_status, note FROM history "
                          "WHERE upload_id = ? ORDER BY seq", (upload_id,))
        return [HistoryEntry(**dict(r)) for r in rows]

    def note(self, upload_id: str, note: str) -> None:
        with self._tx() as db:
            row = db.execute("SELECT status FROM uploads WHERE upload_id = ?",
                             (upload_id,)).fetchone()
            if row is None:
                raise UnknownUploadError(upload_id)
            self._history(db, upload_id, utc_now(), row["status"], row["status"], note)

    def accepted_with_sha(self, dataset: str, sha256: str) -> UploadRecord | None:
        rows = self._read(
            f"SELECT * FROM uploads WHERE dataset = ? AND sha256 = ? AND status IN "
            f"({', '.join('?' for _ in CLAIMING)})", (dataset, sha256, *CLAIMING))
        return self._record(rows[0]) if rows else None

    def transition(self, upload_id: str, to_status: str, *,
                   expected: Sequence[str] | None = None, note: str | None = None,
                   **updates: object) -> UploadRecord:
        check_change(to_status, updates)
        with self._tx() as db:
            row = db.execute("SELECT * FROM uploads WHERE upload_id = ?", (upload_id,)).fetchone()
            if row is None:
                raise UnknownUploadError(upload_id)
            current = row["status"]
            if to_status not in TRANSITIONS[current]:
                raise IllegalTransition(upload_id, current, to_status)
            if expected is not None and current not in expected:
                raise ConflictError(upload_id, expected, current)
            now = utc_now()
            values = {**updates, "status": to_status, "updated_at": now}
            assignments = ", ".join(f"{k} = ?" for k in values)
            try:
                # The status condition makes this a compare-and-set even without the lock.
                cur = db.execute(
                    f"UPDATE uploads SET {assignments} WHERE upload_id = ? AND status = ?",
                    [*(self._encode(k, v) for k, v in values.items()), upload_id, current])
            except sqlite3.IntegrityError as exc:  # the content claim is taken
                sha = str(values.get("sha256", row["sha256"]))
                holder = db.execute(
                    f"SELECT upload_id FROM uploads WHERE dataset = ? AND sha256 = ? AND status "
                    f"IN ({', '.join('?' for _ in CLAIMING)})",
                    (row["dataset"], sha, *CLAIMING)).fetchone()
                raise DuplicateContentError(row["dataset"], sha,
                                            holder["upload_id"] if holder else "?") from exc
            if cur.rowcount != 1:
                raise ConflictError(upload_id, (current,), "a newer status")
            self._history(db, upload_id, now, current, to_status, note)
            row = db.execute("SELECT * FROM uploads WHERE upload_id = ?", (upload_id,)).fetchone()
        return self._record(row)

    @contextlib.contextmanager
    def run_lock(self, dataset: str) -> Iterator[None]:
        """An exclusive ``flock`` on a file beside the database; the kernel releases it when
        the process dies, so a crashed run never leaves the dataset locked."""
        lock_path = self.path.parent / "locks" / f"{dataset}.lock"
        try:
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            fh = open(lock_path, "a+")  # noqa: SIM115 - closed by the with below
        except OSError as exc:
            raise LedgerError(f"{lock_path}: cannot take the run lock of {dataset!r}: "
                              f"{exc.strerror}; a run needs a writable lake root") from None
        with fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                holder = fh.read().strip() or "another process"
                raise LockBusyError(f"another run of {dataset!r} is in progress ({holder}); "
                                    f"try again when it has finished") from None
            try:
                fh.seek(0)
                fh.truncate()
                fh.write(f"pid {os.getpid()} since {utc_now()}")
                fh.flush()
                yield
            finally:
                fh.seek(0)
                fh.truncate()
                fcntl.flock(fh, fcntl.LOCK_UN)


LEDGER_FILE = ("_ledger", "uploads.sqlite")


def open_ledger(lake_root: str | Path) -> Ledger:
    """The ledger of a local lake: SQLite under its root. A lake on S3 keeps its ledger in
    DynamoDB (jobs: ``--ledger_table``; :mod:`lib.ledger.dynamo`)."""
    root = local_path(to_uri(lake_root))
    if root is None:
        raise LedgerError(f"lake root {lake_root} is not local: the SQLite ledger needs a local "
                          f"folder (on AWS the ledger is a DynamoDB table: pass --ledger_table)")
    return SqliteLedger(root.joinpath(*LEDGER_FILE))
