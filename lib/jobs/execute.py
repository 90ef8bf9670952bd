"""What a job run does around its engine, the same for the Spark entry (:mod:`lib.jobs.entry`,
Glue and local) and the DuckDB one (:mod:`lib.jobs.duck_entry`): process the uploads
(:func:`lib.jobs.run.process_uploads`), emit the run's metrics, alert on failed uploads,
announce the uploads that arrived meanwhile, print the summary. Plain Python."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence

from lib.contracts.contract import load_contract
from lib.jobs import args as job_args
from lib.jobs.report import failed_run_metrics, format_summary, run_metrics
from lib.jobs.run import DriverDied, RowEngine, process_uploads
from lib.lake import metrics
from lib.ledger.announce import announcer_for
from lib.ledger.base import Ledger
from lib.ledger.notify import notifier_for
from lib.ledger.records import ACCEPTED, FAILED, LedgerError


def execute(rows: RowEngine, args: Mapping[str, str | None], logger: logging.Logger,
            job_name: str, dataset: str, version: int) -> int:
    """Run contract ``dataset``/``version`` with the engine ``rows`` on the ledger's pending
    uploads (or ``--upload_ids``); returns the process exit code (0 ok, 1 some upload
    failed).

    With ``--metrics_namespace`` the run's counts go to CloudWatch as an EMF line (also when
    the run raises); with ``--alert_topic_arn`` every upload the run left FAILED is reported;
    with ``--event_bus_name`` and ``--event_source`` uploads accepted while it ran are
    announced for the next run."""
    namespace = args.get("metrics_namespace")
    ledger = job_args.ledger(args)
    started = time.monotonic()
    try:
        report = process_uploads(
            rows,
            load_contract(dataset, version),
            job_args.lake_paths(args),
            ledger,
            job_name=job_name,
            job_version=version,
            upload_ids=job_args.upload_ids(args),
            max_records_per_file=job_args.max_records_per_file(args),
            logger=logger,
            catalog=job_args.catalog(args),
            small_only=job_args.small_uploads_only(args),
        )
    except DriverDied as died:  # the uploads it set aside are alerted on
        metrics.emit(namespace, dataset, failed_run_metrics(
            time.monotonic() - started), {"job": job_name})
        _alert(args, logger, ledger, died.held, None)
        raise
    except BaseException:
        metrics.emit(namespace, dataset, failed_run_metrics(
            time.monotonic() - started), {"job": job_name})
        raise
    metrics.emit(namespace, dataset, run_metrics(report, time.monotonic() - started),
                 {"job": job_name, "run_id": report.run_id})
    _alert(args, logger, ledger, [u.upload_id for u in report.failed], report.report_page)
    _alert(args, logger, ledger, [u.upload_id for u in report.processed if u.quality_warned],
           report.report_page, status=None)
    _announce_waiting(args, logger, ledger, dataset, report.run_id,
                      {u.upload_id for u in report.uploads})
    print(format_summary(report), flush=True)
    return report.exit_code


def _announce_waiting(args: Mapping[str, str | None], logger: logging.Logger, ledger: Ledger,
                      dataset: str, run_id: str, taken: set[str]) -> None:
    """With ``--event_bus_name`` and ``--event_source``: the dataset's ACCEPTED uploads this
    run did not take (accepted while it ran: their own events may have come while the
    workflow was busy) are announced in one "Uploads Pending" event, so that the next batch
    starts without waiting for the scheduled sweep."""
    bus, source = args.get("event_bus_name"), args.get("event_source")
    if not bus or not source:
        return
    waiting = [r.upload_id for r in ledger.find(dataset, [ACCEPTED]) if r.upload_id not in taken]
    if waiting:
        announcer = announcer_for(bus, source, job_args.aws_client(args, "events"))
        if announcer.uploads_pending(dataset, waiting, run_id):
            logger.info("%d upload(s) of %s accepted during the run announced for the next "
                            "one: %s", len(waiting), dataset, ", ".join(waiting))


def _alert(args: Mapping[str, str | None], logger: logging.Logger, ledger: Ledger, upload_ids: Sequence[str],
           report: str | None, status: str | None = FAILED) -> None:
    """An alert per upload the run left FAILED (with ``--alert_topic_arn``), naming the run's
    report page (``report``); with ``status`` None, per upload published above a quality
    warn threshold."""
    topic = args.get("alert_topic_arn")
    notifier = notifier_for(topic, job_args.aws_client(args, "sns") if topic else None)
    for uid in upload_ids:
        try:
            record = ledger.get(uid)
        except LedgerError as exc:
            logger.error("upload %s: no alert sent: %s", uid, exc)
            continue
        if status is None or record.status == status:
            notifier.upload_event(record, report)
