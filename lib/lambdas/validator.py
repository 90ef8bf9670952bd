"""The validator Lambda: raw/ ObjectCreated events, through SQS, to ACCEPTED or REJECTED.

For each object under ``raw/<dataset>/ingest_date=D/<upload_id>/<name>`` it runs the checks
``lake upload`` runs (:func:`lib.upload.inspect_stream`), reading the object as a stream,
plus the checksum declared when the upload was requested:

* accepted: the object stays where it is and the upload becomes ACCEPTED (with its SHA-256
  claim, so the same bytes cannot be accepted twice), and an ``Upload Accepted`` event goes
  to EventBridge (:mod:`lib.ledger.announce`), which starts the dataset's workflow after its
  batching condition: once per upload, never for a rejected one or a redelivered message;
* rejected: the object is copied to ``rejected/<dataset>/ingest_date=D/<upload_id>/`` beside
  ``<name>.reason.json``, the upload becomes REJECTED with its reason, the raw object is
  deleted, and an SNS message names the dataset, the upload and the reason.

An object that belongs to no upload of the ledger (written to raw/ without ``POST /uploads``)
is moved to ``rejected/_unregistered/`` with a reason file and reported the same way.

Each step is idempotent, so a message delivered twice, or retried after a crash half-way,
ends in the same state. A message that fails is reported back (partial batch response) and
retried by SQS up to the queue's ``maxReceiveCount``, then goes to the dead-letter queue.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import unquote_plus

from lib.contracts.contract import load_contract
from lib.contracts.header import printable
from lib.lake import metrics
from lib.lambdas.settings import Services, lake_paths, object_key, open_object, services
from lib.ledger.records import (
    ACCEPTED,
    RECEIVED,
    REJECTED,
    ConflictError,
    DuplicateContentError,
    IllegalTransition,
    UnknownUploadError,
    UploadRecord,
    utc_now,
)
from lib.upload.checks import UploadRejected, duplicate_message, inspect_stream, upload_limit
from lib.upload.landing import rejection_document

log = logging.getLogger("lake.validator")
log.setLevel(logging.INFO)

UNREGISTERED = "file.unregistered"


def s3_objects(body: str) -> list[tuple[str, str, int]]:
    """(bucket, key, size) of each ObjectCreated record in an S3 event notification."""
    event = json.loads(body)
    if event.get("Event") == "s3:TestEvent":
        return []
    out = []
    for r in event.get("Records", []):
        if not str(r.get("eventName", "")).startswith("ObjectCreated:"):
            continue
        obj = r["s3"]["object"]
        out.append((r["s3"]["bucket"]["name"], unquote_plus(obj["key"]), int(obj.get("size", 0))))
    return out


def _upload_id(key: str) -> str | None:
    """The upload id segment of a ``raw/<dataset>/ingest_date=D/<upload_id>/<name>`` key."""
    parts = key.split("/")
    return parts[3] if len(parts) == 5 and parts[0] == "raw" and parts[3] else None


def _exists(svc: Services, bucket: str, key: str) -> bool:
    try:
        svc.s3.head_object(Bucket=bucket, Key=key)
    except svc.s3.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def _set_aside(svc: Services, bucket: str, key: str, dest_key: str, reason: dict) -> None:
    """Copy the object to ``dest_key`` with its reason beside it (both idempotent)."""
    svc.s3.copy({"Bucket": bucket, "Key": key}, bucket, dest_key)
    svc.s3.put_object(Bucket=bucket, Key=f"{dest_key}.reason.json",
                      Body=(json.dumps(reason, indent=2) + "\n").encode("utf-8"),
                      ContentType="application/json")


def validate_object(svc: Services, bucket: str, key: str) -> str:
    """Check one raw object and record the outcome; returns the upload's status."""
    upload_id = _upload_id(key)
    record: UploadRecord | None = None
    if upload_id is not None:
        try:
            record = svc.ledger.get(upload_id)
        except UnknownUploadError:
            record = None
        landed = lake_paths(svc.settings).landed
        if record is not None and key != object_key(bucket, landed(
                record.dataset, record.ingest_date, record.upload_id, record.stored_name)):
            record = None  # the id is real, the object is not the one its POST allowed
    if record is None:
        return _unregistered(svc, bucket, key)
    if record.status != RECEIVED:
        if record.status == REJECTED and _exists(svc, bucket, key):
            svc.s3.delete_object(Bucket=bucket, Key=key)  # finish an interrupted rejection
        log.info("upload %s is already %s; nothing to do for s3://%s/%s", record.upload_id,
                 record.status, bucket, key)
        return record.status
    contract = load_contract(record.dataset)
    size = svc.s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
    try:
        check = inspect_stream(
            lambda: open_object(svc.s3, bucket, key), size, contract,
            max_bytes=upload_limit(contract, svc.settings.max_upload_bytes), ledger=svc.ledger,
            source=printable(record.original_name), expected_sha256=record.sha256 or None)
        if check.compressed != record.stored_name.endswith(".gz"):
            raise UploadRejected("file.format", _compression_mismatch(record, check.compressed))
    except UploadRejected as exc:
        return _reject(svc, bucket, key, record, exc, exc.sha256 or record.sha256)
    try:
        accepted = svc.ledger.transition(
            record.upload_id, ACCEPTED, expected=(RECEIVED,), note="passed the file checks",
            sha256=check.sha256, location=f"s3://{bucket}/{key}", warnings=check.warnings,
            **check.ledger_fields())
    except DuplicateContentError as exc:  # the same bytes were accepted meanwhile
        earlier = svc.ledger.get(exc.existing_id)
        return _reject(svc, bucket, key, record, UploadRejected(
            "file.duplicate", duplicate_message(record.original_name, earlier)), check.sha256)
    except (ConflictError, IllegalTransition) as exc:  # another delivery of this event won
        log.info("upload %s: %s", record.upload_id, exc)
        return svc.ledger.get(record.upload_id).status
    metrics.emit(svc.settings.metrics_namespace, record.dataset,
                 {metrics.FILES_ACCEPTED: (1, metrics.COUNT)},
                 {"upload_id": record.upload_id, "size_bytes": size})
    # Once: only the delivery whose conditional write made the upload ACCEPTED gets here.
    svc.announcer.upload_accepted(accepted)
    log.info("upload %s ACCEPTED: s3://%s/%s", record.upload_id, bucket, key)
    return accepted.status


def _compression_mismatch(record: UploadRecord, compressed: bool) -> str:
    if compressed:
        return (f"{record.original_name}: the content is gzip-compressed but the name does not "
                "end in .gz; request the upload again with the file's real name")
    return (f"{record.original_name}: the name ends in .gz but the content is not "
            "gzip-compressed; request the upload again without .gz")


def _reject(svc: Services, bucket: str, key: str, record: UploadRecord, exc: UploadRejected,
            sha256: str) -> str:
    record.sha256 = sha256
    dest_uri = lake_paths(svc.settings).set_aside(record.dataset, record.ingest_date,
                                                  record.upload_id, record.stored_name)
    _set_aside(svc, bucket, key, object_key(bucket, dest_uri),
               rejection_document(record, exc, kept=True))
    try:
        rejected = svc.ledger.transition(
            record.upload_id, REJECTED, expected=(RECEIVED,), note=exc.code,
            reason_code=exc.code, reason=exc.message, location=dest_uri, sha256=sha256)
    except (ConflictError, IllegalTransition) as err:
        log.info("upload %s: %s", record.upload_id, err)
        return svc.ledger.get(record.upload_id).status
    svc.s3.delete_object(Bucket=bucket, Key=key)
    svc.notifier.upload_event(rejected)
    metrics.emit(svc.settings.metrics_namespace, record.dataset,
                 {metrics.FILES_REJECTED: (1, metrics.COUNT)},
                 {"upload_id": record.upload_id, "reason_code": exc.code})
    log.info("upload %s REJECTED [%s]: %s", record.upload_id, exc.code, exc.message)
    return REJECTED


def _unregistered(svc: Services, bucket: str, key: str) -> str:
    # Any key may land here (S3 allows empty segments), so it is kept as it is.
    rejected_zone = object_key(bucket, lake_paths(svc.settings).rejected)
    dest = f"{rejected_zone}/_unregistered/{key.removeprefix('raw/')}"
    message = (f"s3://{bucket}/{key} belongs to no upload in the ledger: files enter raw/ "
               "only through POST /uploads and its presigned POST")
    _set_aside(svc, bucket, key, dest, {"key": key, "status": REJECTED,
                                        "reason_code": UNREGISTERED, "reason": message,
                                        "at": utc_now()})
    svc.s3.delete_object(Bucket=bucket, Key=key)
    svc.notifier.upload_event(UploadRecord(
        upload_id="-", dataset=key.split("/")[1] if key.count("/") > 1 else "-",
        original_name=key.rsplit("/", 1)[-1], stored_name="", size_bytes=0, sha256="",
        status=REJECTED, reason_code=UNREGISTERED, reason=message,
        location=f"s3://{bucket}/{dest}", updated_at=utc_now()))
    log.warning(message)
    return REJECTED


def handler(event: dict, context: Any = None, svc: Services | None = None) -> dict:
    """SQS batch -> partial batch response: the ids of the messages to retry."""
    svc = svc or services()
    failures = []
    for message in event.get("Records", []):
        try:
            for bucket, key, _ in s3_objects(message["body"]):
                validate_object(svc, bucket, key)
        except Exception:  # noqa: BLE001 - retried by SQS, then dead-lettered
            log.exception("message %s failed; SQS will retry it", message.get("messageId"))
            failures.append({"itemIdentifier": message["messageId"]})
    return {"batchItemFailures": failures}
