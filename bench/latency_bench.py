"""Latency of the fast lane, as a user meets it: from the start of `lake upload --process`
to `lake query` returning the upload's rows, each command in a process of its own (process
start included), median of ``--runs`` uploads per size.

Each upload is a new orders file (new content, so that it is never a duplicate) of 1,000,
10,000 and 100,000 rows, all valid, on one lake root; the query counts the upload's clean
rows by its id and must find all of them. Targets (docs/data.md, "The fast lane"): 1,000
rows queryable in at most 1.5 s, 100,000 in at most 5 s.

Then the AWS path on moto's server, handler by handler, for one small upload (1,000 rows;
median of ``--runs``): the upload API, the presigned POST, the validator, and the fast-lane
Lambda (its rule and FIFO queue as infra/pipelines.yaml declares them), each with its AWS
calls counted and timed. The estimate for AWS replaces moto's time per call by a stated
in-region latency per service and adds the hops AWS makes between the handlers and a Lambda
start (the assumptions are printed with it). Target: <= 5 s for 1,000 rows.

    python bench/latency_bench.py [--work-dir .bench] [--runs 5] [--sizes 1000,10000,100000]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGETS_S = {1_000: 1.5, 100_000: 5.0}
AWS_TARGET_S = 5.0
# Assumed in-region latency of one request (ms), per service: the order of magnitude AWS
# documents and users measure for small requests from Lambda in the same region.
AWS_CALL_MS = {"s3": 25, "dynamodb": 8, "glue": 60, "events": 20, "sqs": 15, "sns": 20}
# Hops between the handlers on AWS (s), and a Lambda start of the fast-lane function
# (python3.12, a 231 MB layer: DuckDB and Arrow imported at init).
AWS_HOPS_S = {"client -> API Gateway -> upload API": 0.10,
              "S3 event notification -> SQS -> validator": 1.00,
              "EventBridge rule -> SQS FIFO -> fast lane": 0.50}
# A cold start of the fast-lane function: a new sandbox with its 73 MB layer (assumed), then
# the handler's imports, measured here in a fresh process (the layer ships bytecode).
SANDBOX_S = 1.0


def import_seconds(runs: int = 3) -> float:
    """Median time a fresh process takes to import the fast-lane handler's module."""
    code = ("import time; t = time.perf_counter(); import lib.lambdas.fast_lane; "
            "print(time.perf_counter() - t)")
    times = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                  cwd=REPO, check=True).stdout) for _ in range(runs)]
    return statistics.median(times)
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


class Calls:
    """Every AWS call botocore makes while it records: count and seconds, per service."""

    def __init__(self) -> None:
        import botocore.client

        self.count: dict[str, int] = {}
        self.spans: list[tuple[float, float]] = []
        self._base = botocore.client.BaseClient
        self._orig = self._base._make_api_call
        calls = self

        def timed(client, operation, params):  # noqa: ANN001, ANN202
            t0 = time.perf_counter()
            try:
                return calls._orig(client, operation, params)
            finally:
                svc = client.meta.service_model.endpoint_prefix
                calls.count[svc] = calls.count.get(svc, 0) + 1
                calls.spans.append((t0, time.perf_counter()))

        self._base._make_api_call = timed

    def take(self) -> tuple[dict[str, int], float, float]:
        """The calls since the last take: count per service, the seconds they took added up,
        and the seconds during which at least one was in flight (less when they overlap)."""
        spans = sorted(self.spans)
        total = sum(b - a for a, b in spans)
        wall, end = 0.0, float("-inf")
        for a, b in spans:
            if b > end:
                wall += b - max(a, end)
                end = b
        out = (dict(self.count), total, wall)
        self.count.clear()
        self.spans.clear()
        return out

    def stop(self) -> None:
        self._base._make_api_call = self._orig


def aws_path(files: Path, runs: int, rows: int = 1_000) -> int:
    """The moto run, handler by handler, and the AWS estimate; 1 when it misses the target."""
    import os

    import requests

    sys.path.insert(0, str(REPO))
    from tests.aws_stubs import REGION, moto_server
    from tests.lambdas.test_fast_lane_aws import FastLane
    from tests.lambdas.test_upload_aws import Lake, _post, _request_for

    steps = ("upload API", "presigned POST", "validator", "fast lane")
    per_step: dict[str, list[tuple[float, dict[str, int], float, float]]] = {
        s: [] for s in steps}
    # The handlers' logs, EMF lines and run summaries are not the measurement: kept quiet.
    os.environ["LAKE_LOG_LEVEL"] = "WARNING"
    for name in ("lake", "lake.upload_api", "lake.validator", "lake.fast_lane"):
        logging.getLogger(name).setLevel(logging.WARNING)
    quiet = contextlib.redirect_stdout(io.StringIO())
    with moto_server() as (_, endpoint), quiet:
        os.environ.update({"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
                           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION})
        os.environ.pop("AWS_PROFILE", None)
        requests.post(f"{endpoint}/moto-api/reset", timeout=10)
        lane = FastLane(Lake(max_receive=2))
        lake = lane.lake
        calls = Calls()
        try:
            for n in range(runs + 1):  # the first warms the process up: not counted
                path = orders_file(files / f"aws_{rows}_{n}.csv", rows, f"A{n}x{time.time_ns()}")
                data = path.read_bytes()
                calls.take()
                t0 = time.perf_counter()
                answer = lake.request(**_request_for(data, path.name))
                t1 = time.perf_counter()
                api = calls.take()
                assert _post(answer, data, path.name).status_code in (200, 201, 204)
                t2 = time.perf_counter()
                calls.take()
                assert lake.deliver() == []
                t3 = time.perf_counter()
                validator = calls.take()
                assert lane.deliver() == 1
                t4 = time.perf_counter()
                fast = calls.take()
                record = lake.status(answer["upload_id"])
                if (record["status"], record["clean"]) != ("ARCHIVED", rows):
                    raise SystemExit(f"the upload ended {record['status']} with "
                                     f"{record['clean']} clean rows, not ARCHIVED with {rows}")
                if n:
                    per_step["upload API"].append((t1 - t0, *api))
                    per_step["presigned POST"].append((t2 - t1, {"s3": 1}, t2 - t1, t2 - t1))
                    per_step["validator"].append((t3 - t2, *validator))
                    per_step["fast lane"].append((t4 - t3, *fast))
        finally:
            calls.stop()
    print(f"\nAWS path on moto, {rows:,} rows, handler by handler (median of {runs}):")
    total_moto = total_aws = 0.0
    for step in steps:
        took = statistics.median(t for t, _, _, _ in per_step[step])
        count = {k: statistics.median(c.get(k, 0) for _, c, _, _ in per_step[step])
                 for k in AWS_CALL_MS}
        in_calls = statistics.median(wall for _, _, _, wall in per_step[step])
        overlap = statistics.median(total / wall if wall else 1.0
                                    for _, _, total, wall in per_step[step])
        own = max(took - in_calls, 0.0)
        aws = own + sum(count[k] * AWS_CALL_MS[k] / 1000 for k in count) / overlap
        total_moto += took
        total_aws += aws
        shown = ", ".join(f"{int(v)} {k}" for k, v in count.items() if v)
        print(f"  {step:<15} {took:6.2f} s on moto ({own:.2f} s own work; calls: {shown}; "
              f"{overlap:.1f} in flight on average) -> {aws:.2f} s on AWS")
    hops = sum(AWS_HOPS_S.values())
    cold_start = SANDBOX_S + import_seconds()
    warm, cold = total_aws + hops, total_aws + hops + cold_start
    print(f"  handlers: {total_moto:.2f} s on moto, {total_aws:.2f} s with AWS call latencies "
          f"({', '.join(f'{k} {v} ms' for k, v in AWS_CALL_MS.items())})")
    print(f"  hops: {hops:.2f} s ({'; '.join(f'{k} {v} s' for k, v in AWS_HOPS_S.items())})")
    print(f"  estimate on AWS: {warm:.1f} s warm, {cold:.1f} s with a cold start of the "
          f"fast-lane function ({cold_start:.2f} s: {SANDBOX_S} s sandbox and layer, then "
          f"the handler's imports)  target <= {AWS_TARGET_S} s: "
          f"{'met' if cold <= AWS_TARGET_S else 'NOT met'}")
    return 0 if cold <= AWS_TARGET_S else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work-dir", default=".bench")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--no-aws", action="store_true", help="skip the moto run of the AWS path")
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
    if not args.no_aws:
        failed += aws_path(files, args.runs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
