"""The upload ledger: legal and illegal status changes, conditional writes, the content
claim, and several processes writing at once."""

from __future__ import annotations

import multiprocessing
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from lib.ledger import records as L
from lib.ledger.base import Ledger
from lib.ledger.dynamo import DynamoLedger
from lib.ledger.records import (
    ConflictError,
    DuplicateContentError,
    IllegalTransition,
    LockBusyError,
    UnknownUploadError,
)
from lib.ledger.sqlite import SqliteLedger
from tests.aws_stubs import REGION, create_ledger_table
from tests.helpers import new_record


@pytest.fixture(params=["sqlite", "dynamodb"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    """Every test of the ledger interface runs on both implementations."""
    if request.param == "sqlite":
        yield SqliteLedger(tmp_path / "ledger.sqlite")
        return
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        yield DynamoLedger(create_ledger_table(client), client=client)


def test_an_upload_goes_through_its_life_and_every_step_is_in_its_history(ledger) -> None:
    new_record(ledger, "u1")
    steps = [L.ACCEPTED, L.PROCESSING, L.FAILED, L.PROCESSING, L.PROCESSED, L.ARCHIVED,
             L.PROCESSING, L.PROCESSED]
    for s in steps:
        ledger.transition("u1", s)
    r = ledger.transition("u1", L.ARCHIVED, rows_read=3, clean=2, quarantined=1,
                          duplicates_removed=0, job_name="orders_v1", job_version=1)
    assert (r.status, r.rows_read, r.clean, r.quarantined, r.job_name) == (
        "ARCHIVED", 3, 2, 1, "orders_v1")
    assert ledger.get("u1") == r
    history = [(h.from_status, h.to_status) for h in ledger.history("u1")]
    assert history == [(None, "RECEIVED"), ("RECEIVED", "ACCEPTED"),
                       ("ACCEPTED", "PROCESSING"), ("PROCESSING", "FAILED"),
                       ("FAILED", "PROCESSING"), ("PROCESSING", "PROCESSED"),
                       ("PROCESSED", "ARCHIVED"), ("ARCHIVED", "PROCESSING"),
                       ("PROCESSING", "PROCESSED"), ("PROCESSED", "ARCHIVED")]


def test_a_note_joins_the_history_without_changing_the_status(ledger) -> None:
    new_record(ledger, "u1")
    ledger.transition("u1", L.ACCEPTED)
    ledger.note("u1", "fast lane: the run lock stayed busy")
    assert ledger.get("u1").status == L.ACCEPTED
    last = ledger.history("u1")[-1]
    assert (last.from_status, last.to_status, last.note) == (
        "ACCEPTED", "ACCEPTED", "fast lane: the run lock stayed busy")
    ledger.transition("u1", L.PROCESSING)  # a note is no status: the next edge is as before
    assert [h.to_status for h in ledger.history("u1")] == [
        "RECEIVED", "ACCEPTED", "ACCEPTED", "PROCESSING"]
    with pytest.raises(UnknownUploadError):
        ledger.note("nope", "x")


def test_the_structure_the_check_found_and_interruptions_are_kept(ledger) -> None:
    new_record(ledger, "u1")
    accepted = ledger.transition("u1", L.ACCEPTED, record_count=14, longest_record_bytes=61,
                                 multiline=True)
    assert (accepted.record_count, accepted.longest_record_bytes, accepted.multiline,
            accepted.interruptions, accepted.held) == (14, 61, True, 0, False)
    ledger.transition("u1", L.PROCESSING)
    failed = ledger.transition("u1", L.FAILED, error_code="run.interrupted", interruptions=2,
                               held=True)
    assert ledger.get("u1") == failed
    assert (failed.record_count, failed.multiline, failed.interruptions, failed.held) == \
        (14, True, 2, True)


def test_a_sqlite_ledger_of_an_earlier_version_gains_the_new_fields(tmp_path) -> None:
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE uploads (upload_id TEXT PRIMARY KEY, dataset TEXT, original_name TEXT,
            stored_name TEXT, size_bytes INTEGER, sha256 TEXT, status TEXT, reason_code TEXT,
            reason TEXT, warnings TEXT, location TEXT, ingest_date TEXT, received_at TEXT,
            updated_at TEXT, rows_read INTEGER, clean INTEGER, quarantined INTEGER,
            duplicates_removed INTEGER, job_name TEXT, job_version INTEGER, run_id TEXT,
            error_code TEXT, error TEXT);
        INSERT INTO uploads (upload_id, dataset, original_name, stored_name, size_bytes,
            sha256, status, warnings) VALUES ('old', 'orders', 'a.csv', 'a.csv', 3, 's',
            'ACCEPTED', '[]');
    """)
    db.close()
    r = SqliteLedger(path).get("old")
    assert (r.status, r.record_count, r.multiline, r.interruptions, r.held) == \
        ("ACCEPTED", None, None, 0, False)


ILLEGAL = [(a, b) for a in L.STATUSES for b in L.STATUSES if b not in L.TRANSITIONS[a]]


def _walk_to(ledger: SqliteLedger, uid: str, status: str) -> None:
    path = {L.RECEIVED: [], L.ACCEPTED: [L.ACCEPTED], L.REJECTED: [L.REJECTED],
            L.PROCESSING: [L.ACCEPTED, L.PROCESSING],
            L.PROCESSED: [L.ACCEPTED, L.PROCESSING, L.PROCESSED],
            L.FAILED: [L.ACCEPTED, L.PROCESSING, L.FAILED],
            L.ARCHIVED: [L.ACCEPTED, L.PROCESSING, L.PROCESSED, L.ARCHIVED]}[status]
    for s in path:
        ledger.transition(uid, s)


@pytest.mark.parametrize(("current", "target"), ILLEGAL)
def test_an_illegal_transition_raises_and_changes_nothing(ledger, current, target) -> None:
    new_record(ledger, "u1")
    _walk_to(ledger, "u1", current)
    before = (ledger.get("u1"), ledger.history("u1"))
    with pytest.raises(IllegalTransition) as exc:
        ledger.transition("u1", target)
    allowed = ", ".join(sorted(L.TRANSITIONS[current])) or "none (final)"
    assert str(exc.value) == (f"upload u1: illegal status change {current} -> {target} "
                              f"(allowed from {current}: {allowed})")
    assert (ledger.get("u1"), ledger.history("u1")) == before


def test_the_legal_edges_are_exactly_the_documented_ones() -> None:
    legal = {(a, b) for a, targets in L.TRANSITIONS.items() for b in targets}
    assert legal == {
        ("RECEIVED", "ACCEPTED"), ("RECEIVED", "REJECTED"), ("ACCEPTED", "PROCESSING"),
        ("PROCESSING", "PROCESSED"), ("PROCESSING", "FAILED"), ("FAILED", "PROCESSING"),
        ("PROCESSED", "ARCHIVED"),
        ("PROCESSED", "PROCESSING"), ("ARCHIVED", "PROCESSING"),  # reprocess
    }
    assert len(ILLEGAL) == 49 - len(legal)


def test_a_conditional_write_fails_when_the_status_is_not_the_expected_one(ledger) -> None:
    new_record(ledger, "u1")
    ledger.transition("u1", L.ACCEPTED)
    ledger.transition("u1", L.PROCESSING)
    ledger.transition("u1", L.FAILED)
    with pytest.raises(ConflictError, match="upload u1: expected status ACCEPTED, found FAILED"):
        ledger.transition("u1", L.PROCESSING, expected=(L.ACCEPTED,))


def test_accepting_claims_the_content_for_the_dataset(ledger) -> None:
    new_record(ledger, "u1", sha="abc" * 10)
    new_record(ledger, "u2", sha="abc" * 10)
    new_record(ledger, "u3", sha="abc" * 10, dataset="customers")
    ledger.transition("u1", L.ACCEPTED)
    with pytest.raises(DuplicateContentError) as exc:
        ledger.transition("u2", L.ACCEPTED)
    assert exc.value.existing_id == "u1"
    assert str(exc.value) == "orders: content abcabcabcabc... already accepted as upload u1"
    assert ledger.get("u2").status == L.RECEIVED  # unchanged
    ledger.transition("u3", L.ACCEPTED)  # another dataset may hold the same bytes
    assert ledger.accepted_with_sha("orders", "abc" * 10).upload_id == "u1"
    ledger.transition("u2", L.REJECTED)  # a rejected upload holds no claim
    assert ledger.accepted_with_sha("orders", "nope") is None


def test_unknown_uploads_and_fields_are_refused(ledger) -> None:
    with pytest.raises(UnknownUploadError, match="no upload 'nope' in the ledger"):
        ledger.get("nope")
    with pytest.raises(UnknownUploadError):
        ledger.transition("nope", L.ACCEPTED)
    new_record(ledger, "u1")
    with pytest.raises(L.LedgerError, match=r"cannot set \['dataset'\] on an upload record"):
        ledger.transition("u1", L.ACCEPTED, dataset="other")
    with pytest.raises(L.LedgerError, match="upload u1 already exists"):
        new_record(ledger, "u1")


def test_find_filters_by_dataset_and_status_oldest_first(ledger) -> None:
    for uid, ds in (("a", "orders"), ("b", "customers"), ("c", "orders")):
        new_record(ledger, uid, dataset=ds)
    ledger.transition("c", L.ACCEPTED)
    assert [r.upload_id for r in ledger.find()] == ["a", "b", "c"]
    assert [r.upload_id for r in ledger.find("orders")] == ["a", "c"]
    assert [r.upload_id for r in ledger.find("orders", L.PENDING)] == ["c"]


def test_only_one_run_of_a_dataset_holds_the_lock(ledger) -> None:
    with ledger.run_lock("orders"):
        with (pytest.raises(LockBusyError, match=r"another run of 'orders' is in progress \(pid "),
              ledger.run_lock("orders")):
            pass
        with ledger.run_lock("customers"):  # other datasets are independent
            pass
    with ledger.run_lock("orders"):  # released
        pass


def _claim(path: str, uid: str, barrier, out) -> None:  # runs in a child process
    ledger = SqliteLedger(path)
    barrier.wait()
    try:
        ledger.transition(uid, L.PROCESSING, expected=(L.ACCEPTED,))
        out.put("won")
    except (ConflictError, IllegalTransition):
        out.put("lost")


def test_two_processes_racing_to_claim_an_upload_one_wins(tmp_path) -> None:
    path = str(tmp_path / "ledger.sqlite")
    ledger = SqliteLedger(path)
    ctx = multiprocessing.get_context("spawn")
    for i in range(3):
        uid = f"u{i}"
        new_record(ledger, uid)
        ledger.transition(uid, L.ACCEPTED)
        barrier, out = ctx.Barrier(2), ctx.Queue()
        procs = [ctx.Process(target=_claim, args=(path, uid, barrier, out)) for _ in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        assert sorted(out.get(timeout=5) for _ in procs) == ["lost", "won"]
        assert [h.to_status for h in ledger.history(uid)] == ["RECEIVED", "ACCEPTED",
                                                               "PROCESSING"]
