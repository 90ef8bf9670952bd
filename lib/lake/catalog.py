"""The local Glue Data Catalog: databases, tables and partitions as the Glue API describes
them, kept in one SQLite file under the lake root (``<lake root>/_local/catalog.sqlite``).

A table is stored as the ``TableInput`` a Glue crawler writes (``Name``, ``TableType``,
``Parameters``, ``StorageDescriptor`` with ``Columns``, ``Location``, input/output format and
SerDe, ``PartitionKeys``), and a partition as its ``Values`` and ``StorageDescriptor.Location``:
:meth:`LocalCatalog.get_table` returns what ``glue.get_table`` would. Column types are the
Hive types a Glue crawler gives Parquet.

Several processes may read and write it at once: SQLite in WAL mode (readers never wait
for a writer), each change in a transaction that takes the write lock up front
(``BEGIN IMMEDIATE``), and a busy timeout instead of an error when another process holds it.
A crawl holds the lock for one target at a time, so two crawls of the same lake serialise
per table and the second finds the first's work done.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from lib.errors import LakeError
from lib.lake.paths import local_path, to_uri
from lib.lake.sqlite_store import SqliteStore

CATALOG_FILE = "catalog.sqlite"
PARTITION_TYPE = "string"  # a crawler types key=value folders as strings
BUSY_TIMEOUT_S = 60.0
PARQUET_STORAGE = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {
        "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
        "Parameters": {"serialization.format": "1"},
    },
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS databases (
    name        TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tables (
    database    TEXT NOT NULL REFERENCES databases (name),
    name        TEXT NOT NULL,
    definition  TEXT NOT NULL,  -- the Glue TableInput, JSON
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (database, name)
);
CREATE TABLE IF NOT EXISTS partitions (
    database    TEXT NOT NULL,
    table_name  TEXT NOT NULL,
    partition_values TEXT NOT NULL,  -- JSON array, in the order of the partition keys
    location    TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (database, table_name, partition_values),
    FOREIGN KEY (database, table_name) REFERENCES tables (database, name) ON DELETE CASCADE
);
"""


class CatalogError(LakeError):
    """The local catalog cannot be read or changed as asked."""

    default_code = "catalog.error"


@dataclass(frozen=True)
class TableInfo:
    """What the crawl and the query engine need of a table."""

    database: str
    name: str
    columns: dict[str, str]  # name -> Hive type, in table order
    partition_keys: tuple[str, ...]
    location: str

    @property
    def qualified(self) -> str:
        return f"{self.database}.{self.name}"


def catalog_file(lake_root: str | Path) -> Path:
    root = local_path(to_uri(lake_root))
    if root is None:
        raise CatalogError(f"{lake_root}: the local catalog lives in a local lake; on AWS the "
                           "Glue Data Catalog does")
    return root / "_local" / CATALOG_FILE


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def table_input(name: str, columns: dict[str, str], partition_keys: Iterable[str],
                location: str, parameters: dict[str, str]) -> dict:
    """The Glue ``TableInput`` of a crawled Parquet table."""
    return {
        "Name": name,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": dict(parameters),
        "StorageDescriptor": {
            "Columns": [{"Name": c, "Type": t} for c, t in columns.items()],
            "Location": location,
            **PARQUET_STORAGE,
        },
        "PartitionKeys": [{"Name": k, "Type": PARTITION_TYPE} for k in partition_keys],
    }


def _info(database: str, definition: dict) -> TableInfo:
    sd = definition["StorageDescriptor"]
    return TableInfo(database=database, name=definition["Name"],
                     columns={c["Name"]: c["Type"] for c in sd["Columns"]},
                     partition_keys=tuple(k["Name"] for k in definition["PartitionKeys"]),
                     location=sd["Location"])


class LocalCatalog:
    """The catalog file of one lake. Cheap to open: nothing is read until asked."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._store = SqliteStore(
            self.path, what="the local catalog", table="tables", schema=_SCHEMA,
            error=CatalogError, timeout=BUSY_TIMEOUT_S, wal=True,
            hint="it holds only what the crawlers found, so move it aside and run `lake crawl` "
            "to catalogue the zones again")

    @classmethod
    def for_lake(cls, lake_root: str | Path) -> LocalCatalog:
        return cls(catalog_file(lake_root))

    # -- connections -------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        """This thread's connection for changes: the file is created whole if it does not
        exist yet (:class:`lib.lake.sqlite_store.SqliteStore`)."""
        con = getattr(self._local, "con", None)
        if con is None:
            self._store.create()
            con = self._store.connect(write=True)
            try:
                con.execute("PRAGMA journal_mode=WAL")
                con.execute("PRAGMA foreign_keys=ON")
                con.execute("PRAGMA synchronous=NORMAL")
                with _write(con):  # a catalog of an earlier version gets the newer tables
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            con.execute(statement)
            except sqlite3.Error as exc:
                con.close()
                raise self._store.translate(exc) from None
            self._local.con = con
        return con

    def _reader(self) -> sqlite3.Connection:
        """This thread's connection for reading: the one for changes once there is one (a
        transaction reads its own changes), else the file opened read-only (as a read-only
        lake root allows), or, before anything was catalogued, an empty catalog in memory:
        reading never creates the file."""
        con = getattr(self._local, "con", None) or getattr(self._local, "reader", None)
        if con is not None:
            return con
        if not self._store.exists():
            empty = sqlite3.connect(":memory:", isolation_level=None)
            empty.executescript(_SCHEMA)
            return empty
        self._local.reader = self._store.connect(write=False)
        return self._local.reader

    @contextmanager
    def transaction(self) -> Iterator[LocalCatalog]:
        """Every change inside is applied together or not at all, under the write lock
        (other writers wait; readers see the state before until it commits)."""
        con = self._connect()
        if con.in_transaction:  # nested: part of the enclosing one
            yield self
            return
        try:
            with _write(con):
                yield self
        except sqlite3.Error as exc:
            raise self._store.translate(exc) from None

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        try:
            return self._reader().execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise self._store.translate(exc) from None

    def _change(self, sql: str, args: tuple = ()) -> None:
        with self.transaction():
            self._connect().execute(sql, args)

    # -- databases ---------------------------------------------------------------------------

    def create_database(self, name: str, description: str) -> None:
        """Create the database, or keep it (its description updated)."""
        self._change("INSERT INTO databases VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE "
                     "SET description = excluded.description", (name, description, _now()))

    def databases(self) -> dict[str, str]:
        return dict(self._query("SELECT name, description FROM databases ORDER BY name"))

    # -- tables ------------------------------------------------------------------------------

    def get_table(self, database: str, name: str) -> dict | None:
        """The table as ``glue.get_table(...)["Table"]`` shapes it, or None."""
        rows = self._query("SELECT definition, created_at, updated_at FROM tables "
                           "WHERE database = ? AND name = ?", (database, name))
        if not rows:
            return None
        definition, created, updated = rows[0]
        return {**json.loads(definition), "DatabaseName": database, "CreateTime": created,
                "UpdateTime": updated}

    def table(self, database: str, name: str) -> TableInfo | None:
        definition = self.get_table(database, name)
        return _info(database, definition) if definition is not None else None

    def tables(self) -> list[TableInfo]:
        return [_info(db, json.loads(d)) for db, d in
                self._query("SELECT database, definition FROM tables ORDER BY database, name")]

    def table_names(self) -> list[str]:
        return [f"{db}.{n}" for db, n in
                self._query("SELECT database, name FROM tables ORDER BY database, name")]

    def create_table(self, database: str, name: str, columns: dict[str, str],
                     partition_keys: tuple[str, ...], location: str,
                     parameters: dict[str, str]) -> None:
        definition = table_input(name, columns, partition_keys, location, parameters)
        now = _now()
        self._change("INSERT INTO tables VALUES (?, ?, ?, ?, ?)",
                     (database, name, json.dumps(definition), now, now))

    def drop_table(self, database: str, name: str) -> None:
        """Remove the table and its partitions from the catalog (EXTERNAL: data stays)."""
        self._change("DELETE FROM tables WHERE database = ? AND name = ?", (database, name))

    def add_columns(self, database: str, name: str, columns: dict[str, str]) -> None:
        with self.transaction():
            definition = self.get_table(database, name)
            if definition is None:
                raise CatalogError(f"table {database}.{name} does not exist")
            for c, t in columns.items():
                definition["StorageDescriptor"]["Columns"].append({"Name": c, "Type": t})
            stored = {k: v for k, v in definition.items()
                      if k not in ("DatabaseName", "CreateTime", "UpdateTime")}
            self._connect().execute(
                "UPDATE tables SET definition = ?, updated_at = ? WHERE database = ? AND "
                "name = ?", (json.dumps(stored), _now(), database, name))

    # -- partitions --------------------------------------------------------------------------

    def partitions(self, database: str, name: str) -> set[tuple[str, ...]]:
        return {tuple(json.loads(v)) for (v,) in self._query(
            "SELECT partition_values FROM partitions WHERE database = ? AND table_name = ?",
            (database, name))}

    def partition_locations(self, database: str, name: str) -> dict[tuple[str, ...], str]:
        return {tuple(json.loads(v)): loc for v, loc in self._query(
            "SELECT partition_values, location FROM partitions WHERE database = ? AND "
            "table_name = ? ORDER BY partition_values", (database, name))}

    def add_partitions(self, database: str, name: str, keys: tuple[str, ...],
                       partitions: dict[tuple[str, ...], str]) -> None:
        """Register partitions (values -> location); one already registered is kept."""
        rows = []
        for values, location in sorted(partitions.items()):
            if len(values) != len(keys):
                raise CatalogError(f"{database}.{name}: partition {list(values)} does not "
                                   f"match the keys {list(keys)}")
            rows.append((database, name, json.dumps(list(values)), location, _now()))
        with self.transaction():
            self._connect().executemany(
                "INSERT INTO partitions VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", rows)

    def drop_partitions(self, database: str, name: str,
                        values: Iterable[tuple[str, ...]]) -> None:
        with self.transaction():
            self._connect().executemany(
                "DELETE FROM partitions WHERE database = ? AND table_name = ? AND "
                "partition_values = ?",
                [(database, name, json.dumps(list(v))) for v in sorted(values)])

    def describe(self) -> str:
        """What is catalogued, for ``lake catalog``."""
        lines = []
        databases = self.databases()
        tables = self.tables()
        if not databases:
            return "the catalog is empty: run `lake crawl`"
        for db, description in databases.items():
            lines.append(f"database {db}: {description}")
            mine = [t for t in tables if t.database == db]
            if not mine:
                lines.append("  (no tables)")
            for t in mine:
                parts = self.partitions(db, t.name)
                keys = ", ".join(f"{k} {PARTITION_TYPE}" for k in t.partition_keys)
                lines.append(f"  table {t.qualified}  {t.location}")
                lines.append(f"    {len(t.columns)} columns, {len(parts)} partition(s)"
                             + (f" by ({keys})" if keys else ""))
                for c, typ in t.columns.items():
                    lines.append(f"      {c}  {typ}")
        return "\n".join(lines)


@contextmanager
def _write(con: sqlite3.Connection) -> Iterator[None]:
    con.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")

