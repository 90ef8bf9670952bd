"""The DynamoDB ledger beyond the shared interface tests (tests/test_ledger.py runs those on
both implementations): racing writers, refusals that come from DynamoDB's conditions, the
TTL of archived records and the run lease."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lib.ledger import records as L
from lib.ledger.dynamo import DynamoLedger
from lib.ledger.records import (
    ConflictError,
    DuplicateContentError,
    IllegalTransition,
    LockBusyError,
)
from tests.aws_stubs import REGION, create_ledger_table
from tests.helpers import new_record


class Recorder:
    """A DynamoDB client that records the writes it passes on, and what they raised."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.writes: list[tuple[str, str]] = []  # (operation, outcome)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name not in ("update_item", "transact_write_items", "put_item"):
            return attr

        def call(**kwargs: Any) -> Any:
            try:
                out = attr(**kwargs)
            except self._client.exceptions.ClientError as exc:
                self.writes.append((name, exc.response["Error"]["Code"]))
                raise
            self.writes.append((name, "ok"))
            return out
        return call


@pytest.fixture
def client() -> Iterator[Any]:
    with mock_aws():
        c = boto3.client("dynamodb", region_name=REGION)
        create_ledger_table(c)
        yield c


def _ledger(client: Any, **kw: Any) -> DynamoLedger:
    return DynamoLedger("lake-test-ledger", client=client, **kw)


def _stale_read(ledger: DynamoLedger, meanwhile: Any) -> None:
    """Make ``ledger`` read a record, then let ``meanwhile`` run, then write: the
    interleaving of two writers that a lost update needs."""
    read = ledger._raw

    def raw(upload_id: str) -> dict:
        item = read(upload_id)
        ledger._raw = read  # only the first read is followed by the other writer
        meanwhile()
        return item
    ledger._raw = raw


def test_two_writers_claiming_the_same_upload_one_wins(client) -> None:
    a, b = _ledger(client), _ledger(client)
    new_record(a, "u1")
    a.transition("u1", L.ACCEPTED)
    _stale_read(a, lambda: b.transition("u1", L.PROCESSING, expected=(L.ACCEPTED,),
                                        run_id="run-b"))
    with pytest.raises(IllegalTransition, match="PROCESSING -> PROCESSING"):
        a.transition("u1", L.PROCESSING, expected=(L.ACCEPTED,), run_id="run-a")
    record = a.get("u1")
    assert (record.status, record.run_id) == ("PROCESSING", "run-b")
    assert [h.to_status for h in a.history("u1")] == ["RECEIVED", "ACCEPTED", "PROCESSING"]


def test_a_writer_that_read_an_old_status_loses_no_update_of_the_other(client) -> None:
    """A read ACCEPTED; meanwhile B claimed the upload and failed it. FAILED -> PROCESSING
    is legal, so only the condition on the status A read stops A from overwriting B's
    error with its own claim."""
    a, b = _ledger(client), _ledger(client)
    new_record(a, "u1")
    a.transition("u1", L.ACCEPTED)

    def b_runs() -> None:
        b.transition("u1", L.PROCESSING, run_id="run-b")
        b.transition("u1", L.FAILED, error_code="source.unreadable", error="gone")
    _stale_read(a, b_runs)
    with pytest.raises(ConflictError, match="upload u1: expected status ACCEPTED, found FAILED"):
        a.transition("u1", L.PROCESSING, run_id="run-a")
    record = a.get("u1")
    assert (record.status, record.run_id, record.error_code) == (
        "FAILED", "run-b", "source.unreadable")


def test_a_stale_writer_cannot_make_an_illegal_change(client) -> None:
    """Writer A read RECEIVED; B rejected the upload meanwhile. A's ACCEPTED is refused by
    the write's condition (REJECTED -> ACCEPTED is illegal), not by a check in Python."""
    rec = Recorder(client)
    a, b = _ledger(rec), _ledger(client)
    new_record(a, "u1")
    _stale_read(a, lambda: b.transition("u1", L.REJECTED, reason_code="file.empty"))
    with pytest.raises(IllegalTransition, match="upload u1: illegal status change REJECTED -> "
                                                "ACCEPTED"):
        a.transition("u1", L.ACCEPTED, sha256="s1")
    assert rec.writes[-1] == ("transact_write_items", "TransactionCanceledException")
    assert a.get("u1").status == L.REJECTED
    assert a.accepted_with_sha("orders", "s1") is None  # the claim was not written either


@pytest.mark.parametrize(("current", "target"), [(L.RECEIVED, L.PROCESSED),
                                                 (L.ACCEPTED, L.ARCHIVED),
                                                 (L.REJECTED, L.PROCESSING)])
def test_an_illegal_change_is_refused_by_dynamodb(client, current, target) -> None:
    rec = Recorder(client)
    ledger = _ledger(rec)
    new_record(ledger, "u1")
    if current != L.RECEIVED:
        ledger.transition("u1", current)
    with pytest.raises(IllegalTransition):
        ledger.transition("u1", target)
    # The write was sent and DynamoDB's condition refused it.
    assert rec.writes[-1][1] in ("ConditionalCheckFailedException",
                                 "TransactionCanceledException")


def test_two_uploads_of_the_same_bytes_racing_to_be_accepted_one_wins(client) -> None:
    a, b = _ledger(client), _ledger(client)
    new_record(a, "u1", sha="f" * 64)
    new_record(a, "u2", sha="f" * 64)
    # Both checked for an earlier claim before either wrote one.
    assert a.accepted_with_sha("orders", "f" * 64) is None
    assert b.accepted_with_sha("orders", "f" * 64) is None
    b.transition("u2", L.ACCEPTED)
    with pytest.raises(DuplicateContentError) as exc:
        a.transition("u1", L.ACCEPTED)
    assert exc.value.existing_id == "u2"
    assert a.get("u1").status == L.RECEIVED


def _item(client: Any, pk: str) -> dict:
    return client.get_item(TableName="lake-test-ledger", Key={"pk": {"S": pk}},
                           ConsistentRead=True)["Item"]


def test_archived_records_and_their_claims_expire_and_reprocessing_keeps_them(client) -> None:
    ledger = _ledger(client, retention_days=30)
    new_record(ledger, "u1", sha="a" * 64)
    for s in (L.ACCEPTED, L.PROCESSING, L.PROCESSED):
        ledger.transition("u1", s)
    assert "expires_at" not in _item(client, "upload#u1")
    before = int(time.time())
    ledger.transition("u1", L.ARCHIVED)
    for pk in ("upload#u1", f"claim#orders#{'a' * 64}"):
        expires = int(_item(client, pk)["expires_at"]["N"])
        assert before + 30 * 86400 <= expires <= int(time.time()) + 30 * 86400
    ledger.transition("u1", L.PROCESSING)  # reprocess: the record is live again
    for pk in ("upload#u1", f"claim#orders#{'a' * 64}"):
        assert "expires_at" not in _item(client, pk)


def test_an_expired_claim_no_longer_blocks_the_same_content(client) -> None:
    ledger = _ledger(client, retention_days=30)
    new_record(ledger, "u1", sha="b" * 64)
    for s in (L.ACCEPTED, L.PROCESSING, L.PROCESSED, L.ARCHIVED):
        ledger.transition("u1", s)
    client.update_item(TableName="lake-test-ledger", Key={"pk": {"S": f"claim#orders#{'b' * 64}"}},
                       UpdateExpression="SET expires_at = :t",
                       ExpressionAttributeValues={":t": {"N": str(int(time.time()) - 1)}})
    assert ledger.accepted_with_sha("orders", "b" * 64) is None
    new_record(ledger, "u2", sha="b" * 64)
    assert ledger.transition("u2", L.ACCEPTED).status == L.ACCEPTED
    assert ledger.accepted_with_sha("orders", "b" * 64).upload_id == "u2"


def test_the_run_lease_is_exclusive_renewed_and_lapses_when_its_holder_dies(client) -> None:
    a, b = _ledger(client, lock_lease_seconds=5), _ledger(client, lock_lease_seconds=5)
    with a.run_lock("orders"):
        first = int(_item(client, "lock#orders")["lease_until"]["N"])
        with (pytest.raises(LockBusyError, match=r"another run of 'orders' is in progress "
                                                 r"\(pid \d+ on "),
              b.run_lock("orders")):
            pass
        time.sleep(2.5)  # the heartbeat renews every lease / 5 seconds
        assert int(_item(client, "lock#orders")["lease_until"]["N"]) > first
    with b.run_lock("orders"):  # released on exit
        pass
    # A holder that died leaves its item behind; once the lease has lapsed it is taken over.
    client.put_item(TableName="lake-test-ledger", Item={
        "pk": {"S": "lock#orders"}, "owner": {"S": "pid 1 on gone"},
        "lease_until": {"N": str(int(time.time()) - 1)}})
    with a.run_lock("orders"):
        assert _item(client, "lock#orders")["owner"]["S"].startswith("pid ")
