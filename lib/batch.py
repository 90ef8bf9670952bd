"""One run of a contract-driven job: read -> apply the contract -> stage -> verify ->
publish per upload -> report. Job entry points in ``glue_jobs/`` call :func:`run_contract_job`.

The input is read once: the classified frame is persisted, and both zone writes and the
counts are taken from it. Before anything is published, the rows written to staging are
read back and checked, per upload, against rows read = clean + quarantined + duplicates.

A file that cannot be used (missing, unreadable, header not matching the contract) fails
alone with its reason; the other uploads of the batch are processed. If Spark fails on
the batch as a whole (a corrupt gzip stream only shows when read), the uploads are retried
one by one so that only the bad one fails.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime

from pyspark import StorageLevel
from pyspark.sql import Row, SparkSession

from lib.contract import ERRORS, QUARANTINE_PARTITION, UPLOAD_ID, Contract
from lib.faults import crash_point
from lib.hadoop_fs import HadoopFs, java_error_message
from lib.header import HeaderPlan
from lib.lake_paths import LakePaths
from lib.publish import (
    DEFAULT_MAX_RECORDS_PER_FILE,
    PublishPlan,
    apply,
    commit,
    pending_journals,
    plan_upload,
    stage,
    staged_counts,
)
from lib.report import FAILED, RunReport, UploadResult
from lib.sources import Reader, SourceError, Upload, reader_for, union_all
from lib.transforms import (
    CLEAN,
    DISPOSITION,
    DUPLICATE,
    QUARANTINE,
    apply_contract,
    disposition_counts,
    split,
)

PUBLISH_INCOMPLETE = "run.publish_incomplete"
# Called with the uploads of a batch once their rows are in the zones (before the journal
# is removed, so a crash in between repeats the call on recovery) and the run id.
OnPublished = Callable[[list[UploadResult], str], None]


class ConservationError(RuntimeError):
    """Rows were about to be lost or duplicated; nothing was published."""


class PublishIncomplete(RuntimeError):
    """The batch was committed but applying it failed; the next run completes it."""


def new_run_id(now: datetime) -> str:
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"


def _fill_counts(results: dict[str, UploadResult], rows: Sequence[Row]) -> None:
    for r in rows:
        u = results[r[UPLOAD_ID]]
        n = int(r["count"])
        u.rows_read += n
        if r[DISPOSITION] == CLEAN:
            u.clean += n
        elif r[DISPOSITION] == DUPLICATE:
            u.duplicates_removed += n
        elif r[DISPOSITION] == QUARANTINE:
            u.quarantined += n
            for code in r[ERRORS]:
                u.reasons[code] = u.reasons.get(code, 0) + n
        else:
            raise ConservationError(f"{n} row(s) of {u.source_file} have no disposition "
                                    f"({r[DISPOSITION]!r}); nothing published")
    for u in results.values():
        u.reasons = dict(sorted(u.reasons.items()))


def _reset_counts(result: UploadResult) -> None:
    result.rows_read = result.clean = result.quarantined = result.duplicates_removed = 0
    result.reasons = {}


def _fail(result: UploadResult, code: str, message: str) -> None:
    result.status = FAILED
    result.error_code = code
    result.error = message
    _reset_counts(result)


@contextlib.contextmanager
def _session_conf(spark: SparkSession, conf: Mapping[str, str]) -> Iterator[None]:
    """Set session settings for the duration of a batch, then restore them."""
    before = {k: spark.conf.get(k, None) for k in conf}
    for k, v in conf.items():
        spark.conf.set(k, v)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                spark.conf.unset(k)
            else:
                spark.conf.set(k, v)


def _process(spark: SparkSession, fs: HadoopFs, contract: Contract, paths: LakePaths,
             batch: list[tuple[Upload, HeaderPlan]], results: dict[str, UploadResult],
             run_id: str, ingested_at: datetime, max_records_per_file: int,
             log: logging.Logger, on_published: OnPublished | None, reader: Reader) -> None:
    """Process uploads whose headers matched, as one Spark batch, and publish them."""
    with _session_conf(spark, reader.session_conf):
        _process_batch(spark, fs, contract, paths, batch, results, run_id, ingested_at,
                       max_records_per_file, log, on_published, reader)


def _process_batch(spark: SparkSession, fs: HadoopFs, contract: Contract, paths: LakePaths,
                   batch: list[tuple[Upload, HeaderPlan]], results: dict[str, UploadResult],
                   run_id: str, ingested_at: datetime, max_records_per_file: int,
                   log: logging.Logger, on_published: OnPublished | None,
                   reader: Reader) -> None:
    ds = contract.dataset
    clean_target = paths.clean_dataset(ds)
    quarantine_target = paths.quarantine_dataset(ds)
    staging_clean = paths.staging(paths.clean, ds, run_id)
    staging_quarantine = paths.staging(paths.quarantine, ds, run_id)
    raw = union_all([reader.read_upload(spark, u, plan, contract, ingested_at)
                     for u, plan in batch])
    # Read the input once: the classified frame is kept on local disk (streamed back, so a
    # large batch never has to fit in memory) for the second zone write and the counts.
    classified = raw.transform(apply_contract(contract)).persist(StorageLevel.DISK_ONLY)
    try:
        clean, quarantine = split(contract, classified)
        t0 = time.perf_counter()
        stage(clean, staging_clean, contract.partition_by, max_records_per_file)
        t1 = time.perf_counter()
        log.info("read, classified and staged clean rows in %.1fs (%s)", t1 - t0, staging_clean)
        crash_point("staging")
        stage(quarantine, staging_quarantine, (QUARANTINE_PARTITION,),
              max_records_per_file)
        t2 = time.perf_counter()
        log.info("staged quarantined rows in %.1fs (%s)", t2 - t1, staging_quarantine)
        counts = disposition_counts(classified).collect()  # one row per distinct outcome
        log.info("counted outcomes in %.1fs", time.perf_counter() - t2)
    finally:
        classified.unpersist()
    _fill_counts(results, counts)
    t3 = time.perf_counter()

    # What was classified must be exactly what landed in staging, per upload, before
    # anything is published.
    clean_written = staged_counts(spark, fs, staging_clean)
    quarantine_written = staged_counts(spark, fs, staging_quarantine)
    for upload, _ in batch:
        u = results[upload.upload_id]
        wrote = (clean_written.get(u.upload_id, 0), quarantine_written.get(u.upload_id, 0))
        if not u.conserved or wrote != (u.clean, u.quarantined):
            raise ConservationError(
                f"{u.source_file}: row count mismatch, nothing published: read {u.rows_read}, "
                f"classified clean={u.clean} quarantined={u.quarantined} "
                f"duplicates={u.duplicates_removed}, staged clean={wrote[0]} "
                f"quarantined={wrote[1]}")
    t4 = time.perf_counter()
    log.info("verified staged row counts in %.1fs", t4 - t3)

    plan = PublishPlan(ds, run_id)
    for upload, _ in batch:
        u = results[upload.upload_id]
        for zone, staging, target, depth in (
            ("clean", staging_clean, clean_target, len(contract.partition_by)),
            ("quarantine", staging_quarantine, quarantine_target, 1),  # ingest_date
        ):
            touched, replaced = plan_upload(fs, plan, staging, target, u.upload_id, depth)
            u.partitions += [f"{zone}/{ds}/{p}" for p in touched]
            u.files_replaced += replaced
        u.partitions.sort()
        plan.uploads[u.upload_id] = asdict(u)
    journal = paths.journal(ds, run_id)
    commit(fs, journal, plan)  # from here on the batch is published, now or by the next run
    crash_point("committed")
    try:
        apply(fs, plan, after_move=lambda i: crash_point("publishing") if i == 0 else None)
        if on_published is not None:
            on_published([results[up.upload_id] for up, _ in batch], run_id)
    except Exception as exc:
        raise PublishIncomplete(
            f"publishing run {run_id} was interrupted ({java_error_message(exc)}); its journal "
            f"{journal} is kept and the next run of {ds} completes it") from exc
    fs.delete(journal)
    _cleanup(fs, contract, paths, run_id)
    log.info("published %d upload(s) in %.1fs", len(batch), time.perf_counter() - t4)


def _cleanup(fs: HadoopFs, contract: Contract, paths: LakePaths, run_id: str) -> None:
    """Remove the run's staging folders (after publishing, or after a failed attempt)."""
    for zone in (paths.clean, paths.quarantine):
        fs.delete(paths.staging(zone, contract.dataset, run_id), recursive=True)


def recover(fs: HadoopFs, contract: Contract, paths: LakePaths,
            on_published: OnPublished | None = None,
            logger: logging.Logger | None = None) -> list[str]:
    """Finish what crashed runs of the dataset left: apply every committed journal (then
    report its uploads through ``on_published``) and remove staging folders of runs that
    never committed. Call it only while no other run of the dataset is alive (the ledger's
    run lock). Returns the upload ids whose publish was completed."""
    log = logger or logging.getLogger("lake.recover")
    completed: list[str] = []
    for journal, plan in pending_journals(fs, paths.journal_dir(contract.dataset)):
        log.warning("run %s died while publishing; completing its journal %s", plan.run_id,
                    journal)
        apply(fs, plan)
        if on_published is not None:
            on_published([UploadResult(**u) for u in plan.uploads.values()], plan.run_id)
        fs.delete(journal)
        _cleanup(fs, contract, paths, plan.run_id)
        completed += list(plan.uploads)
    for zone in (paths.clean, paths.quarantine):
        for entry in fs.list(paths.staging_root(zone, contract.dataset)):
            log.warning("removing staging folder of a run that never committed: %s", entry.path)
            fs.delete(entry.path, recursive=True)
    return completed


def run_contract_job(
    spark: SparkSession,
    contract: Contract,
    paths: LakePaths,
    uploads: Sequence[Upload],
    *,
    job_name: str,
    job_version: int,
    run_id: str | None = None,
    max_records_per_file: int = DEFAULT_MAX_RECORDS_PER_FILE,
    logger: logging.Logger | None = None,
    now: datetime | None = None,
    on_published: OnPublished | None = None,
    recovered: Sequence[str] = (),
) -> RunReport:
    """Process ``uploads`` and publish their rows. Returns the run report, already written
    under ``_reports/``. Which uploads to process is the caller's business (the ledger's,
    see :mod:`lib.processing`)."""
    log = logger or logging.getLogger(f"lake.{job_name}")
    fs = HadoopFs(spark)
    started = now or datetime.now(UTC)
    run_id = run_id or new_run_id(started)
    report = RunReport(job=job_name, job_version=job_version, contract=contract.ref,
                       run_id=run_id, started_at=started.isoformat(),
                       lake={"raw": paths.raw, "clean": paths.clean,
                             "quarantine": paths.quarantine, "reports": paths.reports})
    by_id = {up.upload_id: up for up in uploads}  # the same upload twice is one upload
    results = {uid: UploadResult(uid, up.path) for uid, up in by_id.items()}
    report.uploads = list(results.values())
    report.recovered = list(recovered)

    reader = reader_for(contract)
    ready: list[tuple[Upload, HeaderPlan]] = []
    for up in by_id.values():
        try:
            plan = reader.read_header(fs, up, contract)
        except SourceError as exc:
            _fail(results[up.upload_id], exc.code, str(exc))
            log.error("upload %s failed: %s", up.upload_id, exc)
            continue
        results[up.upload_id].warnings += list(plan.warnings)
        ready.append((up, plan))

    batches = [ready] if ready else []
    while batches:
        batch = batches.pop(0)
        try:
            _process(spark, fs, contract, paths, batch, results, run_id, started,
                     max_records_per_file, log, on_published, reader)
        except PublishIncomplete as exc:  # committed: no retry, keep staging for recovery
            log.error("%s", exc)
            report.error = str(exc)
            for up, _ in batch:
                results[up.upload_id].status = FAILED
                results[up.upload_id].error_code = PUBLISH_INCOMPLETE
                results[up.upload_id].error = str(exc)
        except ConservationError as exc:
            _cleanup(fs, contract, paths, run_id)
            report.error = str(exc)
            for up, _ in batch:
                _fail(results[up.upload_id], "run.conservation", str(exc))
        except Exception as exc:  # Spark failed on the batch: isolate the bad upload(s)
            _cleanup(fs, contract, paths, run_id)
            for up, _ in batch:
                _reset_counts(results[up.upload_id])
            if len(batch) > 1:
                log.warning("batch of %d uploads failed (%s); retrying one by one",
                            len(batch), type(exc).__name__)
                batches = [[item] for item in batch] + batches
            else:
                up = batch[0][0]
                _fail(results[up.upload_id], "file.unreadable",
                      f"{up.path}: cannot be processed: {java_error_message(exc)}")
                log.error("upload %s failed: %s", up.upload_id, results[up.upload_id].error)

    report.finished_at = datetime.now(UTC).isoformat()
    report.report_path = paths.report(contract.dataset, run_id)
    fs.write_text(report.report_path, report.to_json())
    return report
