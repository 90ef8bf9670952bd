"""The body every Glue job entry point shares: open the job context (Glue or local), run
the contract's ledger-driven processing with the Spark engine, print the summary, commit.

A job script in ``glue_jobs/<dataset>/v<N>/job.py`` names its dataset and contract version
and calls :func:`run_job`; everything else lives in ``lib``. What follows the context
(metrics, alerts, the announcement of waiting uploads) is the same for the DuckDB engine's
entry (:mod:`lib.jobs.duck_entry`): :mod:`lib.jobs.execute`.
"""

from __future__ import annotations

from collections.abc import Sequence

from lib.jobs import args as job_args
from lib.jobs.execute import execute
from lib.jobs.runtime import open_job, parse_job_args
from lib.jobs.spark_rows import SparkRows
from lib.ledger.records import LockBusyError


def run_job(dataset: str, version: int, argv: Sequence[str]) -> int:
    """Run contract ``dataset``/``version`` on the ledger's pending uploads (or
    ``--upload_ids``) with the Spark engine; returns the process exit code (0 ok, 1 some
    upload failed). The optional arguments are those of :mod:`lib.jobs.execute`."""
    # A run that cannot take the lock is refused before Spark starts (seconds of JVM).
    busy = job_args.ledger(parse_job_args(argv, job_args.REQUIRED, job_args.OPTIONAL)) \
        .run_lock_holder(dataset)
    if busy is not None:
        raise LockBusyError(busy)
    with open_job(argv, job_args.REQUIRED, job_args.OPTIONAL) as ctx:
        return execute(SparkRows(ctx.spark), ctx.args, ctx.logger, ctx.job_name, dataset,
                       version)
