"""Benchmark: the orders v1 job against bare Spark conversions of the same file.

    python bench/orders_bench.py [--rows 2000000] [--big-rows 10000000] [--seed 7]
                                 [--dirty 0.03] [--driver-memory 1g]

Generates seeded orders data (~3% dirty: bad values, malformed records, duplicates,
conflicting ids), then runs each measure in a process of its own and prints one table:

* **compare** (``local[2]``): two bare conversions (explicit-schema CSV read -> ``order_date``
  -> partitioned Parquet, no validation), one with the multi-line read and one split line
  by line (the baseline a user would write), then the full v1 job (validate, dedupe,
  split, stage, publish, ledger, archive, report) on the same file, all in one Spark
  session after a warm-up of every path; the ratios are taken within that one run;
* **scale-out**: the job alone on the same file at ``local[1]`` and at ``local[2]``;
* **memory**: the peak of the whole process tree (the JVM included: PSS summed over the
  processes with psutil, sampled) of the job alone at ``--rows`` and at ``--big-rows``, with
  the driver memory given;
* **files**: Parquet files per (upload, partition) the job wrote into the clean zone;
* **DuckDB engine**: the same run with the DuckDB engine (no JVM, in a process of its own,
  after a warm-up run), its throughput against the Spark job and the split bare conversion
  of the compare run, its counts against the Spark job's, and the peak memory of its
  process tree at ``--rows`` and ``--big-rows`` with DuckDB's memory limit
  (``--duckdb-memory``; it spills past it).

Results are ratios measured in the same run on the same data, never absolute timings to
compare across machines.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

HEADER = ["order_id", "customer_id", "customer_email", "product_sku", "quantity", "unit_price",
          "currency", "order_ts", "country"]
CURRENCIES = ["USD", "EUR", "GBP", "JPY", "CAD", "AUD", "CHF"]
COUNTRIES = ["US", "DE", "GB", "JP", "CA", "AU", "CH", "FR"]
TARGET_RATIO, AIM_RATIO = 0.55, 0.85  # job / bare conversion with the split read
TARGET_SPEEDUP = 1.6  # local[2] / local[1]
TARGET_MEMORY_GROWTH = 1.3  # peak tree PSS at --big-rows / at --rows
TARGET_DUCK_OVER_JOB = 5.0  # DuckDB engine throughput / Spark job throughput
TARGET_DUCK_OVER_SPLIT = 2.0  # DuckDB engine throughput / split bare conversion throughput
TARGET_DUCK_PEAK_GB = 1.5  # peak tree memory of the DuckDB engine at --big-rows
FILE_BYTES = 128 * 1024 * 1024  # partitions below this size: one file per upload
WARM_ROWS = 300_000


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


def bare_conversion(spark, src: str, dest: str, split: bool = False) -> None:  # noqa: ANN001
    """The baseline: explicit schema, same CSV parsing (``split``: the line-by-line read that
    runs in several tasks; else multi-line), partitioned Parquet, nothing else."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    from lib.contracts.contract import load_contract
    from lib.engine.schemas import spark_type
    from lib.sources.csv_reader import CSV_OPTIONS, LINE_OPTIONS

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


def files_per_partition(zone: Path) -> dict:
    """Parquet files per (upload, partition) under a zone's dataset folder (files are named
    ``<upload_id>_<run_id>_<n>.parquet``), and the largest partition's bytes."""
    files: Counter[tuple[str, str]] = Counter()
    size: Counter[str] = Counter()
    for f in zone.rglob("*.parquet"):
        part = str(f.parent.relative_to(zone))
        files[(f.name.split("_")[0], part)] += 1
        size[part] += f.stat().st_size
    return {"partitions": len(files), "max_files": max(files.values(), default=0),
            "multi_file_small": sum(1 for (_, p), n in files.items()
                                    if n > 1 and size[p] < FILE_BYTES),
            "largest_mb": max(size.values(), default=0) / 1e6}


# -- one measure per process -----------------------------------------------------------------

def land(lake: Path, path: Path, structure: dict):  # noqa: ANN201 - (paths, ledger)
    """One upload recorded ACCEPTED in the lake's ledger, with what the upload check records
    (record count, no quoted line break). The raw file is a hard link (a copy across file
    systems): archiving leaves it."""
    from lib.lake.paths import LakePaths, local_path
    from lib.ledger.records import ACCEPTED, UploadRecord
    from lib.ledger.sqlite import open_ledger

    paths, ledger = LakePaths.from_root(lake), open_ledger(lake)
    upload_id = f"bench{lake.name.replace('-', '')}"
    landed_uri = paths.landed("orders", "2026-11-01", upload_id, path.name)
    landed = local_path(landed_uri)
    landed.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(path, landed)
    except OSError:
        shutil.copyfile(path, landed)
    ledger.create(UploadRecord(upload_id=upload_id, dataset="orders", original_name=path.name,
                               stored_name=path.name, size_bytes=path.stat().st_size,
                               sha256=upload_id, ingest_date="2026-11-01"))
    ledger.transition(upload_id, ACCEPTED, location=landed_uri, **structure[path.name])
    return paths, ledger


def duck_child(args: argparse.Namespace) -> dict:
    """The run with the DuckDB engine: no Spark session in this process."""
    from lib.contracts.contract import load_contract
    from lib.jobs.duck_rows import DuckRows
    from lib.jobs.run import process_uploads

    work = Path(args.work_dir).resolve()
    src, warm = Path(args.src), Path(args.warm)
    out = work / "out" / "duckdb" / src.stem
    shutil.rmtree(out, ignore_errors=True)
    structure = json.loads(Path(args.structure).read_text())
    contract = load_contract("orders", 1)

    def run_job(path: Path, lake: Path):  # noqa: ANN202
        paths, ledger = land(lake, path, structure)
        rows = DuckRows(memory_limit=args.duckdb_memory, temp_dir=out / "spill")
        return process_uploads(rows, contract, paths, ledger, job_name="orders_v1",
                               job_version=1)

    run_job(warm, out / "warm-lake")
    reports = []
    result = {"job_s": timed(lambda: reports.append(run_job(src, out / "lake")))}
    result["status"], result["totals"] = reports[0].status, reports[0].totals()
    result["files"] = files_per_partition(out / "lake" / "clean" / "orders")
    shutil.rmtree(out, ignore_errors=True)
    return result


def child(args: argparse.Namespace) -> dict:
    from lib.contracts.contract import load_contract
    from lib.jobs.local_spark import local_spark_session
    from lib.jobs.run import process_uploads
    from lib.jobs.spark_rows import SparkRows
    from lib.lake.paths import to_uri

    work = Path(args.work_dir).resolve()
    src, warm = Path(args.src), Path(args.warm)
    out = work / "out" / args.child / args.master.replace("[", "").replace("]", "") / src.stem
    shutil.rmtree(out, ignore_errors=True)
    spark = local_spark_session(work / "spark" / f"{os.getpid()}", app_name="orders-bench",
                                master=args.master, driver_memory=args.driver_memory)
    contract = load_contract("orders", 1)

    def run_job(path: Path, lake: Path):  # noqa: ANN202
        # The whole run on one upload recorded ACCEPTED in the lake's ledger (the job reads
        # it split: the upload check found no quoted line break).
        paths, ledger = land(lake, path, structure)
        return process_uploads(SparkRows(spark), contract, paths, ledger, job_name="orders_v1",
                               job_version=1)

    structure = json.loads(Path(args.structure).read_text())
    result: dict = {}
    if args.child == "compare":
        bare_conversion(spark, to_uri(warm), to_uri(out / "warm-bare"))
        bare_conversion(spark, to_uri(warm), to_uri(out / "warm-bare-split"), split=True)
    run_job(warm, out / "warm-lake")
    if args.child == "compare":
        result["bare_s"] = timed(lambda: bare_conversion(spark, to_uri(src), to_uri(out / "bare")))
        result["split_s"] = timed(lambda: bare_conversion(spark, to_uri(src),
                                                          to_uri(out / "bare-split"), split=True))
    reports = []
    result["job_s"] = timed(lambda: reports.append(run_job(src, out / "lake")))
    report = reports[0]
    result["status"], result["totals"] = report.status, report.totals()
    result["files"] = files_per_partition(out / "lake" / "clean" / "orders")
    spark.stop()
    shutil.rmtree(out, ignore_errors=True)
    return result


class TreeMemory:
    """Peak PSS of a process and all its descendants, sampled in a thread."""

    def __init__(self, pid: int, every: float = 0.25) -> None:
        import psutil

        self.root, self.every, self.peak = psutil.Process(pid), every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        import psutil

        while not self._stop.is_set():
            total = 0
            try:
                for p in [self.root, *self.root.children(recursive=True)]:
                    with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                        total += p.memory_full_info().pss
            except psutil.NoSuchProcess:
                return
            self.peak = max(self.peak, total)
            time.sleep(self.every)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def measure(args: argparse.Namespace, kind: str, master: str, src: Path, warm: Path,
            structure: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--master", master, "--src", str(src),
           "--warm", str(warm), "--structure", str(structure), "--work-dir", args.work_dir,
           "--driver-memory", args.driver_memory, "--duckdb-memory", args.duckdb_memory]
    print(f"measuring: {kind} at {master} on {src.name}", flush=True)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    memory = TreeMemory(proc.pid)
    out, _ = proc.communicate()
    peak = memory.stop()
    lines = [ln for ln in out.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{kind} at {master} failed (exit {proc.returncode})")
    return {**json.loads(lines[-1][len("RESULT "):]), "peak_pss": peak}


def data_file(args: argparse.Namespace, rows: int) -> Path:
    data = Path(args.work_dir).resolve() / "data"
    data.mkdir(parents=True, exist_ok=True)
    path = data / f"orders_{rows}_seed{args.seed}_dirty{args.dirty}.csv"
    if not path.exists():
        print(f"generating {rows:,} rows -> {path}", flush=True)
        generate(path, rows, args.seed, args.dirty)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--big-rows", type=int, default=10_000_000,
                    help="rows of the memory measure at scale (0: skip it)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--dirty", type=float, default=0.03)
    ap.add_argument("--work-dir", default=".bench")
    ap.add_argument("--driver-memory", default="1g")
    ap.add_argument("--duckdb-memory", default="1GB",
                    help="DuckDB's memory limit in the DuckDB engine's runs (it spills past it)")
    ap.add_argument("--child", choices=["compare", "job", "duckdb"], help=argparse.SUPPRESS)
    ap.add_argument("--master", default="local[2]", help=argparse.SUPPRESS)
    ap.add_argument("--src", help=argparse.SUPPRESS)
    ap.add_argument("--warm", help=argparse.SUPPRESS)
    ap.add_argument("--structure", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        result = duck_child(args) if args.child == "duckdb" else child(args)
        print("RESULT " + json.dumps(result), flush=True)
        return 0

    from lib.contracts.contract import load_contract
    from lib.upload.checks import inspect_file

    # The warm-up file is large enough for the JIT to compile the validation's code before
    # the timed runs (on 50,000 rows the job's first large run still paid about 3 s of it).
    src, warm = data_file(args, args.rows), data_file(args, WARM_ROWS)
    big = data_file(args, args.big_rows) if args.big_rows else None
    contract = load_contract("orders", 1)
    structure = Path(args.work_dir).resolve() / "data" / "structure.json"
    structure.write_text(json.dumps({  # what the upload check records, outside the timings
        p.name: inspect_file(p, contract).ledger_fields() for p in filter(None, (src, warm, big))
    }))
    compare = measure(args, "compare", "local[2]", src, warm, structure)
    one = measure(args, "job", "local[1]", src, warm, structure)
    two = measure(args, "job", "local[2]", src, warm, structure)
    large = measure(args, "job", "local[2]", big, warm, structure) if big else None
    duck = measure(args, "duckdb", "-", src, warm, structure)
    duck_large = measure(args, "duckdb", "-", big, warm, structure) if big else None
    print_table(args, compare, one, two, large)
    print_duck_table(args, compare, duck, duck_large)
    return 0


def print_table(args: argparse.Namespace, compare: dict, one: dict, two: dict,
                large: dict | None) -> None:
    rows = args.rows

    def rps(seconds: float, n: int = rows) -> str:
        return f"{n / seconds:>10,.0f} rows/s"

    def met(ok: bool) -> str:
        return "met" if ok else "NOT met"

    t = compare["totals"]
    ratio_split = compare["split_s"] / compare["job_s"]
    ratio_multi = compare["bare_s"] / compare["job_s"]
    speedup = one["job_s"] / two["job_s"]
    files = compare["files"]
    gib = 1024 ** 3
    print()
    print(f"orders v1 on {rows:,} rows (seed {args.seed}, ~{args.dirty:.0%} dirty), driver "
          f"memory {args.driver_memory}, {os.cpu_count()} cores, "
          f"{datetime.now(UTC):%Y-%m-%d}")
    print(f"  accounting: read {t['rows_read']:,} = clean {t['clean']:,} + quarantined "
          f"{t['quarantined']:,} + duplicates {t['duplicates_removed']:,} ({compare['status']})")
    print()
    print(f"| {'measure':<44} | {'result':<24} | {'target':<28} |")
    print(f"|{'-' * 46}|{'-' * 26}|{'-' * 30}|")

    def row(what: str, result: str, target: str = "") -> None:
        print(f"| {what:<44} | {result:<24} | {target:<28} |")

    row("bare conversion, multi-line read", f"{compare['bare_s']:5.1f} s {rps(compare['bare_s'])}")
    row("bare conversion, split read (baseline)",
        f"{compare['split_s']:5.1f} s {rps(compare['split_s'])}")
    row("orders v1 job (same session)", f"{compare['job_s']:5.1f} s {rps(compare['job_s'])}")
    row("job / split bare", f"{ratio_split:.2f}",
        f">= {TARGET_RATIO} (aim {AIM_RATIO}): {met(ratio_split >= TARGET_RATIO)}")
    row("job / multi-line bare", f"{ratio_multi:.2f}")
    row("job alone at local[1]", f"{one['job_s']:5.1f} s {rps(one['job_s'])}")
    row("job alone at local[2]", f"{two['job_s']:5.1f} s {rps(two['job_s'])}")
    row("speed-up local[2] / local[1]", f"{speedup:.2f}x",
        f">= {TARGET_SPEEDUP}x: {met(speedup >= TARGET_SPEEDUP)}")
    row(f"peak tree PSS, job at {rows:,} rows", f"{two['peak_pss'] / gib:.2f} GiB")
    if large is not None:
        growth = large["peak_pss"] / two["peak_pss"]
        lt = large["totals"]
        row(f"peak tree PSS, job at {args.big_rows:,} rows",
            f"{large['peak_pss'] / gib:.2f} GiB ({large['status']})")
        row("  its throughput", f"{large['job_s']:5.0f} s {rps(large['job_s'], args.big_rows)}")
        row("  growth over the smaller run", f"{growth:.2f}x",
            f"<= {TARGET_MEMORY_GROWTH}x: {met(growth <= TARGET_MEMORY_GROWTH)}")
        if lt["rows_read"] != args.big_rows:
            row("  rows read", f"{lt['rows_read']:,}", f"{args.big_rows:,}: NOT met")
    row("files per (upload, partition), clean zone",
        f"max {files['max_files']} over {files['partitions']}",
        f"1 below 128 MB: {met(files['multi_file_small'] == 0)}")
    row("largest partition", f"{files['largest_mb']:.1f} MB")




def print_duck_table(args: argparse.Namespace, compare: dict, duck: dict,
                     large: dict | None) -> None:
    def met(ok: bool) -> str:
        return "met" if ok else "NOT met"

    rows, gb = args.rows, 1e9
    over_job = compare["job_s"] / duck["job_s"]
    over_split = compare["split_s"] / duck["job_s"]
    same = duck["totals"] == compare["totals"]
    print()
    print(f"DuckDB engine on the same {rows:,} rows (memory limit {args.duckdb_memory}), against "
          "the compare run above")
    print()
    print(f"| {'measure':<44} | {'result':<24} | {'target':<28} |")
    print(f"|{'-' * 46}|{'-' * 26}|{'-' * 30}|")

    def row(what: str, result: str, target: str = "") -> None:
        print(f"| {what:<44} | {result:<24} | {target:<28} |")

    row("DuckDB engine, whole run", f"{duck['job_s']:5.1f} s {rows / duck['job_s']:>10,.0f} rows/s")
    row("DuckDB engine / Spark job (throughput)", f"{over_job:.2f}x",
        f">= {TARGET_DUCK_OVER_JOB}x: {met(over_job >= TARGET_DUCK_OVER_JOB)}")
    row("DuckDB engine / split bare (throughput)", f"{over_split:.2f}x",
        f">= {TARGET_DUCK_OVER_SPLIT}x: {met(over_split >= TARGET_DUCK_OVER_SPLIT)}")
    row("counts equal to the Spark job's", "yes" if same else f"NO: {duck['totals']}",
        f"equal: {met(same)}")
    row(f"peak tree PSS, DuckDB at {rows:,} rows", f"{duck['peak_pss'] / gb:.2f} GB")
    if large is not None:
        row(f"peak tree PSS, DuckDB at {args.big_rows:,} rows",
            f"{large['peak_pss'] / gb:.2f} GB ({large['status']})",
            f"<= {TARGET_DUCK_PEAK_GB} GB: {met(large['peak_pss'] / gb <= TARGET_DUCK_PEAK_GB)}")
        row("  its throughput",
            f"{large['job_s']:5.1f} s {args.big_rows / large['job_s']:>10,.0f} rows/s")


if __name__ == "__main__":
    sys.exit(main())
