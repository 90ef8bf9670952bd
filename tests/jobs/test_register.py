"""Partitions registered when a run commits (lib/jobs/register.py): new rows are queryable
without a crawl, the table a run creates is the one the crawler would create, a crawl right
after a run changes nothing, and the Glue Data Catalog gets the same through its API."""

from __future__ import annotations

import logging

import boto3
import pytest
from moto import mock_aws

from lib.contracts.contract import load_contract
from lib.jobs.register import (
    GlueRegistrar,
    LocalRegistrar,
    partition_values,
    register_published,
    table_columns,
    tables,
)
from lib.lake.catalog import LocalCatalog
from lib.lake.paths import LakePaths
from lib.tools import cli
from tests.helpers import CUSTOMERS, SAMPLES, catalog_of, cli_query, crawl_all, reset_catalog

ORDERS = [SAMPLES / "orders_2026-11-01.csv", SAMPLES / "orders_2026-11-02.csv.gz"]


def _definitions(catalog: LocalCatalog) -> dict[str, dict]:
    out = {}
    for t in catalog.tables():
        d = catalog.get_table(t.database, t.name)
        assert d is not None
        out[t.qualified] = {k: v for k, v in d.items() if k not in ("CreateTime", "UpdateTime")}
    return out


def _partitions(catalog: LocalCatalog) -> dict[str, dict]:
    return {t.qualified: catalog.partition_locations(t.database, t.name)
            for t in catalog.tables()}


def test_a_run_makes_its_rows_queryable_and_registers_what_the_crawler_would(
        tmp_path, capsys) -> None:
    """Both datasets, each a first upload (no table yet): queryable right after the run;
    the tables and partitions registered equal those a crawl from nothing finds, and a crawl
    right after the run changes nothing."""
    lake = tmp_path / "lk"
    assert cli.main(["--lake-root", str(lake), "run", "orders", "--engine", "duckdb",
                     "--input", *map(str, ORDERS)]) == 0
    assert cli.main(["--lake-root", str(lake), "run", "customers", "--engine", "duckdb",
                     "--input", *map(str, sorted(CUSTOMERS.glob("*.jsonl*")))]) == 0
    assert cli_query(lake, "SELECT count(*) AS n FROM clean.orders", capsys) == "n\n6\n"
    assert cli_query(lake, "SELECT count(*) AS n FROM quarantine.customers", capsys) != "n\n0\n"
    registered = catalog_of(lake)
    tables_after_run, partitions_after_run = _definitions(registered), _partitions(registered)
    assert set(tables_after_run) == {"clean.orders", "quarantine.orders", "clean.customers",
                                     "quarantine.customers"}
    assert len(partitions_after_run["clean.orders"]) == 2

    results = crawl_all(lake)  # right after the run: nothing to do
    assert {t: (r.action, r.conflicts, r.columns_added, r.partitions_added)
            for t, r in results.items()} == {
        t: ("unchanged", [], [], []) for t in tables_after_run}
    assert _definitions(catalog_of(lake)) == tables_after_run

    reset_catalog(lake)  # what a crawl finds from nothing is what the runs registered
    crawl_all(lake)
    crawled = catalog_of(lake)
    assert _definitions(crawled) == tables_after_run
    assert _partitions(crawled) == partitions_after_run


def test_the_spark_engine_registers_the_same(spark, tmp_path) -> None:
    """The Spark job's run (the files Spark writes) registers what a crawl of them finds."""
    lake = tmp_path / "lk"
    assert cli.main(["--lake-root", str(lake), "run", "orders", "--version", "1",
                     "--input", str(ORDERS[0])]) == 0
    registered = _definitions(catalog_of(lake)), _partitions(catalog_of(lake))
    assert registered[1]["clean.orders"]
    reset_catalog(lake)
    crawl_all(lake)
    assert (_definitions(catalog_of(lake)), _partitions(catalog_of(lake))) == registered


def test_a_partition_of_a_later_upload_is_added_to_the_existing_table(tmp_path, capsys) -> None:
    lake = tmp_path / "lk"
    for f in ORDERS:
        assert cli.main(["--lake-root", str(lake), "upload", "--dataset", "orders", str(f)]) == 0
        assert cli.main(["--lake-root", str(lake), "run", "orders", "--engine", "duckdb"]) == 0
        capsys.readouterr()
    assert cli_query(lake, "SELECT count(*) AS n FROM clean.orders", capsys) == "n\n6\n"
    assert sorted(_partitions(catalog_of(lake))["clean.orders"]) == [("2026-11-01",),
                                                                     ("2026-11-02",)]


def test_a_catalog_that_fails_is_logged_and_the_run_still_publishes(tmp_path, caplog,
                                                                      capsys) -> None:
    """The catalog file is a folder (unusable): the run publishes and archives, says the
    partitions were not registered and that the next crawl registers them."""
    lake = tmp_path / "lk"
    path = lake / "_local" / "catalog.sqlite"
    path.mkdir(parents=True)
    with caplog.at_level(logging.WARNING):
        assert cli.main(["--lake-root", str(lake), "run", "orders", "--engine", "duckdb",
                         "--input", str(ORDERS[0])]) == 0
    warned = [r.getMessage() for r in caplog.records if "not registered" in r.getMessage()]
    assert warned and warned[0].startswith("clean.orders: partitions not registered in the "
                                           "local catalog (")
    assert warned[0].endswith("); the next crawl of clean registers them")
    assert list((lake / "clean" / "orders").rglob("*.parquet"))


def test_partition_folders_are_read_back_as_values() -> None:
    assert partition_values("order_date=2026-11-01", ("order_date",)) == ("2026-11-01",)
    assert partition_values("k=a%2Fb", ("k",)) == ("a/b",)
    with pytest.raises(ValueError, match="is not a partition folder of keys"):
        partition_values("other=1", ("order_date",))


def test_table_columns_follow_the_files_and_leave_out_the_partition_keys() -> None:
    columns, keys = table_columns(load_contract("orders", 2), "clean")
    assert keys == ("order_date",) and "order_date" not in columns
    assert list(columns)[:3] == ["order_id", "customer_id", "customer_email"]
    assert columns["unit_price"] == "decimal(12,2)" and columns["_ingested_at"] == "timestamp"
    q_columns, q_keys = table_columns(load_contract("orders", 2), "quarantine")
    assert q_keys == ("ingest_date",) and q_columns["_errors"] == "array<string>"
    assert q_columns["quantity"] == "string" and q_columns["_source_record"] == "bigint"


@mock_aws
def test_glue_gets_the_table_and_the_partitions_once() -> None:
    glue = boto3.client("glue", region_name="eu-west-1")
    for db in ("lake_dev_clean", "lake_dev_quarantine"):
        glue.create_database(DatabaseInput={"Name": db})
    registrar = GlueRegistrar(glue, {"clean": "lake_dev_clean",
                                     "quarantine": "lake_dev_quarantine"})
    contract = load_contract("orders", 2)
    paths = LakePaths.from_root("s3://lake-raw", clean="s3://lake-clean",
                                quarantine="s3://lake-quarantine")
    written = ["clean/orders/order_date=2026-11-01", "clean/orders/order_date=2026-11-02",
               "quarantine/orders/ingest_date=2026-11-21"]
    log = logging.getLogger("test")
    first = register_published(registrar, contract, paths, written, log)
    assert first.done == ["lake_dev_clean.orders: table created, +2 partition(s)",
                          "lake_dev_quarantine.orders: table created, +1 partition(s)"]
    again = register_published(registrar, contract, paths, written[:1], log)
    assert again.done == ["lake_dev_clean.orders: +0 partition(s)"] and not again.failed
    table = glue.get_table(DatabaseName="lake_dev_clean", Name="orders")["Table"]
    expected = tables(contract, paths, registrar.databases)["clean"]
    assert table["StorageDescriptor"]["Location"] == "s3://lake-clean/orders"
    assert [c["Name"] for c in table["StorageDescriptor"]["Columns"]] == list(expected.columns)
    assert [k["Name"] for k in table["PartitionKeys"]] == ["order_date"]
    parts = glue.get_partitions(DatabaseName="lake_dev_clean", TableName="orders")["Partitions"]
    assert sorted((p["Values"], p["StorageDescriptor"]["Location"]) for p in parts) == [
        (["2026-11-01"], "s3://lake-clean/orders/order_date=2026-11-01"),
        (["2026-11-02"], "s3://lake-clean/orders/order_date=2026-11-02")]
    assert parts[0]["StorageDescriptor"]["SerdeInfo"] == table["StorageDescriptor"]["SerdeInfo"]


@mock_aws
def test_a_glue_database_that_does_not_exist_is_a_logged_failure() -> None:
    glue = boto3.client("glue", region_name="eu-west-1")
    registrar = GlueRegistrar(glue, {"clean": "missing", "quarantine": "missing"})
    result = register_published(
        registrar, load_contract("orders", 1), LakePaths.from_root("s3://b"),
        ["clean/orders/order_date=2026-11-01"], logging.getLogger("test"))
    assert result.done == [] and len(result.failed) == 1
    assert result.failed[0].startswith("missing.orders: partitions not registered in the Glue "
                                       "Data Catalog (")


def test_the_local_registrar_creates_a_missing_database_and_keeps_a_crawlers_description(
        tmp_path) -> None:
    catalog = LocalCatalog(tmp_path / "c.sqlite")
    catalog.create_database("clean", "the crawler's words")
    contract = load_contract("orders", 1)
    paths = LakePaths.from_root(str(tmp_path / "lake"))
    register_published(LocalRegistrar(catalog), contract, paths,
                       ["clean/orders/order_date=2026-11-01",
                        "quarantine/orders/ingest_date=2026-11-21"], logging.getLogger("t"))
    assert catalog.databases()["clean"] == "the crawler's words"
    assert catalog.databases()["quarantine"].startswith("created by a run")


def test_the_default_databases_are_the_crawlers() -> None:
    """A local run registers where `lake crawl` catalogues (crawlers/*.yaml): a crawler
    moved to another database or prefix must move the runs' defaults with it."""
    from lib.jobs.register import DEFAULT_DATABASES
    from lib.tools.crawlers import load_crawlers

    crawlers = load_crawlers().values()
    assert {c.zone: c.database for c in crawlers} == DEFAULT_DATABASES
    assert {c.table_prefix for c in crawlers} == {""}
