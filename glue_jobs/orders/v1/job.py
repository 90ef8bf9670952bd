"""Glue job `orders` version 1: accepted CSV uploads -> clean and quarantine Parquet.

Takes the dataset's pending uploads from the upload ledger (or ``--upload_ids``), records
each one's outcome there and archives its raw file.

Runs unchanged on AWS Glue 5.0 (``--extra-py-files`` carries ``lib``) and locally
(``lake run orders --version 1``). Arguments: ``--JOB_NAME``, ``--lake_root`` and the
optional ones in :mod:`lib.job_args`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from lib import job_args
from lib.contract import load_contract
from lib.ledger import open_ledger
from lib.processing import process_uploads
from lib.report import format_summary
from lib.runtime import open_job

DATASET = "orders"
VERSION = 1


def main(argv: Sequence[str]) -> int:
    with open_job(argv, job_args.REQUIRED, job_args.OPTIONAL) as ctx:
        report = process_uploads(
            ctx.spark,
            load_contract(DATASET, VERSION),
            job_args.lake_paths(ctx.args),
            open_ledger(ctx.args["lake_root"]),
            job_name=ctx.job_name,
            job_version=VERSION,
            upload_ids=job_args.upload_ids(ctx.args),
            max_records_per_file=job_args.max_records_per_file(ctx.args),
            logger=ctx.logger,
        )
        print(format_summary(report), flush=True)
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
