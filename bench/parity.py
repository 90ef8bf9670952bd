"""The differential harness at scale: both engines through whole runs, row for row.

    python bench/parity.py [--rows 1000000] [--seed 7] [--fuzz-rows 20000] [--fuzz-seeds 3]

For orders versions 1 and 2: the bundled samples and seeded adversarial corpora, read line
by line (:func:`lib.tools.parity.fuzz_csv`) and read whole (quoted line breaks,
:func:`lib.tools.parity.fuzz_multiline_csv`, a fifth of the rows), then the benchmark
generator's dirty data at ``--rows`` (fixed seed), each landed with the upload checks in two
lakes and run once with each engine (:func:`lib.tools.parity.compare_runs`). Every clean
and quarantined row with every column, and every upload's counts and reason codes, must be
equal; on a difference the first differing row of each engine is printed and the exit code
is 1. Files the DuckDB engine does not reproduce (engine.not_reproduced) are listed.

For customers version 1 (JSON Lines): the bundled samples and ``--fuzz-seeds`` adversarial
corpora of ``--fuzz-rows`` lines (:func:`lib.tools.parity.fuzz_jsonl`), the same way.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--dirty", type=float, default=0.03)
    ap.add_argument("--fuzz-rows", type=int, default=20_000)
    ap.add_argument("--fuzz-seeds", type=int, default=3)
    ap.add_argument("--work-dir", default=".bench")
    args = ap.parse_args(argv)

    from bench.orders_bench import data_file
    from lib.contracts.contract import load_contract
    from lib.jobs.local_spark import local_spark_session
    from lib.tools.parity import compare_runs, fuzz_csv, fuzz_jsonl, fuzz_multiline_csv

    work = Path(args.work_dir).resolve() / "parity"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    spark = local_spark_session(work / "spark", app_name="parity")
    samples = sorted((REPO / "samples" / "orders").glob("*"))
    fuzz = []
    for seed in range(1, args.fuzz_seeds + 1):
        path = work / f"fuzz_seed{seed}.csv"
        fuzz_csv(path, args.fuzz_rows, seed)
        multi = work / f"fuzz_multiline_seed{seed}.csv"
        fuzz_multiline_csv(multi, args.fuzz_rows // 5, seed, ("\n", "\r\n")[seed % 2])
        fuzz += [path, multi]
    json_fuzz = []
    for seed in range(1, args.fuzz_seeds + 1):
        path = work / f"fuzz_seed{seed}.jsonl"
        fuzz_jsonl(path, args.fuzz_rows, seed)
        json_fuzz.append(path)
    big = data_file(argparse.Namespace(work_dir=args.work_dir, seed=args.seed, dirty=args.dirty),
                    args.rows)
    cases = [(f"orders v{v}: samples + {len(fuzz)} fuzz corpora ({args.fuzz_seeds} of "
               f"{args.fuzz_rows:,} rows read line by line, {args.fuzz_seeds} of "
               f"{args.fuzz_rows // 5:,} read whole)", "orders", v,
              [*samples, *fuzz]) for v in (1, 2)]
    cases += [(f"customers v1: samples + {len(json_fuzz)} JSON Lines fuzz corpora of "
               f"{args.fuzz_rows:,} lines", "customers", 1,
               [*sorted((REPO / "samples" / "customers").glob("*")), *json_fuzz])]
    cases += [(f"orders v{v}: bench data, {args.rows:,} rows (seed {args.seed})", "orders", v,
               [big]) for v in (1, 2)]
    failed = 0
    for i, (title, dataset, version, files) in enumerate(cases):
        t0 = time.perf_counter()
        result = compare_runs(spark, load_contract(dataset, version), files, work / f"case{i}")
        print(f"{title}: {result.describe()} ({time.perf_counter() - t0:.0f} s)", flush=True)
        for line in result.not_reproduced:
            print(f"  not reproduced (left to the Spark engine): {line.split(':')[0]}")
        failed += bool(result.differences)
        shutil.rmtree(work / f"case{i}", ignore_errors=True)
    spark.stop()
    print("parity: " + ("every case identical" if not failed else f"{failed} case(s) differ"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
