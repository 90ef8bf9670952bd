"""Latency of the fast lane, as a user meets it: from the start of `lake upload --process`
to `lake query` returning the upload's rows, each command in a process of its own (process
start included), median of ``--runs`` uploads per size.

Each upload is a new orders file (new content, so that it is never a duplicate) of 1,000,
10,000 and 100,000 rows, all valid, on one lake root; the query counts the upload's clean
rows by its id and must find all of them. Targets (docs/data.md, "The fast lane"): 1,000
rows queryable in at most 1.5 s, 100,000 in at most 5 s.

    python bench/latency_bench.py [--work-dir .bench] [--runs 5] [--sizes 1000,10000,100000]
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGETS_S = {1_000: 1.5, 100_000: 5.0}
HEADER = ("order_id,customer_id,customer_email,product_sku,quantity,unit_price,currency,"
          "order_ts,country,discount_pct\n")


def lake(root: Path, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "lib.tools.cli", "--lake-root", str(root),
                           *args], capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        raise SystemExit(f"lake {' '.join(args)[:200]} failed ({proc.returncode}):\n"
                         f"{proc.stderr[-2000:]}")
    return proc.stdout


def orders_file(path: Path, rows: int, tag: str) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        fh.write(HEADER)
        for i in range(rows):
            fh.write(f"{tag}-{i},C-{i % 97},c{i % 97}@example.com,SKU-{i % 13},{1 + i % 5},"
                     f"{(i % 900) / 100 + 1:.2f},EUR,2026-11-{1 + i % 28:02d}T10:00:00Z,FR,"
                     f"{i % 20}\n")
    return path


def one(root: Path, files: Path, rows: int, n: int) -> float:
    path = orders_file(files / f"latency_{rows}_{n}.csv", rows, f"L{rows}x{n}x{time.time_ns()}")
    t0 = time.perf_counter()
    out = lake(root, "upload", "--dataset", "orders", "--process", str(path))
    upload = re.search(r"^(u\S+)\s+ACCEPTED", out, re.M)
    if upload is None:
        raise SystemExit(f"{path.name} was not accepted:\n{out[-2000:]}")
    got = lake(root, "query", "--format", "csv",
               f"SELECT count(*) AS n FROM clean.orders WHERE _upload_id = '{upload.group(1)}'")
    elapsed = time.perf_counter() - t0
    if got.split() != ["n", str(rows)]:
        raise SystemExit(f"{path.name}: the query found {got.split()[1:]} rows, not {rows}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work-dir", default=".bench")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--sizes", default="1000,10000,100000")
    args = ap.parse_args(argv)
    work = Path(args.work_dir).resolve() / "latency"
    shutil.rmtree(work, ignore_errors=True)
    root, files = work / "lake", work / "files"
    files.mkdir(parents=True)
    one(root, files, 10, 0)  # the lake's first run creates its tables: not timed
    failed = 0
    for rows in (int(s) for s in args.sizes.split(",")):
        times = [one(root, files, rows, n) for n in range(args.runs)]
        median = statistics.median(times)
        target = TARGETS_S.get(rows)
        verdict = ("" if target is None else
                   f"  target <= {target} s: {'met' if median <= target else 'NOT met'}")
        failed += target is not None and median > target
        print(f"{rows:>7,} rows: queryable {median:.2f} s after `lake upload --process` "
              f"starts (median of {args.runs}; {min(times):.2f}-{max(times):.2f} s){verdict}",
              flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
