"""`lake dlq redrive`: move upload events the validator kept failing on from the dead-letter
queue back to the upload queue, once the cause is fixed.

A dry run (the default) reports how many messages wait and which objects they are about,
and moves nothing. ``apply`` moves them: each message is sent to the source queue, then
deleted from the dead-letter queue, so a crash in between repeats a message (the validator
is idempotent) and never loses one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from lib.errors import LakeError

SAMPLE = 10


class DlqError(LakeError):
    """The dead-letter queue cannot be read or redriven."""

    default_code = "dlq.error"


@dataclass
class RedrivePlan:
    dlq_url: str
    target_url: str
    waiting: int
    sample: list[str] = field(default_factory=list)  # "s3://bucket/key" or the message id


def queue_url(sqs: Any, queue: str) -> str:
    if queue.startswith(("https://", "http://")):
        return queue
    try:
        return sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    except sqs.exceptions.QueueDoesNotExist:
        raise DlqError(f"no queue {queue!r} in this account and region") from None


def _describe(message: dict) -> str:
    try:
        records = json.loads(message["Body"]).get("Records", [])
        keys = [f"s3://{r['s3']['bucket']['name']}/{unquote_plus(r['s3']['object']['key'])}"
                for r in records]
    except (ValueError, KeyError, TypeError, AttributeError):
        keys = []
    return ", ".join(keys) or f"message {message['MessageId']}"


def plan_redrive(sqs: Any, dlq: str, target: str | None = None) -> RedrivePlan:
    dlq_url = queue_url(sqs, dlq)
    if target:
        target_url = queue_url(sqs, target)
    else:
        sources = sqs.list_dead_letter_source_queues(QueueUrl=dlq_url).get("queueUrls", [])
        if len(sources) != 1:
            raise DlqError(f"{dlq_url} is the dead-letter queue of {len(sources)} queues "
                           f"({', '.join(sources) or 'none'}); name the one to move messages "
                           "to with --to")
        target_url = sources[0]
    attrs = sqs.get_queue_attributes(QueueUrl=dlq_url,
                                     AttributeNames=["ApproximateNumberOfMessages"])
    waiting = int(attrs["Attributes"]["ApproximateNumberOfMessages"])
    # A peek: visibility 0 leaves the messages where they are, visible to the next reader.
    peek = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=SAMPLE,
                               VisibilityTimeout=0).get("Messages", [])
    return RedrivePlan(dlq_url, target_url, waiting, [_describe(m) for m in peek])


def redrive(sqs: Any, plan: RedrivePlan, limit: int | None = None) -> int:
    """Move up to ``limit`` messages (all by default); returns how many moved."""
    moved = 0
    while limit is None or moved < limit:
        batch = min(10, limit - moved) if limit is not None else 10
        messages = sqs.receive_message(QueueUrl=plan.dlq_url, MaxNumberOfMessages=batch,
                                       VisibilityTimeout=120, WaitTimeSeconds=1,
                                       MessageAttributeNames=["All"]).get("Messages", [])
        if not messages:
            break
        for m in messages:
            send: dict[str, Any] = {"QueueUrl": plan.target_url, "MessageBody": m["Body"]}
            if m.get("MessageAttributes"):
                send["MessageAttributes"] = m["MessageAttributes"]
            sqs.send_message(**send)
            sqs.delete_message(QueueUrl=plan.dlq_url, ReceiptHandle=m["ReceiptHandle"])
            moved += 1
    return moved
