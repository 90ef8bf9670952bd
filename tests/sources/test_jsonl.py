"""The customers dataset (JSON Lines): a contract and a thin job entry over the same lib.

What lands in the clean zone (normalised, hashed, defaulted, partitioned by signup month),
every reason code of the quarantine (``row.malformed`` for non-object lines, ``<field>.type``
for objects and arrays), line numbers, and the upload-time checks for JSON Lines."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import date
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F
from pyspark.sql import types as T

from glue_jobs.customers.v1 import job
from lib.contracts.contract import load_contract
from lib.engine.transforms import apply_contract
from lib.lake.paths import LakePaths, to_uri
from lib.ledger.sqlite import open_ledger
from lib.upload.checks import UploadRejected, inspect_file
from lib.upload.landing import upload_file
from tests.helpers import CUSTOMERS, land, raw_rows, spark_read_jsonl

FILE1 = "customers_2026-11-01.jsonl"
FILE2 = "customers_2026-11-02.jsonl.gz"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture(scope="module")
def contract():
    return load_contract("customers", 1)


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory) -> Path:
    """Both sample files processed by the customers job."""
    lake = tmp_path_factory.mktemp("customers") / "lake"
    ids = [land(lake, CUSTOMERS / f, dataset="customers") for f in (FILE1, FILE2)]
    code = job.main(["--JOB_NAME", "customers_v1", "--lake_root", to_uri(lake),
                     "--upload_ids", json.dumps(ids)])
    assert code == 0
    return lake


def test_clean_rows_are_normalised_hashed_defaulted_and_partitioned_by_month(spark, lake):
    got = (spark.read.parquet(str(lake / "clean" / "customers"))
           .select("customer_id", "full_name", "email", "signup_date", "country",
                   "loyalty_tier", "signup_month", "_contract_version"))
    schema = T.StructType([
        T.StructField("customer_id", T.StringType()), T.StructField("full_name", T.StringType()),
        T.StructField("email", T.StringType()), T.StructField("signup_date", T.DateType()),
        T.StructField("country", T.StringType()), T.StructField("loyalty_tier", T.StringType()),
        T.StructField("signup_month", T.StringType()),
        T.StructField("_contract_version", T.StringType()),
    ])
    expected = spark.createDataFrame([
        ("4", "Katherine Johnson", sha("kj@example.com"), date(2026, 11, 5), "US", "silver",
         "2026-11", "customers/1"),  # a JSON number where a string is due: its text
        ("C-1", "Ada Lovelace", sha("ada@example.com"), date(2026, 11, 1), "GB", "gold",
         "2026-11", "customers/1"),  # inner spaces collapsed; the second C-1 line is a duplicate
        ("C-2", "Grace Hopper", sha("grace@example.com"), date(2026, 10, 15), "US", "bronze",
         "2026-10", "customers/1"),  # YYYY/MM/DD accepted; no tier -> bronze
        ("C-20", "Donald Knuth", sha("dek@example.com"), date(2026, 11, 2), "US", "silver",
         "2026-11", "customers/1"),
        ("C-21", "Frances Allen", sha("fa@example.com"), date(2026, 11, 2), "US", "bronze",
         "2026-11", "customers/1"),
        ("C-3", "Alan Turing", sha("alan@example.com"), None, "GB", "bronze", None,
         "customers/1"),  # null date -> the default partition; null tier -> bronze
    ], schema)
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
    folders = sorted(p.name for p in (lake / "clean" / "customers").iterdir() if p.is_dir())
    assert folders == ["signup_month=2026-10", "signup_month=2026-11",
                       "signup_month=__HIVE_DEFAULT_PARTITION__"]


def test_every_bad_line_is_quarantined_with_its_reason_codes_and_line_number(spark, lake):
    got = (spark.read.parquet(str(lake / "quarantine" / "customers"))
           .select("_source_record", "customer_id", "full_name", "_errors", "_raw_record"))
    schema = T.StructType([
        T.StructField("_source_record", T.LongType()), T.StructField("customer_id", T.StringType()),
        T.StructField("full_name", T.StringType()),
        T.StructField("_errors", T.ArrayType(T.StringType())),
        T.StructField("_raw_record", T.StringType()),
    ])
    expected = spark.createDataFrame([
        (5, "C-5", '{"first":"Edsger","last":"Dijkstra"}', ["full_name.type"], None),
        (6, "C-6", "Barbara Liskov",
         ["country.format", "email.format", "loyalty_tier.enum", "signup_date.format"], None),
        (7, None, None, ["row.malformed"], '["C-7", "an array, not an object"]'),
        # line 8 is blank: no record, but it counts for the line numbers after it
        (10, "C-8", "Linus Torvalds", ["signup_date.format"], None),  # 2026-02-30
        (11, "C-9", "Margaret Hamilton", ["loyalty_tier.type"], None),
        (12, "C-10", "Dup One", ["customer_id.conflict"], None),
        (13, "C-10", "Dup Two", ["customer_id.conflict"], None),
        (14, None, "No Id", ["customer_id.required"], None),
        (15, None, None, ["row.malformed"], '{"customer_id": "C-11", "full_name": "Broken'),
    ], schema)
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_rows_are_conserved_per_upload_in_the_report(lake):
    report = json.loads(next((lake / "_reports" / "customers").glob("*.json")).read_text())
    counts = {u["upload_id"]: (u["rows_read"], u["clean"], u["quarantined"],
                               u["duplicates_removed"]) for u in report["uploads"]}
    assert counts == {"t-customers-2026-11-01": (14, 4, 9, 1),
                      "t-customers-2026-11-02": (2, 2, 0, 0)}


def test_a_field_holding_an_object_reports_only_its_type(spark, contract) -> None:
    """An object where a required string is due is not also 'missing'; a string containing
    JSON text is just a string."""
    base = {"customer_id": "C-1", "full_name": "A", "email": "a@b.co", "country": "US"}
    df = raw_rows(spark, contract, [
        {**base, "full_name": '{"k":1}', "_nested_fields": "full_name"},
        {**base, "customer_id": "C-2", "full_name": '{"k":1}'},  # a string that looks like JSON
        {**base, "customer_id": "C-3", "signup_date": "[1]", "_nested_fields": "signup_date"},
    ])
    got = {r["customer_id"]: r["_errors"] for r in
           df.transform(apply_contract(contract)).select("customer_id", "_errors").collect()}
    assert got == {"C-1": ["full_name.type"], "C-2": [], "C-3": ["signup_date.type"]}


# -- upload checks ------------------------------------------------------------------------

def test_the_customer_samples_pass_with_warnings(contract) -> None:
    check = inspect_file(CUSTOMERS / FILE1, contract)
    assert check.warnings == [
        "keys not in the contract are dropped: tags",
        "2 of the 14 lines are not one JSON object with unique keys (line 7 is a JSON list, not "
        "an object); they will be quarantined as row.malformed",
    ]
    gz = inspect_file(CUSTOMERS / FILE2, contract)
    assert (gz.compressed, gz.warnings, gz.records) == (True, [], 2)


@pytest.mark.parametrize(("text", "code", "message"), [
    ("customer_id,full_name\nC-1,A\n", "file.format",
     "x.jsonl: dataset 'customers' expects JSON Lines (one JSON object per line), but the "
     "first line does not start with '{' (it starts with 'c')"),
    ('{"customer_id": "C-1", "full_name": "A", "email": "a@b.co"}\n', "file.missing_columns",
     "x.jsonl: required key(s) ['country'] for customers/1 appear in none of the first 1 "
     "objects; keys found: ['customer_id', 'full_name', 'email']; keys are case-sensitive"),
    ('{"broken": \n{"also": "broken"\n', "file.format",
     "x.jsonl: none of the 2 lines is a JSON object (line 1 is not valid JSON "
     "(Expecting value at column 12)); expected JSON Lines, one object per line"),
    ("", "file.empty",
     "x.jsonl: the file is empty (0 bytes); one JSON object per line is expected "
     "(customer_id, full_name, email, signup_date, country, loyalty_tier)"),
    ("\n\n  \n", "file.empty",
     "x.jsonl: the file holds no text, only blank lines; one JSON object per line is expected "
     "(customer_id, full_name, email, signup_date, country, loyalty_tier)"),
])
def test_files_that_are_not_this_datasets_json_lines_are_refused(tmp_path, contract, text, code,
                                                                 message) -> None:
    f = tmp_path / "x.jsonl"
    f.write_text(text)
    with pytest.raises(UploadRejected) as err:
        inspect_file(f, contract)
    assert (err.value.code, err.value.message) == (code, message)


def test_upload_lands_json_lines_under_a_jsonl_name(tmp_path, contract) -> None:
    lake = tmp_path / "lake"
    src = tmp_path / "CRM export (Nov).json.gz"
    shutil.copy(CUSTOMERS / FILE2, src)
    r = upload_file(src, contract, open_ledger(lake), LakePaths.from_root(lake))
    assert (r.status, r.stored_name) == ("ACCEPTED", "CRM_export_Nov.jsonl.gz")
    assert (lake / "raw" / "customers" / f"ingest_date={r.ingest_date}" / r.upload_id
            / "CRM_export_Nov.jsonl.gz").is_file()


def test_customers_job_reads_gzip_and_plain_the_same(spark, tmp_path) -> None:
    """The .jsonl.gz sample decompressed and re-landed plain gives the same clean rows."""
    import gzip

    plain = tmp_path / "customers_2026-11-02.jsonl"
    plain.write_bytes(gzip.decompress((CUSTOMERS / FILE2).read_bytes()))
    out = {}
    for name, src in (("gz", CUSTOMERS / FILE2), ("plain", plain)):
        lake = tmp_path / name
        uid = land(lake, src, dataset="customers")
        assert job.main(["--JOB_NAME", "customers_v1", "--lake_root", to_uri(lake),
                         "--upload_ids", json.dumps([uid])]) == 0
        out[name] = (spark.read.parquet(str(lake / "clean" / "customers"))
                     .drop("_source_file", "_ingested_at", "_upload_id")
                     .orderBy("customer_id"))
    assert_df_equality(out["gz"], out["plain"])
    assert out["plain"].where(F.col("customer_id") == "C-20").count() == 1


def test_line_numbers_stay_exact_when_the_session_would_split_files(spark, tmp_path) -> None:
    """With 1 KiB splits a 2,000-line file would be read by dozens of tasks and the ordinal
    restart in each; the reader keeps each file whole for the batch, then restores the
    session's own setting."""
    lines = [json.dumps({"customer_id": f"C-{i}", "full_name": "N",
                         "email": f"n{i}@example.com", "country": "US"})
             for i in range(1, 2001)]
    for bad in (3, 1500, 1999):
        lines[bad - 1] = f"[{bad}]"
    src = tmp_path / "many.jsonl"
    src.write_text("\n".join(lines) + "\n")
    lake = tmp_path / "lake"
    uid = land(lake, src, dataset="customers")
    spark.conf.set("spark.sql.files.maxPartitionBytes", "1024")
    try:
        assert job.main(["--JOB_NAME", "customers_v1", "--lake_root", to_uri(lake),
                         "--upload_ids", json.dumps([uid])]) == 0
        assert spark.conf.get("spark.sql.files.maxPartitionBytes") == "1024"
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")
    got = sorted((r["_source_record"], r["_raw_record"]) for r in
                 spark.read.parquet(str(lake / "quarantine" / "customers")).collect())
    assert got == [(3, "[3]"), (1500, "[1500]"), (1999, "[1999]")]


def test_what_the_upload_check_announces_is_what_the_job_does(spark, tmp_path) -> None:
    """Lines that are not one JSON object with unique keys are malformed; a number beyond
    the double range is a type error; the check counted exactly what the job quarantined."""
    good = {"customer_id": "C-1", "full_name": "A", "email": "a@b.co", "country": "US"}
    lines = [json.dumps(good),
             '{"customer_id": NaN, "full_name": "A", "email": "a@b.co", "country": "US"}',
             '{"customer_id": "C-3", "customer_id": "C-4", "full_name": "D", "email": "d@b.co", '
             '"country": "US"}',
             '{"customer_id": 1e400, "full_name": "B", "email": "b@b.co", "country": "US"}',
             "\ufeff" + json.dumps({**good, "customer_id": "C-6"}),
             '{"customer_id": ' + "[" * 1500 + "]" * 1500 + "}",
             json.dumps({**good, "customer_id": "C-8", "email": "  c@b.co\u00a0"})]
    f = tmp_path / "mixed.jsonl"
    f.write_text("\n".join(lines) + "\n")
    lake = tmp_path / "lake"
    record = upload_file(f, load_contract("customers", 1), open_ledger(lake),
                         LakePaths.from_root(lake))
    assert record.warnings == [
        "4 of the 7 lines are not one JSON object with unique keys (line 2 is not valid JSON "
        "(NaN is not a JSON value)); they will be quarantined as row.malformed",
        "1 of the 7 lines hold a number beyond the range of a double in a contract field "
        "(line 4, key 'customer_id'); they will be quarantined as <field>.type"]
    assert job.main(["--JOB_NAME", "customers_v1", "--lake_root", to_uri(lake)]) == 0
    got = spark.read.parquet(str(lake / "quarantine" / "customers")).select(
        "_source_record", "_errors")
    schema = T.StructType([T.StructField("_source_record", T.LongType()),
                           T.StructField("_errors", T.ArrayType(T.StringType()))])
    expected = spark.createDataFrame([
        (2, ["row.malformed"]), (3, ["row.malformed"]), (4, ["customer_id.type"]),
        (5, ["row.malformed"]), (6, ["row.malformed"])], schema)
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
    done = open_ledger(lake).get(record.upload_id)
    assert (done.status, done.record_count, done.rows_read, done.clean, done.quarantined) == \
        ("ARCHIVED", 7, 7, 2, 5)


# What the reader gives a string field for each kind of JSON value (Jackson 2.15 under Spark
# 3.5.4, JDK 17): the text of a number as Jackson writes it back (floats through Java's
# Double.toString, not shortest-digit), objects and arrays compacted, Spark's lenient
# parsing (single quotes, text after the object). The specification the DuckDB engine's
# JSON Lines reader must meet, row for row.
TOKENS = [  # (value of customer_id, text read, listed in _nested_fields, malformed)
    ("12345", "12345", False, False),
    ("-0", "0", False, False),
    ("1.50", "1.5", False, False),
    ("1e3", "1000.0", False, False),
    ("1e22", "1.0E22", False, False),
    ("1.0E23", "9.999999999999999E22", False, False),  # JDK 17's Double.toString
    ("5e-324", "4.9E-324", False, False),
    ("2e-3", "0.002", False, False),
    ("1e-7", "1.0E-7", False, False),
    ("-0.0", "-0.0", False, False),
    ("123456789012345678901234567890", "123456789012345678901234567890", False, False),
    ("true", "true", False, False),
    ("null", None, False, False),
    ('{"a": 1, "b": [1, 2.0, "x"]}', '{"a":1,"b":[1,2.0,"x"]}', True, False),
    ('[ "x" , "\\u00e9", "\\n", "\\/" ]', '["x","é","\\n","/"]', True, False),
    ('"\\ud83d\\ude00"', "😀", False, False),
    ('"\\ud800"', "?", False, False),  # a lone surrogate
    ('"a\\u0000b"', "a\x00b", False, False),
    ("1e400", '"Infinity"', True, False),
    ("007", None, False, True),
    (".5", None, False, True),
    ("+1", None, False, True),
    ("1.", None, False, True),
    ("'sq'", "sq", False, False),  # single quotes are accepted
]
LINES = [  # (line, customer_id read, malformed)
    ('{"customer_id": "x"} junk', "x", False),  # text after the object is ignored
    ('{"customer_id": "x",}', None, True),
    ('{customer_id: "x"}', None, True),
    ('{"customer_id": "a\tb"}', None, True),  # an unescaped control character
]


def test_what_a_string_field_reads_from_each_kind_of_json_value(spark, tmp_path,
                                                                 contract) -> None:
    lines = [f'{{"customer_id": {v}, "full_name": "A"}}' for v, *_ in TOKENS]
    lines += [line for line, *_ in LINES]
    path = tmp_path / "tokens.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rows = spark_read_jsonl(spark, path, contract)
    got = [(r["customer_id"], r["_nested_fields"] == "customer_id", r["_raw_record"] is not None)
           for r in rows]
    expected = [(text, nested, bad) for _, text, nested, bad in TOKENS]
    expected += [(text, False, bad) for _, text, bad in LINES]
    assert got == expected
