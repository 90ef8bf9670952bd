"""A contract's quality thresholds in a run: above `warn`, the upload is published and
flagged (its ledger record, the report, the summary, the metrics); above `fail`, it fails
with `quality.threshold`, publishes nothing and is held. The check sits in the run, after
the counts, so both engines apply it alike; the DuckDB engine runs these (no JVM)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from lib.contracts.contract import Threshold, load_contract
from lib.ledger.sqlite import open_ledger
from lib.tools import cli
from tests.helpers import SAMPLES

SAMPLE = SAMPLES / "orders_2026-11-01.csv"  # 14 rows read: 9 quarantined, 1 duplicate


def _run(lake: Path, capsys, monkeypatch, *thresholds: Threshold) -> tuple[int, str, dict]:
    real = load_contract

    def with_quality(dataset: str, version: int | None = None):  # noqa: ANN202
        return replace(real(dataset, version), quality=thresholds)

    monkeypatch.setattr("lib.jobs.execute.load_contract", with_quality)
    monkeypatch.setenv("LAKE_LOG_LEVEL", "ERROR")
    assert cli.main(["--lake-root", str(lake), "upload", "--dataset", "orders",
                     str(SAMPLE)]) == 0
    capsys.readouterr()
    code = cli.main(["--lake-root", str(lake), "run", "orders", "--engine", "duckdb"])
    out = capsys.readouterr().out
    [report] = sorted((lake / "_reports" / "orders").glob("*.json"))
    return code, out, json.loads(report.read_text())


def test_above_a_warn_threshold_the_upload_is_published_and_flagged(tmp_path, capsys,
                                                                  monkeypatch) -> None:
    lake = tmp_path / "lk"
    code, out, report = _run(lake, capsys, monkeypatch, Threshold("quarantined", warn=0.5),
                             Threshold("order_id.required", warn=0.5))
    assert code == 0
    [record] = open_ledger(lake).find("orders")
    warning = ("quality: 9 of the 14 rows read (64.3%) quarantined, above the warn threshold "
               "of 50.0%")
    assert (record.status, record.clean, record.quarantined) == ("ARCHIVED", 4, 9)
    assert record.warnings[-1] == warning
    assert warning in out
    [upload] = report["uploads"]
    assert [(q["measure"], q["rows"], q["outcome"]) for q in upload["quality"]] == [
        ("quarantined", 9, "warn"), ("order_id.required", 1, "ok")]
    assert list((lake / "clean" / "orders").rglob("*.parquet"))
    # a reprocess says this run's quality warning once, in place of the last run's
    assert cli.main(["--lake-root", str(lake), "reprocess", record.upload_id,
                     "--engine", "duckdb"]) == 0
    again = open_ledger(lake).get(record.upload_id)
    assert again.run_id != record.run_id and again.warnings == record.warnings


def test_above_a_fail_threshold_nothing_is_published_and_the_upload_is_held(
        tmp_path, capsys, monkeypatch) -> None:
    lake = tmp_path / "lk"
    code, out, report = _run(lake, capsys, monkeypatch,
                             Threshold("quarantined", warn=0.1, fail=0.5))
    assert code == 1
    [record] = open_ledger(lake).find("orders")
    assert (record.status, record.error_code, record.held) == ("FAILED", "quality.threshold",
                                                               True)
    assert record.error.endswith(  # after the landed file's path
        ": 9 of the 14 rows read (64.3%) quarantined, above the fail threshold of 50.0%; "
        "nothing of this upload is published. Fix the file (the quarantine reasons say what "
        "is wrong) and upload it again, or change orders/2's quality thresholds, then: "
        f"lake reprocess {record.upload_id}")
    assert not list((lake / "clean" / "orders").rglob("*.parquet"))
    assert not list((lake / "quarantine" / "orders").rglob("*.parquet"))
    [upload] = report["uploads"]
    assert (upload["status"], upload["error_code"]) == ("failed", "quality.threshold")
    assert [(q["measure"], q["outcome"]) for q in upload["quality"]] == [("quarantined", "fail")]
    # held: the next batch run leaves it alone
    assert cli.main(["--lake-root", str(lake), "run", "orders", "--engine", "duckdb"]) == 0
    assert open_ledger(lake).get(record.upload_id).status == "FAILED"


@pytest.mark.parametrize("fail", [0.7, 1.0])
def test_at_or_under_the_fail_threshold_the_upload_is_published(tmp_path, capsys, monkeypatch,
                                                                fail: float) -> None:
    code, _, report = _run(tmp_path / "lk", capsys, monkeypatch,
                           Threshold("quarantined", fail=fail))
    assert code == 0 and report["uploads"][0]["quality"][0]["outcome"] == "ok"


def test_the_run_metrics_count_uploads_warned_and_failed_on_quality() -> None:
    from lib.jobs.report import RunReport, UploadResult, run_metrics
    from lib.lake import metrics as m

    def result(uid: str, *outcomes: str) -> UploadResult:
        return UploadResult(uid, "f", quality=[{"outcome": o} for o in outcomes])

    report = RunReport("j", 1, "orders/1", "r", "t", uploads=[
        result("a", "warn", "ok"), result("b", "fail", "warn"), result("c", "ok"),
        result("d", "warn")])
    got = run_metrics(report, 1.0)
    assert (got[m.QUALITY_WARNINGS], got[m.QUALITY_FAILURES]) == ((3, m.COUNT), (1, m.COUNT))


def test_the_alert_of_an_upload_published_above_a_warn_threshold_says_so(
        tmp_path, capsys, monkeypatch) -> None:
    from lib.ledger.notify import upload_message

    lake = tmp_path / "lk"
    _run(lake, capsys, monkeypatch, Threshold("quarantined", warn=0.5))
    [record] = open_ledger(lake).find("orders")
    body = upload_message(record, "report.html")
    assert (body["event"], body["status"], body["reason_code"]) == (
        "upload.quality_warning", "ARCHIVED", "quality.warning")
    assert body["reason"] == ("quality: 9 of the 14 rows read (64.3%) quarantined, above the "
                              "warn threshold of 50.0%")


def test_the_report_page_shows_each_threshold_against_its_share(tmp_path, capsys,
                                                                monkeypatch) -> None:
    import html.parser

    lake = tmp_path / "lk"
    _run(lake, capsys, monkeypatch, Threshold("quarantined", warn=0.5, fail=0.9),
         Threshold("order_id.required", fail=0.05))
    [page] = sorted((lake / "_reports" / "orders").glob("*.html"))

    class Rows(html.parser.HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.rows: list[list[str]] = []
            self.inside = False

        def handle_starttag(self, tag: str, attrs: list) -> None:
            if tag == "table":
                self.inside = ("id", "quality") in attrs
            elif self.inside and tag == "tr":
                self.rows.append([])
            elif self.inside and tag == "td":
                self.rows[-1].append("")

        def handle_endtag(self, tag: str) -> None:
            if tag == "table":
                self.inside = False

        def handle_data(self, data: str) -> None:
            if self.inside and self.rows and self.rows[-1]:
                self.rows[-1][-1] += data.strip()

    parser = Rows()
    parser.feed(page.read_text(encoding="utf-8"))
    uid = open_ledger(lake).find("orders")[0].upload_id
    assert [r for r in parser.rows if r] == [
        [uid, "quarantined rows", "9 / 14", "64.3%", "35.7%", "50.0%", "90.0%", "warn"],
        [uid, "order_id.required", "1 / 14", "7.1%", "92.9%", "-", "5.0%", "fail"]]
