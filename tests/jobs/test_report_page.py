"""The run report as an HTML page: the same numbers as the JSON report, every rule of the
contract with its pass rate, the reason counts, the trend of recent runs, inline SVG
charts, and nothing fetched from anywhere."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

from lib.contracts.contract import load_contract
from lib.jobs.report import RunReport, UploadResult
from lib.jobs.report_html import PastRun, past_runs, render, rule_pass_rates


class Page(HTMLParser):
    """The page's elements: texts by id/data attribute, every URL-bearing attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, str] = {}
        self.reasons: dict[str, str] = {}
        self.rule_rows: list[str] = []
        self.partitions: dict[str, str] = {}
        self.svgs: list[str] = []
        self.bars: dict[str, int] = {}
        self.urls: list[str] = []
        self.tags: set[str] = set()
        self._field: tuple[dict, str] | None = None
        self._svg: str | None = None

    def handle_starttag(self, tag, attrs) -> None:  # noqa: ANN001
        a = dict(attrs)
        self.tags.add(tag)
        self.urls += [v for k, v in a.items() if k in ("href", "src", "action") and v]
        if tag == "svg":
            self._svg = a.get("id") or "chart"
            self.svgs.append(self._svg)
        if tag == "rect" and self._svg:
            self.bars[self._svg] = self.bars.get(self._svg, 0) + 1
        if "data-count" in a:
            self._field = (self.counts, a["data-count"])
        elif "data-reason" in a:
            self._field = (self.reasons, a["data-reason"])
        if tag == "tr" and "data-code" in a:
            self.rule_rows.append(a["data-code"])
        if tag == "tr" and "data-partition" in a:
            self._partition = a["data-partition"]
        if tag == "td" and getattr(self, "_partition", None) and a.get("class") == "num":
            self._field = (self.partitions, self._partition)
            self._partition = None

    def handle_endtag(self, tag) -> None:  # noqa: ANN001
        if tag == "svg":
            self._svg = None

    def handle_data(self, data: str) -> None:
        if self._field is not None:
            target, key = self._field
            target[key] = data.strip()
            self._field = None


def a_report() -> RunReport:
    report = RunReport(job="orders_v1", job_version=1, contract="orders/1",
                       run_id="20261129T010000Z-abcdef", started_at="2026-11-29T01:00:00+00:00",
                       finished_at="2026-11-29T01:00:09+00:00")
    report.uploads = [
        UploadResult("u1", "file:///raw/a.csv", rows_read=1200, clean=1100, quarantined=90,
                     duplicates_removed=10, reasons={"quantity.range": 60,
                                                     "customer_email.format": 40,
                                                     "order_id.conflict": 2},
                     partitions=["clean/orders/order_date=2026-11-01"],
                     partition_rows={"clean/orders/order_date=2026-11-01": 1100,
                                     "quarantine/orders/ingest_date=2026-11-29": 90}),
        UploadResult("u2", "file:///raw/b.csv", rows_read=0, status="failed",
                     error_code="file.unreadable", error="file:///raw/b.csv: <corrupt> gzip"),
    ]
    return report


def test_the_page_shows_the_json_reports_numbers_and_every_rule() -> None:
    orders = load_contract("orders", 1)
    report = a_report()
    page = Page()
    page.feed(render(report, orders))
    data = json.loads(report.to_json())
    assert page.counts == {k: f"{data['totals'][k]:,}"
                           for k in ("rows_read", "clean", "quarantined", "duplicates_removed")}
    assert page.reasons == {k: str(v) for k, v in data["quarantined_by_reason"].items()}
    assert page.rule_rows == list(dict.fromkeys(c.code for c in orders.checks()))
    rates = {r.code: r for r in rule_pass_rates(report, orders)}
    assert rates["quantity.range"].failed == 60
    assert abs(rates["quantity.range"].rate - (1 - 60 / 1200)) < 1e-12
    assert rates["currency.enum"].rate == 1.0
    assert page.partitions == {"clean/orders/order_date=2026-11-01": "1,100",
                               "quarantine/orders/ingest_date=2026-11-29": "90"}


def test_the_page_is_self_contained_with_its_charts_inline() -> None:
    html = render(a_report(), load_contract("orders", 1))
    page = Page()
    page.feed(html)
    assert page.urls == [] and not ({"script", "link", "img", "iframe"} & page.tags)
    assert not re.search(r"(?i)\b(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html.replace(
        'xmlns="http://www.w3.org/2000/svg"', ""))
    assert {"reasons", "trend"} <= set(page.svgs)
    assert page.bars["reasons"] == 3 and page.bars["trend"] == 1
    assert "&lt;corrupt&gt; gzip" in html and "<corrupt>" not in html  # escaped


def test_the_trend_shows_recent_runs_oldest_first_with_this_one_last() -> None:
    earlier = [json.dumps({"run_id": f"2026112{i}T000000Z-00000{i}",
                           "started_at": f"2026-11-2{i}", "totals": {
                               "rows_read": 100, "quarantined": i}}) for i in range(1, 4)]
    history = past_runs([*reversed(earlier), "not json", json.dumps({"run_id": "x"})])
    assert [r.quarantined for r in history] == [1, 2, 3]
    page = Page()
    page.feed(render(a_report(), load_contract("orders", 1), history))
    assert page.bars["trend"] == 4
    assert PastRun("r", "", 0, 0).ratio is None
