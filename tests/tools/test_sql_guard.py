"""lake query is read-only by construction: an allow-list of SQL constructs and functions,
and relations that must be catalogued tables. Each refusal with its message; every named
query passes."""

from __future__ import annotations

import pytest
import sqlglot

from lib.tools.query import QueryError, load_named_queries, to_duckdb_sql
from lib.tools.sql_guard import UnsafeQueryError, check_read_only

TABLES = ["clean.orders", "clean.customers", "quarantine.orders", "quarantine.customers"]


def guard(sql: str) -> None:
    check_read_only(sqlglot.parse_one(sql, read="trino"), TABLES)


@pytest.mark.parametrize(("sql", "message"), [
    ('SELECT * FROM "parquet"."/etc/passwd"',
     "table parquet./etc/passwd does not exist; tables: clean.customers, clean.orders, "
     "quarantine.customers, quarantine.orders"),
    ('SELECT * FROM "text"."file:///etc/passwd"', "table text.file:///etc/passwd does not exist"),
    ("SELECT reflect('java.lang.System', 'getenv', 'HOME')",
     "function reflect() is not allowed in lake query: it runs SQL functions that compute on "
     "the rows of catalogued tables (aggregates, string, date, math, array functions), never "
     "ones that read files or settings or reach the host"),
    ("SELECT order_id FROM clean.orders WHERE java_method('java.io.File', 'mkdir') = 'x'",
     "function java_method() is not allowed in lake query"),
    ("SELECT * FROM read_csv('/etc/passwd')",
     "lake query reads catalogued tables only, not READ_CSV('/etc/passwd'): table functions "
     "and file readers are not allowed"),
    ("SELECT * FROM TABLE(sequence(1, 3))", "lake query reads catalogued tables only, not"),
    ("SELECT * FROM clean.orders o JOIN other.secrets s ON o.order_id = s.id",
     "table other.secrets does not exist"),
    ("WITH x AS (SELECT 1 AS a) SELECT * FROM y", "table y does not exist"),
    # DuckDB reads a quoted path as a file and has functions that reach the host
    ('SELECT * FROM "/etc/passwd"', "table /etc/passwd does not exist"),
    ("SELECT getenv('HOME')", "function getenv() is not allowed in lake query"),
    ("SELECT current_setting('allowed_directories')",
     "function current_setting() is not allowed in lake query"),
    ("SELECT count(*) FROM read_parquet('/home/*/*.parquet')",
     "lake query reads catalogued tables only, not READ_PARQUET("),
])
def test_refusals_name_what_is_refused(sql: str, message: str) -> None:
    with pytest.raises(UnsafeQueryError) as err:
        guard(sql)
    assert str(err.value).startswith(message)
    assert isinstance(err.value, QueryError) and err.value.code == "query.refused"


@pytest.mark.parametrize("sql", [
    "WITH x AS (SELECT order_id, quantity FROM clean.orders) SELECT count(*) FROM x",
    "SELECT code, count(*) FROM quarantine.orders CROSS JOIN UNNEST(_errors) AS t(code) "
    "GROUP BY 1 ORDER BY 2 DESC LIMIT 5",
    "SELECT date_trunc('month', order_ts), sum(quantity * unit_price) FROM clean.orders "
    "GROUP BY 1",
    "SELECT upper(currency), coalesce(country, '-'), cardinality(_errors) "
    "FROM quarantine.orders",
    "SELECT order_id, row_number() OVER (PARTITION BY currency ORDER BY order_ts) "
    "FROM clean.orders",
    "DESCRIBE clean.orders",
])
def test_legal_athena_selects_pass(sql: str) -> None:
    guard(sql)


def test_every_named_query_passes() -> None:
    queries = load_named_queries()
    assert queries
    for q in queries.values():
        to_duckdb_sql(q.sql, ["x"] * q.sql.count("?"), TABLES)


@pytest.mark.parametrize("sql", [
    "INSERT INTO clean.orders SELECT * FROM clean.orders",
    "SET enable_external_access = true",
    "PRAGMA enable_external_access",
    "ATTACH '/tmp/x.db' AS x",
    "COPY clean.orders TO '/tmp/x.csv'",
    "INSTALL httpfs",
    "LOAD httpfs",
    "CREATE TABLE x AS SELECT 1",
])
def test_only_read_only_statements(sql: str) -> None:
    """Refused before any engine sees them: not a read-only statement, or not Athena SQL."""
    with pytest.raises(QueryError,
                       match=r"^(lake query runs read-only queries|cannot parse the query)"):
        to_duckdb_sql(sql, (), TABLES)


def test_only_one_statement() -> None:
    with pytest.raises(QueryError, match="expected one SQL statement, got 2"):
        to_duckdb_sql("SELECT 1; SELECT 2", (), TABLES)
