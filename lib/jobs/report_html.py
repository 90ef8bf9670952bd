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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from jinja2 import Environment, FunctionLoader, StrictUndefined, select_autoescape

from lib.contracts.contract import QUARANTINED_SHARE, Check, Contract
from lib.contracts.reasons import explain
from lib.jobs.report import RunReport
from lib.lake.humane import duration, when

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
    uploads: int = 1  # uploads the run took; 0: it found nothing to process

    @property
    def ratio(self) -> float | None:
        return self.quarantined / self.rows_read if self.rows_read else None


# The trend chart's frame, in SVG user units (the chart scales to its container's width).
CHART_W, CHART_H = 640, 200
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 48, 628, 18, 160


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    run: PastRun
    label: str  # the value above the bar ("12.5%", "no rows"); "" when bars are too narrow
    tick: str  # the date under the bar ("12-03 23:48"); "" when it would crowd its neighbours

    @property
    def centre(self) -> float:
        return self.x + self.width / 2


@dataclass(frozen=True)
class Level:
    name: str  # warn | fail
    share: float
    y: float


@dataclass(frozen=True)
class TrendChart:
    """The quarantined share of the recent runs as bars over a y axis in percent, each bar
    with its value and its run's start date, and the contract's warn and fail levels for
    an upload's quarantined share as lines."""

    bars: tuple[Bar, ...]
    y_ticks: tuple[tuple[float, str], ...]  # (y, "25%")
    levels: tuple[Level, ...]
    width: int = CHART_W
    height: int = CHART_H
    left: int = PLOT_LEFT
    right: int = PLOT_RIGHT
    top: int = PLOT_TOP
    bottom: int = PLOT_BOTTOM


def _pct(share: float) -> str:
    return f"{round(share * 100, 2):g}%"


def trend_chart(runs: Sequence[PastRun], contract: Contract | None = None) -> TrendChart:
    """The chart of ``runs`` (oldest first); the levels are the contract's ``quality``
    threshold on the quarantined share, when it declares one."""
    threshold = next((t for t in (contract.quality if contract else ())
                      if t.measure == QUARANTINED_SHARE), None)
    levels = [(name, v) for name, v in (("warn", threshold and threshold.warn),
                                         ("fail", threshold and threshold.fail)) if v is not None]
    top = max([r.ratio or 0 for r in runs] + [v for _, v in levels] + [0.0])
    # the axis ends on a round share above the highest bar or level
    scale = next((s for s in (0.01, 0.02, 0.04, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0)
                  if s >= top * 1.05), 1.0)  # each a quarter of which is a round share
    plot_h = PLOT_BOTTOM - PLOT_TOP

    def y(share: float) -> float:
        return round(PLOT_BOTTOM - min(share, scale) / scale * plot_h, 1)

    slot = (PLOT_RIGHT - PLOT_LEFT) / max(len(runs), 1)
    width = min(slot * 0.7, 48)
    every = max(1, -(-96 // int(slot)))  # a date label every `every` bars: 96 units apart
    bars = []
    for i, r in enumerate(runs):
        x = PLOT_LEFT + i * slot + (slot - width) / 2
        ratio = r.ratio
        label = "" if slot < 40 else ("no rows" if ratio is None else
                                      f"{round(ratio * 100, 1):g}%")
        date = r.started_at[5:16].replace("T", " ")
        last = i == len(runs) - 1
        tick = date if last or (i % every == 0 and len(runs) - 1 - i >= every) else ""
        bars.append(Bar(round(x, 1), y(ratio or 0), round(width, 1),
                        round(PLOT_BOTTOM - y(ratio or 0), 1), r, label, tick))
    ticks = tuple((y(scale * k / 4), _pct(scale * k / 4)) for k in range(5))
    return TrendChart(tuple(bars), ticks, tuple(Level(n, v, y(v)) for n, v in levels))


def _template_source(name: str) -> str | None:
    """A template of ``lib/jobs/templates`` read as a package resource: the lib ships as a
    zip on Glue and Lambda, where there is no folder to read from."""
    try:
        return (resources.files("lib.jobs") / "templates" / name).read_text("utf-8")
    except (FileNotFoundError, NotADirectoryError, KeyError):
        return None


def templates_loader() -> FunctionLoader:
    """The report's templates for a Jinja environment (the console includes the trend
    chart's)."""
    return FunctionLoader(_template_source)


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


def past_run(d: Mapping[str, Any]) -> PastRun | None:
    """A run from its JSON report's data, or None when the report is not one."""
    try:
        t = d["totals"]
        return PastRun(d["run_id"], d["started_at"], int(t["rows_read"]),
                       int(t["quarantined"]), int(t.get("uploads", 1)))
    except (ValueError, KeyError, TypeError):
        return None


def past_runs(texts: Iterable[str]) -> list[PastRun]:
    """Earlier runs of the dataset from their JSON reports (unreadable ones are skipped)."""
    runs = []
    for text in texts:
        try:
            run = past_run(json.loads(text))
        except ValueError:
            continue
        if run is not None:
            runs.append(run)
    return sorted(runs, key=lambda r: r.run_id)


def render(report: RunReport, contract: Contract, history: Sequence[PastRun] = ()) -> str:
    """The HTML page of ``report``; ``history``: earlier runs of the dataset, oldest first
    (this run is added as the last)."""
    env = Environment(loader=templates_loader(),
                      autoescape=select_autoescape(default=True), undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(when=when, duration=duration)
    template = env.get_template("run_report.html.j2")
    totals = report.totals()
    this = PastRun(report.run_id, report.started_at, totals["rows_read"], totals["quarantined"],
                   totals["uploads"])
    trend = [r for r in history if r.run_id != report.run_id and r.uploads][
        -(RECENT_RUNS - 1):] + [this]
    reasons = report.reasons()
    return template.render(
        report=report, data=report.to_dict(), totals=totals, contract=contract,
        rules=rule_pass_rates(report, contract), reasons=reasons,
        reason_max=max(reasons.values(), default=0), trend=trend, explain=explain,
        chart=trend_chart(trend, contract))
