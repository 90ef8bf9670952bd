"""The orders v1 job end to end on files: what lands in the clean and quarantine zones, row
conservation, per-upload idempotent publishing, and bad files failing alone.

Files are put in the lake with :func:`tests.conftest.land` (ACCEPTED without the upload
checks) so that the job's own defences are tested on files the checks would refuse; the
checks themselves are tested in ``test_upload.py``."""

from __future__ import annotations

import csv
import gzip
import json
import re
import shutil
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F
from pyspark.sql import types as T

from glue_jobs.orders.v1 import job
from lib.lake.paths import LakePaths, local_path, to_uri
from lib.ledger.sqlite import open_ledger
from lib.upload.landing import upload_file
from tests.helpers import SAMPLES, land, landed_uri

FILE1 = "orders_2026-11-01.csv"
FILE2 = "orders_2026-11-02.csv.gz"


def run_job(lake: Path, *inputs: Path, upload_ids: list[str] | None = None) -> int:
    """Land ``inputs`` and run the job on exactly them (or on ``upload_ids``; with neither,
    on the ledger's pending uploads)."""
    ids = [land(lake, p) for p in inputs] + (upload_ids or [])
    argv = ["--JOB_NAME", "orders_v1", "--lake_root", to_uri(lake)]
    if ids:
        argv += ["--upload_ids", json.dumps(ids)]
    return job.main(argv)


def last_report(lake: Path) -> dict:
    reports = sorted((lake / "_reports" / "orders").glob("*.json"))
    return json.loads(reports[-1].read_text())


def data_records(path: Path) -> int:
    """Records in a CSV file counted by Python's csv module (quoted newlines included),
    header excluded: an independent count of what the job must account for."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as f:
        return sum(1 for row in csv.reader(f) if row) - 1


def parquet_files(zone: Path) -> list[str]:
    return sorted(str(p.relative_to(zone)) for p in zone.rglob("*.parquet"))


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory, spark, orders):
    tmp = tmp_path_factory.mktemp("sample_run")
    inputs = tmp / "in"
    shutil.copytree(SAMPLES, inputs)
    lake = tmp / "lake"
    ledger = open_ledger(lake)
    ids = [upload_file(inputs / f, orders, ledger, LakePaths.from_root(lake)).upload_id
           for f in (FILE1, FILE2)]  # through the real upload checks
    code = run_job(lake)  # the ledger's pending uploads
    return {"lake": lake, "inputs": inputs, "code": code, "report": last_report(lake),
            "ids": ids, "ledger": ledger}


def test_sample_run_succeeds_and_reports_totals(sample_run) -> None:
    assert sample_run["code"] == 0
    r = sample_run["report"]
    assert r["status"] == "succeeded"
    assert r["totals"] == {"uploads": 2, "uploads_processed": 2, "uploads_failed": 0,
                           "rows_read": 20, "clean": 6, "quarantined": 12,
                           "duplicates_removed": 2}
    assert r["quarantined_by_reason"] == {
        "country.format": 1, "currency.enum": 1, "currency.required": 1,
        "customer_email.format": 1, "customer_id.required": 1, "order_id.conflict": 2,
        "order_id.length": 1, "order_id.required": 1, "order_ts.format": 2,
        "order_ts.range": 1, "order_ts.required": 1, "product_sku.format": 2,
        "quantity.range": 2, "quantity.required": 1, "quantity.type": 1, "row.malformed": 1,
        "unit_price.precision": 1, "unit_price.range": 1, "unit_price.required": 1,
        "unit_price.type": 1,
    }
    assert [u["upload_id"] for u in r["uploads"]] == sample_run["ids"]
    assert r["uploads"][0]["warnings"] == [
        f"{r['uploads'][0]['source_file']}: extra column(s) dropped: notes"]
    lake = sample_run["lake"]
    # every file was written once under the name of its upload and this run; the run's
    # intent and journal are gone once it published
    names = [p.name for zone in ("clean", "quarantine") for p in (lake / zone).rglob("*.parquet")]
    assert len(names) == 6 and all(
        re.fullmatch(rf"({'|'.join(sample_run['ids'])})_{r['run_id']}_\d{{5}}\.c000\.snappy\.parquet",
                     n) for n in names), names
    assert [p.name for p in (lake / "clean" / "_commits").rglob("*") if p.is_file()] == []


def test_each_run_writes_its_report_page_beside_the_json(sample_run) -> None:
    from tests.jobs.test_report_page import Page

    r = sample_run["report"]
    page_path = local_path(r["report_page"])
    assert page_path == local_path(r["lake"]["reports"]) / "orders" / f"{r['run_id']}.html"
    page = Page()
    page.feed(page_path.read_text("utf-8"))
    assert page.counts == {k: f"{r['totals'][k]:,}"
                           for k in ("rows_read", "clean", "quarantined", "duplicates_removed")}
    assert page.reasons == {k: str(v) for k, v in r["quarantined_by_reason"].items()}
    assert page.bars["trend"] == 1  # the dataset's first run
    assert sum(int(v.replace(",", "")) for k, v in page.partitions.items()
               if k.startswith("clean/")) == r["totals"]["clean"]
    assert sum(int(v.replace(",", "")) for k, v in page.partitions.items()
               if k.startswith("quarantine/")) == r["totals"]["quarantined"]
    assert set(page.partitions) == set(r["partitions_written"])


def test_sample_clean_zone_holds_the_typed_valid_rows(spark, sample_run) -> None:
    clean = spark.read.parquet(to_uri(sample_run["lake"] / "clean" / "orders"))
    got = clean.select("order_id", "product_sku", "quantity", "unit_price", "currency",
                       "order_ts", "country", "total_amount", "order_date")
    schema = T.StructType([
        T.StructField("order_id", T.StringType()), T.StructField("product_sku", T.StringType()),
        T.StructField("quantity", T.IntegerType()),
        T.StructField("unit_price", T.DecimalType(12, 2)),
        T.StructField("currency", T.StringType()), T.StructField("order_ts", T.TimestampType()),
        T.StructField("country", T.StringType()),
        T.StructField("total_amount", T.DecimalType(18, 2)),
        T.StructField("order_date", T.DateType()),
    ])
    d1, d2 = date(2026, 11, 1), date(2026, 11, 2)
    exp = spark.createDataFrame([
        ("O-1001", "SKU-001", 2, Decimal("19.99"), "USD", datetime(2026, 11, 1, 9, 15), "US",
         Decimal("39.98"), d1),
        ("O-1002", "SKU-002", 1, Decimal("5.00"), "EUR", datetime(2026, 11, 1, 9, 0), "DE",
         Decimal("5.00"), d1),
        ("O-1003", "SKU-003", 10, Decimal("1.50"), "GBP", datetime(2026, 11, 1, 1, 30), "GB",
         Decimal("15.00"), d1),
        ("O-1012", "SKU-012", 3, Decimal("0.50"), "CHF", datetime(2026, 11, 2, 7, 59, 59, 123456),
         "CH", Decimal("1.50"), d2),
        ("O-2001", "SKU-201", 5, Decimal("2.25"), "USD", datetime(2026, 11, 1, 18, 0), None,
         Decimal("11.25"), d1),
        ("O-2002", "SKU-202", 1, Decimal("99.90"), "EUR", datetime(2026, 11, 2, 6, 30), None,
         Decimal("99.90"), d2),
    ], schema)
    assert_df_equality(got, exp, ignore_row_order=True)


def test_clean_zone_never_holds_an_email_in_clear(spark, sample_run) -> None:
    clean = spark.read.parquet(to_uri(sample_run["lake"] / "clean" / "orders"))
    emails = clean.where(F.col("customer_email").isNotNull())
    assert emails.where(~F.col("customer_email").rlike("^[0-9a-f]{64}$")).count() == 0
    assert emails.where(F.col("order_id") == "O-1001").select("customer_email").first()[0] == (
        "ff8d9819fc0e12bf0d24892e45987e249a28dce836a85cad60e28eaaa8c6d976")  # sha256(alice@...)


def test_sample_quarantine_holds_raw_values_with_every_reason(spark, sample_run) -> None:
    q = spark.read.parquet(to_uri(sample_run["lake"] / "quarantine" / "orders"))
    got = q.select("order_id", "quantity", "unit_price", "_errors", "_raw_record",
                   "_source_record", (F.col("_upload_id") == sample_run["ids"][0])
                   .alias("first_file"))
    schema = T.StructType([
        T.StructField("order_id", T.StringType()), T.StructField("quantity", T.StringType()),
        T.StructField("unit_price", T.StringType()),
        T.StructField("_errors", T.ArrayType(T.StringType())),
        T.StructField("_raw_record", T.StringType()), T.StructField("_source_record", T.LongType()),
        T.StructField("first_file", T.BooleanType()),
    ])
    exp = spark.createDataFrame([
        ("O-1005", "0", "10.00", ["quantity.range"], None, 5, True),
        ("O-1006", "abc", "10.999", ["country.format", "currency.enum", "customer_email.format",
                                     "order_ts.format", "quantity.type", "unit_price.precision"],
         None, 6, True),
        (None, "1", "3.00", ["order_id.required"], None, 7, True),
        ("O-1008", "1", "7.00", ["order_id.conflict"], None, 8, True),
        ("O-1008", "4", "7.00", ["order_id.conflict"], None, 9, True),
        ("O-1009", None, None, ["row.malformed"], "O-1009,C-9,truncated", 10, True),
        ("O-1010", "3", "12345678901.00", ["order_ts.range", "unit_price.range"], None, 11, True),
        ("O-1011", None, None, ["currency.required", "customer_id.required", "order_ts.required",
                                "product_sku.format", "quantity.required", "unit_price.required"],
         None, 12, True),
        ("O-" + "9" * 63, "1", "$5.00", ["order_id.length", "unit_price.type"], None, 14, True),
        ("O-2004", "1", "1.00", ["order_ts.format"], None, 4, False),
        ("O-2005", "10001", "1.00", ["quantity.range"], None, 5, False),
        ("O-2006", "1", "1.00", ["product_sku.format"], None, 6, False),
    ], schema)
    assert_df_equality(got, exp, ignore_row_order=True, ignore_nullable=True)


def test_rows_are_conserved_per_upload_against_an_independent_count(spark, sample_run) -> None:
    lake = sample_run["lake"]
    clean = spark.read.parquet(to_uri(lake / "clean" / "orders")).groupBy("_upload_id").count()
    quarantine = (spark.read.parquet(to_uri(lake / "quarantine" / "orders"))
                  .groupBy("_upload_id").count())
    in_zone = {r[0]: r[1] for r in clean.collect()}
    in_quarantine = {r[0]: r[1] for r in quarantine.collect()}
    for upload in sample_run["report"]["uploads"]:
        path = sample_run["inputs"] / Path(upload["source_file"]).name  # the bytes uploaded
        uid = upload["upload_id"]
        assert upload["rows_read"] == data_records(path)
        assert upload["clean"] == in_zone[uid]
        assert upload["quarantined"] == in_quarantine[uid]
        assert upload["rows_read"] == (in_zone[uid] + in_quarantine[uid]
                                       + upload["duplicates_removed"])


def clean_rows(spark, lake: Path) -> list[tuple]:
    """The clean zone's rows, without the lineage that legitimately changes between runs
    (when, and from where: a reprocess reads the archived copy)."""
    df = spark.read.parquet(to_uri(lake / "clean" / "orders"))
    return sorted(tuple(r) for r in df.drop("_ingested_at", "_source_file").collect())


def test_reprocessing_replaces_an_uploads_rows_and_leaves_other_uploads_alone(spark,
                                                                              tmp_path) -> None:
    lake = tmp_path / "lake"
    f1, f2 = tmp_path / FILE1, tmp_path / FILE2
    shutil.copy(SAMPLES / FILE1, f1)
    shutil.copy(SAMPLES / FILE2, f2)
    assert run_job(lake, f1, f2) == 0
    first = last_report(lake)
    uid1, uid2 = (u["upload_id"] for u in first["uploads"])
    other_files = [p for p in parquet_files(lake / "clean") if uid2 in p]
    other_bytes = {p: (lake / "clean" / p).read_bytes() for p in other_files}
    rows_after = [clean_rows(spark, lake)]

    for _ in range(2):  # upload 1 again, alone, twice: its rows are replaced each time
        assert run_job(lake, upload_ids=[uid1]) == 0
        rows_after.append(clean_rows(spark, lake))
    assert rows_after[0] == rows_after[1] == rows_after[2]  # same clean row set after 1, 2, 3
    assert len(rows_after[0]) == first["totals"]["clean"]
    assert {p: (lake / "clean" / p).read_bytes() for p in other_files} == other_bytes
    # both partitions still hold the other upload's files next to the new ones
    assert sorted(p.split("/")[1] for p in parquet_files(lake / "clean")) == [
        "order_date=2026-11-01", "order_date=2026-11-01",
        "order_date=2026-11-02", "order_date=2026-11-02"]
    last = last_report(lake)
    assert last["uploads"][0]["files_replaced"] == 3  # 2 clean + 1 quarantine
    q = spark.read.parquet(to_uri(lake / "quarantine" / "orders"))
    assert q.count() == first["totals"]["quarantined"]
    assert q.groupBy("_upload_id").count().collect() and sorted(
        (r[0], r[1]) for r in q.groupBy("_upload_id").count().collect()) == [(uid1, 9), (uid2, 3)]
    record = open_ledger(lake).get(uid1)
    assert (record.status, record.rows_read, record.clean, record.quarantined,
            record.duplicates_removed) == ("ARCHIVED", 14, 4, 9, 1)
    assert record.run_id == last["run_id"]


def test_one_file_per_upload_and_partition_per_run(sample_run) -> None:
    files = parquet_files(sample_run["lake"] / "clean" / "orders")
    dirs = [f.rsplit("/", 1)[0] for f in files]
    assert len(files) == 4 and sorted(set(dirs)) == ["order_date=2026-11-01",
                                                     "order_date=2026-11-02"]


def test_file_missing_a_required_column_fails_alone(spark, tmp_path) -> None:
    bad = tmp_path / "no_qty.csv"
    bad.write_text("order_id,customer_id,product_sku,unit_price,currency,order_ts\n"
                   "O-1,C-1,SKU-1,1.00,USD,2026-11-01T00:00:00Z\n")
    good = tmp_path / FILE1
    shutil.copy(SAMPLES / FILE1, good)
    assert run_job(tmp_path / "lake", bad, good) == 1
    r = last_report(tmp_path / "lake")
    assert r["status"] == "partial"
    failed, ok = r["uploads"]
    assert failed["status"] == "failed" and failed["error_code"] == "file.missing_columns"
    assert failed["error"] == (
        f"{landed_uri(tmp_path / 'lake', bad)}: missing required column(s) ['quantity'] for "
        "orders/1; present columns: "
        "['order_id', 'customer_id', 'product_sku', 'unit_price', 'currency', 'order_ts']; "
        "required: ['order_id', 'customer_id', 'product_sku', 'quantity', 'unit_price', "
        "'currency', 'order_ts']")
    assert ok["status"] == "processed" and ok["rows_read"] == 14


def test_a_written_file_short_of_the_counted_rows_fails_before_the_commit(
        spark, tmp_path, monkeypatch) -> None:
    """A writer that drops a row (here: one clean row filtered out on its way to the zone)
    shows in the written files' footers; the batch fails with ``run.conservation`` before
    its journal is written, and the files it wrote are deleted again."""
    import lib.jobs.spark_rows as run_module

    real_write = run_module.write

    def lossy_write(df, dataset_uri, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        if "/clean/" in dataset_uri:
            df = df.where(F.col("order_id") != "O-1001")
        return real_write(df, dataset_uri, *args, **kwargs)

    monkeypatch.setattr(run_module, "write", lossy_write)
    good = tmp_path / FILE1
    shutil.copy(SAMPLES / FILE1, good)
    lake = tmp_path / "lake"
    assert run_job(lake, good) == 1
    (u,) = last_report(lake)["uploads"]
    assert u["status"] == "failed" and u["error_code"] == "run.conservation"
    assert u["error"] == (f"{landed_uri(lake, good)}: the clean files written hold 3 rows "
                          "(their Parquet footers) but the run counted 4; nothing published")
    assert parquet_files(lake / "clean") == [] and parquet_files(lake / "quarantine") == []
    assert not [p for p in (lake / "clean" / "_commits").rglob("*") if p.is_file()]


def test_corrupt_gzip_fails_alone_and_the_batch_goes_on(spark, tmp_path) -> None:
    good_bytes = (SAMPLES / FILE2).read_bytes()
    corrupt = tmp_path / "broken.csv.gz"
    corrupt.write_bytes(good_bytes[:40] + b"\x00garbage" * 20)
    good = tmp_path / FILE1
    shutil.copy(SAMPLES / FILE1, good)
    assert run_job(tmp_path / "lake", corrupt, good) == 1
    r = last_report(tmp_path / "lake")
    by_file = {Path(u["source_file"]).name: u for u in r["uploads"]}
    assert by_file["broken.csv.gz"]["status"] == "failed"
    assert by_file["broken.csv.gz"]["error_code"] == "file.unreadable"
    assert by_file["broken.csv.gz"]["error"] == (
        f"{landed_uri(tmp_path / 'lake', corrupt)}: cannot read the file: java.io.IOException: "
        "invalid code -- missing end-of-block")
    assert by_file[FILE1]["status"] == "processed" and by_file[FILE1]["clean"] == 4


def test_gzip_corrupt_past_its_header_fails_alone_when_spark_reads_it(spark, tmp_path) -> None:
    """The header reads fine; the corruption only shows when Spark decompresses the body,
    which fails the batch's Spark job. The uploads are then retried one by one."""
    header = "order_id,customer_id,product_sku,quantity,unit_price,currency,order_ts\n"
    body = "".join(f"O-{i},C-{i * 7919 % 10007},SKU-{i % 997:03d},{i % 9 + 1},{i % 50}.25,USD,"
                   f"2026-11-01T{i % 24:02d}:{i % 60:02d}:00Z\n" for i in range(60000))
    packed = bytearray(gzip.compress((header + body).encode(), mtime=0))
    for i in range(len(packed) // 2, len(packed) - 16, 97):  # corrupt the second half
        packed[i] ^= 0xFF
    corrupt = tmp_path / "late_corruption.csv.gz"
    corrupt.write_bytes(bytes(packed))
    good = tmp_path / FILE1
    shutil.copy(SAMPLES / FILE1, good)
    assert run_job(tmp_path / "lake", corrupt, good) == 1
    by_file = {Path(u["source_file"]).name: u for u in last_report(tmp_path / "lake")["uploads"]}
    bad = by_file["late_corruption.csv.gz"]
    assert (bad["status"], bad["error_code"], bad["rows_read"]) == ("failed", "file.unreadable", 0)
    assert bad["error"].startswith(f"{landed_uri(tmp_path / 'lake', corrupt)}: cannot be "
                                   "processed: ")
    assert by_file[FILE1]["status"] == "processed" and by_file[FILE1]["clean"] == 4
    # what the failed batch attempt wrote was deleted before the uploads were retried alone:
    # only the good upload's files of its own attempt are in the zones
    ok_id = by_file[FILE1]["upload_id"]
    lake = tmp_path / "lake"
    assert sorted(parquet_files(lake / "clean")) and all(
        Path(f).name.startswith(f"{ok_id}_") for zone in ("clean", "quarantine")
        for f in parquet_files(lake / zone))
    assert len(parquet_files(lake / "clean")) == 2  # 2 partitions, one attempt's files


def test_empty_and_header_only_files(spark, tmp_path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    header_only = tmp_path / "header.csv"
    header_only.write_text("order_id,customer_id,product_sku,quantity,unit_price,currency,"
                           "order_ts\n")
    missing = tmp_path / "nope.csv"
    assert run_job(tmp_path / "lake", empty, header_only, missing) == 1
    by_file = {Path(u["source_file"]).name: u for u in last_report(tmp_path / "lake")["uploads"]}
    assert by_file["empty.csv"]["error_code"] == "file.empty"
    assert by_file["nope.csv"]["error"] == f"{landed_uri(tmp_path / 'lake', missing)}: file not found"
    assert by_file["header.csv"]["status"] == "processed"
    assert by_file["header.csv"]["rows_read"] == 0


def test_summary_is_printed_with_counts_reasons_and_partitions(spark, capsys, tmp_path) -> None:
    f = tmp_path / FILE2
    shutil.copy(SAMPLES / FILE2, f)
    run_job(tmp_path / "lake", f)
    out = capsys.readouterr().out
    assert "  rows read          6\n  clean              2\n  quarantined        3\n" \
           "  duplicates removed 1\n" in out
    assert "    order_ts.format     1\n    product_sku.format  1\n    quantity.range      1\n" in out
    assert "    clean/orders/order_date=2026-11-01\n    clean/orders/order_date=2026-11-02\n" in out


def test_crlf_bom_and_quoted_newlines_are_read_as_rfc4180(spark, tmp_path) -> None:
    text = ('\ufeffORDER_ID,Customer_ID,product_sku,quantity,unit_price,currency,order_ts\r\n'
            '"O-1","C,1","SKU-1",1,"2.00",USD,2026-11-01T00:00:00Z\r\n'
            '"O-2","C ""2""\r\nsecond line",SKU-2,1,2.00,USD,2026-11-01T00:00:00Z\r\n')
    f = tmp_path / "crlf.csv"
    f.write_bytes(text.encode("utf-8"))
    assert run_job(tmp_path / "lake", f) == 0
    got = (spark.read.parquet(to_uri(tmp_path / "lake" / "clean" / "orders"))
           .select("order_id", "customer_id"))
    exp = spark.createDataFrame([("O-1", "C,1"), ("O-2", 'C "2"\nsecond line')],
                                "order_id string, customer_id string")
    assert_df_equality(got, exp, ignore_row_order=True)


def test_a_run_takes_the_pending_uploads_and_a_second_run_takes_nothing(spark, tmp_path) -> None:
    lake = tmp_path / "lake"
    f1 = tmp_path / FILE1
    shutil.copy(SAMPLES / FILE1, f1)
    uid = land(lake, f1, upload_id="up-42", ingest_date="2026-11-05")
    assert run_job(lake) == 0
    r = last_report(lake)
    assert [u["upload_id"] for u in r["uploads"]] == ["up-42"]
    assert "quarantine/orders/ingest_date=2026-11-05" in r["partitions_written"]
    assert open_ledger(lake).get(uid).status == "ARCHIVED"
    # the raw bytes moved to the archive zone, unchanged
    assert not (lake / "raw" / "orders" / "ingest_date=2026-11-05" / uid / FILE1).exists()
    archived = lake / "archive" / "orders" / "ingest_date=2026-11-05" / uid / FILE1
    assert archived.read_bytes() == f1.read_bytes()

    assert run_job(lake) == 0
    again = last_report(lake)
    assert (again["status"], again["uploads"]) == ("no_input", [])
