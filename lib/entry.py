"""The body every Glue job entry point shares: open the job context (Glue or local), run
the contract's ledger-driven processing, print the summary, commit.

A job script in ``glue_jobs/<dataset>/v<N>/job.py`` names its dataset and contract version
and calls :func:`run_job`; everything else lives in ``lib``.
"""

from __future__ import annotations

from collections.abc import Sequence

from lib import job_args
from lib.contract import load_contract
from lib.ledger import open_ledger
from lib.processing import process_uploads
from lib.report import format_summary
from lib.runtime import open_job


def run_job(dataset: str, version: int, argv: Sequence[str]) -> int:
    """Run contract ``dataset``/``version`` on the ledger's pending uploads (or
    ``--upload_ids``); returns the process exit code (0 ok, 1 some upload failed)."""
    with open_job(argv, job_args.REQUIRED, job_args.OPTIONAL) as ctx:
        report = process_uploads(
            ctx.spark,
            load_contract(dataset, version),
            job_args.lake_paths(ctx.args),
            open_ledger(ctx.args["lake_root"]),
            job_name=ctx.job_name,
            job_version=version,
            upload_ids=job_args.upload_ids(ctx.args),
            max_records_per_file=job_args.max_records_per_file(ctx.args),
            logger=ctx.logger,
        )
        print(format_summary(report), flush=True)
    return report.exit_code
