"""Glue job `orders` version 1: raw CSV uploads -> clean and quarantine Parquet.

Runs unchanged on AWS Glue 5.0 (``--extra-py-files`` carries ``lib``) and locally
(``lake run orders --version 1``). Arguments: ``--JOB_NAME``, ``--lake_root`` and the
optional ones in :mod:`lib.job_args`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from lib import job_args
from lib.batch import run_contract_job
from lib.contract import load_contract
from lib.report import format_summary
from lib.runtime import open_job

DATASET = "orders"
VERSION = 1


def main(argv: Sequence[str]) -> int:
    with open_job(argv, job_args.REQUIRED, job_args.OPTIONAL) as ctx:
        report = run_contract_job(
            ctx.spark,
            load_contract(DATASET, VERSION),
            job_args.lake_paths(ctx.args),
            job_name=ctx.job_name,
            job_version=VERSION,
            inputs=job_args.input_paths(ctx.args),
            max_records_per_file=job_args.max_records_per_file(ctx.args),
            logger=ctx.logger,
        )
        print(format_summary(report), flush=True)
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
