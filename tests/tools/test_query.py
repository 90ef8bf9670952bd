"""`lake query`: Athena SQL transpiled to DuckDB's dialect and run on the catalogued tables,
parameters, clear errors, Athena's semantics where DuckDB's differ, the output formats, the
named queries of infra/athena/ with their expected results, and `lake pipeline` from
uploads to queryable tables."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest

from lib.tools import cli
from lib.tools import query as query_module
from lib.tools.query import (
    QueryError,
    QueryInterrupted,
    QueryResult,
    QueryTimeout,
    _execute,
    format_result,
    load_named_queries,
    run_query,
    to_duckdb_sql,
)
from tests.helpers import CUSTOMERS, SAMPLES, catalog_of, crawl_all, reset_catalog


@pytest.fixture(scope="module")
def lake(processed_lake) -> Path:
    reset_catalog(processed_lake)
    crawl_all(processed_lake)
    return processed_lake


def query(lake: Path, sql: str, *params: str) -> list[tuple]:
    return run_query(catalog_of(lake), sql, params).rows


def named(lake: Path, name: str, **params: str) -> list[tuple]:
    q = load_named_queries()[name]
    return run_query(catalog_of(lake), q.sql, q.bind(params)).rows


# -- transpiling -----------------------------------------------------------------------------

def test_athena_functions_become_duckdb_ones() -> None:
    sql = ("SELECT date_format(order_ts, '%Y-%m') AS m, approx_distinct(order_id) AS n, "
           "CAST(quantity AS varchar) AS q, array_join(_errors, ',') AS e FROM clean.orders")
    assert to_duckdb_sql(sql) == (
        "SELECT STRFTIME(order_ts, '%Y-%m') AS m, APPROX_COUNT_DISTINCT(order_id) AS n, "
        "CAST(quantity AS TEXT) AS q, ARRAY_TO_STRING(_errors, ',') AS e FROM clean.orders")


def test_parameters_are_bound_as_literals_never_as_sql(lake) -> None:
    assert to_duckdb_sql("SELECT * FROM clean.orders WHERE _upload_id = ?", ["x' OR '1'='1"]) \
        == "SELECT * FROM clean.orders WHERE _upload_id = 'x'' OR ''1''=''1'"
    assert query(lake, "SELECT count(*) FROM clean.orders WHERE _upload_id = ?",
                 "x' OR '1'='1") == [(0,)]


@pytest.mark.parametrize(("sql", "params", "message"), [
    ("SELEC * FROM", [],
     "cannot parse the query (Athena/Trino SQL) at line 1, column 12; did you mean SELECT?\n"
     "  SELEC * FROM\n"
     "             ^"),
    ("SELECT order_id\nFROM clean.orders WHERE (", [],
     "cannot parse the query (Athena/Trino SQL) at line 2, column 25\n"
     "  FROM clean.orders WHERE (\n"
     "                          ^"),
    ("DROP TABLE clean.orders", [],
     "lake query runs read-only queries (SELECT, WITH, SHOW, DESCRIBE), not DROP; tables are "
     "created and updated by `lake crawl`"),
    ("SELECT 1; SELECT 2", [], "expected one SQL statement, got 2"),
    ("SELECT * FROM clean.orders WHERE order_id = ?", [],
     "the query has 1 parameter(s) (?) but 0 value(s) were given"),
])
def test_bad_queries_are_refused_before_running(sql, params, message) -> None:
    with pytest.raises(QueryError) as err:
        to_duckdb_sql(sql, params)
    assert str(err.value) == message


def test_an_unknown_table_lists_the_tables_that_exist(lake) -> None:
    with pytest.raises(QueryError) as err:
        query(lake, "SELECT * FROM clean.invoices")
    assert str(err.value) == ("table clean.invoices does not exist; tables: clean.customers, "
                              "clean.orders, quarantine.customers, quarantine.orders")
    with pytest.raises(QueryError) as err:
        query(lake, "SELECT * FROM clean.order")
    assert str(err.value) == ("table clean.order does not exist; did you mean clean.orders? "
                              "Tables: clean.customers, clean.orders, quarantine.customers, "
                              "quarantine.orders")


def test_an_unknown_column_is_placed_and_named_with_the_columns_that_exist(lake) -> None:
    orders = ("clean.orders: order_id, customer_id, customer_email, product_sku, quantity, "
              "unit_price, currency, order_ts, country, total_amount, "
              "_upload_id, _source_file, _ingested_at, _contract_version, order_date")
    with pytest.raises(QueryError) as err:
        query(lake, "SELECT quantiy FROM clean.orders")
    assert str(err.value) == ("line 1:8: column quantiy cannot be resolved; did you mean "
                              f"quantity? Columns of {orders}")
    with pytest.raises(QueryError) as err:
        query(lake, "SELECT order_id,\n  xyzzy FROM clean.orders")
    assert str(err.value) == f"line 2:3: column xyzzy cannot be resolved; columns of {orders}"
    with pytest.raises(QueryError) as err:
        query(lake, "SELECT o.order_id FROM clean.orders o JOIN clean.customers c "
                    "ON o.customer_id = c.customer_idd")
    assert str(err.value).startswith("line 1:83: column customer_idd cannot be resolved; did "
                                     "you mean customer_id? Columns of clean.customers: ")
    assert "DuckDB" not in str(err.value) and "Binder" not in str(err.value)


def test_a_file_path_never_reaches_the_engine(lake) -> None:
    # On Spark, a quoted path on a file-source prefix would read any file on the machine;
    # on DuckDB a quoted path is a file read.
    with pytest.raises(QueryError, match=r"table parquet\./etc/passwd does not exist"):
        query(lake, 'SELECT * FROM "parquet"."/etc/passwd"')
    with pytest.raises(QueryError, match=r"table /etc/passwd does not exist"):
        query(lake, 'SELECT * FROM "/etc/passwd"')
    with pytest.raises(QueryError, match=r"function reflect\(\) is not allowed"):
        query(lake, "SELECT reflect('java.lang.System', 'getenv', 'HOME')")


# -- Athena's semantics on DuckDB -------------------------------------------------------------

def test_integer_division_truncates_as_on_athena(lake) -> None:
    assert query(lake, "SELECT 7 / 2, -7 / 2, 7.0 / 2, CAST(7 AS double) / 2") == [
        (3, -3, 3.5, 3.5)]
    assert query(lake, "SELECT sum(quantity) / count(*) FROM clean.orders") == [(3,)]  # 22 / 6, not 3.67


def test_division_by_zero_is_an_error_as_on_athena(lake) -> None:
    with pytest.raises(QueryError) as err:
        query(lake, "SELECT quantity / 0 FROM clean.orders")
    assert str(err.value) == ("division by zero (Athena fails the query too); to get NULL "
                              "where the divisor is 0, divide by NULLIF(divisor, 0)")
    assert query(lake, "SELECT quantity / NULLIF(0, 0) FROM clean.orders LIMIT 1") == [(None,)]


def test_a_value_that_does_not_convert_is_said_in_athenas_type_names(lake) -> None:
    with pytest.raises(QueryError) as err:
        query(lake, "SELECT order_id FROM clean.orders WHERE quantity = 'x'")
    assert str(err.value) == "Could not convert string 'x' to integer"


def test_nulls_sort_last_both_ways_as_on_athena(lake) -> None:
    sql = ("SELECT customer_id FROM clean.customers WHERE country = 'GB' "
           "ORDER BY signup_date {}, customer_id")
    assert query(lake, sql.format("ASC")) == [("C-1",), ("C-3",)]   # C-3: no signup date
    assert query(lake, sql.format("DESC")) == [("C-1",), ("C-3",)]


def test_timestamps_print_as_athena_prints_them(lake) -> None:
    assert query(lake, "SELECT order_ts FROM clean.orders WHERE order_id = 'O-1002'") == [
        ("2026-11-01 09:00:00.000",)]  # 10:00+01:00 in UTC
    assert query(lake, "SELECT from_iso8601_timestamp('2026-11-01T10:00:00+01:00')") == [
        ("2026-11-01 09:00:00.000 UTC",)]


def test_decimal_sums_keep_their_scale(lake) -> None:
    (total,) = query(lake, "SELECT sum(total_amount) FROM clean.orders")[0]
    assert total == Decimal("172.63") and str(total) == "172.63"


def test_partition_keys_are_strings_and_unregistered_folders_are_invisible(
        lake, tmp_path) -> None:
    assert query(lake, "SELECT DISTINCT order_date FROM clean.orders ORDER BY 1") == [
        ("2026-11-01",), ("2026-11-02",)]
    copy = tmp_path / "lake"
    shutil.copytree(lake, copy, ignore=shutil.ignore_patterns("_local"))
    crawl_all(copy)
    orders = copy / "clean" / "orders"
    shutil.copytree(orders / "order_date=2026-11-01", orders / "order_date=2026-12-31")
    sql = "SELECT order_date, count(*) FROM clean.orders GROUP BY 1 ORDER BY 1"
    assert query(copy, sql) == [("2026-11-01", 4), ("2026-11-02", 2)]  # as on Athena
    crawl_all(copy)
    assert query(copy, sql) == [("2026-11-01", 4), ("2026-11-02", 2), ("2026-12-31", 4)]


# -- output ----------------------------------------------------------------------------------

def test_output_formats() -> None:
    result = QueryResult(("currency", "revenue", "codes"),
                         [("USD", Decimal("51.23"), ["a.b", "c.d"]), ("EUR", None, [])])
    assert json.loads(format_result(result, "json")) == [
        {"currency": "USD", "revenue": "51.23", "codes": ["a.b", "c.d"]},
        {"currency": "EUR", "revenue": None, "codes": []}]
    assert format_result(result, "csv") == (
        'currency,revenue,codes\nUSD,51.23,"[""a.b"", ""c.d""]"\nEUR,,[]')
    assert format_result(result, "table") == (
        "currency | revenue | codes\n"
        "---------+---------+---------------\n"
        'USD      | 51.23   | ["a.b", "c.d"]\n'
        "EUR      | NULL    | []\n"
        "(2 rows)")


def test_lake_query_prints_a_json_array_of_row_objects(lake, capsys) -> None:
    ingested = athena_timestamp(lake)
    code = cli.main(["--lake-root", str(lake), "query", "--format", "json",
                     "SELECT customer_id, loyalty_tier, signup_date, _ingested_at "
                     "FROM clean.customers WHERE country = 'GB' ORDER BY customer_id"])
    assert code == 0
    assert json.loads(capsys.readouterr().out) == [
        {"customer_id": "C-1", "loyalty_tier": "gold", "signup_date": "2026-11-01",
         "_ingested_at": ingested},
        {"customer_id": "C-3", "loyalty_tier": "bronze", "signup_date": None,
         "_ingested_at": ingested},
    ]
    assert cli.main(["--lake-root", str(lake), "query", "SELECT * FROM nope.x"]) == 2
    assert capsys.readouterr().err.startswith("lake: error: table nope.x does not exist; "
                                              "tables: clean.customers")


def athena_timestamp(lake: Path) -> str:
    """The run's _ingested_at as Athena prints a timestamp (UTC, milliseconds), read
    independently of lake query (pyarrow, from the files)."""
    import pyarrow.parquet as pq

    files = sorted((lake / "clean" / "customers").rglob("*.parquet"))
    values = {v for f in files for v in pq.read_table(f).column("_ingested_at").to_pylist()}
    (value,) = values  # one run wrote them all
    text = value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    assert len(text) == 23
    return text


# -- named queries ---------------------------------------------------------------------------

def test_the_named_queries_are_the_expected_set() -> None:
    queries = load_named_queries()
    assert sorted(queries) == ["daily_revenue_by_currency", "quarantine_reasons_by_day",
                               "top_skus", "upload_lineage"]
    assert queries["upload_lineage"].parameters == ("upload_id", "upload_id")
    with pytest.raises(QueryError, match="named query upload_lineage needs --param "
                                         "upload_id=VALUE"):
        queries["upload_lineage"].bind({})


def test_daily_revenue_by_currency(lake) -> None:
    # O-1002 at 10:00+01:00 and O-1003 at 23:30-02:00 fall on 2026-11-01 in UTC
    assert named(lake, "daily_revenue_by_currency") == [
        ("2026-11-01", "EUR", 1, 1, Decimal("5.00")),     # O-1002
        ("2026-11-01", "GBP", 1, 10, Decimal("15.00")),   # O-1003: 10 x 1.5
        ("2026-11-01", "USD", 2, 7, Decimal("51.23")),    # O-1001 39.98 + O-2001 11.25
        ("2026-11-02", "CHF", 1, 3, Decimal("1.50")),     # O-1012
        ("2026-11-02", "EUR", 1, 1, Decimal("99.90")),    # O-2002 (its duplicate removed)
    ]


def test_top_skus(lake) -> None:
    assert named(lake, "top_skus") == [
        ("SKU-003", 10, 1, 1), ("SKU-201", 5, 1, 1), ("SKU-012", 3, 1, 1),
        ("SKU-001", 2, 1, 1), ("SKU-002", 1, 1, 1), ("SKU-202", 1, 1, 1),
    ]


def test_quarantine_reasons_by_day(lake) -> None:
    day = "2026-11-21"
    customers = [("country.format", 1), ("customer_id.conflict", 2),
                 ("customer_id.required", 1), ("email.format", 1), ("full_name.type", 1),
                 ("loyalty_tier.enum", 1), ("loyalty_tier.type", 1), ("row.malformed", 2),
                 ("signup_date.format", 2)]
    orders = [("country.format", 1), ("currency.enum", 1), ("currency.required", 1),
              ("customer_email.format", 1), ("customer_id.required", 1),
              ("order_id.conflict", 2), ("order_id.length", 1), ("order_id.required", 1),
              ("order_ts.format", 2), ("order_ts.range", 1), ("order_ts.required", 1),
              ("product_sku.format", 2), ("quantity.range", 2), ("quantity.required", 1),
              ("quantity.type", 1), ("row.malformed", 1), ("unit_price.precision", 1),
              ("unit_price.range", 1), ("unit_price.required", 1), ("unit_price.type", 1)]
    assert named(lake, "quarantine_reasons_by_day") == (
        [("customers", day, code, n) for code, n in customers]
        + [("orders", day, code, n) for code, n in orders])


def test_upload_lineage_lists_every_row_of_one_upload(lake) -> None:
    assert named(lake, "upload_lineage", upload_id="t-orders-2026-11-02") == [
        ("clean", "O-2001", None, None, "orders/1"),
        ("clean", "O-2002", None, None, "orders/1"),
        ("quarantine", "O-2004", 4, "order_ts.format", "orders/1"),    # 2026-02-30
        ("quarantine", "O-2005", 5, "quantity.range", "orders/1"),     # 10001
        ("quarantine", "O-2006", 6, "product_sku.format", "orders/1"),  # "SKU,206"
    ]  # 6 rows read: 2 clean + 3 quarantined + 1 duplicate (O-2002 again) removed


# -- the workflow ----------------------------------------------------------------------------

def test_lake_pipeline_processes_every_dataset_then_crawls(spark, tmp_path, capsys) -> None:
    lake = str(tmp_path / "lake")
    assert cli.main(["--lake-root", lake, "upload", "--dataset", "orders",
                     str(SAMPLES / "orders_2026-11-01.csv")]) == 0
    assert cli.main(["--lake-root", lake, "upload", "--dataset", "customers",
                     str(CUSTOMERS / "customers_2026-11-02.jsonl.gz")]) == 0
    capsys.readouterr()
    assert cli.main(["--lake-root", lake, "pipeline"]) == 0
    out = capsys.readouterr().out
    assert "== customers: 1 pending upload(s) -> job customers v1" in out
    assert "== orders: 1 pending upload(s) -> job orders v2" in out
    assert out.endswith(
        "== pipeline summary\n"
        "DATASET    JOB           UPLOADS  READ  CLEAN  QUARANTINED  DUPLICATES  RESULT\n"
        "customers  customers_v1  1        2     2      0            0           ok\n"
        "orders     orders_v2     1        14    4      9            1           ok\n"
        "crawlers: ok\n")
    assert query(tmp_path / "lake", "SELECT count(*) FROM clean.orders") == [(4,)]
    assert query(tmp_path / "lake", "SELECT count(*) FROM quarantine.orders") == [(9,)]
    assert query(tmp_path / "lake", "SELECT count(*) FROM clean.customers") == [(2,)]

    assert cli.main(["--lake-root", lake, "pipeline"]) == 0  # nothing pending: crawl only
    out = capsys.readouterr().out
    assert "== orders: no pending uploads" in out
    assert "clean.orders: unchanged" in out
    assert out.endswith("no dataset had pending uploads; catalog refreshed\ncrawlers: ok\n")



# -- limits and races ------------------------------------------------------------------------

ENDLESS = "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) SELECT count(*) FROM t"


def test_a_query_past_its_time_limit_is_stopped_with_a_clear_message(lake, capsys) -> None:
    started = time.monotonic()
    with pytest.raises(QueryTimeout) as err:
        run_query(catalog_of(lake), ENDLESS, timeout_s=1)
    assert time.monotonic() - started < 10
    assert err.value.code == "query.timeout"
    assert str(err.value) == ("the query ran longer than its time limit of 1 s and was "
                              "stopped; narrow it (a WHERE on the partition columns, a LIMIT) "
                              "or raise --timeout")
    assert cli.main(["--lake-root", str(lake), "query", ENDLESS, "--timeout", "0.5"]) == 2
    assert "time limit of 0.5 s" in capsys.readouterr().err


def test_ctrl_c_stops_a_running_query_at_once() -> None:
    import duckdb

    con = duckdb.connect(":memory:")
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    started = time.monotonic()
    timer.start()
    try:
        with pytest.raises(QueryInterrupted, match=r"stopped \(Ctrl-C\)") as err:
            _execute(con, ENDLESS, None, timeout_s=60)
    finally:
        timer.cancel()
        con.close()
    assert time.monotonic() - started < 5
    assert err.value.code == "query.interrupted"


def test_a_query_over_its_memory_limit_ends_with_what_to_do(lake, capsys) -> None:
    sql = ("SELECT cardinality(array_agg(repeat(a.order_id, 100000))) "
           "FROM clean.orders a, clean.orders b, clean.orders c")
    with pytest.raises(QueryError) as err:
        run_query(catalog_of(lake), sql, memory_limit="20MB")
    assert err.value.code == "query.memory"
    assert str(err.value).startswith(
        "the query needs more memory than its limit of 20MB and the 10GiB it may spill to "
        f"{lake / '_local' / 'duckdb-tmp'}: Out of Memory Error")
    assert str(err.value).endswith("Narrow it (a WHERE on the partition columns, fewer "
                                   "columns, a LIMIT) or raise --memory-limit")
    assert cli.main(["--lake-root", str(lake), "query", sql, "--memory-limit", "20MB"]) == 2
    assert "raise --memory-limit" in capsys.readouterr().err


def test_the_engines_own_names_are_refused(lake) -> None:
    with pytest.raises(QueryError, match="current_schema is not allowed in lake query"):
        query(lake, "SELECT current_schema")
    with pytest.raises(QueryError, match="current_schema is not allowed"):
        query(lake, "SELECT current_schema FROM clean.orders")


def test_a_file_deleted_while_a_query_runs_is_met_with_the_new_file_list(
        lake, tmp_path, monkeypatch) -> None:
    copy = tmp_path / "lake"
    shutil.copytree(lake, copy, ignore=shutil.ignore_patterns("_local"))
    crawl_all(copy)
    sql = "SELECT count(*), sum(quantity) FROM clean.orders"
    before = query(copy, sql)
    real_connect = query_module.connect
    moved = []

    def reprocess_meanwhile(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        con = real_connect(*args, **kwargs)
        if not moved:  # the view lists the files; a reprocess then replaces one of them
            old = sorted((copy / "clean" / "orders").rglob("*.parquet"))[0]
            new = old.with_name("new-" + old.name)
            old.rename(new)
            moved.append(new)
        return con

    monkeypatch.setattr(query_module, "connect", reprocess_meanwhile)
    assert query(copy, sql) == before == [(6, 22)]
    assert moved


def test_csv_output_is_safe_to_open_in_a_spreadsheet() -> None:
    result = QueryResult(("value", "amount"), [
        ("=HYPERLINK(\"http://x.example\",\"x\")", Decimal("-5.00")), ("+1", -3),
        ("-1+2", None), ("@SUM(A1)", 1), ("\t=1", 2), ("\r=1", 3), ("O-1", 4)])
    assert format_result(result, "csv").split("\n")[1:] == [
        '"\'=HYPERLINK(""http://x.example"",""x"")",-5.00', "'+1,-3", "'-1+2,",
        "'@SUM(A1),1", "'\t=1,2", "'\r=1,3", "O-1,4"]
    assert json.loads(format_result(result, "json"))[0]["value"].startswith("=HYPERLINK")
