"""Ledger-driven runs: statuses after a run, a bad upload failing alone, retries, explicit
upload ids, the run lock, and crash safety with the process really killed mid-run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from glue_jobs.orders.v1 import job
from lib.jobs.faults import CRASH_ENV, CRASH_EXIT_CODE
from lib.jobs.run import SelectionError
from lib.lake.paths import to_uri
from lib.ledger.records import LockBusyError, UploadRecord
from lib.ledger.sqlite import open_ledger
from tests.helpers import REPO, SAMPLES, land

FILE1 = "orders_2026-11-01.csv"
FILE2 = "orders_2026-11-02.csv.gz"


def run(lake: Path, *ids: str) -> int:
    argv = ["--JOB_NAME", "orders_v1", "--lake_root", to_uri(lake)]
    if ids:
        argv += ["--upload_ids", json.dumps(list(ids))]
    return job.main(argv)


def statuses(lake: Path) -> dict[str, str]:
    return {r.upload_id: r.status for r in open_ledger(lake).find("orders")}


def zone_snapshot(lake: Path) -> dict[str, bytes]:
    """Every file a reader of the clean and quarantine zones sees (``_`` folders skipped)."""
    out = {}
    for zone in ("clean", "quarantine"):
        root = lake / zone
        for p in sorted(root.rglob("*.parquet")) if root.exists() else []:
            rel = p.relative_to(lake)
            if not any(part.startswith(("_", ".")) for part in rel.parts):
                out[str(rel)] = p.read_bytes()
    return out


def clean_rows(spark, lake: Path) -> list[tuple]:
    df = spark.read.parquet(to_uri(lake / "clean" / "orders"))
    return sorted(tuple(r) for r in df.drop("_ingested_at", "_source_file").collect())


@pytest.fixture
def two_uploads(tmp_path) -> tuple[Path, str, str]:
    lake = tmp_path / "lake"
    ids = []
    for name in (FILE1, FILE2):
        shutil.copy(SAMPLES / name, tmp_path / name)
        ids.append(land(lake, tmp_path / name))
    return lake, ids[0], ids[1]


def test_one_unreadable_upload_fails_alone_with_its_error(spark, tmp_path, two_uploads) -> None:
    lake, uid1, uid2 = two_uploads
    corrupt = tmp_path / "broken.csv.gz"
    corrupt.write_bytes((SAMPLES / FILE2).read_bytes()[:40] + b"\x00garbage" * 20)
    bad = land(lake, corrupt)
    assert run(lake) == 1
    ledger = open_ledger(lake)
    assert statuses(lake) == {uid1: "ARCHIVED", uid2: "ARCHIVED", bad: "FAILED"}
    failed = ledger.get(bad)
    assert failed.error_code == "file.unreadable"
    assert failed.error.endswith(": cannot read the file: java.io.IOException: invalid code -- "
                                 "missing end-of-block")
    assert failed.location.endswith("/raw/orders/ingest_date=2026-11-21/t-broken/broken.csv.gz")
    ok = ledger.get(uid1)
    assert (ok.rows_read, ok.clean, ok.quarantined, ok.duplicates_removed) == (14, 4, 9, 1)
    assert (ok.job_name, ok.job_version) == ("orders_v1", 1)


def test_a_failed_upload_is_retried_by_the_next_run(spark, tmp_path) -> None:
    lake = tmp_path / "lake"
    late = tmp_path / FILE1
    uid = land(lake, late)  # registered, but its bytes are not there (yet)
    assert run(lake) == 1
    assert open_ledger(lake).get(uid).error_code == "file.not_found"
    raw = lake / "raw" / "orders" / "ingest_date=2026-11-21" / uid / FILE1
    raw.parent.mkdir(parents=True)
    shutil.copy(SAMPLES / FILE1, raw)
    assert run(lake) == 0
    r = open_ledger(lake).get(uid)
    assert (r.status, r.clean, r.error_code, r.error) == ("ARCHIVED", 4, None, None)
    assert [h.to_status for h in open_ledger(lake).history(uid)] == [
        "RECEIVED", "ACCEPTED", "PROCESSING", "FAILED", "PROCESSING", "PROCESSED", "ARCHIVED"]


def test_explicit_ids_must_all_be_processable(spark, tmp_path, two_uploads) -> None:
    lake, uid1, _ = two_uploads
    ledger = open_ledger(lake)
    ledger.create(UploadRecord(upload_id="r1", dataset="orders", original_name="x.pdf",
                               stored_name="x.csv", size_bytes=1, sha256="x"))
    ledger.transition("r1", "REJECTED", reason_code="file.format", reason="x.pdf: a PDF")
    with pytest.raises(SelectionError) as exc:
        run(lake, uid1, "r1", "nope")
    assert str(exc.value) == (
        "upload r1 is REJECTED (file.format: x.pdf: a PDF); only ACCEPTED, FAILED, PROCESSED, "
        "ARCHIVED uploads can be processed; no upload 'nope' in the ledger")
    assert ledger.get(uid1).status == "ACCEPTED"  # nothing was claimed


def test_a_run_is_refused_while_another_run_of_the_dataset_holds_the_lock(spark, two_uploads) -> None:
    lake, uid1, _ = two_uploads
    with open_ledger(lake).run_lock("orders"), pytest.raises(LockBusyError):
        run(lake)
    assert statuses(lake)[uid1] == "ACCEPTED"


def lake_cli(lake: Path, *args: str, crash_at: str | None = None,
             tmp: Path) -> subprocess.CompletedProcess:
    """`lake` in its own process (its own SparkSession), optionally killed at a crash point."""
    env = {**os.environ, "LAKE_SPARK_DIR": str(tmp / f"spark-{os.urandom(3).hex()}")}
    env.pop(CRASH_ENV, None)
    if crash_at:
        env[CRASH_ENV] = crash_at
    return subprocess.run([sys.executable, "-m", "lib.tools.cli", "--lake-root", str(lake), *args],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=600)


@pytest.mark.parametrize("point", ["staging", "committed", "publishing"])
def test_a_killed_run_leaves_the_old_state_or_a_committed_journal_and_the_next_run_completes_it(
        spark, tmp_path, two_uploads, point) -> None:
    lake, uid1, uid2 = two_uploads
    assert run(lake, uid2) == 0  # upload 2 is in the zones already
    before = zone_snapshot(lake)

    died = lake_cli(lake, "run", "orders", "--version", "1", crash_at=point, tmp=tmp_path)
    assert died.returncode == CRASH_EXIT_CODE, died.stderr[-2000:]
    assert f"{CRASH_ENV}={point}: simulating a crash" in died.stderr
    ledger = open_ledger(lake)
    assert ledger.get(uid1).status == "PROCESSING"  # not PROCESSED
    crashed_run = ledger.get(uid1).run_id
    after_crash = zone_snapshot(lake)
    if point == "staging":  # before the commit point the zones are untouched
        assert after_crash == before
    elif point == "committed":
        assert after_crash == before
        assert (lake / "clean" / "_commits" / "orders" / f"{crashed_run}.json").is_file()
    else:  # a file of the committed plan is in; the journal says what is still to do
        assert set(before) < set(after_crash)
        assert (lake / "clean" / "_commits" / "orders" / f"{crashed_run}.json").is_file()

    assert run(lake) == 0
    assert statuses(lake) == {uid1: "ARCHIVED", uid2: "ARCHIVED"}
    r = ledger.get(uid1)
    assert (r.rows_read, r.clean, r.quarantined, r.duplicates_removed) == (14, 4, 9, 1)
    history = [(h.to_status, h.note) for h in ledger.history(uid1)][2:]
    if point == "staging":  # never committed: the next run retries it from the start
        assert history[:3] == [("PROCESSING", f"run {crashed_run}"),
                               ("FAILED", "run.interrupted"), ("PROCESSING", history[2][1])]
    else:  # committed: the next run completes the crashed run's publish
        assert history[:2] == [("PROCESSING", f"run {crashed_run}"),
                               ("PROCESSED", f"run {crashed_run}")]
    # exactly the rows one clean run gives: nothing lost, nothing twice
    reference = tmp_path / "reference"
    for name in (FILE1, FILE2):
        land(reference, tmp_path / name)
    assert run(reference) == 0
    assert clean_rows(spark, lake) == clean_rows(spark, reference)
    assert not any((lake / "clean" / "_staging").rglob("*.parquet"))
    assert not any((lake / "clean" / "_commits").rglob("*.json"))
