"""One run of a dataset's job, top to bottom.

:func:`process_uploads` is the whole run, under the dataset's run lock, as named steps:

1. **recover** what runs that died left: a committed journal (the run died while
   publishing) is applied and its uploads marked PROCESSED; the files of a run that never
   committed are deleted (its intent names the uploads); an upload still PROCESSING
   belonged to a run that died before committing, so it is marked FAILED ("interrupted")
   and retried below; an upload left PROCESSED (the run died before archiving) is archived.
2. **select and claim**: without ``upload_ids`` every ACCEPTED and FAILED upload of the
   dataset, oldest first; with ``upload_ids`` exactly those (ACCEPTED, FAILED, or
   PROCESSED/ARCHIVED to reprocess). Each moves to PROCESSING by a conditional write.
3. **read** each upload's header against the contract; a file that cannot be used
   (missing, unreadable, header not matching) fails alone with its reason. The uploads
   that can be read form one batch, read lazily as one frame.
4. **enforce** the contract on the batch in one pass over the input: every row validated
   as it is read and clustered by (upload, partition) in one shuffle, whose files every
   later step reads; the keys that repeat found on a narrow projection; the rows
   classified and counted.
5. **verify**, per upload, from those counts: rows read = the records the upload check
   counted: an upload that differs fails alone (``run.count_mismatch``) and the rest of the
   batch goes on.
6. **write** the clean and the quarantined rows of the uploads that passed straight into
   the zones, each file once under a name of its (upload, run) (:mod:`lib.jobs.publish`),
   after an intent naming the uploads.
7. **commit**: the journal listing each upload's new files and the older files to delete
   is written; from here on the batch is published, by this run or by the next one (step 1).
8. **publish**: the older files are deleted, the uploads are marked PROCESSED with their
   counts, and the journal and the intent are removed; the partitions written are
   registered in the catalog the run was given (:mod:`lib.jobs.register`), so the rows are
   queryable without waiting for a crawler (also for a journal completed in step 1).
9. **record failures**: every upload that failed is marked FAILED with its error.
10. **archive**: the raw file of each PROCESSED upload moves to
    ``archive/<dataset>/ingest_date=D/<upload_id>/<file>``; the upload becomes ARCHIVED.
    Raw bytes are moved, never deleted; a reprocess reads them from the archive.
11. **report**: the run report is written under ``_reports/``.

If Spark fails on the batch as a whole (a corrupt gzip stream only shows when read), steps
3-8 are retried upload by upload, so that only the bad one fails. If the driver itself dies
(out of memory), nothing more can run: the batch's uploads are counted as interrupted
(:func:`interrupted`) and :class:`DriverDied` says what happened. An upload in
:data:`ALONE_AFTER` interrupted runs is processed in a batch of its own; one that then kills
the driver alone is held (no automatic retry), so one bad file never blocks its dataset.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Protocol

from lib.contracts.contract import ERRORS, QUARANTINED_SHARE, UPLOAD_ID, Contract
from lib.contracts.header import HeaderPlan
from lib.errors import FileError, LakeError
from lib.jobs.faults import crash_point
from lib.jobs.publish import (
    DEFAULT_MAX_RECORDS_PER_FILE,
    Fs,
    PublishPlan,
    apply,
    commit,
    intent_json,
    pending_intents,
    pending_journals,
    plan_upload,
    read_intent,
    remove_files,
    write_record,
    zone_files,
)
from lib.jobs.register import Catalog, register_published
from lib.jobs.report import FAILED as RESULT_FAILED
from lib.jobs.report import RunReport, UploadResult
from lib.jobs.report_html import RECENT_RUNS, past_runs, render
from lib.jobs.settings import DRIVER_MEMORY_ENV, driver_memory_setting
from lib.lake.fs import java_error_message
from lib.lake.paths import LakePaths, join
from lib.ledger.base import Ledger
from lib.ledger.notify import QUALITY_WARNING_PREFIX
from lib.ledger.records import (
    ACCEPTED,
    ARCHIVED,
    FAILED,
    PENDING,
    PROCESSABLE,
    PROCESSED,
    PROCESSING,
    ConflictError,
    LedgerError,
    UploadRecord,
)
from lib.sources.files import Upload, read_header

INTERRUPTED = "run.interrupted"
PUBLISH_INCOMPLETE = "run.publish_incomplete"
NOT_RUN = "run.not_run"
COUNT_MISMATCH = "run.count_mismatch"
QUALITY_THRESHOLD = "quality.threshold"  # an upload above a fail threshold of its contract
CHANGED = "file.changed"
_SHA256 = re.compile(r"[0-9a-f]{64}")
DISK_FULL = "run.disk_full"
# An upload in batches whose driver died this many times is processed in a batch of its own;
# one that kills the driver on its own after that is held: FAILED, no automatic retry.
ALONE_AFTER = 2

Batch = list[tuple[Upload, HeaderPlan]]


class ConservationError(LakeError):
    """Rows were about to be lost or duplicated; nothing was published."""

    default_code = "run.conservation"


class PublishIncomplete(LakeError):
    """The batch was committed but applying it failed; the next run completes it."""

    default_code = PUBLISH_INCOMPLETE


class DriverDied(LakeError):
    """The Spark driver died (out of memory, killed) while a batch was being processed:
    nothing more can run in this process. The message names the run, the uploads, the
    likely cause, the setting to change and what becomes of each upload."""

    default_code = INTERRUPTED

    def __init__(self, run_id: str, dataset: str, batch: Sequence[str], cause: str,
                 outcomes: Mapping[str, str] | None = None) -> None:
        self.run_id, self.dataset, self.batch, self.cause = run_id, dataset, list(batch), cause
        self.outcomes = dict(outcomes or {})
        self.held = [uid for uid, what in self.outcomes.items() if what.startswith("held")]
        memory = driver_memory_setting()
        lines = [f"run {run_id} of {dataset} stopped: the Spark driver died while processing "
                 f"upload(s) {', '.join(self.batch)} ({cause}). The likely cause is a record or "
                 f"a batch larger than the driver's memory: raise {DRIVER_MEMORY_ENV} (now "
                 f"{memory}) for a local run, or the job's worker type on Glue, or split the "
                 "file."]
        lines += [f"upload {uid}: {what}" for uid, what in self.outcomes.items()]
        super().__init__("\n".join(lines))


class SelectionError(LedgerError):
    """The uploads a run was asked to process cannot all be processed; nothing was."""

    default_code = "run.selection"


class Enforced(Protocol):
    """A batch read and enforced by an engine: the rows per (upload, read partition, reason
    codes) (``counts``: mappings with ``_upload_id``, ``_read_partition``, ``_errors`` and
    ``count``) and, per upload with repeats, the rows in conflict and the duplicates
    (``repeated``); ``write`` puts the rows of some of its uploads into the zones."""

    counts: Sequence[Mapping]
    repeated: Mapping[str, tuple[int, int]]

    def write(self, run: Run, upload_ids: Sequence[str]) -> None: ...


class RowEngine(Protocol):
    """The steps of a run that touch rows: :class:`lib.jobs.spark_rows.SparkRows` (Spark,
    locally and on Glue) or :class:`lib.jobs.duck_rows.DuckRows` (DuckDB, no JVM). Everything
    else about a run (the ledger, the intent and the journal, the counts, the report) is the
    same whichever engine ran."""

    name: str
    fs: Fs

    def prepare(self, contract: Contract) -> None: ...  # refuse what it cannot run, early
    def alive(self) -> bool: ...  # False: the engine's process died, nothing more can run
    def batch(self, run: Run, batch: Batch) -> AbstractContextManager[Enforced]: ...


@dataclass
class Run:
    """What every step of one run works with."""

    rows: RowEngine
    fs: Fs
    contract: Contract
    paths: LakePaths
    ledger: Ledger
    log: logging.Logger
    job_name: str
    job_version: int
    run_id: str
    started: datetime
    max_records_per_file: int
    claimed: dict[str, UploadRecord] = field(default_factory=dict)
    committed: set[str] = field(default_factory=set)  # uploads of a batch past its commit point
    catalog: Catalog | None = None  # where published partitions are registered (None: nowhere)
    small_only: int | None = None  # the fast lane: the ACCEPTED uploads of at most these bytes

    @property
    def dataset(self) -> str:
        return self.contract.dataset


def new_run_id(now: datetime) -> str:
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"


def process_uploads(
    rows: RowEngine,
    contract: Contract,
    paths: LakePaths,
    ledger: Ledger,
    *,
    job_name: str,
    job_version: int,
    upload_ids: Sequence[str] | None = None,
    max_records_per_file: int = DEFAULT_MAX_RECORDS_PER_FILE,
    logger: logging.Logger | None = None,
    now: datetime | None = None,
    catalog: Catalog | None = None,
    small_only: int | None = None,
) -> RunReport:
    """One run of ``contract``'s job on the dataset's pending uploads (or ``upload_ids``):
    the steps of the module docstring, in order. Returns the run report, already written.
    With ``catalog``, the partitions each batch published are registered in it; with
    ``small_only`` (the fast lane), the run takes the dataset's ACCEPTED uploads of at most
    that many bytes."""
    started = now or datetime.now(UTC)
    run = Run(rows, rows.fs, contract, paths, ledger,
              logger or logging.getLogger(f"lake.{job_name}"), job_name, job_version,
              new_run_id(started), started, max_records_per_file, catalog=catalog,
              small_only=small_only)
    rows.prepare(contract)  # what the engine cannot run fails here, before any claim
    with ledger.run_lock(contract.dataset):
        recovered = recover(run)
        claimed = select_and_claim(run, upload_ids)
        report = new_report(run, claimed, recovered)
        try:
            ready = read_headers(run, claimed, report)
            process(run, plan_batches(run, ready), report)
        except DriverDied as died:
            raise record_driver_death(run, died, report) from died.__cause__
        except BaseException as exc:
            release_claims(run, claimed, exc)
            raise
        record_failures(run, report)
        archive(run, also=[u.upload_id for u in claimed])
        write_report(run, report)
    return report


# -- 1. recover ------------------------------------------------------------------------------

def recover(run: Run) -> list[str]:
    """Finish what crashed runs of the dataset left (only ever called under the run lock).
    Returns the upload ids whose publish was completed."""
    completed = complete_journals(run)
    remove_uncommitted(run)
    fail_orphans(run)
    archive(run)
    return completed


def complete_journals(run: Run) -> list[str]:
    """Apply every committed journal (a run died while publishing) and mark its uploads
    PROCESSED."""
    completed: list[str] = []
    for journal, plan in pending_journals(run.fs, run.paths.journal_dir(run.dataset)):
        run.log.warning("run %s died while publishing; completing its journal %s",
                        plan.run_id, journal)
        apply(run.fs, plan)
        completing = [UploadResult(**u) for u in plan.uploads.values()]
        mark_processed(run, completing, plan.run_id)
        register(run, completing)
        # the intent first: an intent without a journal means "never committed, delete"
        run.fs.delete(run.paths.intent(run.dataset, plan.run_id))
        run.fs.delete(journal)
        for zone in (run.paths.clean, run.paths.quarantine):  # a run of an earlier release
            run.fs.delete(join(run.paths.staging_root(zone, run.dataset), plan.run_id),
                          recursive=True)
        completed += list(plan.uploads)
    return completed


def remove_uncommitted(run: Run) -> None:
    """The files of runs that never committed (their intents say which uploads they were
    writing), the intents and journals they left half-written (``*.tmp``: the run died
    while writing one), and the staging folders of runs of earlier releases."""
    intents = pending_intents(run.fs, run.paths.journal_dir(run.dataset))
    if intents:
        listings = _listings(run)
        for uri in intents:
            run_id, uploads = read_intent(run.fs, uri)
            removed = sum(remove_files(run.fs, listing, run_id, uploads)
                          for listing in listings)
            run.log.warning("run %s never committed: removed the %d file(s) it wrote for "
                            "upload(s) %s", run_id, removed, ", ".join(uploads))
            run.fs.delete(uri)
    for zone in (run.paths.clean, run.paths.quarantine):
        for entry in run.fs.list(run.paths.staging_root(zone, run.dataset)):
            run.log.warning("removing staging folder of a run that never committed: %s",
                            entry.path)
            run.fs.delete(entry.path, recursive=True)
    for entry in run.fs.list(run.paths.journal_dir(run.dataset)):
        if entry.name.endswith(".json.tmp"):
            run.log.warning("removing the unfinished record of a run that never committed: %s",
                            entry.path)
            run.fs.delete(entry.path)


def _listings(run: Run) -> tuple[list[str], list[str]]:
    """The Parquet files of the dataset's clean and quarantine folders: one listing each."""
    return (zone_files(run.fs, run.paths.clean_dataset(run.dataset),
                       len(run.contract.partition_by)),
            zone_files(run.fs, run.paths.quarantine_dataset(run.dataset), 1))  # ingest_date


def unwrite(run: Run, upload_ids: Sequence[str]) -> None:
    """Delete what this run wrote for ``upload_ids`` (it did not commit them), then its
    intent."""
    for listing in _listings(run):
        remove_files(run.fs, listing, run.run_id, upload_ids)
    run.fs.delete(run.paths.intent(run.dataset, run.run_id))


def fail_orphans(run: Run) -> None:
    """Uploads left PROCESSING by a run that died before committing (killed: nothing could
    record it) are FAILED and counted as interrupted, all of one run as one batch."""
    orphans = run.ledger.find(run.dataset, (PROCESSING,))
    per_run: dict[str | None, int] = {}
    for r in orphans:
        per_run[r.run_id] = per_run.get(r.run_id, 0) + 1
    for r in orphans:
        interrupted(run, r, alone=per_run[r.run_id] == 1,
                    why=f"run {r.run_id} ended before publishing this upload (the process died "
                        "or was stopped)")


def interrupted(run: Run, r: UploadRecord, *, alone: bool, why: str) -> str:
    """Record that a run died while processing ``r``: FAILED with ``run.interrupted`` and
    one more interruption; held (no automatic retry) when it died alone after an earlier
    interruption. Returns what becomes of it."""
    count = r.interruptions + 1
    held = alone and count >= ALONE_AFTER
    if held:
        what = (f"held: FAILED ({INTERRUPTED}), not retried automatically after {count} "
                f"interrupted runs, the last with this upload alone; fix the file or the "
                f"driver's memory, then: lake reprocess {r.upload_id}")
    elif count >= ALONE_AFTER:
        what = f"retried alone by the next run ({count} interrupted runs)"
    else:
        what = "retried by the next run"
    run.log.warning("upload %s: %s; %s", r.upload_id, why, what)
    run.ledger.transition(r.upload_id, FAILED, expected=(PROCESSING,), note=INTERRUPTED,
                          error_code=INTERRUPTED, error=f"{why}; {what}",
                          interruptions=count, held=held)
    return what


# -- 2. select and claim ---------------------------------------------------------------------

def select_uploads(ledger: Ledger, dataset: str, upload_ids: Sequence[str] | None,
                   small_only: int | None = None) -> list[UploadRecord]:
    """The uploads a run takes: ``upload_ids``, else every pending upload of the dataset;
    with ``small_only`` (the fast lane), every ACCEPTED upload of at most that many bytes
    (a FAILED one waits for the batch run, which retries it)."""
    if small_only is not None:
        return [r for r in ledger.find(dataset, [ACCEPTED])
                if not r.held and r.size_bytes <= small_only]
    if upload_ids is None:  # held uploads wait for an explicit reprocess
        return [r for r in ledger.find(dataset, PENDING) if not r.held]
    records, problems = [], []
    for uid in dict.fromkeys(upload_ids):
        try:
            r = ledger.get(uid)
        except LedgerError as exc:
            problems.append(str(exc))
            continue
        if r.dataset != dataset:
            problems.append(f"upload {uid} belongs to dataset {r.dataset!r}, not {dataset!r}")
        elif r.status not in PROCESSABLE:
            why = f" ({r.reason_code}: {r.reason})" if r.reason_code else ""
            problems.append(f"upload {uid} is {r.status}{why}; only "
                            f"{', '.join(PROCESSABLE)} uploads can be processed")
        else:
            records.append(r)
    if problems:
        raise SelectionError("; ".join(problems))
    return records


def select_and_claim(run: Run, upload_ids: Sequence[str] | None) -> list[Upload]:
    """The uploads this run processes, each moved to PROCESSING by a conditional write (an
    upload another writer changed first is skipped)."""
    claimed: list[Upload] = []
    for r in select_uploads(run.ledger, run.dataset, upload_ids, run.small_only):
        try:
            run.claimed[r.upload_id] = run.ledger.transition(
                r.upload_id, PROCESSING, expected=(r.status,), note=f"run {run.run_id}",
                job_name=run.job_name, job_version=run.job_version, run_id=run.run_id,
                held=False)
        except ConflictError as exc:
            run.log.warning("skipping upload %s: %s", r.upload_id, exc)
            continue
        claimed.append(Upload(r.upload_id, str(r.location), date.fromisoformat(r.ingest_date),
                              r.record_count, r.multiline))
    return claimed


def new_report(run: Run, uploads: Sequence[Upload], recovered: Sequence[str]) -> RunReport:
    paths = run.paths
    report = RunReport(job=run.job_name, job_version=run.job_version,
                       contract=run.contract.ref, run_id=run.run_id, engine=run.rows.name,
                       started_at=run.started.isoformat(),
                       lake={"raw": paths.raw, "clean": paths.clean,
                             "quarantine": paths.quarantine, "reports": paths.reports})
    by_id = {up.upload_id: up for up in uploads}  # the same upload twice is one upload
    report.uploads = [UploadResult(uid, up.path) for uid, up in by_id.items()]
    report.recovered = list(recovered)
    return report


def release_claims(run: Run, claimed: Sequence[Upload], exc: BaseException) -> None:
    """The run failed unexpectedly: leave nothing PROCESSING that is not in a committed
    journal (a committed batch stays PROCESSING until the next run completes it)."""
    if run.fs.exists(run.paths.journal(run.dataset, run.run_id)):
        return
    for u in claimed:
        with contextlib.suppress(LedgerError):
            run.ledger.transition(u.upload_id, FAILED, expected=(PROCESSING,),
                                  note="run failed", error_code="run.failed",
                                  error=f"{type(exc).__name__}: {exc}"[:2000])


# -- 3. read ---------------------------------------------------------------------------------

def read_headers(run: Run, uploads: Sequence[Upload], report: RunReport) -> Batch:
    """Check each upload's file: its bytes are the ones accepted (:func:`verify_bytes`), its
    header matches the contract. A file that cannot be used fails alone. Returns the uploads
    that can be read, with how to read each."""
    results = _results(report)
    batch: Batch = []
    for up in dict((u.upload_id, u) for u in uploads).values():
        try:
            verify_bytes(run, up)
            plan = read_header(run.fs, up, run.contract)
        except FileError as exc:
            _fail(results[up.upload_id], exc.code, str(exc))
            run.log.error("upload %s failed: %s", up.upload_id, exc)
            continue
        results[up.upload_id].warnings += list(plan.warnings)
        batch.append((up, plan))
    return batch


def verify_bytes(run: Run, up: Upload) -> None:
    """Refuse an upload whose file is not the bytes that were checked and accepted: its
    SHA-256 now must be the one the ledger recorded (:data:`CHANGED`). A file that cannot
    be opened is left to the header check, which names why."""
    record = run.claimed.get(up.upload_id)
    expected = (record.sha256 or "").lower() if record else ""
    if not _SHA256.fullmatch(expected):  # recorded without a checksum: nothing to compare
        return
    try:
        actual = run.fs.sha256(up.path)
    except Exception:  # noqa: BLE001 - missing or unreadable: read_header says which
        return
    if actual != expected:
        raise FileError(
            f"its bytes are not the ones accepted: SHA-256 {actual} now, {expected} when "
            f"upload {up.upload_id} passed its checks. The file was replaced or changed "
            "after it was accepted, so none of its rows were used; upload the intended file "
            "again as a new upload", CHANGED, up.path)


def plan_batches(run: Run, ready: Batch) -> list[Batch]:
    """One batch of the uploads, except those in :data:`ALONE_AFTER` interrupted runs or
    more: each in a batch of its own, after the others, the longest record last (the
    likeliest to kill the driver again)."""
    def interruptions(item: tuple[Upload, HeaderPlan]) -> int:
        record = run.claimed.get(item[0].upload_id)
        return record.interruptions if record else 0

    together = [item for item in ready if interruptions(item) < ALONE_AFTER]
    def longest(item: tuple[Upload, HeaderPlan]) -> tuple[bool, int]:
        size = run.claimed[item[0].upload_id].longest_record_bytes
        return size is None, size or 0  # not measured at upload: last

    alone = sorted((item for item in ready if interruptions(item) >= ALONE_AFTER), key=longest)
    return ([together] if together else []) + [[item] for item in alone]


def process(run: Run, planned: list[Batch], report: RunReport) -> None:
    """Steps 3-8 for each batch; if Spark fails on a batch as a whole, again upload by
    upload so that only the bad one fails. If the driver died, nothing more can run here:
    :class:`DriverDied`."""
    results = _results(report)
    batches = [b for b in planned if b]
    while batches:
        current = batches.pop(0)
        try:
            process_batch(run, current, results)
        except PublishIncomplete as exc:  # committed: no retry, the next run completes it
            run.log.error("%s", exc)
            report.error = str(exc)
            for up, _ in current:
                results[up.upload_id].status = RESULT_FAILED
                results[up.upload_id].error_code = PUBLISH_INCOMPLETE
                results[up.upload_id].error = str(exc)
            # The kept journal and intent are this run's: no later batch may write its own
            # over them. The uploads left are FAILED, and the next run retries them.
            for up, _ in (item for batch in batches for item in batch):
                _fail(results[up.upload_id], NOT_RUN,
                      f"{up.path}: not processed: an earlier batch of run {run.run_id} could "
                      "not finish publishing; the next run processes it")
            batches = []
        except ConservationError as exc:
            unwrite(run, [up.upload_id for up, _ in current])
            report.error = str(exc)
            for up, _ in current:
                _fail(results[up.upload_id], exc.code, str(exc))
        except Exception as exc:  # Spark failed on the batch: isolate the bad upload(s)
            if not run.rows.alive():
                raise DriverDied(run.run_id, run.dataset, [up.upload_id for up, _ in current],
                                 _death_cause(exc)) from exc
            unwrite(run, [up.upload_id for up, _ in current])
            for up, _ in current:
                _reset_counts(results[up.upload_id])
            if disk_full(exc):  # one by one would fill it again: each upload fails, retried later
                for up, _ in current:
                    _fail(results[up.upload_id], DISK_FULL, disk_full_message(up, exc))
                run.log.error("the disk is full: %d upload(s) of the batch failed; %s",
                              len(current), disk_full_message(current[0][0], exc))
            elif len(current) > 1:
                run.log.warning("batch of %d uploads failed (%s); retrying one by one",
                                len(current), type(exc).__name__)
                batches = [[item] for item in current] + batches
            else:
                up = current[0][0]
                if isinstance(exc, LakeError):  # the engine says what it cannot do
                    _fail(results[up.upload_id], exc.code, f"{up.path}: {exc.message}")
                else:
                    _fail(results[up.upload_id], "file.unreadable",
                          f"{up.path}: cannot be processed: {java_error_message(exc)}")
                run.log.error("upload %s failed: %s", up.upload_id,
                              results[up.upload_id].error)


def disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it, through py4j too) says the disk is full."""
    seen: BaseException | None = exc
    while seen is not None:
        if getattr(seen, "errno", None) == errno.ENOSPC or "No space left on device" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def disk_full_message(up: Upload, exc: BaseException) -> str:
    return (f"{up.path}: not processed: the disk is full (No space left on device: "
            f"{java_error_message(exc, 200)}). Nothing of it was published; free space where "
            "the lake's zones and Spark's local folder are ($LAKE_SPARK_DIR, spark.local.dir"
            "), then run again: the upload is retried")


def process_batch(run: Run, batch: Batch, results: dict[str, UploadResult]) -> None:
    """Read, enforce, count, write, commit and publish one batch of uploads."""
    with run.rows.batch(run, batch) as enforced:
        key = run.contract.unique_column
        _fill_counts(results, enforced.counts, enforced.repeated,
                     key.code("conflict") if key is not None else None)
        batch = quality_check(run, count_check(run, batch, results), results)
        if batch:
            write_batch(run, enforced, [up.upload_id for up, _ in batch])
    if not batch:
        return
    plan = commit_batch(run, batch, results)
    publish(run, plan, [results[up.upload_id] for up, _ in batch])
    register(run, [results[up.upload_id] for up, _ in batch])


def register(run: Run, published: Sequence[UploadResult]) -> None:
    """Register the partitions the uploads were published into, so that their rows are
    queryable now (:mod:`lib.jobs.register`; a failure is logged and left to the crawler)."""
    if run.catalog is not None:
        register_published(run.catalog, run.contract, run.paths,
                           sorted({p for u in published for p in u.partitions}), run.log)


# -- 5. verify -------------------------------------------------------------------------------

def count_check(run: Run, batch: Batch, results: dict[str, UploadResult]) -> Batch:
    """The uploads whose rows read equal the records the upload check counted. Any other
    upload fails with ``run.count_mismatch`` and publishes nothing: rows went missing (or
    appeared) between the check and the read."""
    kept: Batch = []
    for upload, plan in batch:
        u = results[upload.upload_id]
        if upload.expected_records is None or u.rows_read == upload.expected_records:
            kept.append((upload, plan))
            continue
        msg = (f"{upload.path}: the job read {u.rows_read} rows but the upload check counted "
               f"{upload.expected_records} records; nothing of this upload is published")
        run.log.error("upload %s failed: %s", upload.upload_id, msg)
        _fail(u, COUNT_MISMATCH, msg)
    return kept


def _share_said(q: Mapping) -> str:
    what = ("quarantined" if q["measure"] == QUARANTINED_SHARE
            else f"failed {q['measure']}")
    return f"{q['rows']} of the {q['read']} rows read ({q['share']:.1%}) {what}"


def quality_check(run: Run, batch: Batch, results: dict[str, UploadResult]) -> Batch:
    """The contract's quality thresholds against each upload's counts: the uploads to
    publish. Above a ``warn`` threshold an upload is published with a warning; above a
    ``fail`` one it fails with ``quality.threshold``, publishes nothing and is held (the same
    file would fail again: fix it or the thresholds, then ``lake reprocess``)."""
    if not run.contract.quality:
        return batch
    kept: Batch = []
    for upload, plan in batch:
        u = results[upload.upload_id]
        u.quality = []
        for t in run.contract.quality:
            rows = (u.quarantined if t.measure == QUARANTINED_SHARE
                    else u.reasons.get(t.measure, 0))
            share = rows / u.rows_read if u.rows_read else 0.0
            u.quality.append({"measure": t.measure, "rows": rows, "read": u.rows_read,
                              "share": share, "warn": t.warn, "fail": t.fail,
                              "outcome": t.outcome(share)})
        for q in (q for q in u.quality if q["outcome"] == "warn"):
            u.warnings.append(f"{QUALITY_WARNING_PREFIX}{_share_said(q)}, above the warn "
                              f"threshold of {q['warn']:.1%}")
        failed = [q for q in u.quality if q["outcome"] == "fail"]
        if not failed:
            kept.append((upload, plan))
            continue
        msg = (f"{upload.path}: " + "; ".join(
            f"{_share_said(q)}, above the fail threshold of {q['fail']:.1%}" for q in failed)
            + f"; nothing of this upload is published. Fix the file (the quarantine reasons "
            f"say what is wrong) and upload it again, or change {run.contract.ref}'s quality "
            f"thresholds, then: lake reprocess {upload.upload_id}")
        run.log.error("upload %s failed: %s", upload.upload_id, msg)
        _fail(u, QUALITY_THRESHOLD, msg)
    return kept


# -- 6. write --------------------------------------------------------------------------------

def write_batch(run: Run, enforced: Enforced, upload_ids: Sequence[str]) -> None:
    """Write the intent that lets a later run remove this run's files if it never commits,
    then the engine's files of ``upload_ids``, each under a name of its (upload, run)."""
    write_record(run.fs, run.paths.intent(run.dataset, run.run_id),
                 intent_json(run.run_id, upload_ids))
    enforced.write(run, upload_ids)


# -- 7. commit -------------------------------------------------------------------------------

def commit_batch(run: Run, batch: Batch, results: dict[str, UploadResult]) -> PublishPlan:
    """List each upload's new files and the older ones to delete, and write the journal:
    the commit point. The rows in the new files' footers (read for the report's rows per
    partition) must be the rows counted for each zone, or nothing is committed."""
    ds, paths = run.dataset, run.paths
    plan = PublishPlan(ds, run.run_id)
    clean_files, quarantine_files = _listings(run)
    for upload, _ in batch:
        u = results[upload.upload_id]
        for zone, listing, target in (
            ("clean", clean_files, paths.clean_dataset(ds)),
            ("quarantine", quarantine_files, paths.quarantine_dataset(ds)),
        ):
            touched, replaced, rows = plan_upload(run.fs, plan, listing, target, u.upload_id)
            counted = u.clean if zone == "clean" else u.quarantined
            if sum(rows.values()) != counted:
                raise ConservationError(
                    f"{u.source_file}: the {zone} files written hold {sum(rows.values())} rows "
                    f"(their Parquet footers) but the run counted {counted}; nothing published")
            u.partitions += [f"{zone}/{ds}/{p}" for p in touched]
            u.partition_rows.update({f"{zone}/{ds}/{p}": n for p, n in sorted(rows.items())})
            u.files_replaced += replaced
        u.partitions.sort()
        plan.uploads[u.upload_id] = asdict(u)
    commit(run.fs, paths.journal(ds, run.run_id), plan)
    run.committed = set(plan.uploads)
    crash_point("committed")
    return plan


# -- 8. publish ------------------------------------------------------------------------------

def publish(run: Run, plan: PublishPlan, uploads: list[UploadResult]) -> None:
    """Apply the committed plan (delete the older files) and mark its uploads PROCESSED,
    then drop the journal and the intent. Marked before the journal goes, so a crash in
    between repeats the marking on recovery."""
    t0 = time.perf_counter()
    journal = run.paths.journal(run.dataset, run.run_id)
    run.log.info("publishing %d upload(s): %d older file(s) to delete", len(uploads),
                 len(plan.deletes))
    try:
        apply(run.fs, plan, after_delete=lambda i: crash_point("publishing") if i == 0 else None)
        mark_processed(run, uploads, run.run_id)
    except Exception as exc:
        raise PublishIncomplete(
            f"publishing run {run.run_id} was interrupted ({java_error_message(exc)}); its "
            f"journal {journal} is kept and the next run of {run.dataset} completes it") from exc
    run.committed = set()
    # the intent first: an intent without a journal means "never committed, delete"
    run.fs.delete(run.paths.intent(run.dataset, run.run_id))
    run.fs.delete(journal)
    run.log.info("published %d upload(s) in %.1fs", len(uploads), time.perf_counter() - t0)


def mark_processed(run: Run, results: list[UploadResult], run_id: str) -> None:
    for u in results:
        try:
            quality = [w for w in u.warnings if w.startswith(QUALITY_WARNING_PREFIX)]
            extra = {}
            if quality or run.contract.quality:  # this run's quality warnings replace the last's
                kept = [w for w in run.ledger.get(u.upload_id).warnings
                        if not w.startswith(QUALITY_WARNING_PREFIX)]
                extra = {"warnings": [*kept, *quality]}
            run.ledger.transition(
                u.upload_id, PROCESSED, expected=(PROCESSING,),
                note=f"run {run_id}" + (f" ({len(quality)} quality warning(s))"
                                        if quality else ""),
                rows_read=u.rows_read, clean=u.clean, quarantined=u.quarantined,
                duplicates_removed=u.duplicates_removed,
                job_name=run.job_name, job_version=run.job_version, run_id=run_id,
                error_code=None, error=None, **extra)
        except LedgerError as exc:  # e.g. already PROCESSED by an earlier recovery
            run.log.warning("upload %s: not marked PROCESSED: %s", u.upload_id, exc)


def _death_cause(exc: BaseException) -> str:
    text = java_error_message(exc)
    if isinstance(exc, ConnectionError) or "Connection refused" in text or "Py4J" in text:
        return "the JVM exited; its log names the error, usually java.lang.OutOfMemoryError"
    return text


def record_driver_death(run: Run, died: DriverDied, report: RunReport) -> DriverDied:
    """The driver died on ``died.batch``: those uploads are interrupted (see
    :func:`interrupted`); the run's other uploads go back to be retried, unless their
    batch is past its commit point (the next run's recovery completes it)."""
    outcomes: dict[str, str] = {}
    results = _results(report)
    for uid in died.batch:
        if uid in run.committed:
            outcomes[uid] = "committed: the next run completes its publish"
            continue
        with contextlib.suppress(LedgerError):
            outcomes[uid] = interrupted(run, run.ledger.get(uid), alone=len(died.batch) == 1,
                                        why=f"the Spark driver died while run {run.run_id} "
                                            "processed this upload")
    for uid in run.claimed:
        if uid in died.batch or uid in run.committed:
            continue
        u = results.get(uid)
        with contextlib.suppress(LedgerError):
            if u is not None and u.status == RESULT_FAILED:
                run.ledger.transition(uid, FAILED, expected=(PROCESSING,), note=u.error_code,
                                      error_code=u.error_code, error=u.error)
            elif run.ledger.get(uid).status == PROCESSING:
                run.ledger.transition(uid, FAILED, expected=(PROCESSING,), note="run failed",
                                      error_code="run.failed",
                                      error=f"run {run.run_id} stopped before this upload: the "
                                            "driver died on another one; retried by the next run")
    return DriverDied(run.run_id, run.dataset, died.batch, died.cause, outcomes)


# -- 9. record failures ----------------------------------------------------------------------

def record_failures(run: Run, report: RunReport) -> None:
    for u in report.failed:
        if u.error_code == PUBLISH_INCOMPLETE:
            continue  # committed: stays PROCESSING until the next run completes it
        run.ledger.transition(u.upload_id, FAILED, expected=(PROCESSING,), note=u.error_code,
                              error_code=u.error_code, error=u.error,
                              held=u.error_code == QUALITY_THRESHOLD)


# -- 10. archive -----------------------------------------------------------------------------

def archive(run: Run, also: Sequence[str] = ()) -> list[str]:
    """Move the raw file of every PROCESSED upload to the archive zone; mark ARCHIVED.
    ``also``: uploads this run just processed, read by id, since a ledger whose ``find`` is
    an eventually consistent index (DynamoDB's GSI) may not list them yet."""
    ledger, fs = run.ledger, run.fs
    archived = []
    found = {r.upload_id: r for r in ledger.find(run.dataset, (PROCESSED,))}
    for uid in also:
        if uid not in found:
            with contextlib.suppress(LedgerError):
                record = ledger.get(uid)
                if record.status == PROCESSED:
                    found[uid] = record
    for r in sorted(found.values(), key=lambda r: (r.received_at, r.upload_id)):
        dst = run.paths.archived(run.dataset, r.ingest_date, r.upload_id, r.stored_name)
        src = r.location
        try:
            if src != dst:
                if src and fs.exists(src):
                    fs.rename(src, dst)
                elif not fs.exists(dst):
                    raise OSError(f"raw file {src} is missing and not in the archive")
            ledger.transition(r.upload_id, ARCHIVED, expected=(PROCESSED,), location=dst,
                              note=f"raw file archived to {dst}")
            archived.append(r.upload_id)
        except (OSError, LedgerError) as exc:  # stays PROCESSED; the next run tries again
            run.log.error("upload %s: could not archive %s: %s", r.upload_id, src, exc)
    return archived


# -- 11. report ------------------------------------------------------------------------------

def write_report(run: Run, report: RunReport) -> None:
    """The JSON report, and the same as a page (:mod:`lib.jobs.report_html`) with the
    quarantine ratio of the dataset's recent runs read from their JSON reports."""
    report.finished_at = datetime.now(UTC).isoformat()
    report.report_path = run.paths.report(run.dataset, run.run_id)
    report.report_page = run.paths.report_page(run.dataset, run.run_id)
    earlier = sorted(e.path for e in run.fs.list(run.paths.report_dir(run.dataset))
                     if e.name.endswith(".json") and e.path != report.report_path)
    history = past_runs(run.fs.read_text(p) for p in earlier[-(RECENT_RUNS - 1):])
    run.fs.write_text(report.report_path, report.to_json())
    run.fs.write_text(report.report_page, render(report, run.contract, history))


# -- counts ----------------------------------------------------------------------------------

def _results(report: RunReport) -> dict[str, UploadResult]:
    return {u.upload_id: u for u in report.uploads}


def _fill_counts(results: dict[str, UploadResult], counts: Sequence[Mapping],
                 repeated: Mapping[str, tuple[int, int]], conflict_code: str | None) -> None:
    """Each upload's counts from the rows per (upload, read partition, reason codes) and, per
    upload with repeats, its rows in conflict and its duplicates: a valid row is clean
    unless it is a duplicate or in conflict (then quarantined with ``conflict_code``)."""
    valid: dict[str, int] = {}
    for r in counts:
        u = results[r[UPLOAD_ID]]
        n = int(r["count"])
        u.rows_read += n
        if not r[ERRORS]:
            valid[u.upload_id] = valid.get(u.upload_id, 0) + n
            continue
        u.quarantined += n
        for code in r[ERRORS]:
            u.reasons[code] = u.reasons.get(code, 0) + n
    for uid in {r[UPLOAD_ID] for r in counts} | set(repeated):
        u = results[uid]
        conflicting, duplicates = repeated.get(uid, (0, 0))
        if conflicting and conflict_code is not None:
            u.reasons[conflict_code] = u.reasons.get(conflict_code, 0) + conflicting
        u.quarantined += conflicting
        u.duplicates_removed += duplicates
        u.clean += valid.get(uid, 0) - conflicting - duplicates
        if u.clean < 0:
            raise ConservationError(f"{u.source_file}: {conflicting} row(s) in conflict and "
                                    f"{duplicates} duplicate(s) out of {valid.get(uid, 0)} "
                                    "valid rows; nothing published")
        u.reasons = dict(sorted(u.reasons.items()))


def _reset_counts(result: UploadResult) -> None:
    result.rows_read = result.clean = result.quarantined = result.duplicates_removed = 0
    result.reasons = {}


def _fail(result: UploadResult, code: str, message: str) -> None:
    result.status = RESULT_FAILED
    result.error_code = code
    result.error = message
    _reset_counts(result)
