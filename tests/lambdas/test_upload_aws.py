"""The upload path on AWS, against a moto server: POST /uploads -> presigned POST over real
HTTP -> S3 event -> SQS -> validator -> ACCEPTED or REJECTED, with the DLQ after the retry
limit, `lake dlq redrive`, SNS alerts and EMF metrics.

SQS delivery to the Lambda is played by :func:`deliver`, which does what Lambda's event
source mapping does: receive a batch, call the handler, delete the messages it did not report
as failed."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from lib.lambdas import upload_api, validator
from lib.lambdas.settings import Services, Settings, build_services
from lib.ledger.records import ACCEPTED, RECEIVED, REJECTED
from lib.tools import cli
from tests.aws_stubs import (
    REGION,
    create_ledger_table,
    foundation_resource,
    require_s3a,
    run_job_on_s3,
)
from tests.helpers import REPO

ORDERS = REPO / "samples" / "orders" / "orders_2026-11-01.csv"
BUCKET = "lake-test-raw"
EVENT_SOURCE = "lake.test.uploads"
CALLER = "arn:aws:iam::123456789012:user/alice"


class Lake:
    """The AWS side of one test: ledger table, raw bucket with its event notification to
    the upload queue (and dead-letter queue), the alert topic with an inbox queue."""

    def __init__(self, max_receive: int) -> None:
        self.s3 = boto3.client("s3")
        self.sqs = boto3.client("sqs")
        sns = boto3.client("sns")
        create_ledger_table(boto3.client("dynamodb"), "lake-test-ledger")
        self.key_arn = boto3.client("kms").create_key()["KeyMetadata"]["Arn"]
        self.dlq = self.sqs.create_queue(QueueName="lake-test-uploads-dlq")["QueueUrl"]
        dlq_arn = self._arn(self.dlq)
        self.queue = self.sqs.create_queue(QueueName="lake-test-uploads", Attributes={
            "VisibilityTimeout": "0",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn,
                                         "maxReceiveCount": max_receive})})["QueueUrl"]
        self.s3.create_bucket(Bucket=BUCKET)
        # The raw bucket's notification exactly as infra/foundation.yaml declares it.
        declared = foundation_resource("RawBucket")["NotificationConfiguration"]
        [qc] = declared["QueueConfigurations"]
        self.s3.put_bucket_notification_configuration(Bucket=BUCKET, NotificationConfiguration={
            "QueueConfigurations": [{
                "QueueArn": self._arn(self.queue), "Events": [qc["Event"]],
                "Filter": {"Key": {"FilterRules": qc["Filter"]["S3Key"]["Rules"]}}}]})
        topic = sns.create_topic(Name="lake-test-alerts")["TopicArn"]
        self.inbox = self.sqs.create_queue(QueueName="lake-test-inbox")["QueueUrl"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=self._arn(self.inbox))
        # The uploads' events, caught by a rule as the pipelines' per-dataset rules match them.
        events = boto3.client("events")
        self.events_inbox = self.sqs.create_queue(QueueName="lake-test-events")["QueueUrl"]
        events.put_rule(Name="lake-test-uploads", EventPattern=json.dumps(
            {"source": [EVENT_SOURCE], "detail-type": ["Upload Accepted"]}))
        events.put_targets(Rule="lake-test-uploads", Targets=[
            {"Id": "inbox", "Arn": self._arn(self.events_inbox)}])
        self.settings = Settings.from_env({
            "LEDGER_TABLE": "lake-test-ledger", "RAW_BUCKET": BUCKET,
            "KMS_KEY_ARN": self.key_arn, "ALERT_TOPIC_ARN": topic,
            "METRICS_NAMESPACE": "Lake/test", "EVENT_BUS_NAME": "default",
            "EVENT_SOURCE": EVENT_SOURCE})
        self.svc: Services = build_services(self.settings)
        self.drained: list[dict] = []
        # Every AWS call each function makes, to hold against its role in uploads.yaml.
        self.actor = "api"
        self.calls: dict[str, set[tuple[str, str]]] = {"api": set(), "validator": set()}
        for client in (self.svc.s3, self.svc.ledger._db, self.svc.notifier._sns,
                       self.svc.announcer._events):
            client.meta.events.register("before-parameter-build", self._record)

    def _record(self, model: Any, params: dict, **_: Any) -> None:
        if model.name == "CreateBucket":  # botocore builds a presigned POST on this model;
            return                         # the POST itself is a PutObject (added below)
        service = model.service_model.endpoint_prefix
        key = f"{params.get('Bucket', '')}/{params.get('Key', '')}"
        actions = {"HeadObject": ["s3:GetObject"], "ListObjectsV2": ["s3:ListBucket"],
                   "CopyObject": ["s3:PutObject"]}.get(model.name, [f"{service}:{model.name}"])
        if model.name == "CopyObject":  # reads the source, writes the destination
            src = params["CopySource"]  # {"Bucket", "Key"} or "bucket/key"
            source = f"{src['Bucket']}/{src['Key']}" if isinstance(src, dict) else src
            self.calls[self.actor].add(("s3:GetObject", source.split("?")[0]))
        if model.name == "TransactWriteItems":  # permission is per item operation
            actions = [f"dynamodb:{op}Item" for item in params["TransactItems"] for op in item]
        for action in actions:
            self.calls[self.actor].add((action, key if service == "s3" else ""))

    def assert_least_privilege(self) -> None:
        """Each function's calls are allowed by its role, S3 keys by the statement's prefix;
        the API's presigned POSTs are PutObjects signed with its role."""
        from fnmatch import fnmatch

        from lib.tools.infra import UPLOADS_PATH, load_template

        roles = load_template(UPLOADS_PATH)["Resources"]
        for actor, role in (("api", "UploadApiRole"), ("validator", "ValidatorRole")):
            statements = [st for p in roles[role]["Properties"]["Policies"]
                          for st in p["PolicyDocument"]["Statement"]]
            calls = set(self.calls[actor])
            if actor == "api":
                calls.add(("s3:PutObject", f"{BUCKET}/raw/orders/x/y.csv"))
            assert calls, actor
            for action, resource in sorted(calls):
                allowed = [st for st in statements if action in (
                    st["Action"] if isinstance(st["Action"], list) else [st["Action"]])]
                assert allowed, f"{role} does not allow {action}"
                if action.startswith("s3:"):
                    patterns = [json.dumps(st["Resource"]).split("${Bucket}")[1].split('"')[0]
                                .lstrip("/") for st in allowed]
                    key = resource.split("/", 1)[1] if action != "s3:ListBucket" else ""
                    assert any(fnmatch(key, p) if p else not key for p in patterns), (
                        role, action, resource, patterns)

    def _arn(self, url: str) -> str:
        return self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]

    def request(self, **body: Any) -> dict:
        self.actor = "api"
        event = {"routeKey": "POST /uploads", "body": json.dumps(body),
                 "requestContext": {"authorizer": {"iam": {"userArn": CALLER}}}}
        resp = upload_api.handler(event, None, self.svc)
        return {"http": resp["statusCode"], **json.loads(resp["body"])}

    def status(self, upload_id: str) -> dict:
        self.actor = "api"
        resp = upload_api.handler({"routeKey": "GET /uploads/{upload_id}",
                                   "pathParameters": {"upload_id": upload_id}}, None, self.svc)
        return {"http": resp["statusCode"], **json.loads(resp["body"])}

    def deliver(self) -> list[dict]:
        """One poll of the event source mapping; returns the batch failures."""
        got = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10,
                                       WaitTimeSeconds=1).get("Messages", [])
        if not got:
            return []
        event = {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"],
                              "body": m["Body"], "eventSource": "aws:sqs"} for m in got]}
        self.actor = "validator"
        failed = validator.handler(event, None, self.svc)["batchItemFailures"]
        failed_ids = {f["itemIdentifier"] for f in failed}
        for m in got:
            if m["MessageId"] not in failed_ids:
                self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=m["ReceiptHandle"])
        self.drained += got
        return failed

    def accepted_events(self) -> list[dict]:
        """Every "Upload Accepted" event put on the bus so far (drained)."""
        out = []
        while True:
            got = self.sqs.receive_message(QueueUrl=self.events_inbox, MaxNumberOfMessages=10,
                                           WaitTimeSeconds=1).get("Messages", [])
            if not got:
                return out
            for m in got:
                out.append(json.loads(m["Body"]))
                self.sqs.delete_message(QueueUrl=self.events_inbox,
                                        ReceiptHandle=m["ReceiptHandle"])

    def alerts(self) -> list[dict]:
        got = self.sqs.receive_message(QueueUrl=self.inbox, MaxNumberOfMessages=10,
                                       WaitTimeSeconds=1).get("Messages", [])
        return [json.loads(json.loads(m["Body"])["Message"]) for m in got]

    def keys(self, prefix: str = "") -> list[str]:
        return sorted(o["Key"] for o in self.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
                      .get("Contents", []))


def _request_for(data: bytes, name: str, dataset: str = "orders", **over: Any) -> dict:
    return {"dataset": dataset, "file_name": name, "size_bytes": len(data),
            "content_type": "text/csv", "sha256": hashlib.sha256(data).hexdigest(), **over}


def _post(answer: dict, data: bytes, name: str) -> requests.Response:
    """What a client does with the API's answer: a multipart POST straight to S3."""
    return requests.post(answer["upload"]["url"], data=answer["upload"]["fields"],
                         files={"file": (name, data)}, timeout=30)


def _emf(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]


def test_an_upload_goes_from_post_uploads_to_accepted(lake: Lake, capsys) -> None:
    data = ORDERS.read_bytes()
    answer = lake.request(**_request_for(data, "Orders Nov 1.csv"))
    assert answer["http"] == 201, answer
    uid = answer["upload_id"]
    key = answer["key"]
    assert key == f"raw/orders/ingest_date={uid[1:5]}-{uid[5:7]}-{uid[7:9]}/{uid}/Orders_Nov_1.csv"
    # The POST policy pins the key, the exact size, the checksum and SSE-KMS.
    fields = answer["upload"]["fields"]
    policy = json.loads(base64.b64decode(fields["policy"]))
    conditions = policy["conditions"]
    assert {"key": key} in conditions and {"bucket": BUCKET} in conditions
    assert ["content-length-range", len(data), len(data)] in conditions
    sha_b64 = base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert {"x-amz-checksum-sha256": sha_b64} in conditions
    assert {"x-amz-server-side-encryption": "aws:kms"} in conditions
    assert {"x-amz-server-side-encryption-aws-kms-key-id": lake.key_arn} in conditions
    assert lake.status(uid)["status"] == RECEIVED

    assert _post(answer, data, "Orders Nov 1.csv").status_code in (200, 201, 204)
    assert lake.deliver() == []

    record = lake.status(uid)
    assert record["http"] == 200
    assert (record["status"], record["location"], record["sha256"]) == (
        ACCEPTED, f"s3://{BUCKET}/{key}", hashlib.sha256(data).hexdigest())
    # the whole object's structure, read from the S3 stream, for the job's count check
    assert (record["record_count"], record["multiline"]) == (14, True)  # quoted line breaks
    assert [(h["from"], h["to"]) for h in record["history"]] == [(None, RECEIVED),
                                                                 (RECEIVED, ACCEPTED)]
    assert record["history"][0]["note"] == f"upload requested by {CALLER}"
    assert lake.keys() == [key]  # accepted bytes stay where the job reads them
    [line] = _emf(capsys.readouterr().out)
    assert line["_aws"]["CloudWatchMetrics"] == [{
        "Namespace": "Lake/test", "Dimensions": [["Dataset"]],
        "Metrics": [{"Name": "FilesAccepted", "Unit": "Count"}]}]
    assert (line["Dataset"], line["FilesAccepted"], line["upload_id"]) == ("orders", 1, uid)
    assert lake.alerts() == []  # nothing to report
    # one "Upload Accepted" event, which the dataset's rule sends to its Glue workflow
    [event] = lake.accepted_events()
    assert (event["source"], event["detail-type"]) == (EVENT_SOURCE, "Upload Accepted")
    assert event["detail"] == {
        "dataset": "orders", "upload_id": uid, "size_bytes": len(data), "record_count": 14,
        "file": "Orders Nov 1.csv", "location": f"s3://{BUCKET}/{key}",
        "accepted_at": record["updated_at"]}
    lake.assert_least_privilege()


def test_an_upload_goes_from_the_api_to_queryable_rows_on_s3(lake: Lake, tmp_path) -> None:
    """The whole AWS path on one local S3 endpoint: POST /uploads, the presigned POST, the
    validator (ACCEPTED, its event), then the Glue job on s3:// through S3A with the
    DynamoDB ledger, as the dataset's workflow would start it: the rows land in the clean
    and quarantine zones and the raw file in the archive, with the counts of the file://
    run of the same file (tests/jobs/test_job.py)."""
    require_s3a()
    data = ORDERS.read_bytes()
    answer = lake.request(**_request_for(data, "orders.csv"))
    assert _post(answer, data, "orders.csv").status_code in (200, 201, 204)
    assert lake.deliver() == []
    uid = answer["upload_id"]
    [event] = lake.accepted_events()
    assert event["detail"]["upload_id"] == uid

    job = run_job_on_s3(BUCKET, "lake-test-ledger", tmp_path)
    assert job.returncode == 0, job.stderr[-4000:]
    record = lake.status(uid)
    assert (record["status"], record["rows_read"], record["clean"], record["quarantined"],
            record["duplicates_removed"]) == ("ARCHIVED", 14, 4, 9, 1)
    assert [(h["from"], h["to"]) for h in record["history"]][1:] == [
        (RECEIVED, ACCEPTED), (ACCEPTED, "PROCESSING"), ("PROCESSING", "PROCESSED"),
        ("PROCESSED", "ARCHIVED")]
    keys = lake.keys()
    assert record["location"] == (f"s3://{BUCKET}/archive/orders/ingest_date="
                                  f"{record['ingest_date']}/{uid}/orders.csv")
    assert [k for k in keys if k.startswith("raw/") and not k.endswith("/")] == []
    clean = [k for k in keys if k.startswith("clean/orders/") and k.endswith(".parquet")]
    quarantine = [k for k in keys if k.startswith("quarantine/orders/")
                  and k.endswith(".parquet")]
    assert clean and quarantine
    assert all(k.rsplit("/", 1)[1].startswith(f"{uid}_{record['run_id']}_")
               for k in clean + quarantine)
    assert f"_reports/orders/{record['run_id']}.html" in keys


def test_a_bad_file_is_rejected_moved_aside_and_reported(lake: Lake, capsys) -> None:
    data = b"order_id,quantity\nO-1,2\n"  # most required columns missing
    answer = lake.request(**_request_for(data, "short.csv"))
    uid = answer["upload_id"]
    assert _post(answer, data, "short.csv").status_code in (200, 201, 204)
    assert lake.deliver() == []

    record = lake.status(uid)
    assert (record["status"], record["reason_code"]) == (REJECTED, "file.missing_columns")
    assert "customer_id" in record["reason"]
    folder = f"rejected/orders/ingest_date={record['ingest_date']}/{uid}"
    assert lake.keys() == [f"{folder}/short.csv", f"{folder}/short.csv.reason.json"]
    assert record["location"] == f"s3://{BUCKET}/{folder}/short.csv"
    reason = json.loads(lake.s3.get_object(Bucket=BUCKET, Key=f"{folder}/short.csv.reason.json")
                        ["Body"].read())
    assert (reason["upload_id"], reason["reason_code"]) == (uid, "file.missing_columns")
    assert lake.accepted_events() == []  # nothing for the workflow
    [alert] = lake.alerts()
    assert (alert["event"], alert["dataset"], alert["upload_id"], alert["reason_code"]) == (
        "upload.rejected", "orders", uid, "file.missing_columns")
    assert alert["reason"] == record["reason"]
    [line] = _emf(capsys.readouterr().out)
    assert [m["Name"] for m in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]] == [
        "FilesRejected"]
    assert (line["FilesRejected"], line["reason_code"]) == (1, "file.missing_columns")
    lake.assert_least_privilege()


def test_the_second_upload_of_the_same_bytes_is_rejected_as_a_duplicate(lake: Lake) -> None:
    data = ORDERS.read_bytes()
    first = lake.request(**_request_for(data, "a.csv"))
    _post(first, data, "a.csv")
    lake.deliver()
    second = lake.request(**_request_for(data, "b.csv"))
    _post(second, data, "b.csv")
    lake.deliver()
    record = lake.status(second["upload_id"])
    assert (record["status"], record["reason_code"]) == (REJECTED, "file.duplicate")
    assert first["upload_id"] in record["reason"]
    lake.assert_least_privilege()


def test_the_api_refuses_bad_requests_with_a_clear_body_and_records_nothing(lake: Lake) -> None:
    data = b"x" * 10
    cases = [
        (_request_for(data, "a.csv", dataset="invoices"), 400, "dataset.unknown",
         "unknown dataset 'invoices'; known datasets: customers, orders"),
        (_request_for(data, "a.csv", size_bytes=(1 << 30) + 1), 413, "file.too_large",
         "a.csv: 1.0 GiB is over the limit of 1.0 GiB for dataset 'orders'"),
        (_request_for(data, "../../etc/passwd"), 400, "file.unsafe_name",
         "path separator"),
        (_request_for(data, ".hidden.csv"), 400, "file.unsafe_name", "starts with '.'"),
        (_request_for(data, "a\x07b.csv"), 400, "file.unsafe_name", "control"),
        (_request_for(data, "a.csv", sha256="abc"), 400, "request.invalid", "64 hex digits"),
        (_request_for(data, "a.csv", size_bytes="10"), 400, "request.invalid",
         "field 'size_bytes' is a str, not a int"),
        (_request_for(data, "a.csv", content_type="application/pdf"), 400, "file.content_type",
         "'application/pdf' is not accepted"),
        ({"dataset": "orders"}, 400, "request.invalid", "field 'file_name' is missing"),
    ]
    for body, status, code, text in cases:
        answer = lake.request(**body)
        assert (answer["http"], answer["error"]) == (status, code), answer
        assert text in answer["message"]
    not_json = upload_api.handler({"routeKey": "POST /uploads", "body": "{"}, None, lake.svc)
    assert (not_json["statusCode"], json.loads(not_json["body"])["error"]) == (
        400, "request.invalid")
    unknown = lake.status("u20260101-000000000000")
    assert (unknown["http"], unknown["error"]) == (404, "upload.unknown")
    assert lake.svc.ledger.find() == []


def test_a_failing_service_answers_a_json_500_with_the_request_id(
        lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    def throttled(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("ProvisionedThroughputExceededException")
    monkeypatch.setattr(lake.svc.ledger, "create", throttled)
    resp = upload_api.handler({"routeKey": upload_api.CREATE_ROUTE,
                               "requestContext": {"requestId": "req-1"},
                               "body": json.dumps(_request_for(b"a,b\n", "a.csv"))},
                              None, lake.svc)
    assert (resp["statusCode"], json.loads(resp["body"])) == (500, {
        "error": "internal",
        "message": "the upload service failed; retry later (request id req-1)"})


def test_bytes_that_differ_from_the_declared_checksum_are_rejected(lake: Lake) -> None:
    data = ORDERS.read_bytes()
    answer = lake.request(**_request_for(data, "orders.csv"))
    # S3 itself refuses a POST whose bytes do not match x-amz-checksum-sha256; put other
    # bytes under the key directly, as a writer bypassing the POST could.
    other = data.replace(b"O-1001", b"O-9999")
    lake.s3.put_object(Bucket=BUCKET, Key=answer["key"], Body=other)
    lake.deliver()
    record = lake.status(answer["upload_id"])
    assert (record["status"], record["reason_code"]) == (REJECTED, "file.checksum")
    assert hashlib.sha256(other).hexdigest() in record["reason"]


def test_an_object_no_upload_asked_for_is_set_aside(lake: Lake) -> None:
    lake.s3.put_object(Bucket=BUCKET, Key="raw/orders/ingest_date=2026-11-22/x/y.csv",
                       Body=ORDERS.read_bytes())
    assert lake.deliver() == []
    assert lake.keys() == ["rejected/_unregistered/orders/ingest_date=2026-11-22/x/y.csv",
                           "rejected/_unregistered/orders/ingest_date=2026-11-22/x/y.csv"
                           ".reason.json"]
    [alert] = lake.alerts()
    assert alert["reason_code"] == "file.unregistered"
    lake.assert_least_privilege()


def test_an_object_under_a_real_upload_id_but_another_name_is_set_aside(lake: Lake) -> None:
    data = ORDERS.read_bytes()
    answer = lake.request(**_request_for(data, "orders.csv"))
    other = answer["key"].rsplit("/", 1)[0] + "/other.csv"  # not the key the POST allowed
    lake.s3.put_object(Bucket=BUCKET, Key=other, Body=data)
    assert lake.deliver() == []
    assert lake.keys() == [f"rejected/_unregistered/{other.removeprefix('raw/')}",
                           f"rejected/_unregistered/{other.removeprefix('raw/')}.reason.json"]
    assert lake.status(answer["upload_id"])["status"] == RECEIVED  # still waiting for its file


def test_an_event_delivered_twice_changes_nothing_the_second_time(lake: Lake) -> None:
    data = ORDERS.read_bytes()
    answer = lake.request(**_request_for(data, "orders.csv"))
    _post(answer, data, "orders.csv")
    lake.deliver()
    [message] = [m for m in lake.drained if "Records" in json.loads(m["Body"])]  # no TestEvent
    event = {"Records": [{"messageId": "again", "body": message["Body"]}]}
    assert validator.handler(event, None, lake.svc) == {"batchItemFailures": []}
    assert [h.to_status for h in lake.svc.ledger.history(answer["upload_id"])] == [
        RECEIVED, ACCEPTED]
    # one event for the one acceptance, none for the redelivery
    assert [e["detail"]["upload_id"] for e in lake.accepted_events()] == [answer["upload_id"]]


def test_failing_events_go_to_the_dlq_after_the_retry_limit_and_redrive_brings_them_back(
        lake: Lake, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    data = ORDERS.read_bytes()
    answer = lake.request(**_request_for(data, "orders.csv"))
    uid = answer["upload_id"]

    def broken(*args: Any, **kwargs: Any) -> None:
        raise ConnectionResetError("the ledger table is throttled")
    real = validator.inspect_stream
    monkeypatch.setattr(validator, "inspect_stream", broken)
    _post(answer, data, "orders.csv")
    failures = [lake.deliver() for _ in range(2)]  # maxReceiveCount = 2
    assert [len(f) for f in failures] == [1, 1]
    assert lake.deliver() == []  # the third receive finds it moved to the DLQ
    assert lake.status(uid)["status"] == RECEIVED

    # lake dlq redrive: a dry run first, which moves nothing.
    capsys.readouterr()
    assert cli.main(["dlq", "redrive", "--queue", "lake-test-uploads-dlq"]) == 0
    out = capsys.readouterr().out
    assert "waiting:           1 message(s)" in out
    assert f"s3://{BUCKET}/{answer['key']}" in out
    assert "dry run: nothing moved" in out
    assert lake.deliver() == []

    monkeypatch.setattr(validator, "inspect_stream", real)  # the fix
    assert cli.main(["dlq", "redrive", "--queue", "lake-test-uploads-dlq", "--apply"]) == 0
    assert f"moved 1 message(s) back to {lake.queue}" in capsys.readouterr().out
    assert lake.deliver() == []
    assert lake.status(uid)["status"] == ACCEPTED
    attrs = lake.sqs.get_queue_attributes(QueueUrl=lake.dlq,
                                          AttributeNames=["ApproximateNumberOfMessages"])
    assert attrs["Attributes"]["ApproximateNumberOfMessages"] == "0"


def test_redrive_names_a_missing_queue(lake: Lake, capsys) -> None:
    assert cli.main(["dlq", "redrive", "--queue", "nope"]) == 2
    assert "no queue 'nope' in this account and region" in capsys.readouterr().err


# ------------------------------------------------------------------ lake push


class ApiGateway:
    """A stand-in for the HTTP API in front of the upload function: refuses requests that
    are not SigV4-signed for execute-api, turns the others into payload 2.0 events. The
    validator runs when a status is asked for, as if S3's event had arrived meanwhile."""

    def __init__(self, lake: Lake) -> None:
        import http.server
        import threading

        gateway = self
        self.seen_auth: list[str] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                auth = self.headers.get("Authorization", "")
                gateway.seen_auth.append(auth)
                if not (auth.startswith("AWS4-HMAC-SHA256 Credential=testing/")
                        and f"/{REGION}/execute-api/aws4_request" in auth
                        and "Signature=" in auth and self.headers.get("X-Amz-Date")):
                    return self._send(403, {"message": "Forbidden"})
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = self.path
                if self.command == "GET" and path.startswith("/uploads/"):
                    lake.deliver()
                    event = {"routeKey": upload_api.STATUS_ROUTE,
                             "pathParameters": {"upload_id": path.split("/")[2]}}
                else:
                    event = {"routeKey": f"{self.command} {path}", "body": body.decode()}
                resp = upload_api.handler(event, None, lake.svc)
                self._send(resp["statusCode"], json.loads(resp["body"]))

            def _send(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def gateway(lake: Lake) -> Iterator[ApiGateway]:
    gw = ApiGateway(lake)
    yield gw
    gw.server.shutdown()


def test_lake_push_signs_its_requests_uploads_and_reports_the_outcome(
        lake: Lake, gateway: ApiGateway, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "short.csv"
    bad.write_bytes(b"order_id,quantity\nO-1,2\n")
    code = cli.main(["push", "--api", gateway.url, "--region", REGION, "--dataset", "orders",
                     "--wait", "5", str(ORDERS), str(bad)])
    out = [ln for ln in capsys.readouterr().out.splitlines()
           if not ln.startswith('{"_aws"')]  # the in-process validator's metrics
    assert code == 1  # one file rejected
    good, rejected = lake.svc.ledger.find("orders")
    assert (good.original_name, good.status) == (ORDERS.name, ACCEPTED)
    assert (rejected.original_name, rejected.status) == ("short.csv", REJECTED)
    assert out[0] == f"{good.upload_id}  ACCEPTED  {ORDERS}"
    assert out[1] == f"{rejected.upload_id}  REJECTED  {bad}"
    assert out[2].startswith("    [file.missing_columns] short.csv: missing required column(s) "
                             "['customer_id'")
    assert gateway.seen_auth and all(a.startswith("AWS4-HMAC-SHA256") for a in gateway.seen_auth)


def test_lake_push_names_the_file_and_the_refusal(lake: Lake, gateway: ApiGateway,
                                                  tmp_path: Path, capsys) -> None:
    odd = tmp_path / "data.csv"
    odd.write_bytes(b"a,b\n1,2\n")
    assert cli.main(["push", "--api", gateway.url, "--region", REGION, "--dataset", "invoices",
                     str(odd)]) == 2
    assert capsys.readouterr().err == (
        f"lake: error: {odd}: the upload API refused it (400 dataset.unknown): unknown dataset "
        "'invoices'; known datasets: customers, orders\n")


def test_every_content_type_lake_push_sends_is_one_the_api_accepts() -> None:
    from lib.tools.push import CONTENT_TYPES, content_type

    assert set(CONTENT_TYPES.values()) | {content_type(Path("x.bin"))} <= set(
        upload_api.CONTENT_TYPES)
