"""Ledger-driven runs: statuses after a run, a bad upload failing alone, retries, explicit
upload ids, the run lock, and crash safety with the process really killed mid-run."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from glue_jobs.orders.v1 import job
from lib.contracts.contract import load_contract
from lib.jobs import run as run_module
from lib.jobs.faults import CRASH_ENV, CRASH_EXIT_CODE
from lib.jobs.run import SelectionError
from lib.lake.paths import LakePaths, local_path, to_uri
from lib.ledger.records import LockBusyError, UploadRecord
from lib.ledger.sqlite import open_ledger
from lib.upload.landing import upload_file
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


def lake_cli(lake: Path, *args: str, crash_at: str | None = None, tmp: Path,
             **env_vars: str) -> subprocess.CompletedProcess:
    """`lake` in its own process (its own SparkSession), optionally killed at a crash point."""
    env = {**os.environ, "LAKE_SPARK_DIR": str(tmp / f"spark-{os.urandom(3).hex()}"), **env_vars}
    env.pop(CRASH_ENV, None)
    if crash_at:
        env[CRASH_ENV] = crash_at
    return subprocess.run([sys.executable, "-m", "lib.tools.cli", "--lake-root", str(lake), *args],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=600)


@pytest.mark.parametrize("point", ["writing", "committed", "publishing"])
def test_a_run_killed_while_reprocessing_is_undone_or_completed_by_the_next_run(
        spark, tmp_path, two_uploads, point) -> None:
    """The crashed run reprocesses upload 2, whose files are in the zones: its new files go
    straight into the zones, so a reader sees them beside the old ones until the next run
    deletes one set, by the intent (never committed) or by the journal (committed)."""
    lake, uid1, uid2 = two_uploads
    assert run(lake, uid2) == 0  # upload 2 is in the zones already
    before = zone_snapshot(lake)
    commits = lake / "clean" / "_commits" / "orders"

    died = lake_cli(lake, "reprocess", uid2, "--version", "1", crash_at=point, tmp=tmp_path)
    assert died.returncode == CRASH_EXIT_CODE, died.stderr[-2000:]
    assert f"{CRASH_ENV}={point}: simulating a crash" in died.stderr
    ledger = open_ledger(lake)
    assert ledger.get(uid2).status == "PROCESSING"  # not PROCESSED
    crashed_run = ledger.get(uid2).run_id
    after_crash = zone_snapshot(lake)
    written = {p for p in after_crash if Path(p).name.startswith(f"{uid2}_{crashed_run}_")}
    assert (commits / f"{crashed_run}.intent.json").is_file()
    if point == "writing":  # the clean files are in, the quarantined ones not, no journal
        assert written and all(p.startswith("clean/") for p in written)
        assert set(after_crash) == set(before) | written
        assert not (commits / f"{crashed_run}.json").exists()
    elif point == "committed":  # every new file is in, the old ones still there
        assert {p.split("/")[0] for p in written} == {"clean", "quarantine"}
        assert set(after_crash) == set(before) | written
        assert (commits / f"{crashed_run}.json").is_file()
    else:  # old files being deleted (several at a time); the journal says what is left
        gone = set(before) - set(after_crash)
        assert gone and all(Path(p).name.startswith(f"{uid2}_") for p in gone)
        assert set(after_crash) == (set(before) - gone) | written
        assert (commits / f"{crashed_run}.json").is_file()

    assert run(lake) == 0  # recovers, then processes upload 1 (and upload 2 if undone)
    assert statuses(lake) == {uid1: "ARCHIVED", uid2: "ARCHIVED"}
    r = ledger.get(uid2)
    assert (r.rows_read, r.clean, r.quarantined, r.duplicates_removed) == (6, 2, 3, 1)
    history = [(h.to_status, h.note) for h in ledger.history(uid2)]
    history = history[history.index(("PROCESSING", f"run {crashed_run}")):]
    if point == "writing":  # never committed: its files are deleted and it is retried
        assert history[:3] == [("PROCESSING", f"run {crashed_run}"),
                               ("FAILED", "run.interrupted"), ("PROCESSING", history[2][1])]
        assert not any(Path(p).name.startswith(f"{uid2}_{crashed_run}_")
                       for p in zone_snapshot(lake))
    else:  # committed: the next run completes the crashed run's publish
        assert history[:2] == [("PROCESSING", f"run {crashed_run}"),
                               ("PROCESSED", f"run {crashed_run}")]
        assert {p for p in zone_snapshot(lake) if Path(p).name.startswith(f"{uid2}_")} == written
    # exactly the rows one clean run gives: nothing lost, nothing twice
    reference = tmp_path / "reference"
    for name in (FILE1, FILE2):
        land(reference, tmp_path / name)
    assert run(reference) == 0
    assert clean_rows(spark, lake) == clean_rows(spark, reference)
    assert not [p for p in commits.iterdir() if p.is_file()]


def test_a_publish_that_cannot_finish_stops_the_run_and_the_next_run_completes_it(
        spark, tmp_path, two_uploads, monkeypatch) -> None:
    """The first batch commits, then its deletes fail (the file system errs): its journal
    and intent are kept for the next run, and no later batch of the run may write its own
    over them: the uploads left are FAILED (``run.not_run``) and retried by the next run."""
    import lib.jobs.run as run_module

    lake, uid1, uid2 = two_uploads
    monkeypatch.setattr(run_module, "plan_batches", lambda run, ready: [[item] for item in ready])
    real_apply, calls = run_module.apply, []

    def failing_apply(fs, plan, **kwargs):  # noqa: ANN001, ANN003, ANN202
        calls.append(plan.run_id)
        if len(calls) == 1:
            raise OSError("S3 says: SlowDown")
        return real_apply(fs, plan, **kwargs)

    monkeypatch.setattr(run_module, "apply", failing_apply)
    assert run(lake) == 1
    ledger = open_ledger(lake)
    first, second = ledger.get(uid1), ledger.get(uid2)
    assert first.status == "PROCESSING"  # committed: the next run completes it
    commits = lake / "clean" / "_commits" / "orders"
    assert sorted(p.name for p in commits.iterdir() if not p.name.startswith(".")) == [
        f"{first.run_id}.intent.json", f"{first.run_id}.json"]
    assert (second.status, second.error_code) == ("FAILED", "run.not_run")
    assert second.error == (f"{second.location}: not processed: an earlier batch of run "
                            f"{first.run_id} could not finish publishing; the next run "
                            "processes it")

    assert run(lake) == 0
    assert statuses(lake) == {uid1: "ARCHIVED", uid2: "ARCHIVED"}
    assert ledger.get(uid1).run_id == first.run_id  # completed from its journal, not rerun
    assert ledger.get(uid2).run_id != first.run_id
    assert not [p for p in commits.iterdir() if p.is_file()]


def test_an_upload_whose_rows_read_differ_from_its_checked_count_fails_alone(spark,
                                                                            tmp_path) -> None:
    """The rows read differ from the records the upload check counted (here the ledger's
    count is off by one, as if the check and the reader split a file differently; bytes
    changed after the check are caught before, as `file.changed`): the run must not report
    success with rows missing from, or added to, the count."""
    lake = tmp_path / "lake"
    contract = load_contract("orders", 1)
    ledger, paths = open_ledger(lake), LakePaths.from_root(lake)
    ok = upload_file(SAMPLES / FILE1, contract, ledger, paths)
    miscounted = upload_file(SAMPLES / "orders_2026-11-04_discounts.csv", contract, ledger, paths)
    with sqlite3.connect(ledger.path) as db:
        db.execute("UPDATE uploads SET record_count = 5 WHERE upload_id = ?",
                    (miscounted.upload_id,))
    assert run(lake) == 1
    failed = ledger.get(miscounted.upload_id)
    assert (failed.status, failed.error_code, failed.record_count) == \
        ("FAILED", "run.count_mismatch", 5)
    assert failed.error == (f"{miscounted.location}: the job read 6 rows but the upload check "
                            "counted 5 records; nothing of this upload is published")
    assert ledger.get(ok.upload_id).status == "ARCHIVED"
    published = {r["_upload_id"] for r in spark.read.parquet(to_uri(lake / "clean" / "orders"))
                 .select("_upload_id").distinct().collect()}
    assert published == {ok.upload_id}
    assert not [p for p in (lake / "clean" / "_commits").rglob("*") if p.is_file()]


def test_a_journal_left_half_written_and_an_old_staging_folder_are_removed_by_the_next_run(spark, tmp_path,
                                                                two_uploads) -> None:
    lake, uid1, uid2 = two_uploads
    leftover = lake / "clean" / "_commits" / "orders" / "20261121T000000Z-dead00.json.tmp"
    leftover.parent.mkdir(parents=True)
    leftover.write_text('{"dataset": "orders", "run_id": "20261121T0000')
    # and the staging folder a run of the release before the write-once publish left
    staged = lake / "clean" / "_staging" / "orders" / "20261121T000000Z-dead00" / "x.parquet"
    staged.parent.mkdir(parents=True)
    staged.write_bytes(b"PAR1")
    assert run(lake) == 0
    assert not leftover.exists()
    assert not staged.parent.exists()
    assert statuses(lake) == {uid1: "ARCHIVED", uid2: "ARCHIVED"}


def test_a_poisoned_upload_fails_alone_and_the_good_ones_publish(tmp_path) -> None:
    """A real out-of-memory: one 300 MB field in a 512m driver. The batch dies twice, then
    each upload runs alone: the good ones publish, the poisoned one is held with an alert
    message naming the run, the uploads, the cause and the setting."""
    lake = tmp_path / "lake"
    contract = load_contract("orders", 1)
    ledger, paths = open_ledger(lake), LakePaths.from_root(lake)
    good = [upload_file(SAMPLES / name, contract, ledger, paths).upload_id
            for name in (FILE1, "orders_2026-11-04_discounts.csv")]
    big = tmp_path / "big.csv"
    with big.open("w") as f:
        f.write("order_id,customer_id,product_sku,quantity,unit_price,currency,order_ts\n")
        f.write('O-1,C-1,"' + "x" * 300_000_000 + '",1,1.00,USD,2026-11-01T00:00:00Z\n')
    poison = land(lake, big, upload_id="u-poison")  # past the checks, as if they had let it in
    big.unlink()

    def attempt() -> subprocess.CompletedProcess:
        return lake_cli(lake, "run", "orders", "--version", "1", tmp=tmp_path,
                        LAKE_DRIVER_MEMORY="512m")

    first = attempt()
    assert first.returncode == 2, first.stderr[-3000:]
    assert "Traceback" not in first.stderr
    message = first.stderr[first.stderr.index("lake: error: "):]
    head = (f"lake: error: run {ledger.get(poison).run_id} of orders stopped: the Spark driver "
            "died while processing upload(s) ")
    assert message.startswith(head)
    assert sorted(message[len(head):].split(" (", 1)[0].split(", ")) == sorted([*good, poison])
    assert ("The likely cause is a record or a batch larger than the driver's memory: raise "
            "LAKE_DRIVER_MEMORY (now 512m) for a local run") in message
    assert f"upload {poison}: retried by the next run" in message
    second = attempt()
    assert second.returncode == 2
    assert f"upload {poison}: retried alone by the next run (2 interrupted runs)" in second.stderr
    third = attempt()
    assert third.returncode == 2
    assert (f"upload {poison}: held: FAILED (run.interrupted), not retried automatically after "
            f"3 interrupted runs, the last with this upload alone") in third.stderr
    # the good ones are published (their raw files are archived by the next run's recovery)
    assert statuses(lake) == {good[0]: "PROCESSED", good[1]: "PROCESSED", poison: "FAILED"}
    assert [ledger.get(u).rows_read for u in good] == [14, 6]
    held = ledger.get(poison)
    assert (held.error_code, held.interruptions, held.held) == ("run.interrupted", 3, True)
    fourth = attempt()  # nothing pending: the held upload waits for lake reprocess
    assert fourth.returncode == 0, fourth.stderr[-2000:]
    assert statuses(lake) == {good[0]: "ARCHIVED", good[1]: "ARCHIVED", poison: "FAILED"}


def test_a_raw_file_replaced_after_acceptance_fails_alone_and_publishes_nothing(
        spark, two_uploads) -> None:
    lake, uid1, uid2 = two_uploads
    record = open_ledger(lake).get(uid1)
    raw = local_path(record.location)
    swapped = raw.read_bytes().replace(b"O-1001", b"O-6666")  # same rows, other values
    assert swapped != raw.read_bytes()
    raw.write_bytes(swapped)
    assert run(lake) == 1
    changed = open_ledger(lake).get(uid1)
    assert (changed.status, changed.error_code) == ("FAILED", "file.changed")
    assert changed.error == (
        f"{record.location}: its bytes are not the ones accepted: SHA-256 "
        f"{hashlib.sha256(swapped).hexdigest()} now, {record.sha256} when upload {uid1} passed "
        "its checks. The file was replaced or changed after it was accepted, so none of its "
        "rows were used; upload the intended file again as a new upload")
    assert statuses(lake)[uid2] == "ARCHIVED"
    published = {p.name.split("_")[0] for p in (lake / "clean").rglob("*.parquet")}
    published |= {p.name.split("_")[0] for p in (lake / "quarantine").rglob("*.parquet")}
    assert uid2 in published and uid1 not in published


def test_a_full_disk_is_named_as_such_and_the_uploads_are_retried(spark, two_uploads,
                                                                 monkeypatch) -> None:
    lake, uid1, uid2 = two_uploads
    writes = []

    def disk_full(*args, **kwargs) -> None:  # noqa: ANN002, ANN003
        writes.append(args)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(run_module, "write_batch", disk_full)
    assert run(lake) == 1
    assert len(writes) == 1  # not retried upload by upload: that would fill the disk again
    for uid in (uid1, uid2):
        r = open_ledger(lake).get(uid)
        assert (r.status, r.error_code) == ("FAILED", "run.disk_full")
        assert "the disk is full (No space left on device" in r.error
        assert "free space where the lake's zones and Spark's local folder are" in r.error
    monkeypatch.undo()
    assert run(lake) == 0  # space freed: the next run takes them
    assert statuses(lake) == {uid1: "ARCHIVED", uid2: "ARCHIVED"}


def test_a_run_refused_by_the_lock_says_so_before_starting_spark(two_uploads, tmp_path) -> None:
    lake, uid1, _ = two_uploads
    spark_dir = tmp_path / "spark-of-the-refused-run"
    with open_ledger(lake).run_lock("orders"):
        done = lake_cli(lake, "run", "orders", tmp=tmp_path, LAKE_SPARK_DIR=str(spark_dir))
    assert done.returncode == 2, done.stderr
    assert "another run of 'orders' is in progress (pid " in done.stderr
    assert "Traceback" not in done.stderr
    assert not spark_dir.exists()  # no session was started
    assert statuses(lake)[uid1] == "ACCEPTED"
