"""The transforms after validation: duplicates and conflicts within an upload, and the clean
and quarantine projections."""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from decimal import Decimal

import pytest
from chispa import assert_df_equality
from pyspark.sql import types as T

from lib.contracts.contract import load_contract
from lib.engine.schemas import clean_schema, quarantine_schema
from lib.engine.transforms import apply_contract, split
from tests.helpers import INGEST_DATE, INGESTED_AT, raw_rows, valid_order

DISPOSITION_SCHEMA = T.StructType([
    T.StructField("_upload_id", T.StringType()),
    T.StructField("_source_record", T.LongType()),
    T.StructField("_disposition", T.StringType(), nullable=False),
    T.StructField("_errors", T.ArrayType(T.StringType()), nullable=False),
])


def dispositions(spark, orders, rows):
    out = raw_rows(spark, orders, rows).transform(apply_contract(orders))
    return out.select("_upload_id", "_source_record", "_disposition", "_errors")


def test_identical_rows_collapse_to_the_first_in_file_order(spark, orders) -> None:
    rows = [valid_order(), valid_order(order_id=" O-1 ", currency="usd"), valid_order()]
    exp = spark.createDataFrame([
        ("u1", 1, "clean", []), ("u1", 2, "duplicate", []), ("u1", 3, "duplicate", []),
    ], DISPOSITION_SCHEMA)
    assert_df_equality(dispositions(spark, orders, rows), exp, ignore_row_order=True)


def test_same_order_id_with_different_content_quarantines_all_as_conflict(spark, orders) -> None:
    rows = [valid_order(), valid_order(quantity="3"), valid_order(order_id="O-2")]
    exp = spark.createDataFrame([
        ("u1", 1, "quarantine", ["order_id.conflict"]),
        ("u1", 2, "quarantine", ["order_id.conflict"]),
        ("u1", 3, "clean", []),
    ], DISPOSITION_SCHEMA)
    assert_df_equality(dispositions(spark, orders, rows), exp, ignore_row_order=True)


def test_conflict_and_duplicate_together_quarantine_every_copy(spark, orders) -> None:
    rows = [valid_order(), valid_order(), valid_order(unit_price="11.00")]
    exp = spark.createDataFrame([
        ("u1", 1, "quarantine", ["order_id.conflict"]),
        ("u1", 2, "quarantine", ["order_id.conflict"]),
        ("u1", 3, "quarantine", ["order_id.conflict"]),
    ], DISPOSITION_SCHEMA)
    assert_df_equality(dispositions(spark, orders, rows), exp, ignore_row_order=True)


def test_rows_with_errors_are_not_deduplicated_and_do_not_cause_conflicts(spark, orders) -> None:
    rows = [valid_order(), valid_order(quantity="0"), valid_order(quantity="0")]
    exp = spark.createDataFrame([
        ("u1", 1, "clean", []),
        ("u1", 2, "quarantine", ["quantity.range"]),
        ("u1", 3, "quarantine", ["quantity.range"]),
    ], DISPOSITION_SCHEMA)
    assert_df_equality(dispositions(spark, orders, rows), exp, ignore_row_order=True)


def test_duplicates_are_detected_within_an_upload_not_across_uploads(spark, orders) -> None:
    rows = [{**valid_order(), "_upload_id": "u1", "_source_record": 1},
            {**valid_order(quantity="5"), "_upload_id": "u2", "_source_record": 1},
            {**valid_order(), "_upload_id": "u2", "_source_record": 2}]
    exp = spark.createDataFrame([
        ("u1", 1, "clean", []),
        ("u2", 1, "quarantine", ["order_id.conflict"]),
        ("u2", 2, "quarantine", ["order_id.conflict"]),
    ], DISPOSITION_SCHEMA)
    assert_df_equality(dispositions(spark, orders, rows), exp, ignore_row_order=True)


def test_clean_rows_hash_pii_derive_columns_and_keep_lineage(spark, orders) -> None:
    rows = [valid_order(customer_email="Ann@Example.com", quantity="3", unit_price="19.99",
                        order_ts="2026-11-01T23:30:00-02:00"),
            valid_order(order_id="O-2", customer_email=None, country=None)]
    clean, _ = split(orders, raw_rows(spark, orders, rows).transform(apply_contract(orders)))
    digest = hashlib.sha256(b"ann@example.com").hexdigest()
    naive_ingested = INGESTED_AT.replace(tzinfo=None)
    exp = spark.createDataFrame([
        ("O-1", "C-1", digest, "SKU-1", 3, Decimal("19.99"), "USD",
         datetime(2026, 11, 2, 1, 30), "US", Decimal("59.97"),
         "u1", "file:///in/u1.csv", naive_ingested, "orders/1", date(2026, 11, 2)),
        ("O-2", "C-1", None, "SKU-1", 2, Decimal("10.50"), "USD",
         datetime(2026, 11, 1, 10, 0), None, Decimal("21.00"),
         "u1", "file:///in/u1.csv", naive_ingested, "orders/1", date(2026, 11, 1)),
    ], clean_schema(orders))
    assert_df_equality(clean, exp, ignore_row_order=True, ignore_nullable=True)


def test_quarantine_rows_keep_raw_values_codes_and_lineage(spark, orders) -> None:
    rows = [valid_order(quantity=" abc ", customer_email="Not-An-Email"),
            {"order_id": "O-9", "customer_id": "C-9", "_raw_record": "O-9,C-9"},
            valid_order(order_id="O-3")]
    _, quarantine = split(orders, raw_rows(spark, orders, rows).transform(apply_contract(orders)))
    naive_ingested = INGESTED_AT.replace(tzinfo=None)
    lineage = ("u1", "file:///in/u1.csv", naive_ingested, "orders/1", INGEST_DATE)
    exp = spark.createDataFrame([
        ("O-1", "C-1", "Not-An-Email", "SKU-1", " abc ", "10.50", "USD", "2026-11-01T10:00:00Z",
         "US", ["customer_email.format", "quantity.type"], None, 1, *lineage),
        ("O-9", "C-9", None, None, None, None, None, None, None, ["row.malformed"], "O-9,C-9", 2,
         *lineage),
    ], quarantine_schema(orders))
    assert_df_equality(quarantine, exp, ignore_row_order=True, ignore_nullable=True)


def test_rows_differing_only_in_which_column_is_null_are_a_conflict(spark, orders) -> None:
    # Spark's hashes skip nulls: ("x", null) and (null, "x") in adjacent columns must still
    # differ.
    from lib.engine.transforms import duplicate_groups

    schema = T.StructType([
        T.StructField("_upload_id", T.StringType()),
        T.StructField("_source_record", T.LongType()),
        T.StructField("_errors", T.ArrayType(T.StringType())),
        *[T.StructField(n, T.StringType()) for n in orders.column_names],
    ])
    base = {n: "v" for n in orders.column_names} | {"order_id": "O-1"}
    one = base | {"customer_email": "x", "product_sku": None}
    two = base | {"customer_email": None, "product_sku": "x"}
    same = base | {"customer_email": "y"}
    rows = [("u1", i, [], *[r[n] for n in orders.column_names])
            for i, r in enumerate([one, two, same | {"order_id": "O-2"},
                                   same | {"order_id": "O-2"}], start=1)]
    groups = spark.createDataFrame(rows, schema).transform(duplicate_groups(orders))
    got = {r["_group_order_id"]: (r["_group_rows"], r["_group_conflict"], r["_group_first"])
           for r in groups.collect()}
    assert got == {"O-1": (2, True, 1), "O-2": (2, False, 3)}


@pytest.mark.parametrize(("dataset", "version"), [("orders", 1), ("orders", 2), ("customers", 1)])
def test_every_contracts_rows_compile_to_methods_small_enough_to_run_compiled(
        spark, tmp_path, dataset: str, version: int) -> None:
    """Each whole-stage code generation stage of a contract's clean and quarantine rows
    compiles: past Java's 64 KB limit for a method, Spark logs the compile failure with
    thousands of lines of generated code and falls back to interpreted code (customers' five
    string columns did: 23 s for 16 records). A stage over
    `spark.sql.codegen.hugeMethodLimit` is fine: Spark runs it as per-expression code."""
    contract = load_contract(dataset, version)
    raw_rows(spark, contract, [{}]).write.parquet(str(tmp_path / "raw"))
    raw = spark.read.parquet(str(tmp_path / "raw"))  # a scan, not a local relation folded away
    debug = spark._jvm.org.apache.spark.sql.execution.debug.package
    spark.conf.set("spark.sql.adaptive.enabled", "false")  # the whole plan, planned now
    try:
        plans = [rows._jdf.queryExecution().executedPlan()
                 for rows in split(contract, raw.transform(apply_contract(contract)))]
    finally:
        spark.conf.set("spark.sql.adaptive.enabled", "true")
    for plan in plans:
        stages = debug.codegenStringSeq(plan)
        sizes = [stages.apply(i)._3().maxMethodCodeSize() for i in range(stages.size())]
        assert sizes and all(size > 0 for size in sizes), (
            f"{contract.ref}: largest method of each stage {sizes} (-1: does not compile)")
