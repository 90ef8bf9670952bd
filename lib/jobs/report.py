"""The run report: what happened to every upload of a job run, as JSON and as a summary."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field

from lib.lake import metrics as m

PROCESSED = "processed"
FAILED = "failed"


@dataclass
class UploadResult:
    upload_id: str
    source_file: str
    status: str = PROCESSED
    rows_read: int = 0
    clean: int = 0
    quarantined: int = 0
    duplicates_removed: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    error_code: str | None = None
    partitions: list[str] = field(default_factory=list)
    partition_rows: dict[str, int] = field(default_factory=dict)  # rows written per partition
    files_replaced: int = 0
    # The contract's quality thresholds against this upload (lib.jobs.run.quality_check):
    # each {"measure", "rows", "share", "warn", "fail", "outcome"}.
    quality: list[dict] = field(default_factory=list)

    @property
    def quality_warned(self) -> bool:
        return any(q["outcome"] == "warn" for q in self.quality)

    @property
    def conserved(self) -> bool:
        return self.rows_read == self.clean + self.quarantined + self.duplicates_removed


@dataclass
class RunReport:
    job: str
    job_version: int
    contract: str
    run_id: str
    started_at: str
    finished_at: str = ""
    lake: dict[str, str] = field(default_factory=dict)
    uploads: list[UploadResult] = field(default_factory=list)
    error: str | None = None
    report_path: str = ""
    report_page: str = ""  # the same report as an HTML page
    recovered: list[str] = field(default_factory=list)  # uploads an earlier run's journal held
    engine: str = "spark"  # which engine touched the rows: spark or duckdb

    @property
    def processed(self) -> list[UploadResult]:
        return [u for u in self.uploads if u.status == PROCESSED]

    @property
    def failed(self) -> list[UploadResult]:
        return [u for u in self.uploads if u.status == FAILED]

    @property
    def status(self) -> str:
        if self.error or (self.failed and not self.processed):
            return "failed"
        if self.failed:
            return "partial"
        return "succeeded" if self.uploads else "no_input"

    @property
    def exit_code(self) -> int:
        return 0 if self.status in ("succeeded", "no_input") else 1

    def totals(self) -> dict[str, int]:
        ok = self.processed
        return {
            "uploads": len(self.uploads),
            "uploads_processed": len(ok),
            "uploads_failed": len(self.failed),
            "rows_read": sum(u.rows_read for u in ok),
            "clean": sum(u.clean for u in ok),
            "quarantined": sum(u.quarantined for u in ok),
            "duplicates_removed": sum(u.duplicates_removed for u in ok),
        }

    def reasons(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for u in self.processed:
            total.update(u.reasons)
        return dict(sorted(total.items()))

    def partitions(self) -> list[str]:
        return sorted({p for u in self.processed for p in u.partitions})

    def partition_rows(self) -> dict[str, int]:
        """Rows written per partition (``<zone>/<dataset>/k=v``) over the processed uploads."""
        total: Counter[str] = Counter()
        for u in self.processed:
            total.update(u.partition_rows)
        return dict(sorted(total.items()))

    def to_dict(self) -> dict:
        return {
            "job": self.job,
            "job_version": self.job_version,
            "contract": self.contract,
            "engine": self.engine,
            "run_id": self.run_id,
            "status": self.status,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "lake": self.lake,
            "totals": self.totals(),
            "quarantined_by_reason": self.reasons(),
            "partitions_written": self.partitions(),
            "rows_per_partition": self.partition_rows(),
            "uploads": [asdict(u) for u in self.uploads],
            "recovered_uploads": self.recovered,
            "error": self.error,
            "report_page": self.report_page,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"


def format_summary(report: RunReport, max_partitions: int = 20) -> str:
    t = report.totals()
    lines = [
        f"job {report.job} (version {report.job_version}, contract {report.contract}, "
        f"{report.engine} engine)  "
        f"run {report.run_id}"
        f"  status: {report.status}",
        f"  uploads            {t['uploads']} ({t['uploads_processed']} processed, "
        f"{t['uploads_failed']} failed)",
        f"  rows read          {t['rows_read']}",
        f"  clean              {t['clean']}",
        f"  quarantined        {t['quarantined']}",
        f"  duplicates removed {t['duplicates_removed']}",
    ]
    if report.recovered:
        lines.append(f"  completed the interrupted publish of an earlier run for "
                     f"{len(report.recovered)} upload(s): {', '.join(report.recovered)}")
    reasons = report.reasons()
    if reasons:
        lines.append("  quarantined by reason code (a row may carry several):")
        width = max(len(k) for k in reasons)
        lines += [f"    {code:<{width}}  {n}" for code, n in reasons.items()]
    if report.uploads:
        lines.append("  per upload:  read / clean / quarantined / duplicates  status")
        for u in report.uploads:
            counts = (f"{u.rows_read} / {u.clean} / {u.quarantined} / {u.duplicates_removed}"
                      if u.status == PROCESSED else "-")
            lines.append(f"    {u.upload_id}  {counts}  {u.status}")
            if u.error:
                lines.append(f"      error [{u.error_code}]: {u.error}")
            lines += [f"      warning: {w}" for w in u.warnings]
    parts = report.partitions()
    if parts:
        lines.append(f"  partitions written ({len(parts)}):")
        shown = parts if len(parts) <= max_partitions else parts[:max_partitions]
        lines += [f"    {p}" for p in shown]
        if len(parts) > len(shown):
            lines.append(f"    ... and {len(parts) - len(shown)} more (see the report)")
    if report.error:
        lines.append(f"  error: {report.error}")
    if report.report_path:
        lines.append(f"  report: {report.report_path}")
    if report.report_page:
        lines.append(f"  data-quality page: {report.report_page}")
    return "\n".join(lines)


def run_metrics(report: RunReport, duration_seconds: float) -> dict[str, tuple[float, str]]:
    """What one job run reports: row counts over its uploads, uploads done and failed, and
    whether the run failed (an upload failed, or the run itself)."""
    uploads = report.uploads
    return {
        m.ROWS_READ: (sum(u.rows_read for u in uploads), m.COUNT),
        m.ROWS_CLEAN: (sum(u.clean for u in uploads), m.COUNT),
        m.ROWS_QUARANTINED: (sum(u.quarantined for u in uploads), m.COUNT),
        m.DUPLICATES_REMOVED: (sum(u.duplicates_removed for u in uploads), m.COUNT),
        m.UPLOADS_PROCESSED: (len(report.processed), m.COUNT),
        m.UPLOADS_FAILED: (len(report.failed), m.COUNT),
        m.QUALITY_WARNINGS: (sum(u.quality_warned for u in uploads), m.COUNT),
        m.QUALITY_FAILURES: (sum(any(q["outcome"] == "fail" for q in u.quality)
                                 for u in uploads), m.COUNT),
        m.RUNS_FAILED: (1 if report.failed or report.error else 0, m.COUNT),
        m.RUN_DURATION: (round(duration_seconds, 3), m.SECONDS),
    }


def failed_run_metrics(duration_seconds: float) -> dict[str, tuple[float, str]]:
    """A run that raised before it had a report."""
    return {m.RUNS_FAILED: (1, m.COUNT), m.RUN_DURATION: (round(duration_seconds, 3), m.SECONDS)}
