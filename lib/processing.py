"""Ledger-driven processing: which uploads a job run takes, and what it records.

One run of a dataset's job, while holding the dataset's run lock:

1. **Recover.** A journal left by a run that died while publishing is applied and its
   uploads marked PROCESSED; an upload still PROCESSING without a journal belonged to a run
   that died before committing: it is marked FAILED ("interrupted") and so retried below.
   Uploads left PROCESSED by a run that died before archiving are archived.
2. **Select and claim.** Without ``upload_ids``: every ACCEPTED and FAILED upload of the
   dataset, oldest first. With ``upload_ids``: exactly those (ACCEPTED, FAILED, or
   PROCESSED/ARCHIVED to reprocess). Each is moved to PROCESSING with the run id by a
   conditional write.
3. **Process** the claimed uploads as an explicit input list (:func:`run_contract_job`).
   Published uploads become PROCESSED with their counts in the same step that publishes
   them; an upload that failed becomes FAILED with its error.
4. **Archive.** Each PROCESSED upload's raw file moves to
   ``archive/<dataset>/ingest_date=D/<upload_id>/<file>`` and the upload becomes ARCHIVED.
   Raw bytes are moved, never deleted; a reprocess reads them from the archive.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from datetime import UTC, date, datetime

from pyspark.sql import SparkSession

from lib.batch import PUBLISH_INCOMPLETE, new_run_id, recover, run_contract_job
from lib.contract import Contract
from lib.hadoop_fs import HadoopFs
from lib.lake_paths import LakePaths
from lib.ledger import (
    ARCHIVED,
    FAILED,
    PENDING,
    PROCESSABLE,
    PROCESSED,
    PROCESSING,
    ConflictError,
    Ledger,
    LedgerError,
    UploadRecord,
)
from lib.publish import DEFAULT_MAX_RECORDS_PER_FILE
from lib.report import RunReport, UploadResult
from lib.sources import Upload

INTERRUPTED = "run.interrupted"


class SelectionError(LedgerError):
    """The uploads a run was asked to process cannot all be processed; nothing was."""


def select_uploads(ledger: Ledger, dataset: str,
                   upload_ids: Sequence[str] | None) -> list[UploadRecord]:
    if upload_ids is None:
        return ledger.find(dataset, PENDING)
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


def _mark_processed(ledger: Ledger, log: logging.Logger, job_name: str, job_version: int,
                    results: list[UploadResult], run_id: str) -> None:
    for u in results:
        try:
            ledger.transition(
                u.upload_id, PROCESSED, expected=(PROCESSING,), note=f"run {run_id}",
                rows_read=u.rows_read, clean=u.clean, quarantined=u.quarantined,
                duplicates_removed=u.duplicates_removed,
                job_name=job_name, job_version=job_version, run_id=run_id,
                error_code=None, error=None)
        except LedgerError as exc:  # e.g. already PROCESSED by an earlier recovery
            log.warning("upload %s: not marked PROCESSED: %s", u.upload_id, exc)


def _fail_orphans(ledger: Ledger, dataset: str, log: logging.Logger) -> None:
    for r in ledger.find(dataset, (PROCESSING,)):
        msg = (f"run {r.run_id} ended before publishing this upload (the process died or was "
               f"stopped); retrying")
        log.warning("upload %s: %s", r.upload_id, msg)
        ledger.transition(r.upload_id, FAILED, expected=(PROCESSING,), note=INTERRUPTED,
                          error_code=INTERRUPTED, error=msg)


def archive_processed(fs: HadoopFs, paths: LakePaths, ledger: Ledger, dataset: str,
                      log: logging.Logger, also: Sequence[str] = ()) -> list[str]:
    """Move the raw file of every PROCESSED upload to the archive zone; mark ARCHIVED.
    ``also``: uploads this run just processed, read by id, since a ledger whose ``find`` is
    an eventually consistent index (DynamoDB's GSI) may not list them yet."""
    archived = []
    found = {r.upload_id: r for r in ledger.find(dataset, (PROCESSED,))}
    for uid in also:
        if uid not in found:
            with contextlib.suppress(LedgerError):
                record = ledger.get(uid)
                if record.status == PROCESSED:
                    found[uid] = record
    for r in sorted(found.values(), key=lambda r: (r.received_at, r.upload_id)):
        dst = paths.archived(dataset, r.ingest_date, r.upload_id, r.stored_name)
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
            log.error("upload %s: could not archive %s: %s", r.upload_id, src, exc)
    return archived


def process_uploads(
    spark: SparkSession,
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
) -> RunReport:
    """One ledger-driven run of ``contract``'s job (see the module docstring)."""
    log = logger or logging.getLogger(f"lake.{job_name}")
    ds = contract.dataset
    fs = HadoopFs(spark)

    def mark(results: list[UploadResult], run_id: str) -> None:
        _mark_processed(ledger, log, job_name, job_version, results, run_id)

    with ledger.run_lock(ds):
        recovered = recover(fs, contract, paths, on_published=mark, logger=log)
        _fail_orphans(ledger, ds, log)
        archive_processed(fs, paths, ledger, ds, log)
        records = select_uploads(ledger, ds, upload_ids)

        started = now or datetime.now(UTC)
        run_id = new_run_id(started)
        claimed: list[UploadRecord] = []
        for r in records:
            try:
                claimed.append(ledger.transition(
                    r.upload_id, PROCESSING, expected=(r.status,), note=f"run {run_id}",
                    job_name=job_name, job_version=job_version, run_id=run_id))
            except ConflictError as exc:
                log.warning("skipping upload %s: %s", r.upload_id, exc)
        uploads = [Upload(r.upload_id, str(r.location), date.fromisoformat(r.ingest_date))
                   for r in claimed]
        try:
            report = run_contract_job(
                spark, contract, paths, uploads, job_name=job_name, job_version=job_version,
                run_id=run_id, max_records_per_file=max_records_per_file, logger=log,
                now=started, on_published=mark, recovered=recovered)
        except BaseException as exc:
            # Unexpected: leave nothing PROCESSING that is not in a committed journal.
            committed = fs.exists(paths.journal(ds, run_id))
            for r in claimed if not committed else ():
                with contextlib.suppress(LedgerError):
                    ledger.transition(r.upload_id, FAILED, expected=(PROCESSING,),
                                      note="run failed", error_code="run.failed",
                                      error=f"{type(exc).__name__}: {exc}"[:2000])
            raise
        for u in report.failed:
            if u.error_code == PUBLISH_INCOMPLETE:
                continue  # committed: stays PROCESSING until the next run completes it
            ledger.transition(u.upload_id, FAILED, expected=(PROCESSING,), note=u.error_code,
                              error_code=u.error_code, error=u.error)
        archive_processed(fs, paths, ledger, ds, log, also=[r.upload_id for r in claimed])
    return report
