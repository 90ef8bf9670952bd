"""`lake run --engine duckdb`: the same run around the DuckDB engine, without a JVM, and its
files beside the Spark engine's."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from glue_jobs.orders.v2 import job as orders_v2
from lib.contracts.contract import load_contract
from lib.jobs.duck_rows import spark_partition_value
from lib.jobs.faults import CRASH_ENV, CRASH_EXIT_CODE
from lib.ledger.sqlite import open_ledger
from lib.tools import cli
from lib.tools.parity import compare_runs, fuzz_csv, fuzz_jsonl, fuzz_multiline_csv
from tests.helpers import CUSTOMERS, REPO, SAMPLES, to_uri

LAKE = Path(sys.executable).with_name("lake")
LINE_SAMPLES = ["orders_2026-11-02.csv.gz", "orders_2026-11-04_discounts.csv"]


def _without_java() -> dict[str, str]:
    """The environment with no Java to be found: a run that started a JVM would fail."""
    env = {k: v for k, v in os.environ.items() if k not in ("JAVA_HOME", "SPARK_HOME")}
    env["PATH"] = str(LAKE.parent)  # the venv holds no java
    assert shutil.which("java", path=env["PATH"]) is None
    return env


def test_a_duckdb_run_processes_uploads_without_a_jvm(tmp_path: Path) -> None:
    lake = tmp_path / "lk"
    files = [str(SAMPLES / n) for n in LINE_SAMPLES]
    out = subprocess.run([str(LAKE), "--lake-root", str(lake), "run", "orders", "--engine",
                          "duckdb", "--input", *files], capture_output=True, text=True,
                         env=_without_java(), cwd=REPO, timeout=120, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "job orders_v2 (version 2, contract orders/2, duckdb engine)" in out.stdout
    assert "  rows read          12\n  clean              5\n  quarantined        6\n" \
           "  duplicates removed 1\n" in out.stdout
    report = json.loads(next((lake / "_reports" / "orders").glob("*.json")).read_text())
    assert report["engine"] == "duckdb" and report["status"] == "succeeded"
    assert {r.status for r in open_ledger(lake).find("orders")} == {"ARCHIVED"}
    names = sorted(p.name for p in (lake / "clean" / "orders").rglob("*.parquet"))
    assert names and all("_duckdb-" in n and n.endswith(".c000.snappy.parquet") for n in names)
    assert not list((lake / "clean" / "_staging").rglob("*.parquet"))


def test_a_file_the_engine_does_not_reproduce_fails_alone_and_spark_takes_it(spark,
                                                                              tmp_path) -> None:
    """A closing quote followed by blanks and more text (univocity then reads on in ways the
    DuckDB engine does not follow): FAILED with engine.not_reproduced and a message saying
    what to do; the next Spark run processes it, and the partition it shares with a DuckDB
    upload holds both engines' files, read alike by Spark, the crawl and lake query."""
    lake = tmp_path / "lk"
    stray = tmp_path / "stray.csv"
    stray.write_text(
        "order_id,customer_id,customer_email,product_sku,quantity,unit_price,currency,order_ts\n"
        "O-S1,C-1,a@b.co,SKU-1,1,2.00,USD,2026-11-01T10:00:00Z\n"
        'O-S2,"C-2" x,b@c.de,SKU-2,1,3.00,USD,2026-11-01T11:00:00Z\n', encoding="utf-8")
    files = [str(stray), *(str(SAMPLES / n) for n in LINE_SAMPLES)]
    assert cli.main(["--lake-root", str(lake), "upload", "--dataset", "orders", *files]) == 0
    assert cli.main(["--lake-root", str(lake), "run", "orders", "--engine", "duckdb"]) == 1
    failed = open_ledger(lake).find("orders", ["FAILED"])
    assert [(r.original_name, r.error_code) for r in failed] == [
        ("stray.csv", "engine.not_reproduced")]
    assert "closing quote is followed by blanks and then more text" in failed[0].error
    assert "the next run with the Spark engine (lake run DATASET) processes it" in failed[0].error
    assert orders_v2.main(["--JOB_NAME", "orders_v2", "--lake_root", to_uri(lake)]) == 0
    shared = lake / "clean" / "orders" / "order_date=2026-11-01"
    by_engine = {"duckdb" if "_duckdb-" in p.name else "spark": p for p in shared.glob("[!.]*.parquet")}
    assert sorted(by_engine) == ["duckdb", "spark"]
    spark_file, duck_file = by_engine["spark"], by_engine["duckdb"]
    a, b = pq.read_schema(spark_file), pq.read_schema(duck_file)
    assert a.names == b.names
    assert [str(t) for t in a.types] == [str(t) for t in b.types]  # decimals, timestamp[us, UTC]
    assert str(a.field("order_ts").type) == "timestamp[us, tz=UTC]"
    read = spark.read.parquet(to_uri(lake / "clean" / "orders"))
    assert read.where("order_date = '2026-11-01'").count() == 3  # 2 of stray.csv, 1 DuckDB's
    assert read.where("order_id = 'O-S2'").first()["customer_id"] == '"C-2" x'  # as Spark reads it
    assert cli.main(["--lake-root", str(lake), "crawl"]) == 0
    con = duckdb.connect()
    total = con.execute(
        f"SELECT count(*), sum(total_amount) FROM read_parquet('{lake}/clean/orders/*/*.parquet',"
        " hive_partitioning = true)").fetchone()
    assert cli.main(["--lake-root", str(lake), "query", "--format", "json",
                     "SELECT count(*) AS n, sum(total_amount) AS t FROM clean.orders"]) == 0
    assert total[0] == read.count() == 7


def test_reprocess_with_duckdb_replaces_exactly_that_uploads_rows(tmp_path) -> None:
    lake = tmp_path / "lk"
    files = [str(SAMPLES / n) for n in LINE_SAMPLES]
    assert cli.main(["--lake-root", str(lake), "run", "orders", "--engine", "duckdb",
                     "--input", *files]) == 0
    before = sorted(p.name for p in (lake / "clean" / "orders").rglob("*.parquet"))
    uid = open_ledger(lake).find("orders")[0].upload_id
    assert cli.main(["--lake-root", str(lake), "reprocess", uid, "--engine", "duckdb"]) == 0
    after = sorted(p.name for p in (lake / "clean" / "orders").rglob("*.parquet"))
    assert len(after) == len(before)
    assert [n for n in after if n.startswith(uid)] != [n for n in before if n.startswith(uid)]
    assert [n for n in after if not n.startswith(uid)] == [n for n in before
                                                            if not n.startswith(uid)]


def test_partition_folders_are_named_as_spark_names_them() -> None:
    assert spark_partition_value("2026-11-01") == "2026-11-01"
    assert spark_partition_value("a b/c=d%") == "a b%2Fc%3Dd%25"
    assert spark_partition_value("") == "__HIVE_DEFAULT_PARTITION__"
    assert spark_partition_value("é:x") == "é%3Ax"


# Partition values that Spark escapes in a folder name, or that look like escapes, a path,
# the default partition or nothing at all.
HOSTILE_KEYS = ["a/b", "../up", "x=y", "50%", "%2F", "a b", "é:x", "#?*", "tab\there",
                "back\\slash", "[x]^{}", "it's", '"q"', "\x01ctl", "dot.", "日本", "ü=",
                "__HIVE_DEFAULT_PARTITION__"]


def test_hostile_partition_values_get_the_folders_spark_gives_them(spark, tmp_path) -> None:
    """orders/1 partitioned by customer_id (free text): both engines write the same folder
    for every value, and the rows read back through the folders are identical."""
    import csv

    import yaml

    from lib.contracts.contract import parse_contract

    data = yaml.safe_load((REPO / "lib" / "contracts" / "orders" / "v1.yaml").read_text())
    data["partition_by"] = ["customer_id"]
    contract = parse_contract(data, str(tmp_path / "v1.yaml"))
    f = tmp_path / "hostile.csv"
    with f.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(["order_id", "customer_id", "customer_email", "product_sku", "quantity",
                      "unit_price", "currency", "order_ts", "country"])
        for i, key in enumerate(HOSTILE_KEYS):
            out.writerow([f"O-{i}", key, f"u{i}@x.io", "SKU-1", 1, "1.00", "USD",
                          "2026-11-01T10:00:00Z", "DE"])
    work = tmp_path / "work"
    result = compare_runs(spark, contract, [f], work)
    assert result.differences == [], result.describe()
    assert result.rows["clean"] == len(HOSTILE_KEYS)
    folders = {engine: sorted(p.name for p in (work / f"{engine}-lake" / "clean" / "orders")
                              .iterdir() if p.is_dir() and not p.name.startswith("_"))
               for engine in ("spark", "duckdb")}
    assert folders["duckdb"] == folders["spark"]
    assert len(folders["spark"]) == len(HOSTILE_KEYS)
    assert "customer_id=a%2Fb" in folders["spark"] and "customer_id=%01ctl" in folders["spark"]


def test_whole_runs_of_both_engines_are_identical(spark, tmp_path) -> None:
    """The differential harness through the whole run: the samples and two seeded adversarial
    corpora (one read line by line, one read whole) landed with the upload checks in two
    lakes, one run per engine, every row of both zones and every upload's counts compared."""
    fuzz, multi = tmp_path / "fuzz.csv", tmp_path / "multi.csv"
    fuzz_csv(fuzz, 1500, 21)
    fuzz_multiline_csv(multi, 400, 22, separator="\r\n")
    result = compare_runs(spark, load_contract("orders", 2),
                          [*sorted(SAMPLES.glob("*")), fuzz, multi], tmp_path / "work")
    assert result.differences == [], result.describe()
    assert result.rows["clean"] > 500 and result.rows["quarantine"] > 500
    assert result.not_reproduced == []


def test_whole_runs_of_both_engines_are_identical_on_json_lines(spark, tmp_path) -> None:
    """customers (JSON Lines): both samples, a seeded adversarial corpus and a file the
    DuckDB engine refuses (a single-quoted key, which Spark's reader accepts) through whole
    runs; the refused upload fails alone, FAILED with engine.not_reproduced, and is listed."""
    fuzz, quoted = tmp_path / "fuzz.jsonl", tmp_path / "quoted.jsonl"
    fuzz_jsonl(fuzz, 1500, 23)
    quoted.write_text('{"customer_id": "C-9", "full_name": "Q", "email": "q@x.io", '
                      '"country": "FR"}\n{\'customer_id\': "C-10"}\n', encoding="utf-8")
    result = compare_runs(spark, load_contract("customers", 1),
                          [*sorted(CUSTOMERS.glob("*")), fuzz, quoted], tmp_path / "work")
    assert result.differences == [], result.describe()
    assert result.rows["clean"] > 400 and result.rows["quarantine"] > 400
    [refused] = result.not_reproduced
    assert refused.startswith("quoted.jsonl: file://") and refused.endswith(
        "/quoted.jsonl: the DuckDB engine does not read this file exactly as the Spark engine "
        "does: line 2: a single-quoted string or key, which Spark's JSON reader accepts. "
        "Nothing of it was published; the upload stays FAILED and the next run with the Spark "
        "engine (lake run DATASET) processes it"), refused


def test_the_whole_run_harness_reports_a_difference(spark, tmp_path, monkeypatch) -> None:
    from lib.engine.duck import rules as duck_rules

    f = tmp_path / "dotted.csv"
    f.write_text("order_id,customer_id,customer_email,product_sku,quantity,unit_price,currency,"
                 "order_ts\nO-1,C-1,İ@x.io,sku-1,1,1.00,usd,2026-11-01T10:00:00Z\n",
                 encoding="utf-8")
    monkeypatch.setattr(duck_rules, "LOWER_SPECIAL", {})
    result = compare_runs(spark, load_contract("orders", 2), [f], tmp_path / "work")
    assert [d.what for d in result.differences] == ["clean rows"]
    spark_row, duck_row = result.differences[0].spark, result.differences[0].duckdb
    assert spark_row[:2] == duck_row[:2] == ("O-1", "C-1") and spark_row[2] != duck_row[2]


def _rows(zone: Path) -> list[tuple]:
    files = sorted(str(p) for p in zone.rglob("[!.]*.parquet"))
    con = duckdb.connect()
    rows = con.execute(f"SELECT * EXCLUDE (_upload_id, _source_file, _ingested_at) FROM "
                       f"read_parquet({files!r}, hive_partitioning = true) ORDER BY ALL").fetchall()
    con.close()
    return rows


@pytest.mark.parametrize("point", ["writing", "committed"])
def test_a_duckdb_run_killed_mid_write_is_undone_or_completed_by_the_next_run(tmp_path,
                                                                            point) -> None:
    """Killed after its clean files moved into place (nothing committed: the next run deletes
    them by the intent and processes the upload again) or after its journal (the next run
    completes the publish); either way the zones end as one uninterrupted run leaves them."""
    lake, reference = tmp_path / "lk", tmp_path / "ref"
    files = [str(SAMPLES / n) for n in LINE_SAMPLES]
    env = {**_without_java(), CRASH_ENV: point}
    died = subprocess.run([str(LAKE), "--lake-root", str(lake), "run", "orders", "--engine",
                           "duckdb", "--input", *files], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=120, check=False)
    assert died.returncode == CRASH_EXIT_CODE, died.stderr[-2000:]
    assert {r.status for r in open_ledger(lake).find("orders")} == {"PROCESSING"}
    assert cli.main(["--lake-root", str(lake), "run", "orders", "--engine", "duckdb"]) == 0
    assert {r.status for r in open_ledger(lake).find("orders")} == {"ARCHIVED"}
    assert cli.main(["--lake-root", str(reference), "run", "orders", "--engine", "duckdb",
                     "--input", *files]) == 0
    for zone in ("clean", "quarantine"):
        assert _rows(lake / zone / "orders") == _rows(reference / zone / "orders")
    assert not list((lake / "clean" / "_commits" / "orders").glob("*.json"))
    assert not list(lake.rglob("_staging/*/*"))


def test_a_contract_the_engine_does_not_run_is_refused_before_any_claim(tmp_path, capsys,
                                                                         monkeypatch) -> None:
    """orders/2 derives total_amount with round(): were round not proven on both engines,
    a DuckDB run refuses the dataset before claiming an upload, saying what to do."""
    lake = tmp_path / "lk"
    assert cli.main(["--lake-root", str(lake), "upload", "--dataset", "orders",
                     str(SAMPLES / LINE_SAMPLES[1])]) == 0
    capsys.readouterr()
    monkeypatch.setattr("lib.engine.duck.derived.PROVEN", frozenset({"coalesce", "to_date"}))
    assert cli.main(["--lake-root", str(lake), "run", "orders", "--engine", "duckdb"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lake: error: orders/2: derived[0].expression 'round(") and \
        err.endswith("function 'round' is not proven to give the same result in the DuckDB "
                     "engine (proven: coalesce, to_date, date_format on a date): run it with "
                     "--engine spark\n"), err
    assert {r.status for r in open_ledger(lake).find("orders")} == {"ACCEPTED"}
