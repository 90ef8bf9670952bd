"""The job's S3 path, run end to end: the lake root is ``s3://`` on a local S3 endpoint
(moto's server), read and written through Hadoop's S3A connector exactly as Glue calls the
job (``--lake_root s3://... --ledger_table ...``), with the ledger on moto's DynamoDB. It
must leave the same rows, counts and ledger states as the ``file://`` run of the same file.

The job runs in its own process: its SparkSession loads the S3A connector (``make jars``)."""

from __future__ import annotations

import io
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import boto3
import pyarrow.parquet as pq
import pytest
import requests
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

from glue_jobs.orders.v2 import job as orders_v2
from lib.jobs.s3a import S3A_JARS, jars_dir
from lib.ledger.dynamo import DynamoLedger
from lib.ledger.records import ACCEPTED, UploadRecord
from tests.aws_stubs import REGION, create_ledger_table
from tests.helpers import REPO, SAMPLES, run

BUCKET = "lake-s3-test"
SOURCE = SAMPLES / "orders_2026-11-01.csv"
BUSINESS = ["order_id", "customer_id", "customer_email", "product_sku", "quantity",
            "unit_price", "currency", "order_ts", "country", "discount_pct", "total_amount"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    missing = [j.file_name for j in S3A_JARS if not (jars_dir() / j.file_name).is_file()]
    if missing:
        pytest.fail(f"the S3A connector is not in {jars_dir()} ({', '.join(missing)}): "
                    "`make test` fetches it (`make jars`)")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    requests.post(f"{env['AWS_ENDPOINT_URL']}/moto-api/reset", timeout=10)
    yield env
    server.stop()


def _rows(tables: list) -> list[tuple]:
    out = []
    for t in tables:
        d = t.to_pydict()
        out += [tuple(d[c][i] for c in BUSINESS if c in d) for i in range(t.num_rows)]
    return sorted(out, key=repr)


def test_the_job_runs_on_s3_through_s3a_as_on_file(spark, s3_env, tmp_path) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    table = create_ledger_table(boto3.client("dynamodb"))
    ledger = DynamoLedger(table)
    key = f"raw/orders/ingest_date=2026-11-21/u-s3/{SOURCE.name}"
    s3.put_object(Bucket=BUCKET, Key=key, Body=SOURCE.read_bytes())
    ledger.create(UploadRecord(upload_id="u-s3", dataset="orders", original_name=SOURCE.name,
                               stored_name=SOURCE.name, size_bytes=SOURCE.stat().st_size,
                               sha256="sha-u-s3", ingest_date="2026-11-21"))
    ledger.transition("u-s3", ACCEPTED, location=f"s3://{BUCKET}/{key}")

    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from glue_jobs.orders.v2 import job; "
         "sys.exit(job.main(sys.argv[1:]))",
         "--JOB_NAME", "lake-dev-orders-v2", "--lake_root", f"s3://{BUCKET}",
         "--ledger_table", table, "--aws_region", REGION],
        capture_output=True, text=True, cwd=REPO, timeout=600,
        env={**os.environ, **s3_env, "LAKE_SPARK_DIR": str(tmp_path / "spark")})
    assert proc.returncode == 0, proc.stderr[-4000:]

    record = ledger.get("u-s3")
    assert (record.status, record.rows_read, record.clean, record.quarantined,
            record.duplicates_removed) == ("ARCHIVED", 14, 4, 9, 1)
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"])
    assert f"archive/orders/ingest_date=2026-11-21/u-s3/{SOURCE.name}" in keys
    assert key not in keys  # archived, not copied
    # Nothing staged or journalled is left; S3A keeps an empty marker for a folder it
    # emptied (clean/_staging/orders/), which readers and crawlers skip (a `_` folder).
    assert not [k for k in keys if ("/_staging/" in k or "/_commits/" in k)
                and not k.endswith("/")]
    clean_keys = [k for k in keys if k.startswith("clean/orders/")]
    assert all(k.rsplit("/", 1)[1].startswith(f"u-s3_{record.run_id}_") for k in clean_keys)

    def read(prefix: str) -> list:
        return [pq.read_table(io.BytesIO(s3.get_object(Bucket=BUCKET, Key=k)["Body"].read()))
                for k in keys if k.startswith(prefix) and k.endswith(".parquet")]

    # The same file through the file:// lake gives the same rows in both zones.
    local = tmp_path / "lake"
    run(orders_v2, "orders_v2", local, SOURCE)
    local_clean = [pq.read_table(p) for p in sorted((local / "clean" / "orders").rglob("*.parquet"))]
    local_quarantine = [pq.read_table(p) for p in
                        sorted((local / "quarantine" / "orders").rglob("*.parquet"))]
    assert sorted(k.split("/")[2] for k in clean_keys) == sorted(  # one file per partition
        p.parent.name for p in (local / "clean" / "orders").rglob("*.parquet"))
    assert _rows(read("clean/orders/")) == _rows(local_clean)
    assert len(_rows(read("quarantine/orders/"))) == 9
    assert _rows(read("quarantine/orders/")) == _rows(local_quarantine)
    report = f"_reports/orders/{record.run_id}.json"
    assert report in keys and f"_reports/orders/{record.run_id}.html" in keys
