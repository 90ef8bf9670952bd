"""Athena locally: Athena (Trino) SQL transpiled by sqlglot to DuckDB's dialect and run by an
embedded DuckDB on the tables the local crawl catalogued (:mod:`lib.lake.catalog`); and
the named queries of ``infra/athena/``. No JVM: a query answers in well under a second, and
any number of processes may query while a pipeline or a crawl runs.

Only catalogued tables and their registered partitions are visible, as on Athena: each
table the query names becomes a view over the Parquet files of its registered partitions
(a folder the crawl has not registered is not read), typed as the catalog says (partition
keys included). Where DuckDB's semantics differ from Trino's, it is made to answer as
Athena does: ``/`` on integers is integer division, timestamps print as Athena prints them
(``2026-11-01 09:15:00.000``, UTC).

Queries are read-only and read catalogued tables only, by construction: :mod:`lib.tools.sql_guard`
refuses any construct, function or relation outside its allow-list, and the DuckDB session
itself can reach no file outside the catalogued tables' folders, loads no extension, and
cannot change its settings. ``?`` placeholders (Athena execution parameters) are bound in
order to string literals by sqlglot, never by pasting text into SQL.

A named query file is Athena SQL with a comment header::

    -- name: daily_revenue_by_currency
    -- description: Clean revenue per order day and currency.
    -- parameters: upload_id          (optional; one name per ``?``, in order)
"""

from __future__ import annotations

import contextlib
import csv
import difflib
import io
import json
import logging
import os
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from lib.lake.catalog import PARTITION_TYPE, LocalCatalog, TableInfo
from lib.lake.paths import local_path
from lib.tools.repo import REPO_ROOT
from lib.tools.spreadsheet import safe_cell
from lib.tools.sql_guard import QueryError, check_read_only, relations

FORMATS = ("table", "csv", "json")
HIVE_DEFAULT_PARTITION = "__HIVE_DEFAULT_PARTITION__"
NAMED_QUERIES_ENV = "LAKE_NAMED_QUERIES_DIR"
_READ_ONLY = (exp.Query, exp.Describe)
_HEADER_RE = re.compile(r"^--\s*(name|description|parameters)\s*:\s*(.*?)\s*$")
_SHOW_RE = re.compile(
    r"^SHOW\s+(?:(?P<dbs>DATABASES|SCHEMAS)|TABLES(?:\s+(?:IN|FROM)\s+(?P<db>\w+))?"
    r"|PARTITIONS\s+(?P<pt>\w+\.\w+)|COLUMNS\s+(?:IN|FROM)\s+(?P<ct>\w+\.\w+))\s*;?\s*$",
    re.IGNORECASE)

logging.getLogger("sqlglot").setLevel(logging.ERROR)  # "falling back to Command" notices
log = logging.getLogger("lake.query")

DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MEMORY_LIMIT = "2GB"
MAX_SPILL = "10GiB"  # what a query may write to the lake's temp folder beyond its memory
FILE_RACE_RETRIES = 3


class QueryTimeout(QueryError):
    """The query ran past its time limit and was stopped."""

    default_code = "query.timeout"


class QueryInterrupted(QueryError):
    """The query was stopped by Ctrl-C."""

    default_code = "query.interrupted"


@dataclass(frozen=True)
class QueryResult:
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    truncated: bool = False


def parse(sql: str, params: Sequence[str] = (),
          tables: Sequence[str] | None = None) -> exp.Expression:
    """One Athena (Trino) statement, checked by :func:`lib.tools.sql_guard.check_read_only`
    (relations against ``tables``, the catalogued ``db.table`` names, when given), with
    ``?`` bound to ``params``. A ``SHOW`` statement comes back as an ``exp.Command``."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="trino") if s is not None]
    except ParseError as exc:
        raise QueryError(_parse_error(exc, sql)) from None
    if len(statements) != 1:
        raise QueryError(f"expected one SQL statement, got {len(statements)}")
    tree = statements[0]
    is_show = isinstance(tree, exp.Command) and str(tree.this).upper() == "SHOW"
    if not isinstance(tree, _READ_ONLY) and not is_show:
        raise QueryError(f"lake query runs read-only queries (SELECT, WITH, SHOW, DESCRIBE), "
                         f"not {tree.key.upper()}; tables are created and updated by "
                         "`lake crawl`")
    if not is_show:
        check_read_only(tree, tables)
    holes = list(tree.find_all(exp.Placeholder))
    if len(holes) != len(params):
        raise QueryError(f"the query has {len(holes)} parameter(s) (?) but {len(params)} "
                         "value(s) were given")
    for hole, value in zip(holes, params, strict=True):
        hole.replace(exp.Literal.string(value))
    return tree


def to_duckdb_sql(sql: str, params: Sequence[str] = (),
                  tables: Sequence[str] | None = None) -> str:
    """One Athena (Trino) statement -> DuckDB SQL (see :func:`parse`)."""
    tree = parse(sql, params, tables)
    if isinstance(tree, exp.Command):
        raise QueryError("SHOW statements are answered from the catalog, not transpiled")
    return tree.sql(dialect="duckdb")


STATEMENT_WORDS = ("SELECT", "WITH", "SHOW", "DESCRIBE")


def _parse_error(exc: ParseError, sql: str = "") -> str:
    """Where the query stops making sense, in the query's own terms: the line, the column and
    a caret under it, and the keyword meant when the first word is a near miss (the parser's
    own wording names its internals: left out)."""
    if not exc.errors:
        return "cannot parse the query (Athena/Trino SQL)"
    e = exc.errors[0]
    line, col = int(e.get("line") or 1), int(e.get("col") or 1)
    description = str(e.get("description") or "")
    what = ("" if "<class" in description or "Required keyword" in description
            else f": {description.split('. Line')[0]}")
    first = (sql.split() or [""])[0].upper()
    close = ([] if first in STATEMENT_WORDS
             else difflib.get_close_matches(first, STATEMENT_WORDS, n=1, cutoff=0.6))
    hint = f"; did you mean {close[0]}?" if close else ""
    text = sql.splitlines()[line - 1] if sql and line <= len(sql.splitlines()) else ""
    shown = f"\n  {text}\n  {' ' * max(col - 1, 0)}^" if text else ""
    return (f"cannot parse the query (Athena/Trino SQL) at line {line}, column {col}"
            f"{what}{hint}{shown}")


_ERROR_KIND = re.compile(r"^[A-Z][A-Za-z ]*Error: ")
_DUCKDB_TYPES_SAID = {"INT8": "tinyint", "INT16": "smallint", "INT32": "integer",
                      "INT64": "bigint", "VARCHAR": "varchar", "DOUBLE": "double",
                      "FLOAT": "real", "BOOLEAN": "boolean", "TIMESTAMP": "timestamp"}


def engine_message(exc: Exception, sql: str, tables: Sequence[TableInfo]) -> str:
    """A query engine's error in the user's SQL terms (Athena's words where it has them):
    an unknown column with its position, the columns of the tables the query reads and the
    closest name; a division by zero with what to write instead; never the engine's class
    name or its translation of the query."""
    text = _ERROR_KIND.sub("", _engine_error(exc))
    missing = (re.search(r'Referenced column "([^"]+)" not found', text)
               or re.search(r'does not have a column named "([^"]+)"', text))
    if missing:
        name = missing.group(1)
        at = re.search(rf"(?i)(?<!\w){re.escape(name)}(?!\w)", sql)
        where = ""
        if at:
            before = sql[:at.start()]
            where = f"line {before.count(chr(10)) + 1}:{at.start() - before.rfind(chr(10))}: "
        names = {t.qualified: [*t.columns, *t.partition_keys] for t in tables}
        columns = [c for cols in names.values() for c in cols]
        close = difflib.get_close_matches(name.lower(), columns, n=1, cutoff=0.6)
        listed = "; ".join(f"{t}: {', '.join(cols)}" for t, cols in names.items())
        said = f"{where}column {name} cannot be resolved"
        if close:
            said += f"; did you mean {close[0]}?"
        return said + (f"{' Columns' if close else '; columns'} of {listed}" if listed else "")
    if "Division by zero" in text:
        return ("division by zero (Athena fails the query too); to get NULL where the "
                "divisor is 0, divide by NULLIF(divisor, 0)")
    for duck, athena in _DUCKDB_TYPES_SAID.items():
        text = re.sub(rf"\b{duck}\b", athena, text)
    return text


# -- the engine ------------------------------------------------------------------------------

# Hive type (as catalogued) -> DuckDB type.
_DUCKDB_TYPES = {
    "string": "VARCHAR", "varchar": "VARCHAR", "char": "VARCHAR", "boolean": "BOOLEAN",
    "tinyint": "TINYINT", "smallint": "SMALLINT", "int": "INTEGER", "integer": "INTEGER",
    "bigint": "BIGINT", "float": "FLOAT", "double": "DOUBLE", "date": "DATE",
    "timestamp": "TIMESTAMP", "binary": "BLOB",
}


def duckdb_type(hive: str) -> str:
    """The DuckDB type of a catalogued Hive type (``decimal(12,2)``, ``array<string>``,
    ``struct<a:int,b:string>`` ...)."""
    t = hive.strip()
    low = t.lower()
    if low in _DUCKDB_TYPES:
        return _DUCKDB_TYPES[low]
    if re.fullmatch(r"(?:decimal|numeric)\(\s*\d+\s*,\s*\d+\s*\)", low):
        return low.replace("numeric", "decimal").upper().replace(" ", "")
    if low.startswith("array<") and low.endswith(">"):
        return duckdb_type(t[6:-1]) + "[]"
    if low.startswith("struct<") and low.endswith(">"):
        fields = []
        for part in _split_top(t[7:-1]):
            name, _, typ = part.partition(":")
            fields.append(f'"{name.strip()}" {duckdb_type(typ)}')
        return f"STRUCT({', '.join(fields)})"
    if low.startswith("map<") and low.endswith(">"):
        key, value = _split_top(t[4:-1])
        return f"MAP({duckdb_type(key)}, {duckdb_type(value)})"
    raise QueryError(f"catalogued type {hive!r} has no DuckDB equivalent")


def _split_top(text: str) -> list[str]:
    """``a:int,b:array<string>`` -> the comma-separated parts at nesting depth 0."""
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    return [*parts, current]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def data_files(folder: Path) -> list[Path]:
    """The files a reader of a partition (or unpartitioned table) folder reads: every file
    under it but hidden ones (a name starting with ``.`` or ``_``, in any folder on the way:
    ``_SUCCESS``, ``_staging``, ``.crc`` files), as Athena and the Hive readers skip them."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "_")))
        out += [Path(dirpath) / f for f in sorted(filenames) if not f.startswith((".", "_"))]
    return out


def table_view(con: Any, table: TableInfo, catalog: LocalCatalog) -> None:
    """``<db>.<table>`` in the DuckDB session: the files of the table's registered partitions,
    each catalogued column with its catalogued type (null where no file has it), partition
    keys from the registered partitions' folders."""
    root = local_path(table.location)
    if table.partition_keys:
        folders = [local_path(loc) for loc in
                   catalog.partition_locations(table.database, table.name).values()]
    else:
        folders = [root]
    files = [str(f) for folder in folders if folder is not None and folder.is_dir()
             for f in data_files(folder)]
    typed = {**table.columns, **{k: PARTITION_TYPE for k in table.partition_keys}}
    name = f"{_quote(table.database)}.{_quote(table.name)}"
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(table.database)}")
    if not files:
        cols = ", ".join(f"CAST(NULL AS {duckdb_type(t)}) AS {_quote(c)}" for c, t in typed.items())
        con.execute(f"CREATE VIEW {name} AS SELECT {cols} WHERE false")
        return
    hive_types = ", ".join(f"{_literal(k)}: 'VARCHAR'" for k in table.partition_keys)
    source = (f"read_parquet([{', '.join(_literal(f) for f in files)}], union_by_name = true"
              + (f", hive_partitioning = true, hive_types = {{{hive_types}}}"
                 if table.partition_keys else ", hive_partitioning = false") + ")")
    present = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}

    def value(c: str) -> str:
        if c in table.partition_keys:  # Hive's folder for null reads as null
            return f"NULLIF({_quote(c)}, {_literal(HIVE_DEFAULT_PARTITION)})"
        return _quote(c) if c in present else "NULL"

    cols = ", ".join(f"CAST({value(c)} AS {duckdb_type(t)}) AS {_quote(c)}"
                     for c, t in typed.items())
    con.execute(f"CREATE VIEW {name} AS SELECT {cols} FROM {source}")


def spill_folder(catalog: LocalCatalog) -> Path:
    """Where a query spills what does not fit its memory limit: the lake's own temp folder
    (``<lake root>/_local/duckdb-tmp``)."""
    return catalog.path.parent / "duckdb-tmp"


def connect(catalog: LocalCatalog, tables: Sequence[TableInfo], *,
            memory_limit: str = DEFAULT_MEMORY_LIMIT) -> Any:
    """A DuckDB session holding ``tables`` as views, locked down: it reads files in the
    tables' folders only, writes nothing but its own spill files (at most
    :data:`MAX_SPILL` in :func:`spill_folder`), holds at most ``memory_limit`` in memory,
    loads no extension and cannot change its settings. ``/`` on integers divides as Trino
    does."""
    import duckdb

    allowed = sorted({str(p) + "/" for p in (local_path(t.location) for t in tables) if p})
    try:
        con = duckdb.connect(":memory:", config={
            "temp_directory": str(spill_folder(catalog)),
            "max_temp_directory_size": MAX_SPILL,
            "memory_limit": memory_limit,
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "integer_division": True,
        })
    except duckdb.Error as exc:
        raise QueryError(f"cannot start the query engine: {_engine_error(exc)} (is "
                         f"--memory-limit {memory_limit!r} a size such as 2GB?)") from None
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET allowed_directories = $dirs", {"dirs": allowed})
        con.execute("SET enable_external_access = false")
        for table in tables:
            table_view(con, table, catalog)
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


def _named_tables(tree: exp.Expression, catalog: LocalCatalog) -> list[TableInfo]:
    """The catalogued tables ``tree`` reads (its own WITH names aside)."""
    wanted = relations(tree)
    return [t for t in catalog.tables() if t.qualified.lower() in wanted]


def run_query(catalog: LocalCatalog, sql: str, params: Sequence[str] = (),
              max_rows: int | None = None, *, timeout_s: float = DEFAULT_TIMEOUT_S,
              memory_limit: str = DEFAULT_MEMORY_LIMIT) -> QueryResult:
    """Run Athena SQL on the local catalog; at most ``max_rows`` rows are fetched. The query
    is stopped after ``timeout_s`` seconds (:class:`QueryTimeout`) or at Ctrl-C
    (:class:`QueryInterrupted`), and holds at most ``memory_limit`` in memory, spilling the
    rest to the lake's temp folder. A file that disappears while the query runs (a reprocess
    published newer ones and deleted the older) is met by running it again on the files
    listed then, up to :data:`FILE_RACE_RETRIES` times."""
    import duckdb

    tree = parse(sql, params, catalog.table_names())
    if isinstance(tree, exp.Command):
        return _show(catalog, sql)
    if isinstance(tree, exp.Describe):
        return _describe(catalog, tree)
    engine_sql = tree.sql(dialect="duckdb")
    deadline = time.monotonic() + timeout_s  # one limit for the query, retries included
    for attempt in range(FILE_RACE_RETRIES + 1):
        con = None
        try:
            read = _named_tables(tree, catalog)
            con = connect(catalog, read, memory_limit=memory_limit)
            columns, rows = _execute(con, engine_sql, max_rows, timeout_s, deadline)
            break
        except duckdb.IOException as exc:
            if attempt == FILE_RACE_RETRIES or not _vanished(exc):
                raise QueryError(engine_message(exc, sql, read)) from None
            log.info("a file of the query disappeared (%s); reading the new file list",
                     _engine_error(exc))
        except duckdb.OutOfMemoryException as exc:
            raise QueryError(
                f"the query needs more memory than its limit of {memory_limit} and the "
                f"{MAX_SPILL} it may spill to {spill_folder(catalog)}: "
                f"{_engine_error(exc)}. Narrow it (a WHERE on the partition columns, fewer "
                "columns, a LIMIT) or raise --memory-limit", "query.memory") from None
        except duckdb.Error as exc:
            log.debug("the engine's SQL: %s", engine_sql)
            raise QueryError(engine_message(exc, sql, read)) from None
        finally:
            if con is not None:
                with contextlib.suppress(duckdb.Error):  # busy if Ctrl-C left it running
                    con.close()
    truncated = max_rows is not None and len(rows) > max_rows
    rows = rows[:max_rows] if truncated else rows
    return QueryResult(columns, [tuple(_athena_value(v) for v in r) for r in rows], truncated)


def _vanished(exc: Exception) -> bool:
    """Whether DuckDB's I/O error says a listed file is no longer there."""
    text = str(exc)
    return any(s in text for s in ("No files found that match the pattern", "No such file",
                                   "Cannot open file"))


def _execute(con: Any, sql: str, max_rows: int | None, timeout_s: float,
             deadline: float | None = None) -> tuple[tuple[str, ...], list[tuple]]:
    """Run ``sql`` on ``con`` in a worker thread, so that this one stays free to stop it at
    once: at the time limit (``timeout_s`` from now, or at ``deadline``), or at Ctrl-C
    (DuckDB checks for an interrupt between its own steps, while Python's signal handler
    only runs between Python instructions)."""
    outcome: dict[str, Any] = {}
    done = threading.Event()  # not Thread.join: a join that Ctrl-C interrupts forgets the thread

    def work() -> None:
        try:
            cursor = con.execute(sql)
            outcome["rows"] = (cursor.fetchmany(max_rows + 1) if max_rows is not None
                               else cursor.fetchall())
            outcome["columns"] = tuple(d[0] for d in cursor.description)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            outcome["error"] = exc
        finally:
            done.set()

    deadline = time.monotonic() + timeout_s if deadline is None else deadline
    threading.Thread(target=work, name="lake-query", daemon=True).start()
    try:
        while not done.wait(max(min(0.1, deadline - time.monotonic()), 0)):
            if time.monotonic() >= deadline:
                con.interrupt()
                done.wait()
                raise QueryTimeout(
                    f"the query ran longer than its time limit of {timeout_s:g} s and was "
                    "stopped; narrow it (a WHERE on the partition columns, a LIMIT) or raise "
                    "--timeout")
    except KeyboardInterrupt:
        con.interrupt()
        done.wait(10)
        raise QueryInterrupted("the query was stopped (Ctrl-C)") from None
    if "error" in outcome:
        raise outcome["error"]
    return outcome["columns"], outcome["rows"]


def _engine_error(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]


def _athena_value(value: Any) -> Any:
    """Timestamps as Athena prints them (UTC, milliseconds; a zoned one with ``UTC``)."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    if isinstance(value, list):
        return [_athena_value(v) for v in value]
    return value


def _table_named(catalog: LocalCatalog, qualified: str) -> TableInfo:
    db, _, name = qualified.partition(".")
    table = catalog.table(db, name)
    if table is None:
        listed = ", ".join(catalog.table_names()) or "(none: run `lake crawl` first)"
        raise QueryError(f"table {qualified} does not exist; tables: {listed}")
    return table


def _describe(catalog: LocalCatalog, tree: exp.Describe) -> QueryResult:
    """``DESCRIBE db.table``: its columns and types, partition keys last, from the catalog."""
    target = tree.this
    qualified = ".".join(p for p in (target.db, target.name) if p) \
        if isinstance(target, exp.Table) else target.sql("trino")
    table = _table_named(catalog, qualified)
    rows = [(c, t, "") for c, t in table.columns.items()]
    rows += [(k, PARTITION_TYPE, "partition key") for k in table.partition_keys]
    return QueryResult(("col_name", "data_type", "comment"), rows)


def _show(catalog: LocalCatalog, sql: str) -> QueryResult:
    """``SHOW DATABASES``, ``SHOW TABLES [IN db]``, ``SHOW PARTITIONS db.t`` and ``SHOW COLUMNS
    IN db.t``, answered from the catalog."""
    m = _SHOW_RE.match(sql.strip())
    if m is None:
        raise QueryError("lake query answers SHOW DATABASES, SHOW TABLES [IN db], SHOW "
                         "PARTITIONS db.table and SHOW COLUMNS IN db.table")
    if m.group("dbs"):
        return QueryResult(("database_name",), [(d,) for d in catalog.databases()])
    if m.group("pt"):
        table = _table_named(catalog, m.group("pt"))
        return QueryResult(("partition",), [
            ("/".join(f"{k}={v}" for k, v in zip(table.partition_keys, values, strict=True)),)
            for values in sorted(catalog.partitions(table.database, table.name))])
    if m.group("ct"):
        table = _table_named(catalog, m.group("ct"))
        return QueryResult(("field",), [(c,) for c in [*table.columns, *table.partition_keys]])
    db = m.group("db")
    return QueryResult(("tab_name",), [(t.name,) for t in catalog.tables()
                                       if db is None or t.database == db])


# -- output ----------------------------------------------------------------------------------

def _plain(value: Any) -> Any:
    """A JSON-ready value: decimals as strings (no precision lost), dates ISO."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _text(value: Any, null: str) -> str:
    if value is None:
        return null
    plain = _plain(value)
    return json.dumps(plain) if isinstance(plain, list | dict) else str(plain)


def format_result(result: QueryResult, fmt: str) -> str:
    if fmt == "json":
        return json.dumps([{c: _plain(v) for c, v in zip(result.columns, r, strict=True)}
                           for r in result.rows], indent=2)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows([safe_cell(v) if isinstance(v, str) else _text(v, "") for v in r]
                         for r in result.rows)
        return buf.getvalue().rstrip("\n")
    cells = [[_text(v, "NULL") for v in r] for r in result.rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells])
              for i, c in enumerate(result.columns)]
    lines = [" | ".join(c.ljust(w) for c, w in zip(result.columns, widths, strict=True)),
             "-+-".join("-" * w for w in widths)]
    lines += [" | ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    lines.append(f"({len(cells)} row{'s' if len(cells) != 1 else ''})")
    return "\n".join(line.rstrip() for line in lines)


# -- named queries ---------------------------------------------------------------------------

@dataclass(frozen=True)
class NamedQuery:
    name: str
    description: str
    sql: str
    parameters: tuple[str, ...]
    path: Path

    def bind(self, values: dict[str, str]) -> list[str]:
        missing = [p for p in self.parameters if p not in values]
        if missing:
            raise QueryError(f"named query {self.name} needs --param "
                             + " ".join(f"{p}=VALUE" for p in missing))
        return [values[p] for p in self.parameters]


def named_queries_dir() -> Path:
    explicit = os.environ.get(NAMED_QUERIES_ENV)
    return Path(explicit) if explicit else REPO_ROOT / "infra" / "athena"


def load_named_queries(directory: Path | None = None) -> dict[str, NamedQuery]:
    """Every ``*.sql`` file with a ``-- name:`` header, by name."""
    out: dict[str, NamedQuery] = {}
    for path in sorted((directory or named_queries_dir()).glob("*.sql")):
        text = path.read_text(encoding="utf-8")
        meta: dict[str, str] = {}
        for line in text.splitlines():
            if not line.startswith("--"):
                break
            m = _HEADER_RE.match(line)
            if m:
                meta[m.group(1)] = m.group(2)
        if "name" not in meta or meta["name"] != path.stem:
            raise QueryError(f"{path}: the header must start with '-- name: {path.stem}'")
        params = tuple(p.strip() for p in meta.get("parameters", "").split(",") if p.strip())
        out[meta["name"]] = NamedQuery(meta["name"], meta.get("description", ""), text,
                                       params, path)
    return out
