"""Schema evolution: the compatibility check between contract versions, and orders v2
(``discount_pct``) beside v1 in the same zones."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import types as T

from glue_jobs.orders.v2 import job as job_v2
from lib.contracts.contract import available_contracts, load_contract, parse_type
from lib.contracts.evolution import check_compatible, check_dataset
from lib.lake.paths import to_uri
from lib.tools import cli
from tests.helpers import REPO, land

DISCOUNTS = REPO / "samples" / "orders" / "orders_2026-11-04_discounts.csv"


@pytest.mark.parametrize("dataset", sorted(available_contracts()))
def test_every_bundled_version_is_compatible_with_the_one_before(dataset) -> None:
    for result in check_dataset(dataset):
        assert result.ok, result.describe()


def test_orders_v2_adds_an_optional_discount() -> None:
    result = check_compatible(load_contract("orders", 1), load_contract("orders", 2))
    assert result.ok
    assert result.additive == ["optional column discount_pct (decimal(5,2)); rows written by "
                               "orders/1 read it as null"]
    # total_amount now takes the discount off: allowed (it places no row), and said
    v1_total = load_contract("orders", 1).derived[0].expression
    v2_total = load_contract("orders", 2).derived[0].expression
    assert result.changed == [f"derived column total_amount: expression {v1_total!r} -> "
                              f"{v2_total!r}; rows written by orders/1 keep the values the "
                              "old one gave"]


def test_a_partition_expression_only_respaced_is_the_same() -> None:
    old = load_contract("orders", 1)
    new = replace(old, version=9, derived=tuple(
        replace(d, expression=" to_date( order_ts ) ") if d.name == "order_date" else d
        for d in old.derived))
    assert check_compatible(old, new).breaking == []


def _v1_with(**changes):
    return replace(load_contract("orders", 1), version=9, **changes)


def _columns(fn):
    return tuple(fn(c) for c in load_contract("orders", 1).columns)


@pytest.mark.parametrize(("new", "breaking"), [
    (lambda: _v1_with(columns=_columns(
        lambda c: replace(c, type=parse_type("bigint", "t", "t")) if c.name == "quantity" else c)),
     ["column quantity changed type from int to bigint; partitions written as int would no "
      "longer match the table"]),
    (lambda: _v1_with(columns=tuple(c for c in load_contract("orders", 1).columns
                                    if c.name != "country")),
     ["column country (string) removed; rows already written carry it, and queries reading "
      "it would break (keep it, optional, or start a new dataset)"]),
    (lambda: _v1_with(columns=(*load_contract("orders", 1).columns,
                               replace(load_contract("orders", 1).column("country"),
                                       name="channel", required=True))),
     ["new column channel is required; rows and files of orders/1 do not have it (add it as "
      "optional)"]),
    (lambda: _v1_with(partition_by=("currency",)),
     ["partitioning changed from ['order_date'] to ['currency']; the table's partition keys "
      "cannot change"]),
    (lambda: _v1_with(derived=tuple(
        replace(d, expression="to_date(order_ts + interval 1 day)") if d.name == "order_date"
        else d for d in load_contract("orders", 1).derived)),
     ["derived column order_date places rows in partitions, and its expression changed from "
      "'to_date(order_ts)' to 'to_date(order_ts + interval 1 day)'; the same row would land "
      "in another partition than its copy written by orders/1, and a reprocess would leave "
      "both (keep the expression, or start a new dataset)"]),
    (lambda: _v1_with(columns=_columns(
        lambda c: replace(c, pii=None) if c.name == "customer_email" else c)),
     ["column customer_email changed PII handling from sha256 to none; one column would mix "
      "both"]),
])
def test_breaking_changes_are_refused_saying_what_broke(new, breaking) -> None:
    result = check_compatible(load_contract("orders", 1), new())
    assert not result.ok
    assert result.breaking == breaking


def test_lake_contract_check_reports_every_dataset_and_a_candidate_file(tmp_path, capsys) -> None:
    assert cli.main(["contract", "check"]) == 0
    out = capsys.readouterr().out
    assert "orders/1 -> orders/2: compatible\n  added:    optional column discount_pct" in out
    assert "customers/1: only one version" in out
    assert "orders/2: runs on both engines (spark, duckdb), with the same results\n" in out
    assert "customers/1: runs on both engines (spark, duckdb), with the same results\n" in out
    candidate = tmp_path / "v3.yaml"
    text = (REPO / "lib" / "contracts" / "orders" / "v2.yaml").read_text()
    candidate.write_text(text.replace("version: 2", "version: 3")
                         .replace("type: int\n", "type: bigint\n"))
    assert cli.main(["contract", "check", "--file", str(candidate)]) == 1
    assert capsys.readouterr().out == (
        "orders/3: runs on both engines (spark, duckdb), with the same results\n"
        "orders/2 -> orders/3: BREAKING\n  breaking: column quantity changed type from int to "
        "bigint; partitions written as int would no longer match the table\n")


def test_orders_v2_applies_the_discount_half_up_and_checks_it(spark, tmp_path) -> None:
    lake = tmp_path / "lake"
    uid = land(lake, DISCOUNTS)
    assert job_v2.main(["--JOB_NAME", "orders_v2", "--lake_root", to_uri(lake),
                        "--upload_ids", json.dumps([uid])]) == 0
    clean = (spark.read.parquet(str(lake / "clean" / "orders"))
             .select("order_id", "discount_pct", "total_amount", "_contract_version"))
    schema = T.StructType([
        T.StructField("order_id", T.StringType()),
        T.StructField("discount_pct", T.DecimalType(5, 2)),
        T.StructField("total_amount", T.DecimalType(18, 2)),
        T.StructField("_contract_version", T.StringType()),
    ])
    expected = spark.createDataFrame([
        ("O-4001", Decimal("12.50"), Decimal("52.47"), "orders/2"),  # 3 x 19.99 x 0.875 = 52.47375
        ("O-4002", Decimal("50.00"), Decimal("5.03"), "orders/2"),  # 5.025: half-up, not to even
        ("O-4003", None, Decimal("10.00"), "orders/2"),  # no discount = 0
    ], schema)
    assert_df_equality(clean, expected, ignore_row_order=True, ignore_nullable=True)
    quarantine = {r["order_id"]: r["_errors"] for r in
                  spark.read.parquet(str(lake / "quarantine" / "orders")).collect()}
    assert quarantine == {"O-4004": ["discount_pct.range"], "O-4005": ["discount_pct.type"],
                          "O-4006": ["discount_pct.precision"]}


def test_v1_and_v2_rows_share_the_zone_and_read_together(spark, tmp_path) -> None:
    """v1 wrote no discount_pct column; reading the zone with the v2 schema gives them null."""
    from glue_jobs.orders.v1 import job as job_v1
    from lib.engine.schemas import clean_schema

    lake = tmp_path / "lake"
    first = land(lake, REPO / "samples" / "orders" / "orders_2026-11-01.csv")
    assert job_v1.main(["--JOB_NAME", "orders_v1", "--lake_root", to_uri(lake),
                        "--upload_ids", json.dumps([first])]) == 0
    second = land(lake, DISCOUNTS)
    assert job_v2.main(["--JOB_NAME", "orders_v2", "--lake_root", to_uri(lake),
                        "--upload_ids", json.dumps([second])]) == 0
    df = spark.read.schema(clean_schema(load_contract("orders", 2))).parquet(
        str(Path(lake) / "clean" / "orders"))
    got = {(r["_contract_version"], r["discount_pct"] is None) for r in df.collect()}
    assert got == {("orders/1", True), ("orders/2", False), ("orders/2", True)}


def test_lake_contract_check_names_what_keeps_a_version_off_the_duckdb_engine(
        tmp_path, capsys) -> None:
    spark_only = tmp_path / "customers_v2.yaml"
    spark_only.write_text((REPO / "lib" / "contracts" / "customers" / "v1.yaml").read_text()
                          .replace("version: 1", "version: 2")
                          .replace("'yyyy-MM')", "'MMM yyyy')"))
    # signup_month partitions customers: a new expression for it breaks the table
    assert cli.main(["contract", "check", "--file", str(spark_only)]) == 1
    out = capsys.readouterr().out
    assert out.startswith(
        "customers/2: runs on the Spark engine only (derived[0].expression \"date_format("
        "signup_date, 'MMM yyyy')\": date_format pattern 'MMM yyyy' is not proven in the "
        "DuckDB engine (proven: yyyy, MM, dd and the separators - and /)); lake run customers "
        "--engine duckdb refuses it before claiming an upload\n")
    assert "customers/1 -> customers/2: BREAKING\n  breaking: derived column signup_month " \
        "places rows in partitions, and its expression changed from \"date_format(signup_date," \
        " 'yyyy-MM')\" to \"date_format(signup_date, 'MMM yyyy')\"" in out
    candidate = tmp_path / "v3.yaml"
    text = (REPO / "lib" / "contracts" / "orders" / "v2.yaml").read_text()
    candidate.write_text(text.replace("version: 2", "version: 3").replace(
        "round(quantity * unit_price * (100 - coalesce(discount_pct, 0)) / 100, 2)",
        "round(quantity * unit_price / 3, 2)"))
    assert cli.main(["contract", "check", "--file", str(candidate)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        "orders/3: runs on the Spark engine only (derived[0].expression "
        "'round(quantity * unit_price / 3, 2)': a division by '3': DuckDB divides decimals in "
        "floating point; only a division by a power of ten (10, 100, ...) is exact in both "
        "engines); lake run orders --engine duckdb refuses it before claiming an upload")
