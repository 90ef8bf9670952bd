"""The fast lane on AWS, against a moto server: POST /uploads -> presigned POST -> validator ->
"Upload Accepted" -> the dataset's fast-lane rule and FIFO queue, as infra/pipelines.yaml
declares them -> the fast-lane Lambda's handler -> a DuckDB run on S3 with the DynamoDB
ledger: rows in both zones' buckets, the upload ARCHIVED, the report written, the partitions
registered in the Glue Data Catalog.

Lambda's event source mapping on the FIFO queue is played by :meth:`FastLane.deliver`: receive
a batch (one message group: the dataset), call the handler, delete the batch when it returns."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.client
import pytest

from lib.lambdas import fast_lane
from lib.lambdas.fast_lane import FastLaneSettings
from lib.ledger.records import ACCEPTED, ARCHIVED, FAILED, PROCESSED, PROCESSING, RECEIVED
from lib.tools.infra import TEMPLATE_PATH, load_template
from tests.aws_stubs import REGION
from tests.lambdas.test_upload_aws import BUCKET, EVENT_SOURCE, ORDERS, Lake, _post, _request_for

CLEAN, QUARANTINE = "lake-test-clean", "lake-test-quarantine"
DATABASES = {"clean": "lake_test_clean", "quarantine": "lake_test_quarantine"}


def _resolve(value: Any) -> Any:
    """The template's pattern with the test's event source for its ``Fn::Sub``."""
    if isinstance(value, dict) and "Fn::Sub" in value:
        return EVENT_SOURCE
    if isinstance(value, dict):
        return {k: _resolve(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v) for v in value]
    return value


class FastLane:
    """The orders fast lane: its rule and FIFO queue (with DLQ) as the template declares
    them, the zone buckets, the catalog's databases, and the handler's settings."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        res = load_template(TEMPLATE_PATH)["Resources"]
        rule = res["OrdersFastLaneRule"]["Properties"]
        queue = res["OrdersFastLaneQueue"]["Properties"]
        self.sqs, self.s3, self.glue = lake.sqs, lake.s3, boto3.client("glue")
        dlq = self.sqs.create_queue(QueueName="lake-test-orders-fast-lane-dlq.fifo",
                                    Attributes={"FifoQueue": "true"})["QueueUrl"]
        self.queue = self.sqs.create_queue(QueueName="lake-test-orders-fast-lane.fifo", Attributes={
            "FifoQueue": "true",
            "ContentBasedDeduplication": str(queue["ContentBasedDeduplication"]).lower(),
            "VisibilityTimeout": "0",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": lake._arn(dlq),
                                         "maxReceiveCount": queue["RedrivePolicy"]["maxReceiveCount"]}),
        })["QueueUrl"]
        events = boto3.client("events")
        events.put_rule(Name="lake-test-orders-fast-lane",
                        EventPattern=json.dumps(_resolve(rule["EventPattern"])))
        [target] = rule["Targets"]
        events.put_targets(Rule="lake-test-orders-fast-lane", Targets=[{
            "Id": target["Id"], "Arn": lake._arn(self.queue),
            "SqsParameters": target["SqsParameters"]}])
        for bucket in (CLEAN, QUARANTINE):
            self.s3.create_bucket(Bucket=bucket)
        for db in DATABASES.values():
            self.glue.create_database(DatabaseInput={"Name": db})
        env = res["OrdersFastLaneFunction"]["Properties"]["Environment"]["Variables"]
        self.cfg = FastLaneSettings.from_env({
            "DATASET": env["DATASET"], "JOB_VERSION": env["JOB_VERSION"],
            "RAW_BUCKET": BUCKET, "CLEAN_BUCKET": CLEAN, "QUARANTINE_BUCKET": QUARANTINE,
            "LEDGER_TABLE": "lake-test-ledger", "CLEAN_DATABASE": DATABASES["clean"],
            "QUARANTINE_DATABASE": DATABASES["quarantine"], "AWS_REGION": REGION,
            "EVENT_BUS_NAME": "default", "EVENT_SOURCE": EVENT_SOURCE,
            "LOCK_WAIT_SECONDS": "1"})
        self.calls: set[tuple[str, str, str]] = set()  # (action, bucket or name, key)

    def assert_least_privilege(self) -> None:
        """Every AWS call the function made is allowed by its role in the template: S3 on the
        statement's bucket and key prefix (listings by the prefix condition), Glue on the
        dataset's tables."""
        from fnmatch import fnmatch

        role = load_template(TEMPLATE_PATH)["Resources"]["OrdersFastLaneRole"]["Properties"]
        statements = [st for p in role["Policies"] for st in p["PolicyDocument"]["Statement"]]
        exports = {BUCKET: "RawBucket", CLEAN: "CleanBucket", QUARANTINE: "QuarantineBucket"}
        assert {a for a, _, _ in self.calls} >= {
            "s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket",
            "dynamodb:UpdateItem", "glue:BatchCreatePartition"}, self.calls
        for action, name, key in sorted(self.calls):
            allowed = [st for st in statements if action in st["Action"]]
            assert allowed, f"OrdersFastLaneRole does not allow {action}"
            if action == "s3:ListBucket":
                assert any(fnmatch(key, p) for st in allowed
                           for p in st["Condition"]["StringLike"]["s3:prefix"]), (action, key)
            elif action.startswith("s3:"):
                arns = [r["Fn::Sub"] for st in allowed for r in st["Resource"]]
                assert any(export["Bucket"]["Fn::ImportValue"]["Fn::Sub"].endswith(
                    exports[name]) and fnmatch(key, text.split("}/", 1)[1])
                    for text, export in arns), (action, name, key)
            elif action.startswith("glue:"):
                tables = [r["Fn::Sub"][0] for st in allowed for r in st["Resource"]
                          if ":table/" in r["Fn::Sub"][0]]
                assert any(t.endswith(f"/{name}") for t in tables), (action, name)

    def deliver(self) -> int:
        """One poll of the event source mapping; returns the number of messages handled."""
        got = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10,
                                       WaitTimeSeconds=0).get("Messages", [])
        if not got:
            return 0
        event = {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"],
                              "body": m["Body"], "eventSource": "aws:sqs"} for m in got]}
        with _recording(self.calls):
            assert fast_lane.handler(event, None, cfg=self.cfg) == {"batchItemFailures": []}
        for m in got:
            self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=m["ReceiptHandle"])
        return len(got)

    def keys(self, bucket: str) -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return sorted(o["Key"] for p in pages for o in p.get("Contents", []))


@contextlib.contextmanager
def _recording(calls: set[tuple[str, str, str]]) -> Iterator[None]:
    """Record the IAM action, bucket (or table) and key of every AWS call made meanwhile."""
    base = botocore.client.BaseClient
    original = base._make_api_call

    def record(client: Any, operation: str, params: dict) -> Any:
        service = client.meta.service_model.endpoint_prefix
        bucket, key = params.get("Bucket", ""), params.get("Key", "")
        if service == "s3":
            action = {"HeadObject": "s3:GetObject", "ListObjectsV2": "s3:ListBucket",
                      "CreateMultipartUpload": "s3:PutObject", "UploadPart": "s3:PutObject",
                      "CompleteMultipartUpload": "s3:PutObject",
                      "DeleteObjects": "s3:DeleteObject"}.get(operation, f"s3:{operation}")
            if operation == "CopyObject":
                src = params["CopySource"]
                calls.add(("s3:GetObject", src["Bucket"], src["Key"]))
                action = "s3:PutObject"
            if operation == "ListObjectsV2":
                key = params.get("Prefix", "")
            keys = [o["Key"] for o in params.get("Delete", {}).get("Objects", [])] or [key]
            for k in keys:
                calls.add((action, bucket, k))
        elif service == "dynamodb" and operation == "TransactWriteItems":
            for item in params["TransactItems"]:
                calls.update((f"dynamodb:{op}Item", "", "") for op in item)
        else:
            table = params.get("TableName") or (
                params.get("Name") or params.get("TableInput", {}).get("Name", "")
                if service == "glue" else "")
            calls.add((f"{service}:{operation}", table, ""))
        return original(client, operation, params)

    base._make_api_call = record
    try:
        yield
    finally:
        base._make_api_call = original


@pytest.fixture
def lane(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> Iterator[FastLane]:
    monkeypatch.delenv("LAKE_FAST_LANE_MAX_BYTES", raising=False)
    yield FastLane(lake)


def test_a_small_upload_goes_from_post_uploads_to_queryable_rows_through_the_fast_lane(
        lane: FastLane) -> None:
    lake = lane.lake
    data = ORDERS.read_bytes()
    t0 = time.perf_counter()
    answer = lake.request(**_request_for(data, "orders.csv"))
    assert _post(answer, data, "orders.csv").status_code in (200, 201, 204)
    assert lake.deliver() == []
    uid = answer["upload_id"]
    assert lake.status(uid)["status"] == ACCEPTED
    assert lane.deliver() == 1  # the rule put the upload's event on the fast lane's queue
    took = time.perf_counter() - t0

    record = lake.status(uid)
    # The counts of the Glue job's run of the same file (test_upload_aws.py), by DuckDB.
    assert (record["status"], record["rows_read"], record["clean"], record["quarantined"],
            record["duplicates_removed"]) == (ARCHIVED, 14, 4, 9, 1), record
    assert [(h["from"], h["to"]) for h in record["history"]] == [
        (None, RECEIVED), (RECEIVED, ACCEPTED), (ACCEPTED, PROCESSING),
        (PROCESSING, PROCESSED), (PROCESSED, ARCHIVED)]
    assert record["job_name"] == "orders_v2"
    run_id = record["run_id"]
    assert record["location"] == (f"s3://{BUCKET}/archive/orders/ingest_date="
                                  f"{record['ingest_date']}/{uid}/orders.csv")
    raw = lake.keys()
    assert not [k for k in raw if k.startswith("raw/")]
    assert f"_reports/orders/{run_id}.html" in raw and f"_reports/orders/{run_id}.json" in raw
    report = json.loads(lake.s3.get_object(Bucket=BUCKET, Key=f"_reports/orders/{run_id}.json")
                        ["Body"].read())
    assert [(u["upload_id"], u["status"]) for u in report["uploads"]] == [(uid, "processed")]
    clean = [k for k in lane.keys(CLEAN) if k.endswith(".parquet")]
    quarantine = [k for k in lane.keys(QUARANTINE) if k.endswith(".parquet")]
    assert clean and quarantine
    assert all(k.startswith("orders/") and f"/{uid}_{run_id}_duckdb-" in k
               for k in clean + quarantine)
    assert not [k for k in lane.keys(CLEAN) if k.startswith(("_commits/", "_staging/"))]
    # Registered at commit: the tables, and a partition for each folder written.
    for zone, bucket, keys in (("clean", CLEAN, clean), ("quarantine", QUARANTINE, quarantine)):
        table = lane.glue.get_table(DatabaseName=DATABASES[zone], Name="orders")["Table"]
        assert table["StorageDescriptor"]["Location"] == f"s3://{bucket}/orders"
        parts = lane.glue.get_partitions(DatabaseName=DATABASES[zone], TableName="orders")
        folders = {p["StorageDescriptor"]["Location"].rstrip("/")
                   for p in parts["Partitions"]}
        assert folders == {f"s3://{bucket}/{k.rsplit('/', 1)[0]}" for k in keys}
    lane.assert_least_privilege()
    print(f"\nfast lane on moto: upload requested -> ARCHIVED and registered in {took:.2f}s")


def test_a_burst_of_200_small_uploads_ends_archived_once_each_in_a_few_runs(
        lane: FastLane, capsys) -> None:
    """200 uploads at once: every one ARCHIVED exactly once (one PROCESSING and one ARCHIVED
    in its history, its rows once in the clean zone), in far fewer runs than uploads."""
    lake = lane.lake
    header = ORDERS.read_text(encoding="utf-8-sig").splitlines()[0]
    uploads = []
    for i in range(200):
        data = (f"{header}\nB-{i:04d},C-{i},b{i}@example.com,SKU-{i % 7:03d},1,2.50,EUR,"
                f"2026-11-0{1 + i % 3}T10:00:00Z,FR,\n").encode()
        answer = lake.request(**_request_for(data, f"burst-{i}.csv"))
        assert _post(answer, data, f"burst-{i}.csv").status_code in (200, 201, 204)
        uploads.append(answer["upload_id"])
    while lake.deliver() or lake.sqs.get_queue_attributes(
            QueueUrl=lake.queue, AttributeNames=["ApproximateNumberOfMessages"])[
            "Attributes"]["ApproximateNumberOfMessages"] != "0":
        pass
    ledger = lake.svc.ledger
    assert sorted(r.upload_id for r in ledger.find("orders", [ACCEPTED])) == sorted(uploads)
    capsys.readouterr()
    t0 = time.perf_counter()

    messages = 0
    while handled := lane.deliver():
        messages += handled
    assert messages == 200  # one event per upload, each delivered once
    took = time.perf_counter() - t0
    out = capsys.readouterr().out
    records = [lake.status(uid) for uid in uploads]
    runs = len({r["run_id"] for r in records})
    for record in records:
        transitions = [(h["from"], h["to"]) for h in record["history"]]
        assert record["status"] == ARCHIVED and record["clean"] == 1, record
        assert transitions.count((ACCEPTED, PROCESSING)) == 1
        assert transitions.count((PROCESSED, ARCHIVED)) == 1
    clean = [k for k in lane.keys(CLEAN) if k.endswith(".parquet")]
    assert sorted({k.rsplit("/", 1)[1].split("_", 1)[0] for k in clean}) == sorted(uploads)
    assert 1 <= runs <= 5 and out.count("data-quality page: s3://") == runs, out[-3000:]
    print(f"\n200 small uploads: {runs} fast-lane run(s) for {messages} events, {took:.1f}s")


def test_an_upload_the_fast_lane_cannot_finish_goes_to_the_glue_workflow_once(
        lane: FastLane, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure that is not the data's (here DuckDB out of memory, ``engine.resources``):
    FAILED with the cause in its history, and one "Uploads Pending" event for the dataset's
    Glue workflow (its rule in the template matches it); a later fast-lane event does not
    take it again."""
    lake = lane.lake
    inbox = _workflow_inbox(lake)
    data = ORDERS.read_bytes()
    answer = lake.request(**_request_for(data, "orders.csv"))
    assert _post(answer, data, "orders.csv").status_code in (200, 201, 204)
    assert lake.deliver() == []
    uid = answer["upload_id"]
    monkeypatch.setenv("LAKE_DUCKDB_MEMORY", "1MB")
    assert lane.deliver() == 1
    record = lake.status(uid)
    assert (record["status"], record["error_code"]) == (FAILED, "engine.resources"), record
    assert "ran out of memory" in record["error"]
    [event] = _received(lake, inbox)
    assert (event["detail-type"], event["detail"]["dataset"], event["detail"]["upload_ids"]) == (
        "Uploads Pending", "orders", [uid])
    assert not [k for k in lane.keys(CLEAN) if k.endswith(".parquet")]  # nothing published
    # Its event delivered again (a retry): the fast lane leaves a FAILED upload to Glue.
    monkeypatch.delenv("LAKE_DUCKDB_MEMORY")
    body = {"source": EVENT_SOURCE, "detail-type": "Upload Accepted",
            "detail": {"dataset": "orders", "upload_id": uid}}
    fast_lane.handler({"Records": [{"messageId": "m", "body": json.dumps(body)}]}, cfg=lane.cfg)
    assert lake.status(uid)["status"] == FAILED
    assert _received(lake, inbox) == []  # handed back once


def _workflow_inbox(lake: Lake) -> str:
    """A queue that receives what the dataset's pending-events rule (template) matches: the
    events that start its Glue workflow."""
    res = load_template(TEMPLATE_PATH)["Resources"]
    pattern = _resolve(res["OrdersPendingEventsRule"]["Properties"]["EventPattern"])
    events = boto3.client("events")
    inbox = lake.sqs.create_queue(QueueName="lake-test-workflow")["QueueUrl"]
    events.put_rule(Name="lake-test-orders-pending", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="lake-test-orders-pending",
                       Targets=[{"Id": "workflow", "Arn": lake._arn(inbox)}])
    return inbox


def _received(lake: Lake, queue: str) -> list[dict]:
    got = lake.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
                                   WaitTimeSeconds=1).get("Messages", [])
    return [json.loads(m["Body"]) for m in got]


def test_uploads_of_a_fast_lane_run_that_died_go_to_the_glue_workflow_once(
        lane: FastLane) -> None:
    """A run stopped mid-way (the function's timeout) leaves its upload PROCESSING; the
    dataset's next fast-lane run fails it as interrupted (its cause in its history) and
    hands it to the Glue workflow, and processes its own upload; a later run does not
    hand it back again."""
    lake = lane.lake
    inbox = _workflow_inbox(lake)
    ids = []
    for name in ("first.csv", "second.csv"):
        data = ORDERS.read_bytes().replace(b"O-1001", f"O-{name}".encode())
        answer = lake.request(**_request_for(data, name))
        assert _post(answer, data, name).status_code in (200, 201, 204)
        ids.append(answer["upload_id"])
    assert lake.deliver() == []
    dead, alive = ids
    # The invocation that died had taken the first event and claimed its upload.
    [taken] = lake.sqs.receive_message(QueueUrl=lane.queue, MaxNumberOfMessages=1)["Messages"]
    assert json.loads(taken["Body"])["detail"]["upload_id"] == dead
    lake.sqs.delete_message(QueueUrl=lane.queue, ReceiptHandle=taken["ReceiptHandle"])
    lake.svc.ledger.transition(dead, PROCESSING, expected=(ACCEPTED,), note="claimed",
                               run_id="20261203T000000Z-dead00", job_name="orders_v2",
                               job_version=2)
    assert lane.deliver() == 1
    died = lake.status(dead)
    assert (died["status"], died["error_code"]) == (FAILED, "run.interrupted"), died
    assert "run 20261203T000000Z-dead00 ended before publishing this upload" in died["error"]
    assert lake.status(alive)["status"] == ARCHIVED
    [event] = _received(lake, inbox)
    assert (event["detail-type"], event["detail"]["upload_ids"]) == ("Uploads Pending", [dead])
    # its event delivered again (SQS, after the visibility timeout), and another upload's
    # run later: the dead one is the Glue workflow's already
    fast_lane.handler({"Records": [{"messageId": taken["MessageId"], "body": taken["Body"]}]},
                      cfg=lane.cfg)
    assert lake.status(dead)["status"] == FAILED
    data = ORDERS.read_bytes().replace(b"O-1001", b"O-third")
    answer = lake.request(**_request_for(data, "third.csv"))
    assert _post(answer, data, "third.csv").status_code in (200, 201, 204)
    assert lake.deliver() == []
    assert lane.deliver() == 1
    assert lake.status(answer["upload_id"])["status"] == ARCHIVED
    assert _received(lake, inbox) == []


def test_duckdb_gets_60_percent_of_the_functions_memory_unless_told() -> None:
    env = {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "2048"}
    assert fast_lane.duckdb_memory(env) == "1228MB" == env["LAKE_DUCKDB_MEMORY"]
    told = {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "2048", "LAKE_DUCKDB_MEMORY": "500MB"}
    assert fast_lane.duckdb_memory(told) == "500MB"
    assert fast_lane.duckdb_memory({}) is None  # not on Lambda: the engine's default


def test_the_functions_settings_name_what_is_missing_or_wrong() -> None:
    with pytest.raises(Exception, match="CLEAN_BUCKET, .*QUARANTINE_DATABASE not set"):
        FastLaneSettings.from_env({"DATASET": "orders", "JOB_VERSION": "2", "RAW_BUCKET": "r",
                                   "QUARANTINE_BUCKET": "q", "LEDGER_TABLE": "t",
                                   "CLEAN_DATABASE": "c"})
    full = {"DATASET": "orders", "JOB_VERSION": "v2", "RAW_BUCKET": "r", "CLEAN_BUCKET": "c",
            "QUARANTINE_BUCKET": "q", "LEDGER_TABLE": "t", "CLEAN_DATABASE": "cd",
            "QUARANTINE_DATABASE": "qd"}
    with pytest.raises(Exception, match="JOB_VERSION must be a job version number, got 'v2'"):
        FastLaneSettings.from_env(full)
    cfg = FastLaneSettings.from_env({**full, "JOB_VERSION": "2"})
    assert (cfg.job_args["lake_root"], cfg.job_args["clean_root"],
            cfg.job_args["quarantine_root"]) == ("s3://r", "s3://c", "s3://q")


def test_a_message_that_is_no_upload_event_of_the_dataset_is_skipped_not_retried(
        caplog) -> None:
    """A poison message would hold the dataset's message group for three visibility
    timeouts: it is logged and skipped."""
    bodies = [{"detail": {"dataset": "orders", "upload_id": "u1"}},
              {"detail": {"dataset": "customers", "upload_id": "u2"}},
              {"detail": {"dataset": "orders"}}, {"detail": {"dataset": "orders",
                                                             "upload_id": "u1"}}]
    event = {"Records": [{"messageId": f"m{i}", "body": json.dumps(b)}
                         for i, b in enumerate(bodies)]}
    assert fast_lane.accepted_uploads(event, "orders") == ["u1"]
    assert "message m1 is no Upload Accepted event of orders (dataset 'customers'" in caplog.text
    assert "message m2 is no Upload Accepted event of orders (dataset 'orders', upload None)" \
        in caplog.text
