"""The body every Glue job entry point shares: open the job context (Glue or local), run
the contract's ledger-driven processing, print the summary, commit.

A job script in ``glue_jobs/<dataset>/v<N>/job.py`` names its dataset and contract version
and calls :func:`run_job`; everything else lives in ``lib``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from lib.contracts.contract import load_contract
from lib.jobs import args as job_args
from lib.jobs.report import failed_run_metrics, format_summary, run_metrics
from lib.jobs.run import DriverDied, process_uploads
from lib.jobs.runtime import JobContext, open_job, parse_job_args
from lib.lake import metrics
from lib.ledger.announce import announcer_for
from lib.ledger.base import Ledger
from lib.ledger.notify import notifier_for
from lib.ledger.records import ACCEPTED, FAILED, LedgerError, LockBusyError


def run_job(dataset: str, version: int, argv: Sequence[str]) -> int:
    """Run contract ``dataset``/``version`` on the ledger's pending uploads (or
    ``--upload_ids``); returns the process exit code (0 ok, 1 some upload failed).

    With ``--metrics_namespace`` the run's counts go to CloudWatch as an EMF line (also when
    the run raises); with ``--alert_topic_arn`` every upload the run left FAILED is reported;
    with ``--event_bus_name`` and ``--event_source`` uploads accepted while it ran are
    announced for the next run."""
    # A run that cannot take the lock is refused before Spark starts (seconds of JVM).
    busy = job_args.ledger(parse_job_args(argv, job_args.REQUIRED, job_args.OPTIONAL)) \
        .run_lock_holder(dataset)
    if busy is not None:
        raise LockBusyError(busy)
    with open_job(argv, job_args.REQUIRED, job_args.OPTIONAL) as ctx:
        namespace = ctx.args.get("metrics_namespace")
        ledger = job_args.ledger(ctx.args)
        started = time.monotonic()
        try:
            report = process_uploads(
                ctx.spark,
                load_contract(dataset, version),
                job_args.lake_paths(ctx.args),
                ledger,
                job_name=ctx.job_name,
                job_version=version,
                upload_ids=job_args.upload_ids(ctx.args),
                max_records_per_file=job_args.max_records_per_file(ctx.args),
                logger=ctx.logger,
            )
        except DriverDied as died:  # the uploads it set aside are alerted on
            metrics.emit(namespace, dataset, failed_run_metrics(
                time.monotonic() - started), {"job": ctx.job_name})
            _alert(ctx, ledger, died.held, None)
            raise
        except BaseException:
            metrics.emit(namespace, dataset, failed_run_metrics(
                time.monotonic() - started), {"job": ctx.job_name})
            raise
        metrics.emit(namespace, dataset, run_metrics(report, time.monotonic() - started),
                     {"job": ctx.job_name, "run_id": report.run_id})
        _alert(ctx, ledger, [u.upload_id for u in report.failed], report.report_page)
        _announce_waiting(ctx, ledger, dataset, report.run_id,
                          {u.upload_id for u in report.uploads})
        print(format_summary(report), flush=True)
    return report.exit_code


def _announce_waiting(ctx: JobContext, ledger: Ledger, dataset: str, run_id: str,
                      taken: set[str]) -> None:
    """With ``--event_bus_name`` and ``--event_source``: the dataset's ACCEPTED uploads this
    run did not take (accepted while it ran: their own events may have come while the
    workflow was busy) are announced in one "Uploads Pending" event, so that the next batch
    starts without waiting for the scheduled sweep."""
    bus, source = ctx.args.get("event_bus_name"), ctx.args.get("event_source")
    if not bus or not source:
        return
    waiting = [r.upload_id for r in ledger.find(dataset, [ACCEPTED]) if r.upload_id not in taken]
    if waiting:
        announcer = announcer_for(bus, source, job_args.aws_client(ctx.args, "events"))
        if announcer.uploads_pending(dataset, waiting, run_id):
            ctx.logger.info("%d upload(s) of %s accepted during the run announced for the next "
                            "one: %s", len(waiting), dataset, ", ".join(waiting))


def _alert(ctx: JobContext, ledger: Ledger, upload_ids: Sequence[str],
           report: str | None) -> None:
    """An alert per upload the run left FAILED (with ``--alert_topic_arn``), naming the run's
    report page (``report``)."""
    topic = ctx.args.get("alert_topic_arn")
    notifier = notifier_for(topic, job_args.aws_client(ctx.args, "sns") if topic else None)
    for uid in upload_ids:
        try:
            record = ledger.get(uid)
        except LedgerError as exc:
            ctx.logger.error("upload %s: no alert sent: %s", uid, exc)
            continue
        if record.status == FAILED:
            notifier.upload_event(record, report)
