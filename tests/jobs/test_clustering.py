"""How the job lays out its output and how often it reads its input: rows clustered by
(upload, partition) with REBALANCE, so a small partition gets one file per upload and a
partition holding most of the rows is written by several tasks; and every step after
validation reads the shuffle files of one pass, never the input again."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, timedelta

from chispa import assert_df_equality
from pyspark.sql import types as T

from glue_jobs.orders.v1 import job
from lib.contracts.contract import load_contract
from lib.jobs import spark_rows
from lib.jobs.spark_rows import rebalanced, shuffled_once
from lib.lake.paths import LakePaths, to_uri
from lib.ledger.sqlite import open_ledger
from lib.upload.landing import upload_file

HEADER = "order_id,customer_id,product_sku,quantity,unit_price,currency,order_ts\n"


def order(i: int, day: date) -> str:
    return f"O-{i},C-{i},SKU-{i % 100:03d},1,2.00,USD,{day.isoformat()}T08:00:00Z\n"


def test_a_skewed_partition_is_written_by_several_tasks_and_small_ones_once(
        spark, tmp_path, monkeypatch) -> None:
    big_day = date(2026, 11, 1)
    small_days = [big_day + timedelta(days=d) for d in range(1, 11)]
    lines = [order(i, big_day) for i in range(5000)]
    lines += [order(5000 + i, small_days[i % 10]) for i in range(1000)]
    f = tmp_path / "orders.csv"
    f.write_text(HEADER + "".join(lines))
    lake = tmp_path / "lake"
    record = upload_file(f, load_contract("orders", 1), open_ledger(lake),
                         LakePaths.from_root(lake))
    assert record.multiline is False

    # Files of about 40 KB of shuffle bytes; the input read by many tasks (a skewed
    # partition is split between the tasks that read it).
    monkeypatch.setattr(spark_rows, "TARGET_FILE_BYTES", 40_000)
    conf = {"spark.sql.files.maxPartitionBytes": "32k", "spark.sql.files.openCostInBytes": "1k"}
    before = {k: spark.conf.get(k) for k in conf}
    for k, v in conf.items():
        spark.conf.set(k, v)
    try:
        assert job.main(["--JOB_NAME", "orders_v1", "--lake_root", to_uri(lake),
                         "--upload_ids", json.dumps([record.upload_id])]) == 0
    finally:
        for k, v in before.items():
            spark.conf.set(k, v)

    zone = lake / "clean" / "orders"
    files = Counter(p.parent.name for p in zone.rglob("*.parquet"))
    assert files[f"order_date={big_day}"] > 1
    assert {d: files[f"order_date={d}"] for d in small_days} == {d: 1 for d in small_days}
    rows = Counter(r["order_date"] for r in spark.read.parquet(str(zone)).collect())
    assert rows == {big_day: 5000, **{d: 100 for d in small_days}}
    done = open_ledger(lake).get(record.upload_id)
    assert (done.status, done.rows_read, done.clean) == ("ARCHIVED", 6000, 6000)


def test_every_step_after_the_shuffle_reads_its_files_not_the_input(spark, tmp_path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("k,v\n" + "".join(f"{i % 3},{i}\n" for i in range(30)))
    schema = T.StructType([T.StructField("k", T.StringType()), T.StructField("v", T.IntegerType())])
    df = spark.read.schema(schema).option("header", "true").csv(to_uri(src))
    rows = shuffled_once(spark, rebalanced(spark, df, ["k"]))
    src.unlink()  # a later read of the input would fail: file not found
    expected = spark.createDataFrame([(str(i % 3), i) for i in range(30)], schema)
    assert_df_equality(rows, expected, ignore_row_order=True)
    assert rows.where("k = '1'").count() == 10
