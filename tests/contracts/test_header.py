"""Header matching: case-insensitive after trimming, order free, extras dropped with a
warning, missing required columns refused naming the missing and the present ones."""

from __future__ import annotations

import pytest

from lib.contracts.header import normalise_name, parse_header_line, plan_header
from lib.errors import FileError

FULL = ("order_id,customer_id,customer_email,product_sku,quantity,unit_price,currency,"
        "order_ts,country")


@pytest.mark.parametrize(("raw", "expected"), [
    ("order_id", "order_id"),
    ("  Order_ID ", "order_id"),
    ("Order ID", "order_id"),
    ("customer-email", "customer_email"),
    ("UNIT PRICE", "unit_price"),
])
def test_normalise_name(raw: str, expected: str) -> None:
    assert normalise_name(raw) == expected


def test_parse_header_line_strips_bom_and_line_end_and_honours_quotes() -> None:
    assert parse_header_line('\ufeffa,"b, c",d\r\n') == ["a", "b, c", "d"]
    assert parse_header_line("") is None
    assert parse_header_line(None) is None


def test_columns_in_any_order_and_case_map_to_contract_names(orders) -> None:
    header = parse_header_line("QUANTITY, Order_Id ,customer_id,product_sku,unit_price,"
                               "currency,order_ts,Notes")
    plan = plan_header(header, orders, "f.csv")
    assert plan.read_names == ("quantity", "order_id", "customer_id", "product_sku",
                               "unit_price", "currency", "order_ts", "_extra_7")
    assert plan.extra == ("Notes",)
    assert plan.missing_optional == ("customer_email", "country")
    assert plan.warnings == ("f.csv: extra column(s) dropped: Notes",)


def test_missing_required_column_names_missing_and_present_columns(orders) -> None:
    header = parse_header_line("order_id,customer_id,product_sku,unit_price,currency")
    with pytest.raises(FileError) as err:
        plan_header(header, orders, "f.csv")
    assert err.value.code == "file.missing_columns"
    assert str(err.value) == (
        "f.csv: missing required column(s) ['quantity', 'order_ts'] for orders/1; present "
        "columns: ['order_id', 'customer_id', 'product_sku', 'unit_price', 'currency']; "
        "required: ['order_id', 'customer_id', 'product_sku', 'quantity', 'unit_price', "
        "'currency', 'order_ts']")


def test_two_headers_mapping_to_one_column_are_ambiguous(orders) -> None:
    with pytest.raises(FileError, match=r"f.csv: ambiguous header: several columns map to "
                                          r"the same contract column \(quantity <- 'quantity', "
                                          r"'Quantity'\)"):
        plan_header(parse_header_line(FULL + ",Quantity"), orders, "f.csv")


def test_empty_file_is_refused_with_the_expected_columns(orders) -> None:
    with pytest.raises(FileError, match=r"f.csv: file is empty: a header row naming the "
                                          r"columns is required \(expected: order_id, "):
        plan_header(None, orders, "f.csv")
