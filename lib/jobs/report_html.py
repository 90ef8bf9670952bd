"""The run report as a page people look at: ``_reports/<dataset>/<run_id>.html`` beside the
JSON report, written by every run (on Glue too).

Self-contained: no external URL, no script; the charts are inline SVG drawn by the template
(:file:`templates/run_report.html.j2`, rendered with Jinja2, HTML-escaped). It reads well
offline, mailed or opened from S3. It shows the run's counts, the pass rate of every rule of
the contract, the quarantined rows by reason code, each upload's counts and partitions, the
contract with its columns and rules, and the quarantine ratio of the dataset's recent runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources

from jinja2 import Environment, StrictUndefined, select_autoescape

from lib.contracts.contract import Check, Contract
from lib.contracts.reasons import explain
from lib.jobs.report import RunReport

RECENT_RUNS = 20  # runs shown in the trend


@dataclass(frozen=True)
class RulePass:
    code: str
    column: str
    kind: str
    failed: int
    rate: float | None  # share of rows read that passed; None when nothing was read


@dataclass(frozen=True)
class PastRun:
    run_id: str
    started_at: str
    rows_read: int
    quarantined: int

    @property
    def ratio(self) -> float | None:
        return self.quarantined / self.rows_read if self.rows_read else None


def rule_pass_rates(report: RunReport, contract: Contract) -> list[RulePass]:
    """Every rule of the contract (its reason code) with the rows of the run that failed it
    and the share that passed, over the processed uploads."""
    read = report.totals()["rows_read"]
    reasons = report.reasons()
    first: dict[str, Check] = {}  # a code two checks share is one rule
    for chk in contract.checks():
        first.setdefault(chk.code, chk)
    return [RulePass(code, chk.column or "(whole row)", chk.kind, reasons.get(code, 0),
                     (1 - reasons.get(code, 0) / read) if read else None)
            for code, chk in first.items()]


def past_runs(texts: Iterable[str]) -> list[PastRun]:
    """Earlier runs of the dataset from their JSON reports (unreadable ones are skipped)."""
    runs = []
    for text in texts:
        try:
            d = json.loads(text)
            t = d["totals"]
            runs.append(PastRun(d["run_id"], d["started_at"], int(t["rows_read"]),
                                int(t["quarantined"])))
        except (ValueError, KeyError, TypeError):
            continue
    return sorted(runs, key=lambda r: r.run_id)


def render(report: RunReport, contract: Contract, history: Sequence[PastRun] = ()) -> str:
    """The HTML page of ``report``; ``history``: earlier runs of the dataset, oldest first
    (this run is added as the last)."""
    env = Environment(autoescape=select_autoescape(default=True), undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    template = env.from_string(
        (resources.files("lib.jobs") / "templates" / "run_report.html.j2").read_text("utf-8"))
    totals = report.totals()
    this = PastRun(report.run_id, report.started_at, totals["rows_read"], totals["quarantined"])
    trend = [r for r in history if r.run_id != report.run_id][-(RECENT_RUNS - 1):] + [this]
    reasons = report.reasons()
    return template.render(
        report=report, data=report.to_dict(), totals=totals, contract=contract,
        rules=rule_pass_rates(report, contract), reasons=reasons,
        reason_max=max(reasons.values(), default=0), trend=trend, explain=explain,
        trend_max=max((r.ratio or 0 for r in trend), default=0))
