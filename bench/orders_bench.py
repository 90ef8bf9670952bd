"""Benchmark: the orders v1 job against a bare Spark conversion of the same file.

    python bench/orders_bench.py --rows 2000000 [--seed 7] [--dirty 0.03] [--driver-memory 1g]

Generates N orders rows (fixed seed, ~3% dirty: bad values, malformed records, duplicates,
conflicting ids), then in one Spark session times

* **bare**: explicit-schema CSV read -> ``order_date`` -> partitioned Parquet, no validation;
* **job**: the full v1 job (validate, dedupe, split, stage, verify, publish, report);

and prints rows/s of each and the ratio job/bare. Both read the file with the same CSV
options (multi-line RFC 4180 parsing, as the contract requires), and both are warmed up on a
small file first so neither pays the JVM's warm-up alone. Results are ratios measured in the
same run on the same data, never absolute timings to compare across machines.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pyspark.sql import SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402
from pyspark.sql import types as T  # noqa: E402

from lib.contracts.contract import load_contract  # noqa: E402
from lib.engine.schemas import spark_type  # noqa: E402
from lib.jobs.local_spark import local_spark_session  # noqa: E402
from lib.jobs.run import process_uploads  # noqa: E402
from lib.lake.paths import LakePaths, local_path, to_uri  # noqa: E402
from lib.ledger.records import ACCEPTED, UploadRecord  # noqa: E402
from lib.ledger.sqlite import open_ledger  # noqa: E402
from lib.sources.csv_reader import CSV_OPTIONS, LINE_OPTIONS  # noqa: E402
from lib.upload.checks import inspect_file  # noqa: E402

HEADER = ["order_id", "customer_id", "customer_email", "product_sku", "quantity", "unit_price",
          "currency", "order_ts", "country"]
CURRENCIES = ["USD", "EUR", "GBP", "JPY", "CAD", "AUD", "CHF"]
COUNTRIES = ["US", "DE", "GB", "JP", "CA", "AU", "CH", "FR"]
TARGET_RATIO = 0.7


def _dirty(row: list[str], rng: random.Random) -> list[str] | str:
    kind = rng.randrange(8)
    if kind == 0:
        row[4] = rng.choice(["0", "abc", "10001", "1.5"])
    elif kind == 1:
        row[5] = rng.choice(["1.999", "$5.00", "99999999999"])
    elif kind == 2:
        row[6] = "XYZ"
    elif kind == 3:
        row[7] = rng.choice(["2026-02-30T10:00:00Z", "1999-01-01T00:00:00Z", "yesterday"])
    elif kind == 4:
        row[2] = "not-an-email"
    elif kind == 5:
        return ",".join(row[:4])  # malformed: too few fields
    elif kind == 6:
        row[0] = ""
    else:
        row[3] = "??"
    return row


def generate(path: Path, rows: int, seed: int, dirty: float) -> None:
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as f:
        f.write(",".join(HEADER) + "\n")
        previous: str | None = None
        for i in range(rows):
            r = rng.random()
            if previous is not None and r < dirty * 0.1:  # exact duplicate of the last row
                f.write(previous)
                continue
            ts = start + timedelta(seconds=rng.randrange(365 * 86400))
            row = [
                f"O-{i:09d}" if r >= dirty * 0.2 or i == 0 else f"O-{i - 1:09d}",  # conflicts
                f"C-{rng.randrange(200000):06d}",
                f"user{rng.randrange(10**6)}@example.com",
                f"SKU-{rng.randrange(5000):04d}",
                str(rng.randint(1, 50)),
                f"{rng.randrange(1, 100000) / 100:.2f}",
                rng.choice(CURRENCIES),
                ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
                rng.choice(COUNTRIES),
            ]
            out = _dirty(row, rng) if dirty * 0.2 <= r < dirty else row
            line = (out if isinstance(out, str) else ",".join(out)) + "\n"
            f.write(line)
            previous = line
    tmp.rename(path)


def bare_conversion(spark: SparkSession, src: str, dest: str, split: bool = False) -> None:
    """The baseline: explicit schema, same CSV parsing (``split``: the line-by-line read that
    runs in several tasks; else multi-line), partitioned Parquet, nothing else."""
    contract = load_contract("orders", 1)
    schema = T.StructType([T.StructField(c.name, spark_type(c.type)) for c in contract.columns])
    options = {k: v for k, v in (LINE_OPTIONS if split else CSV_OPTIONS).items()
               if k != "columnNameOfCorruptRecord"}
    df = spark.read.schema(schema).options(**options).csv(src)
    (df.withColumn("order_date", F.to_date("order_ts"))
     .write.mode("overwrite").partitionBy("order_date").parquet(dest))


def timed(fn) -> float:  # noqa: ANN001
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--dirty", type=float, default=0.03)
    ap.add_argument("--work-dir", default=".bench")
    ap.add_argument("--driver-memory", default="1g")
    args = ap.parse_args(argv)

    work = Path(args.work_dir).resolve()
    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    src = data / f"orders_{args.rows}_seed{args.seed}_dirty{args.dirty}.csv"
    warm = data / f"orders_warmup_seed{args.seed}.csv"
    for path, n in ((src, args.rows), (warm, 50_000)):
        if not path.exists():
            print(f"generating {n:,} rows -> {path}", flush=True)
            generate(path, n, args.seed, args.dirty)

    spark = local_spark_session(work / "spark", app_name="orders-bench",
                                driver_memory=args.driver_memory)
    contract = load_contract("orders", 1)
    out = work / "out"
    # What the upload check records (record count, multi-line or not), as for a real upload;
    # the generated files hold no quoted line break, so the job reads them split.
    structure = {p: inspect_file(p, contract).ledger_fields() for p in (src, warm)}

    def run_job(path: Path, lake: Path):  # noqa: ANN202
        # The whole run on one upload recorded ACCEPTED in the lake's ledger. The raw file is
        # a hard link (a copy across file systems), so archiving it leaves the data alone.
        paths, ledger = LakePaths.from_root(lake), open_ledger(lake)
        upload_id = f"bench-{lake.name}"
        landed_uri = paths.landed("orders", "2026-11-01", upload_id, path.name)
        landed = local_path(landed_uri)
        landed.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, landed)
        except OSError:
            shutil.copyfile(path, landed)
        ledger.create(UploadRecord(upload_id=upload_id, dataset="orders",
                                   original_name=path.name, stored_name=path.name,
                                   size_bytes=path.stat().st_size, sha256=upload_id,
                                   ingest_date="2026-11-01"))
        ledger.transition(upload_id, ACCEPTED, location=landed_uri, **structure[path])
        return process_uploads(spark, contract, paths, ledger, job_name="orders_v1",
                               job_version=1)

    shutil.rmtree(out, ignore_errors=True)
    print("warming up both paths on 50,000 rows", flush=True)
    bare_conversion(spark, to_uri(warm), to_uri(out / "warm-bare"))
    bare_conversion(spark, to_uri(warm), to_uri(out / "warm-bare-split"), split=True)
    run_job(warm, out / "warm-lake")

    print(f"timing bare conversion of {args.rows:,} rows", flush=True)
    bare_s = timed(lambda: bare_conversion(spark, to_uri(src), to_uri(out / "bare")))
    print(f"timing bare conversion of {args.rows:,} rows, split read", flush=True)
    split_s = timed(lambda: bare_conversion(spark, to_uri(src), to_uri(out / "bare-split"),
                                            split=True))
    print(f"timing orders v1 job on {args.rows:,} rows", flush=True)
    report = None

    def job() -> None:
        nonlocal report
        report = run_job(src, out / "lake")

    job_s = timed(job)
    totals = report.totals()
    if report.status != "succeeded" or totals["rows_read"] != args.rows:
        print(f"job did not account for every row: {report.status} {totals}", file=sys.stderr)
    bare_rps, job_rps = args.rows / bare_s, args.rows / job_s
    ratio = job_rps / bare_rps
    print()
    print(f"rows                 {args.rows:,}  (seed {args.seed}, ~{args.dirty:.0%} dirty, "
          f"driver memory {args.driver_memory})")
    print(f"job accounting       read {totals['rows_read']:,} = clean {totals['clean']:,} + "
          f"quarantined {totals['quarantined']:,} + duplicates {totals['duplicates_removed']:,}")
    split_rps = args.rows / split_s
    print(f"bare conversion      {bare_s:8.1f} s  {bare_rps:12,.0f} rows/s  (multi-line read)")
    print(f"bare, split read     {split_s:8.1f} s  {split_rps:12,.0f} rows/s")
    print(f"orders v1 job        {job_s:8.1f} s  {job_rps:12,.0f} rows/s  (split read)")
    print(f"ratio job/bare       {ratio:8.2f}  (target >= {TARGET_RATIO}: "
          f"{'met' if ratio >= TARGET_RATIO else 'NOT met'})")
    print(f"ratio job/split bare {job_rps / split_rps:8.2f}")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
