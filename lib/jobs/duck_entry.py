"""A job run with the DuckDB engine (``lake run --engine duckdb``): the contract's
ledger-driven processing in this process, with no JVM, on a local lake or on S3 (the
fast-lane Lambda, :mod:`lib.lambdas.fast_lane`). The same arguments,
ledger records, reports, metrics and alerts as the Spark entry (:mod:`lib.jobs.entry`);
only the engine differs."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from lib.jobs import args as job_args
from lib.jobs.argv import job_logger, parse_job_args
from lib.jobs.duck_rows import DuckRows
from lib.jobs.execute import execute
from lib.lake.paths import join, local_path, to_uri
from lib.lake.s3fs import S3Fs
from lib.ledger.records import LockBusyError

MEMORY_ENV = "LAKE_DUCKDB_MEMORY"  # DuckDB's memory limit for a run (it spills past it)


def run_duck_job(dataset: str, version: int, argv: Sequence[str]) -> int:
    """Run contract ``dataset``/``version`` with the DuckDB engine; the exit code of
    :func:`lib.jobs.execute.execute`."""
    args = parse_job_args(argv, job_args.REQUIRED, job_args.OPTIONAL)
    busy = job_args.ledger(args).run_lock_holder(dataset)
    if busy is not None:
        raise LockBusyError(busy)
    memory = os.environ.get(MEMORY_ENV, "1GB")
    name = str(args["JOB_NAME"])
    spill = local_path(join(to_uri(str(args["lake_root"])), "_local", "duckdb-run"))
    if spill is not None:
        return execute(DuckRows(memory_limit=memory, temp_dir=spill), args, job_logger(name),
                       name, dataset, version)
    # A lake on S3 (the fast-lane Lambda): uploads fetched to, and files staged on, local
    # scratch (the Lambda's /tmp), removed when the run ends.
    with tempfile.TemporaryDirectory(prefix=f"lake-{dataset}-") as tmp:
        scratch = Path(tmp)
        rows = DuckRows(memory_limit=memory, temp_dir=scratch / "spill",
                        fs=S3Fs(job_args.aws_client(args, "s3")), scratch=scratch)
        return execute(rows, args, job_logger(name), name, dataset, version)
