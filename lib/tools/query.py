"""Athena locally: Athena (Trino) SQL transpiled by sqlglot to Spark SQL and run on the
tables the local crawl catalogued; and the named queries of ``infra/athena/``.

Queries are read-only (SELECT / WITH / set operations, SHOW, DESCRIBE) and read catalogued
tables only, by construction: :mod:`lib.tools.sql_guard` refuses any construct, function or
relation outside its allow-list. The catalog is the crawlers' business. ``?`` placeholders
(Athena execution parameters) are bound in order to string literals by sqlglot, never by
pasting text into SQL.

A named query file is Athena SQL with a comment header::

    -- name: daily_revenue_by_currency
    -- description: Clean revenue per order day and currency.
    -- parameters: upload_id          (optional; one name per ``?``, in order)
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlglot
from pyspark.errors import AnalysisException, ParseException
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from sqlglot import exp
from sqlglot.errors import ParseError

from lib.tools.repo import REPO_ROOT
from lib.tools.sql_guard import QueryError, check_read_only

FORMATS = ("table", "csv", "json")
NAMED_QUERIES_ENV = "LAKE_NAMED_QUERIES_DIR"
_READ_ONLY = (exp.Query, exp.Describe)
_HEADER_RE = re.compile(r"^--\s*(name|description|parameters)\s*:\s*(.*?)\s*$")

logging.getLogger("sqlglot").setLevel(logging.ERROR)  # "falling back to Command" notices


@dataclass(frozen=True)
class QueryResult:
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    truncated: bool = False


def to_spark_sql(sql: str, params: Sequence[str] = (),
                 tables: Sequence[str] | None = None) -> str:
    """One Athena (Trino) statement -> Spark SQL, with ``?`` bound to ``params``. It must
    pass :func:`lib.tools.sql_guard.check_read_only` (relations checked against ``tables``,
    the catalogued ``db.table`` names, when given)."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="trino") if s is not None]
    except ParseError as exc:
        raise QueryError(_parse_error(exc)) from None
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
    if is_show:
        return tree.sql(dialect="trino")  # passed through as written
    return tree.sql(dialect="spark")


def _parse_error(exc: ParseError) -> str:
    if not exc.errors:
        return f"cannot parse the query: {exc}"
    e = exc.errors[0]
    near = f"{e.get('start_context', '')}{e.get('highlight', '')}".strip()[-60:]
    return (f"cannot parse the query (Athena/Trino SQL): {e.get('description')} at line "
            f"{e.get('line')}, column {e.get('col')}, near: {near}")


def _tables(spark: SparkSession) -> list[str]:
    return sorted(f"{db.name}.{t.name}" for db in spark.catalog.listDatabases()
                  for t in spark.catalog.listTables(db.name) if not t.isTemporary)


def run_query(spark: SparkSession, sql: str, params: Sequence[str] = (),
              max_rows: int | None = None) -> QueryResult:
    """Run Athena SQL on the local catalog; at most ``max_rows`` rows are fetched."""
    spark_sql = to_spark_sql(sql, params, _tables(spark))
    try:
        df = spark.sql(spark_sql)
        # Timestamps as Athena prints them, in UTC whatever the local time zone.
        df = df.select(*[
            F.date_format(F.col(f"`{f.name}`"), "yyyy-MM-dd HH:mm:ss.SSS").alias(f.name)
            if isinstance(f.dataType, T.TimestampType) else F.col(f"`{f.name}`")
            for f in df.schema.fields])
        rows = df.limit(max_rows + 1).collect() if max_rows is not None else df.collect()
    except AnalysisException as exc:
        raise QueryError(_analysis_error(spark, exc, spark_sql)) from None
    except ParseException as exc:
        raise QueryError(f"Spark cannot parse the transpiled query ({spark_sql}): "
                         f"{str(exc).splitlines()[0]}") from None
    truncated = max_rows is not None and len(rows) > max_rows
    rows = rows[:max_rows] if truncated else rows
    return QueryResult(tuple(df.columns), [tuple(r) for r in rows], truncated)


def _analysis_error(spark: SparkSession, exc: AnalysisException, spark_sql: str) -> str:
    first = str(exc).splitlines()[0]
    if exc.getErrorClass() in ("TABLE_OR_VIEW_NOT_FOUND", "SCHEMA_NOT_FOUND"):
        name = (exc.getMessageParameters() or {}).get("relationName") or \
            (exc.getMessageParameters() or {}).get("schemaName", "?")
        tables = _tables(spark)
        known = ", ".join(tables) if tables else "(none: run `lake crawl` first)"
        return f"table {name.replace('`', '')} does not exist; tables: {known}"
    return f"{first} (Spark SQL: {spark_sql})"


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
        writer.writerows([_text(v, "") for v in r] for r in result.rows)
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
