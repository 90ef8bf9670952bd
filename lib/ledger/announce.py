"""Announcements that uploads are waiting for their dataset's workflow: EventBridge events
that the dataset's rule sends to its Glue workflow, whose EVENT trigger batches them into
one run (see docs/aws.md, "From upload to queryable").

* ``Upload Accepted``: the validator, once per upload that becomes ACCEPTED;
* ``Uploads Pending``: a job run that ends while ACCEPTED uploads it did not take are
  waiting (they were accepted during the run, so their own events may have been absorbed
  by it), so that they do not wait for the scheduled sweep.

An event only wakes the workflow: what a run processes comes from the ledger (every pending
upload, each claimed with a conditional write), so a lost or repeated event never loses or
repeats an upload. Publishing is best effort, like the SNS alerts: a failure is logged, and
the scheduled sweep is the backstop.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any, Protocol

import boto3

from lib.ledger.records import UploadRecord

log = logging.getLogger("lake.announce")

UPLOAD_ACCEPTED = "Upload Accepted"
UPLOADS_PENDING = "Uploads Pending"


class Announcer(Protocol):
    def upload_accepted(self, record: UploadRecord) -> bool: ...

    def uploads_pending(self, dataset: str, upload_ids: Sequence[str], run_id: str) -> bool: ...


class NoAnnouncer:
    """Without an event bus (local runs, or a deployment without events)."""

    def upload_accepted(self, record: UploadRecord) -> bool:
        return False

    def uploads_pending(self, dataset: str, upload_ids: Sequence[str], run_id: str) -> bool:
        return False


def accepted_detail(record: UploadRecord) -> dict:
    return {
        "dataset": record.dataset,
        "upload_id": record.upload_id,
        "size_bytes": record.size_bytes,
        "record_count": record.record_count,
        "file": record.original_name,
        "location": record.location,
        "accepted_at": record.updated_at,
    }


class EventBridgeAnnouncer:
    def __init__(self, bus: str, source: str, client: Any) -> None:
        self.bus, self.source, self._events = bus, source, client

    def _put(self, detail_type: str, detail: dict, what: str) -> bool:
        entry = {"Source": self.source, "DetailType": detail_type, "EventBusName": self.bus,
                 "Detail": json.dumps(detail, default=str)}
        try:
            answer = self._events.put_events(Entries=[entry])
        except Exception as exc:  # noqa: BLE001 - best effort; the sweep is the backstop
            log.error("could not put %r for %s on event bus %s: %s", detail_type, what,
                      self.bus, exc)
            return False
        if answer.get("FailedEntryCount"):
            failed = answer.get("Entries", [{}])[0]
            log.error("event bus %s refused %r for %s: %s %s", self.bus, detail_type, what,
                      failed.get("ErrorCode"), failed.get("ErrorMessage"))
            return False
        return True

    def upload_accepted(self, record: UploadRecord) -> bool:
        return self._put(UPLOAD_ACCEPTED, accepted_detail(record), f"upload {record.upload_id}")

    def uploads_pending(self, dataset: str, upload_ids: Sequence[str], run_id: str) -> bool:
        return self._put(UPLOADS_PENDING, {"dataset": dataset, "upload_ids": list(upload_ids),
                                           "count": len(upload_ids), "after_run": run_id},
                         f"{len(upload_ids)} pending upload(s) of {dataset}")


def announcer_for(bus: str | None, source: str | None, client: Any = None) -> Announcer:
    if not bus or not source:
        return NoAnnouncer()
    return EventBridgeAnnouncer(bus, source, client or boto3.client("events"))
