"""The Glue job with its AWS wiring, against moto: the input list from the DynamoDB ledger
(exactly as from SQLite locally), EMF metrics of the run and an SNS alert per FAILED upload.
The lake zones are local folders; only the ledger, topic and metrics are AWS's."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from glue_jobs.orders.v2 import job
from lib.contracts.contract import load_contract
from lib.jobs.run import process_uploads
from lib.jobs.runtime import JobArgumentError
from lib.jobs.spark_rows import SparkRows
from lib.lake.paths import LakePaths, to_uri
from lib.ledger.dynamo import DynamoLedger
from lib.ledger.records import ACCEPTED, UploadRecord
from lib.tools import cli
from tests.aws_stubs import REGION, create_ledger_table
from tests.helpers import SAMPLES


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        table = create_ledger_table(boto3.client("dynamodb"))
        sns, sqs = boto3.client("sns"), boto3.client("sqs")
        topic = sns.create_topic(Name="alerts")["TopicArn"]
        inbox = sqs.create_queue(QueueName="inbox")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        yield {"table": table, "topic": topic, "inbox": inbox, "sqs": sqs,
               "ledger": DynamoLedger(table)}


def _accepted(ledger: DynamoLedger, lake: Path, src: Path, uid: str) -> None:
    dest = lake / "raw" / "orders" / "ingest_date=2026-11-21" / uid / src.name
    if src.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
    ledger.create(UploadRecord(upload_id=uid, dataset="orders", original_name=src.name,
                               stored_name=src.name, size_bytes=1, sha256=f"sha-{uid}",
                               ingest_date="2026-11-21"))
    ledger.transition(uid, ACCEPTED, location=f"{to_uri(lake / 'raw' / 'orders')}/"
                                              f"ingest_date=2026-11-21/{uid}/{src.name}")


def test_the_job_takes_its_input_from_the_dynamodb_ledger_and_reports(
        spark, aws, tmp_path, capsys, monkeypatch) -> None:
    lake = tmp_path / "lake"
    ledger: DynamoLedger = aws["ledger"]
    _accepted(ledger, lake, SAMPLES / "orders_2026-11-01.csv", "u-good")
    _accepted(ledger, lake, tmp_path / "vanished.csv", "u-gone")  # its file is missing
    monkeypatch.delenv("AWS_DEFAULT_REGION")  # the job is told its region (--aws_region)
    code = job.main(["--JOB_NAME", "lake-dev-orders-v2", "--lake_root", to_uri(lake),
                     "--ledger_table", aws["table"], "--alert_topic_arn", aws["topic"],
                     "--metrics_namespace", "Lake/test", "--aws_region", REGION])
    assert code == 1  # one upload failed
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    good, gone = ledger.get("u-good"), ledger.get("u-gone")
    assert (good.status, good.rows_read, good.clean, good.quarantined,
            good.duplicates_removed) == ("ARCHIVED", 14, 4, 9, 1)
    assert good.location.endswith("/archive/orders/ingest_date=2026-11-21/u-good/"
                                  "orders_2026-11-01.csv")
    assert gone.status == "FAILED" and gone.error_code
    assert (lake / "clean" / "orders").is_dir()

    [line] = [json.loads(x) for x in capsys.readouterr().out.splitlines()
              if x.startswith('{"_aws"')]
    [directive] = line["_aws"]["CloudWatchMetrics"]
    assert (directive["Namespace"], directive["Dimensions"]) == ("Lake/test", [["Dataset"]])
    assert [m["Name"] for m in directive["Metrics"]] == [
        "RowsRead", "RowsClean", "RowsQuarantined", "DuplicatesRemoved", "UploadsProcessed",
        "UploadsFailed", "QualityWarnings", "QualityFailures", "RunsFailed", "RunDuration"]
    assert {m["Name"]: m["Unit"] for m in directive["Metrics"]}["RunDuration"] == "Seconds"
    assert ({k: line[k] for k in ("Dataset", "RowsRead", "RowsClean", "RowsQuarantined",
                                  "DuplicatesRemoved", "UploadsProcessed", "UploadsFailed",
                                  "QualityWarnings", "QualityFailures", "RunsFailed", "job")}
            == {"Dataset": "orders", "RowsRead": 14, "RowsClean": 4, "RowsQuarantined": 9,
                "DuplicatesRemoved": 1, "UploadsProcessed": 1, "UploadsFailed": 1,
                "QualityWarnings": 0, "QualityFailures": 0, "RunsFailed": 1,
                "job": "lake-dev-orders-v2"})
    assert line["RunDuration"] > 0

    got = aws["sqs"].receive_message(QueueUrl=aws["inbox"], MaxNumberOfMessages=10)["Messages"]
    [alert] = [json.loads(json.loads(m["Body"])["Message"]) for m in got]
    assert (alert["event"], alert["dataset"], alert["upload_id"], alert["reason_code"]) == (
        "upload.failed", "orders", "u-gone", gone.error_code)
    assert alert["reason"] == gone.error
    assert (alert["job"], alert["run_id"]) == ("lake-dev-orders-v2", gone.run_id)
    page = to_uri(lake / "_reports" / "orders" / f"{gone.run_id}.html")
    assert alert["report"] == page and (lake / "_reports" / "orders" /
                                        f"{gone.run_id}.html").is_file()

    # An operator reads the deployed ledger with the same command as the local one.
    assert cli.main(["status", "--ledger-table", aws["table"], "--format", "ids"]) == 0
    assert capsys.readouterr().out.split() == ["u-good", "u-gone"]
    assert cli.main(["status", "--ledger-table", aws["table"], "u-gone"]) == 0
    shown = capsys.readouterr().out
    assert "status:             FAILED" in shown and "PROCESSING -> FAILED" in shown


def test_uploads_accepted_during_a_run_are_announced_for_the_next_one(
        spark, aws, tmp_path) -> None:
    """The run takes u-1 (as if it had started before u-2 arrived); u-2 is still ACCEPTED
    when it ends, so one "Uploads Pending" event names it for the dataset's rule."""
    lake = tmp_path / "lake"
    ledger: DynamoLedger = aws["ledger"]
    events, sqs = boto3.client("events"), aws["sqs"]
    inbox = sqs.create_queue(QueueName="events")["QueueUrl"]
    events.put_rule(Name="orders-uploads", EventPattern=json.dumps(
        {"source": ["lake.dev.uploads"], "detail-type": ["Uploads Pending"],
         "detail": {"dataset": ["orders"]}}))
    events.put_targets(Rule="orders-uploads", Targets=[{"Id": "inbox", "Arn": sqs.get_queue_attributes(
        QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]}])
    _accepted(ledger, lake, SAMPLES / "orders_2026-11-01.csv", "u-1")
    _accepted(ledger, lake, SAMPLES / "orders_2026-11-02.csv.gz", "u-2")
    argv = ["--JOB_NAME", "lake-dev-orders-v2", "--lake_root", to_uri(lake),
            "--ledger_table", aws["table"], "--event_bus_name", "default",
            "--event_source", "lake.dev.uploads", "--aws_region", REGION]
    assert job.main([*argv, "--upload_ids", json.dumps(["u-1"])]) == 0
    got = sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10)["Messages"]
    [event] = [json.loads(m["Body"]) for m in got]
    assert (event["source"], event["detail-type"]) == ("lake.dev.uploads", "Uploads Pending")
    assert event["detail"] == {"dataset": "orders", "upload_ids": ["u-2"], "count": 1,
                               "after_run": ledger.get("u-1").run_id}
    for m in got:
        sqs.delete_message(QueueUrl=inbox, ReceiptHandle=m["ReceiptHandle"])
    assert job.main(argv) == 0  # takes u-2; nothing left waiting: no event
    assert ledger.get("u-2").status == "ARCHIVED"
    assert sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10).get("Messages", []) == []


def test_the_job_refuses_a_bad_retention(spark, aws, tmp_path) -> None:
    with pytest.raises(JobArgumentError, match="--ledger_retention_days must be a positive "
                                               "number of days, got '0'"):
        job.main(["--JOB_NAME", "j", "--lake_root", to_uri(tmp_path), "--ledger_table",
                  aws["table"], "--ledger_retention_days", "0"])


class LaggingIndexLedger(DynamoLedger):
    """A ledger whose index has not caught up yet: it does not list PROCESSED uploads, as a
    GSI may not in the first moments after the write."""

    def find(self, dataset=None, statuses=None):
        return [r for r in super().find(dataset, statuses) if r.status != "PROCESSED"]


def test_a_run_archives_what_it_processed_even_before_the_index_lists_it(
        spark, aws, tmp_path) -> None:
    lake = tmp_path / "lake"
    ledger = LaggingIndexLedger(aws["table"])
    _accepted(ledger, lake, SAMPLES / "orders_2026-11-01.csv", "u-1")
    report = process_uploads(SparkRows(spark), load_contract("orders", 2), LakePaths.from_root(lake),
                             ledger, job_name="orders-v2", job_version=2)
    assert [u.upload_id for u in report.processed] == ["u-1"]
    assert ledger.get("u-1").status == "ARCHIVED"
