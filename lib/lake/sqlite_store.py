"""A store kept in one SQLite file under the lake root (the ledger, the local catalog), opened
so that it never starts over silently.

* A store that does not exist yet is created whole: its schema is written to a temporary
  file beside it, which is then linked into place (``os.link`` fails if another process
  created it first). So an existing file is always a complete store, and an existing file
  that is empty, is not SQLite, or lacks the store's tables is an error that names the file
  and what to do, never a fresh empty store over lost data.
* A store whose file or folder cannot be written (a read-only lake root, another user's
  lake) is opened read-only: reads work, writes are refused with a clear error.
* A store another process keeps locked beyond the wait is an error that says so.

Every SQLite error is turned into the caller's own error class (a :class:`LakeError`), with
the file named.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import sqlite3
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from lib.errors import LakeError

SQLITE_MAGIC = b"SQLite format 3\x00"


def _user_can_write(path: Path) -> bool:
    """Whether this process may write ``path`` (a file, or the folder to create one in): its
    permissions allow it (root's always do) and it is not on a read-only mount (which
    refuses even root). Asks the kernel; writes nothing."""
    try:
        read_only_mount = bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False
    return not read_only_mount and os.access(path, os.W_OK)


class SqliteStore:
    """One store file: ``what`` names it in messages ("the ledger"), ``table`` is a table every
    store of its kind has, ``schema`` creates it (idempotent), ``error`` is the caller's error
    class, ``hint`` what to do with a damaged file."""

    def __init__(self, path: Path, *, what: str, table: str, schema: str,
                 error: Callable[[str], LakeError], hint: str, timeout: float,
                 wal: bool = False) -> None:
        self.path, self.what, self.table, self.schema = path, what, table, schema
        self.error, self.hint, self.timeout, self.wal = error, hint, timeout, wal
        self._writable: bool | None = None

    # -- opening ---------------------------------------------------------------------------

    def exists(self) -> bool:
        return self.path.exists()

    def writable(self) -> bool:
        """Whether this process may change the store, or create it (where it does not exist
        yet: the nearest folder that does); asked once per store object it exists for."""
        if self._writable is not None:
            return self._writable
        if not self.path.exists():
            folder = self.path.parent
            while not folder.exists() and folder != folder.parent:
                folder = folder.parent
            return _user_can_write(folder)
        self._writable = _user_can_write(self.path) and _user_can_write(self.path.parent)
        return self._writable

    def create(self) -> None:
        """Create the store whole if it does not exist (see the module docstring)."""
        if self.path.exists():
            return
        tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.new")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(tmp, isolation_level=None)
            try:
                if self.wal:
                    db.execute("PRAGMA journal_mode=WAL")
                db.executescript(self.schema)
            finally:
                db.close()
            try:
                os.link(tmp, self.path)
            except FileExistsError:
                pass  # another process was first: use theirs
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                    raise
                # A file system without hard links: a rename, unless the file appeared.
                if not self.path.exists():
                    os.replace(tmp, self.path)
        except (OSError, sqlite3.Error) as exc:
            why = getattr(exc, "strerror", None) or str(exc)
            if not self.writable():
                why += "; the lake root is read-only here (reading works)"
            raise self.error(f"{self.path}: cannot create {self.what}: {why}") from None
        finally:
            for leftover in (tmp, *(Path(f"{tmp}{s}") for s in ("-wal", "-shm", "-journal"))):
                with contextlib.suppress(OSError):  # missing, or a read-only file system
                    leftover.unlink()

    def check(self) -> None:
        """Refuse a file that is not a complete store of this kind."""
        try:
            size = self.path.stat().st_size
            with self.path.open("rb") as fh:
                head = fh.read(len(SQLITE_MAGIC))
        except OSError as exc:
            raise self.error(f"{self.path}: cannot read {self.what}: {exc.strerror}") from None
        if size == 0:
            raise self.error(self._damaged("is empty (0 bytes): it was truncated or replaced"))
        if head != SQLITE_MAGIC:
            raise self.error(self._damaged("is not a SQLite database"))

    def _damaged(self, why: str) -> str:
        return (f"{self.path}: {self.what} {why}. It is never started anew over a damaged "
                f"file, since the lake's state is recorded in it: {self.hint}")

    def connect(self, *, write: bool) -> sqlite3.Connection:
        """A connection in autocommit mode (transactions are the caller's); ``write`` False
        opens the file read-only, as a read-only lake root allows."""
        if not self.path.exists():
            raise self.error(f"{self.path}: {self.what} does not exist")
        self.check()
        if write and not self.writable():
            raise self.error(f"{self.path}: {self.what} cannot be written by this user (a "
                             "read-only lake root, or another user's lake); reading works, "
                             "changing it needs write access to the file and its folder")
        uri = f"file:{quote(str(self.path))}?mode={'rw' if write else 'ro'}"
        try:
            db = sqlite3.connect(uri, uri=True, timeout=self.timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise self.translate(exc) from None
        try:
            try:
                found = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                   "name = ?", (self.table,)).fetchone()
            except sqlite3.OperationalError:
                if write or not self.wal or self.writable():
                    raise
                db.close()
                db = self._immutable(uri)
                found = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                   "name = ?", (self.table,)).fetchone()
        except sqlite3.Error as exc:
            db.close()
            raise self.translate(exc) from None
        if found is None:
            db.close()
            raise self.error(self._damaged(f"is a SQLite database without the {self.table!r} "
                                           "table: it is not this store's file"))
        return db

    def _immutable(self, uri: str) -> sqlite3.Connection:
        """A WAL database in a folder this process cannot write: SQLite reads it through a
        ``-shm`` file it cannot create there. Read the file as one nobody changes (nobody
        with these rights can), unless changes wait in its ``-wal`` file, which only a
        writer can apply."""
        wal = Path(f"{self.path}-wal")
        if wal.exists() and wal.stat().st_size > 0:
            raise self.error(f"{self.path}: {self.what} has changes in {wal.name} that a "
                             "read-only lake root cannot apply: open the lake once with "
                             "write access (any `lake` command that reads it), then again "
                             "read-only")
        return sqlite3.connect(f"{uri}&immutable=1", uri=True, timeout=self.timeout,
                               isolation_level=None)

    def translate(self, exc: sqlite3.Error) -> LakeError:
        """``exc`` as the caller's error, naming the file and what to do."""
        text = str(exc)
        if "locked" in text or "busy" in text:
            return self.error(f"{self.path}: {self.what} is locked by another process and "
                              f"stayed locked for over {self.timeout:g} s ({text}); try "
                              "again when it has finished (a run, a crawl), or find the "
                              "process holding it (fuser)")
        if "readonly" in text or "read-only" in text:
            return self.error(f"{self.path}: {self.what} cannot be written ({text}): the lake "
                              "root is read-only here")
        if isinstance(exc, sqlite3.DatabaseError) and ("not a database" in text
                                                       or "malformed" in text):
            return self.error(self._damaged(f"is damaged ({text})"))
        if "disk is full" in text or "No space" in text:
            return self.error(f"{self.path}: {self.what} cannot be written: the disk is full "
                              f"({text}); free space and try again")
        return self.error(f"{self.path}: {self.what}: {text}")
