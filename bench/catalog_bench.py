"""Benchmark of the local catalog and query stand-ins: `lake query` and `lake crawl` (with
nothing new to register) on the sample lake, each as a user runs it, in a process of its
own (process start included), median of 5.

The sample lake is built first, outside the timings, as `make run` builds it: the bundled
samples uploaded, then `lake pipeline` (jobs, then crawlers).

    python bench/catalog_bench.py [--work-dir .bench] [--runs 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUERY = "SELECT currency, count(*) FROM clean.orders GROUP BY 1"
TARGET_S = 1.5


def lake(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "lib.tools.cli", "--lake-root", str(root),
                           *args], capture_output=True, text=True, cwd=REPO)
    if check and proc.returncode != 0:
        raise SystemExit(f"lake {' '.join(args)} failed ({proc.returncode}):\n"
                         f"{proc.stderr[-2000:]}")
    return proc


def timed(root: Path, *args: str) -> float:
    t0 = time.perf_counter()
    lake(root, *args)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work-dir", default=".bench")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args(argv)
    root = Path(args.work_dir).resolve() / "catalog-lake"
    shutil.rmtree(root, ignore_errors=True)
    print("building the sample lake (upload the samples, lake pipeline) ...", flush=True)
    for dataset in ("orders", "customers"):
        files = sorted(str(p) for p in (REPO / "samples" / dataset).iterdir())
        lake(root, "upload", "--dataset", dataset, *files, check=False)  # some are rejected
    lake(root, "pipeline")
    measures = {
        f'lake query "{QUERY}"': ("query", QUERY),
        "lake crawl (nothing new)": ("crawl",),
        "lake catalog": ("catalog",),
    }
    print(f"\nlocal catalog and query on the sample lake, median of {args.runs} runs, "
          f"process start included, {time.strftime('%Y-%m-%d')}\n")
    print(f"| {'command':<68} | {'median':>8} | {'min':>6} | {'max':>6} | target |")
    print(f"|{'-' * 70}|{'-' * 10}|{'-' * 8}|{'-' * 8}|--------|")
    for name, cmd in measures.items():
        times = [timed(root, *cmd) for _ in range(args.runs)]
        median = statistics.median(times)
        target = "" if cmd[0] == "catalog" else (
            f"< {TARGET_S} s: {'met' if median < TARGET_S else 'NOT met'}")
        print(f"| {name:<68} | {median:>6.2f} s | {min(times):>4.2f} s | {max(times):>4.2f} s "
              f"| {target} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
