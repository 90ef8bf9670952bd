"""What the console's pages compute before they render: the quarantine table (columns that
repeat said once, failing cells, lines), a CSV record's line, the trend chart's axes, values,
dates and thresholds, human times and durations, and the closest header names."""

from __future__ import annotations

import gzip
from dataclasses import replace

from lib.contracts.contract import Threshold, load_contract
from lib.contracts.header import closest_names
from lib.jobs.report_html import PLOT_BOTTOM, PLOT_TOP, PastRun, trend_chart
from lib.lake.humane import duration, seconds, when
from lib.tools.console.views import csv_record_lines, quarantine_table


def row(record: int, order_id: str | None, quantity: str, errors: list[str]) -> dict:
    return {"order_id": order_id, "quantity": quantity, "currency": "USD", "country": "FR",
            "_errors": errors, "_raw_record": None, "_source_record": record,
            "_upload_id": "u1", "_source_file": "file:///nowhere.jsonl",
            "_contract_version": "orders/2"}


def test_columns_that_repeat_are_said_once_unless_a_row_fails_them() -> None:
    contract = replace(load_contract("orders"), format="jsonl")  # lines are the records
    rows = [row(3, "O-1", "0", ["quantity.range"]), row(9, None, "2", ["order_id.required",
                                                                      "country.format"])]
    columns = list(rows[0])
    table = quarantine_table(columns, rows, contract)
    assert table.columns == ["order_id", "quantity", "country"]  # country fails in a row
    assert table.same == {"currency": "USD"}
    assert table.lineage == {"_upload_id": "u1", "_source_file": "file:///nowhere.jsonl",
                             "_contract_version": "orders/2"}
    first, second = table.rows
    assert (first["line"], table.line_word) == (3, "line")
    assert first["cells"]["quantity"].failing == ["quantity.range"]
    assert first["cells"]["order_id"].failing == []
    assert second["cells"]["order_id"].failing == ["order_id.required"]
    assert second["cells"]["country"].failing == ["country.format"]
    assert second["codes"] == ["order_id.required", "country.format"]


def test_a_csv_records_line_counts_the_header_quoted_newlines_and_blank_lines(tmp_path) -> None:
    text = 'a,b\n1,"two\nlines"\n\n3,x\n4,y\n'
    plain = tmp_path / "f.csv"
    plain.write_text("\ufeff" + text)
    packed = tmp_path / "f.csv.gz"
    packed.write_bytes(gzip.compress(text.encode()))
    for f in (plain, packed):
        assert csv_record_lines(f, {1, 2, 3}) == {1: 2, 2: 5, 3: 6}
    assert csv_record_lines(plain, {3}, limit=12) == {}  # past the bytes it may read


def test_the_trend_chart_has_axes_values_dates_and_the_contracts_thresholds() -> None:
    contract = replace(load_contract("orders"), quality=(
        Threshold("quarantined", warn=0.1, fail=0.3),))
    runs = [PastRun("r1", "2026-12-01T10:00:00+00:00", 100, 5),
            PastRun("r2", "2026-12-02T11:30:00+00:00", 100, 20),
            PastRun("r3", "2026-12-03T12:00:00+00:00", 0, 0)]
    chart = trend_chart(runs, contract)
    # the axis ends on a round share above the highest bar and level (30% -> 40%)
    assert [label for _, label in chart.y_ticks] == ["0%", "10%", "20%", "30%", "40%"]
    assert chart.y_ticks[0][0] == PLOT_BOTTOM and chart.y_ticks[-1][0] == PLOT_TOP
    assert [b.label for b in chart.bars] == ["5%", "20%", "no rows"]
    assert [b.tick for b in chart.bars] == ["12-01 10:00", "12-02 11:30", "12-03 12:00"]
    plot = PLOT_BOTTOM - PLOT_TOP
    assert (chart.bars[0].height, chart.bars[1].height) == (round(plot / 8, 1), plot / 2)
    assert chart.bars[2].height == 0
    warn, fail = chart.levels
    assert (warn.name, warn.share, fail.name, fail.share) == ("warn", 0.1, "fail", 0.3)
    assert warn.y == chart.y_ticks[1][0] and fail.y == chart.y_ticks[3][0]
    assert trend_chart(runs, load_contract("orders")).levels == ()  # none declared


def test_many_runs_get_a_date_every_few_bars_and_no_crowded_values() -> None:
    runs = [PastRun(f"r{i}", f"2026-11-{i + 1:02d}T08:00:00+00:00", 10, 1) for i in range(28)]
    chart = trend_chart(runs)
    ticks = [i for i, b in enumerate(chart.bars) if b.tick]
    assert ticks[0] == 0 and ticks[-1] == 27
    gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
    assert min(gaps) * (chart.right - chart.left) / 28 >= 96  # labels 96 units apart or more
    assert all(b.label == "" for b in chart.bars)  # 20 units a bar: values in the tooltips


def test_times_and_durations_read_as_people_say_them() -> None:
    assert when("2026-12-03T23:48:12.51+00:00") == "2026-12-03 23:48:12 UTC"
    assert when("2026-12-04T01:48:12+02:00") == "2026-12-03 23:48:12 UTC"
    assert when(None) == "-"
    assert [seconds(s) for s in (0.42, 12.4, 185, 7440)] == [
        "0.4 s", "12 s", "3 min 05 s", "2 h 04 min"]
    assert duration("2026-12-03T10:00:00+00:00", "2026-12-03T10:01:05.2+00:00") == "1 min 05 s"
    assert duration("never", None) == "-"


def test_a_missing_column_is_matched_to_the_closest_name_in_the_file() -> None:
    assert closest_names(
        ["order_id", "customer_id", "product_sku", "quantity", "unit_price", "currency"],
        ["OrderNumber", "Customer", "Product", "Qty", "Price", "notes"]) == (
        "'OrderNumber' for order_id, 'Customer' for customer_id, 'Product' for product_sku, "
        "'Qty' for quantity, 'Price' for unit_price")
    assert closest_names(["quantity", "order_ts"], ["notes", "comment"]) == ""
    assert closest_names(["email"], ["E-Mail"]) == "'E-Mail' for email"
