"""The job's S3 path, run end to end: the lake root is ``s3://`` on a local S3 endpoint
(moto's server), read and written through Hadoop's S3A connector exactly as Glue calls the
job (``--lake_root s3://... --ledger_table ...``), with the ledger on moto's DynamoDB. It
must leave the same rows, counts and ledger states as the ``file://`` run of the same file.

The job runs in its own process: its SparkSession loads the S3A connector (``make jars``)."""

from __future__ import annotations

import io
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import boto3
import pyarrow.parquet as pq
import pytest
import requests

from glue_jobs.orders.v2 import job as orders_v2
from lib.ledger.dynamo import DynamoLedger
from lib.ledger.records import ACCEPTED, UploadRecord
from tests.aws_stubs import (
    REGION,
    S3Requests,
    create_ledger_table,
    moto_server,
    require_s3a,
    run_job_on_s3,
)
from tests.helpers import SAMPLES, run

BUCKET = "lake-s3-test"
SOURCE = SAMPLES / "orders_2026-11-01.csv"
BUSINESS = ["order_id", "customer_id", "customer_email", "product_sku", "quantity",
            "unit_price", "currency", "order_ts", "country", "discount_pct", "total_amount"]


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    require_s3a()
    with moto_server() as (server, endpoint):
        env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
               "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        requests.post(f"{endpoint}/moto-api/reset", timeout=10)
        yield {"server": server, **env}


def run_on_s3(table: str, tmp: Path, *extra: str, **env: str) -> subprocess.CompletedProcess:
    return run_job_on_s3(BUCKET, table, tmp, *extra, **env)


def land_on_s3(s3, ledger: DynamoLedger, uid: str = "u-s3") -> str:  # noqa: ANN001
    key = f"raw/orders/ingest_date=2026-11-21/{uid}/{SOURCE.name}"
    s3.put_object(Bucket=BUCKET, Key=key, Body=SOURCE.read_bytes())
    ledger.create(UploadRecord(upload_id=uid, dataset="orders", original_name=SOURCE.name,
                               stored_name=SOURCE.name, size_bytes=SOURCE.stat().st_size,
                               sha256=f"sha-{uid}", ingest_date="2026-11-21"))
    ledger.transition(uid, ACCEPTED, location=f"s3://{BUCKET}/{key}")
    return key


def keys_of(s3) -> list[str]:  # noqa: ANN001
    return sorted(o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=BUCKET) for o in page.get("Contents", []))


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
    key = land_on_s3(s3, ledger)

    recording = S3Requests(s3_env["server"])
    proc = run_on_s3(table, tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    requests_made = recording.stop()

    record = ledger.get("u-s3")
    assert (record.status, record.rows_read, record.clean, record.quarantined,
            record.duplicates_removed) == ("ARCHIVED", 14, 4, 9, 1)
    keys = keys_of(s3)
    assert f"archive/orders/ingest_date=2026-11-21/u-s3/{SOURCE.name}" in keys
    assert key not in keys  # archived, not copied
    # No intent or journal is left; S3A keeps an empty marker for a folder it emptied
    # (clean/_commits/orders/), which readers and crawlers skip (a `_` folder).
    assert not [k for k in keys if "/_commits/" in k and not k.endswith("/")]
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
    assert f"_reports/orders/{record.run_id}.json" in keys
    assert f"_reports/orders/{record.run_id}.html" in keys

    # What publishing costs on S3: each Parquet byte is written once, by one PUT under its
    # final name, and never copied. The only server-side copies (S3A's rename) are the raw
    # file into the archive and the two small records (intent, journal) into place.
    files = [k for k in keys if k.startswith(("clean/orders/", "quarantine/orders/"))
             and k.endswith(".parquet")]
    published = sum(s3.head_object(Bucket=BUCKET, Key=k)["ContentLength"] for k in files)
    assert requests_made["parquet bytes put"] == published
    assert sorted(recording.copied) == sorted([
        f"archive/orders/ingest_date=2026-11-21/u-s3/{SOURCE.name}",
        f"clean/_commits/orders/{record.run_id}.intent.json",
        f"clean/_commits/orders/{record.run_id}.json"])
    print("S3 requests of one run of one upload:", json.dumps(
        {**requests_made, "bytes published": published, "files published": len(files)},
        sort_keys=True))


def test_on_s3_a_reprocess_replaces_exactly_its_objects_and_a_killed_publish_recovers(
        spark, s3_env, tmp_path) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    table = create_ledger_table(boto3.client("dynamodb"))
    ledger = DynamoLedger(table)
    land_on_s3(s3, ledger, "u-1")
    assert run_on_s3(table, tmp_path).returncode == 0
    first = ledger.get("u-1").run_id
    before = [k for k in keys_of(s3) if k.startswith("clean/orders/")]
    assert before and all(f"u-1_{first}_" in k for k in before)

    # Reprocess, killed after its first delete of an older file: the journal is committed,
    # and both runs' files are in the zones.
    died = run_on_s3(table, tmp_path, "--upload_ids", '["u-1"]', LAKE_CRASH_AT="publishing")
    assert died.returncode == 86, died.stderr[-3000:]
    assert [k for k in keys_of(s3) if k.startswith("clean/_commits/") and k.endswith(".json")]
    # The dead run's lease on the dataset lapses (5 minutes on AWS; here at once) ...
    boto3.client("dynamodb").update_item(
        TableName=table, Key={"pk": {"S": "lock#orders"}},
        UpdateExpression="SET lease_until = :t", ExpressionAttributeValues={":t": {"N": "0"}})
    # ... and the next run completes that journal before anything else.
    assert run_on_s3(table, tmp_path).returncode == 0
    record = ledger.get("u-1")
    assert record.status == "ARCHIVED" and record.run_id != first
    after = [k for k in keys_of(s3) if k.startswith("clean/orders/")]
    assert len(after) == len(before)  # replaced, not added to
    assert all(f"u-1_{record.run_id}_" in k for k in after)
    assert not [k for k in keys_of(s3) if k.startswith("clean/_commits/")
                and k.endswith(".json")]
