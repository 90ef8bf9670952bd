"""Glue job `customers` version 1: accepted JSON Lines uploads -> clean and quarantine
Parquet, with contract customers/1. A new dataset is a contract and this entry point; the
code is the same ``lib`` every job uses.

Takes the dataset's pending uploads from the upload ledger (or ``--upload_ids``), records
each one's outcome there and archives its raw file. Runs unchanged on AWS Glue 5.0
(``--extra-py-files`` carries ``lib``) and locally (``lake run customers --version 1``).
Arguments: ``--JOB_NAME``, ``--lake_root`` and the optional ones in :mod:`lib.jobs.args`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from lib.jobs.entry import run_job

DATASET = "customers"
VERSION = 1


def main(argv: Sequence[str]) -> int:
    return run_job(DATASET, VERSION, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
