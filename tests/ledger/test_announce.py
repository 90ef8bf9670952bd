"""Upload events are best effort: a refused or failed PutEvents is logged with the upload
and the bus, and never raised (the ledger holds the truth, the sweep is the backstop)."""

from __future__ import annotations

import json
import logging

from lib.ledger.announce import EventBridgeAnnouncer, NoAnnouncer, announcer_for
from lib.ledger.records import UploadRecord


class Events:
    def __init__(self, answer: dict | None = None, error: Exception | None = None) -> None:
        self.answer, self.error, self.sent = answer or {"FailedEntryCount": 0}, error, []

    def put_events(self, Entries: list[dict]) -> dict:  # noqa: N803 - boto3's name
        self.sent += Entries
        if self.error:
            raise self.error
        return self.answer


RECORD = UploadRecord(upload_id="u1", dataset="orders", original_name="o.csv",
                      stored_name="o.csv", size_bytes=12, sha256="s", status="ACCEPTED",
                      record_count=3, location="s3://b/raw/o.csv", updated_at="2026-11-29T05:00:00Z")


def test_an_accepted_upload_is_one_event_with_its_fields() -> None:
    events = Events()
    assert EventBridgeAnnouncer("default", "lake.dev.uploads", events).upload_accepted(RECORD)
    [entry] = events.sent
    assert (entry["Source"], entry["DetailType"], entry["EventBusName"]) == (
        "lake.dev.uploads", "Upload Accepted", "default")
    assert json.loads(entry["Detail"]) == {
        "dataset": "orders", "upload_id": "u1", "size_bytes": 12, "record_count": 3,
        "file": "o.csv", "location": "s3://b/raw/o.csv", "accepted_at": "2026-11-29T05:00:00Z"}


def test_a_refused_or_failed_put_is_logged_never_raised(caplog) -> None:
    caplog.set_level(logging.ERROR, "lake.announce")
    refused = Events({"FailedEntryCount": 1, "Entries": [
        {"ErrorCode": "AccessDeniedException", "ErrorMessage": "not allowed"}]})
    assert not EventBridgeAnnouncer("default", "s", refused).upload_accepted(RECORD)
    failing = Events(error=ConnectionError("endpoint unreachable"))
    assert not EventBridgeAnnouncer("default", "s", failing).uploads_pending("orders", ["u2"],
                                                                              "r1")
    assert caplog.messages == [
        "event bus default refused 'Upload Accepted' for upload u1: AccessDeniedException "
        "not allowed",
        "could not put 'Uploads Pending' for 1 pending upload(s) of orders on event bus "
        "default: endpoint unreachable"]


def test_without_a_bus_and_a_source_nothing_is_announced() -> None:
    assert isinstance(announcer_for(None, "s"), NoAnnouncer)
    assert isinstance(announcer_for("default", None), NoAnnouncer)
    assert NoAnnouncer().upload_accepted(RECORD) is False
