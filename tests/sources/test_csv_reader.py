"""CSV reads split across tasks when the upload check found no line break inside a quoted
field: the same rows, reason codes and exact record ordinals as a whole-file read."""

from __future__ import annotations

import json

from chispa import assert_df_equality
from pyspark.sql import types as T

from glue_jobs.orders.v1 import job
from lib.contracts.contract import load_contract
from lib.lake.paths import LakePaths, to_uri
from lib.ledger.sqlite import open_ledger
from lib.sources.csv_reader import LINE_OPTIONS
from lib.upload.landing import upload_file

HEADER = "order_id,customer_id,product_sku,quantity,unit_price,currency,order_ts\n"


def row(i: int, quantity: str = "1", customer: str | None = None) -> str:
    return (f"O-{i},{customer or f'C-{i}'},SKU-{i % 100:03d},{quantity},2.00,USD,"
            "2026-11-01T00:00:00Z\n")


def test_a_file_without_quoted_line_breaks_is_split_with_exact_ordinals(spark, tmp_path) -> None:
    rows = {i: row(i) for i in range(1, 3001)}
    for bad in (5, 1234, 2999):
        rows[bad] = row(bad, quantity="abc")
    rows[2500] = rows[10]  # identical to record 10: a duplicate, the first one is kept
    rows[2800] = row(20, customer="C-other")  # order id of record 20, other content
    f = tmp_path / "orders.csv"
    f.write_text(HEADER + "".join(rows[i] for i in sorted(rows)))
    lake = tmp_path / "lake"
    record = upload_file(f, load_contract("orders", 1), open_ledger(lake),
                         LakePaths.from_root(lake))
    assert (record.record_count, record.multiline) == (3000, False)

    conf = {"spark.sql.files.maxPartitionBytes": "16k", "spark.sql.files.openCostInBytes": "1k"}
    before = {k: spark.conf.get(k) for k in conf}
    for k, v in conf.items():
        spark.conf.set(k, v)
    try:
        parts = spark.read.options(**LINE_OPTIONS).csv(record.location).rdd.getNumPartitions()
        assert parts > 5  # the file is read by many tasks
        assert job.main(["--JOB_NAME", "orders_v1", "--lake_root", to_uri(lake),
                         "--upload_ids", json.dumps([record.upload_id])]) == 0
    finally:
        for k, v in before.items():
            spark.conf.set(k, v)

    got = spark.read.parquet(str(lake / "quarantine" / "orders")).select(
        "_source_record", "order_id", "_errors")
    schema = T.StructType([T.StructField("_source_record", T.LongType()),
                           T.StructField("order_id", T.StringType()),
                           T.StructField("_errors", T.ArrayType(T.StringType()))])
    expected = spark.createDataFrame([
        (5, "O-5", ["quantity.type"]), (1234, "O-1234", ["quantity.type"]),
        (2999, "O-2999", ["quantity.type"]),
        (20, "O-20", ["order_id.conflict"]), (2800, "O-20", ["order_id.conflict"]),
    ], schema)
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
    done = open_ledger(lake).get(record.upload_id)
    assert (done.status, done.rows_read, done.clean, done.quarantined,
            done.duplicates_removed) == ("ARCHIVED", 3000, 2994, 5, 1)
    kept = spark.read.parquet(str(lake / "clean" / "orders")).where("order_id = 'O-10'")
    assert kept.count() == 1
