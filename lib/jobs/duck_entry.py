"""A job run with the DuckDB engine (``lake run --engine duckdb``): the contract's
ledger-driven processing in this process, with no JVM, on a local lake. The same arguments,
ledger records, reports, metrics and alerts as the Spark entry (:mod:`lib.jobs.entry`);
only the engine differs."""

from __future__ import annotations

import os
from collections.abc import Sequence

from lib.jobs import args as job_args
from lib.jobs.argv import job_logger, parse_job_args
from lib.jobs.duck_rows import DuckRows
from lib.jobs.execute import execute
from lib.lake.paths import join, local_path, to_uri
from lib.ledger.records import LockBusyError

MEMORY_ENV = "LAKE_DUCKDB_MEMORY"  # DuckDB's memory limit for a run (it spills past it)


def run_duck_job(dataset: str, version: int, argv: Sequence[str]) -> int:
    """Run contract ``dataset``/``version`` with the DuckDB engine; the exit code of
    :func:`lib.jobs.execute.execute`."""
    args = parse_job_args(argv, job_args.REQUIRED, job_args.OPTIONAL)
    busy = job_args.ledger(args).run_lock_holder(dataset)
    if busy is not None:
        raise LockBusyError(busy)
    spill = local_path(join(to_uri(str(args["lake_root"])), "_local", "duckdb-run"))
    rows = DuckRows(memory_limit=os.environ.get(MEMORY_ENV, "1GB"), temp_dir=spill)
    name = str(args["JOB_NAME"])
    return execute(rows, args, job_logger(name), name, dataset, version)
