"""AWS resources for moto-backed tests, built from the CloudFormation templates' own
definitions so a test can never pass against a table or queue the stacks do not create."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lib.jobs.jars import jars_dir
from lib.jobs.s3a import S3A_JARS
from lib.tools.infra import FOUNDATION_PATH, load_template
from lib.tools.repo import REPO_ROOT

REGION = "us-east-1"
LEDGER_TABLE = "lake-test-ledger"


def foundation_resource(name: str) -> dict:
    return load_template(FOUNDATION_PATH)["Resources"][name]["Properties"]


def create_ledger_table(dynamodb: Any, name: str = LEDGER_TABLE) -> str:
    """The ledger table exactly as ``LedgerTable`` in infra/foundation.yaml declares its keys,
    index and TTL."""
    props = foundation_resource("LedgerTable")
    dynamodb.create_table(
        TableName=name, BillingMode=props["BillingMode"],
        AttributeDefinitions=props["AttributeDefinitions"], KeySchema=props["KeySchema"],
        GlobalSecondaryIndexes=props["GlobalSecondaryIndexes"])
    ttl = props["TimeToLiveSpecification"]
    dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
    return name


def require_s3a() -> None:
    """Fail (not skip) when the S3A connector is missing: `make test` fetches it."""
    missing = [j.file_name for j in S3A_JARS if not (jars_dir() / j.file_name).is_file()]
    if missing:
        pytest.fail(f"the S3A connector is not in {jars_dir()} ({', '.join(missing)}): "
                    "`make test` fetches it (`make jars`)")


def run_job_on_s3(bucket: str, table: str, tmp: Path, *extra: str,
                  **env: str) -> subprocess.CompletedProcess:
    """orders v2 as Glue calls it (``--lake_root s3://<bucket> --ledger_table <table>``), in a
    process of its own whose session loads S3A; the AWS endpoint and credentials come from
    the environment."""
    return subprocess.run(
        [sys.executable, "-c", "import sys; from glue_jobs.orders.v2 import job; "
         "sys.exit(job.main(sys.argv[1:]))",
         "--JOB_NAME", "lake-dev-orders-v2", "--lake_root", f"s3://{bucket}",
         "--ledger_table", table, "--aws_region", REGION, *extra],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=600,
        env={**os.environ, "LAKE_SPARK_DIR": str(tmp / f"spark-{os.urandom(3).hex()}"), **env})
