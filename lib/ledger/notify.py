"""Alerts about single uploads: an SNS message when an upload is REJECTED or its processing
FAILED, naming the dataset, the upload and the reason. (Whole job runs that fail, time out or
stop are reported by the EventBridge rules of infra/foundation.yaml.)

Publishing is best effort: the ledger is the record of what happened, so a failed publish is
logged and never undoes or repeats the status change it reports.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Protocol

import boto3

from lib.ledger.records import UploadRecord

log = logging.getLogger("lake.notify")


class Notifier(Protocol):
    def upload_event(self, record: UploadRecord, report: str | None = None) -> None: ...


class NoNotifier:
    def upload_event(self, record: UploadRecord, report: str | None = None) -> None:
        return None


# A warning the run adds to an upload published above one of its contract's warn thresholds.
QUALITY_WARNING_PREFIX = "quality: "
QUALITY_WARNING = "quality.warning"


def upload_message(record: UploadRecord, report: str | None = None) -> dict:
    """The message body: what happened to which upload, and why; ``report``: the page of
    the run that left it so (its data-quality report)."""
    failed = record.status == "FAILED"
    quality = [w for w in record.warnings if w.startswith(QUALITY_WARNING_PREFIX)]
    warned = bool(quality) and not failed and record.status != "REJECTED"
    return {
        "event": "upload.quality_warning" if warned else f"upload.{record.status.lower()}",
        "dataset": record.dataset,
        "upload_id": record.upload_id,
        "status": record.status,
        "file": record.original_name,
        "reason_code": (QUALITY_WARNING if warned
                        else record.error_code if failed else record.reason_code),
        "reason": ("; ".join(quality) if warned
                   else record.error if failed else record.reason),
        "location": record.location,
        "job": record.job_name,
        "run_id": record.run_id,
        "at": record.updated_at,
        "report": report,
    }


class SnsNotifier:
    def __init__(self, topic_arn: str, client: Any = None) -> None:
        if client is None:
            client = boto3.client("sns")
        self.topic_arn = topic_arn
        self._sns = client

    def upload_event(self, record: UploadRecord, report: str | None = None) -> None:
        body = upload_message(record, report)
        subject = f"[lake] {record.dataset} upload {record.upload_id} {record.status}"
        try:
            self._sns.publish(
                TopicArn=self.topic_arn, Subject=subject[:100],
                Message=json.dumps(body, indent=2, default=str),
                MessageAttributes={
                    "event": {"DataType": "String", "StringValue": body["event"]},
                    "dataset": {"DataType": "String", "StringValue": record.dataset},
                })
        except Exception as exc:  # noqa: BLE001 - best effort; the ledger holds the truth
            log.error("could not publish %s for upload %s to %s: %s", body["event"],
                      record.upload_id, self.topic_arn, exc)


def notifier_for(topic_arn: str | None, client: Any = None) -> Notifier:
    return SnsNotifier(topic_arn, client) if topic_arn else NoNotifier()
