"""The local crawl (crawler definitions applied to the lake's local catalog) and what it
catalogues: Glue-crawler Hive types and table definitions, partitions, schema change and
delete policies, idempotency, and old and new contract versions read through one table."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from glue_jobs.orders.v1 import job as orders_v1
from glue_jobs.orders.v2 import job as orders_v2
from lib.contracts.contract import available_contracts
from lib.lake.paths import LakePaths
from lib.tools.crawl import _glob_regex, crawl, hive_type
from lib.tools.crawlers import CrawlerDefinitionError, load_crawlers, parse_crawler
from lib.tools.query import run_query
from tests.helpers import REPO, SAMPLES, catalog_of, crawl_all, reset_catalog, run


def columns(lake: Path, table: str) -> list[tuple[str, str, bool]]:
    info = catalog_of(lake).table(*table.split("."))
    assert info is not None, f"{table} is not catalogued"
    return [(c, t, False) for c, t in info.columns.items()] + [
        (k, "string", True) for k in info.partition_keys]


def partitions(lake: Path, table: str) -> list[str]:
    return [r[0] for r in run_query(catalog_of(lake), f"SHOW PARTITIONS {table}").rows]


@pytest.fixture(scope="module")
def lake(processed_lake) -> Path:
    """The processed lake, crawled once from an empty catalog."""
    lake = processed_lake
    reset_catalog(lake)
    first = crawl_all(lake)
    assert {t: r.action for t, r in first.items()} == {
        "clean.orders": "created", "clean.customers": "created",
        "quarantine.orders": "created", "quarantine.customers": "created"}
    return lake


def test_tables_get_the_hive_types_a_glue_crawler_gives_parquet(lake) -> None:
    assert columns(lake, "clean.orders") == [
        ("order_id", "string", False), ("customer_id", "string", False),
        ("customer_email", "string", False), ("product_sku", "string", False),
        ("quantity", "int", False), ("unit_price", "decimal(12,2)", False),
        ("currency", "string", False), ("order_ts", "timestamp", False),
        ("country", "string", False), ("total_amount", "decimal(18,2)", False),
        ("_upload_id", "string", False), ("_source_file", "string", False),
        ("_ingested_at", "timestamp", False), ("_contract_version", "string", False),
        ("order_date", "string", True),  # partition keys: string, as the crawler types them
    ]
    assert columns(lake, "quarantine.customers") == [
        ("customer_id", "string", False), ("full_name", "string", False),
        ("email", "string", False), ("signup_date", "string", False),
        ("country", "string", False), ("loyalty_tier", "string", False),
        ("_errors", "array<string>", False), ("_raw_record", "string", False),
        ("_source_record", "bigint", False), ("_upload_id", "string", False),
        ("_source_file", "string", False), ("_ingested_at", "timestamp", False),
        ("_contract_version", "string", False), ("ingest_date", "string", True),
    ]
    assert [c[:2] for c in columns(lake, "clean.customers") if c[0] == "signup_date"] == [
        ("signup_date", "date")]


def test_a_table_is_described_as_the_glue_api_describes_a_crawled_parquet_table(lake) -> None:
    table = catalog_of(lake).get_table("clean", "orders")
    assert {k: v for k, v in table.items() if k not in ("CreateTime", "UpdateTime")} == {
        "Name": "orders",
        "DatabaseName": "clean",
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "parquet", "lake.crawler": "clean",
                       "lake.dataset": "orders"},
        "StorageDescriptor": {
            "Columns": [{"Name": c, "Type": t} for c, t, part in columns(lake, "clean.orders")
                        if not part],
            "Location": (lake / "clean" / "orders").as_uri(),
            "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
            "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
            "SerdeInfo": {"SerializationLibrary":
                          "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                          "Parameters": {"serialization.format": "1"}},
        },
        "PartitionKeys": [{"Name": "order_date", "Type": "string"}],
    }


def test_lake_catalog_prints_what_is_catalogued(lake, capsys) -> None:
    from lib.tools import cli

    assert cli.main(["--lake-root", str(lake), "catalog"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("database clean: ")
    assert (f"  table clean.orders  {(lake / 'clean' / 'orders').as_uri()}\n"
            "    14 columns, 2 partition(s) by (order_date string)\n"
            "      order_id  string\n") in out
    assert "  table quarantine.customers  " in out
    assert cli.main(["--lake-root", str(lake), "catalog", "--format", "json"]) == 0
    tables = json.loads(capsys.readouterr().out)
    assert [f"{t['DatabaseName']}.{t['Name']}" for t in tables] == [
        "clean.customers", "clean.orders", "quarantine.customers", "quarantine.orders"]


def test_every_partition_folder_is_registered(lake) -> None:
    parts = {t: partitions(lake, t)
             for t in ("clean.orders", "clean.customers", "quarantine.orders")}
    assert parts == {
        "clean.orders": ["order_date=2026-11-01", "order_date=2026-11-02"],
        "clean.customers": ["signup_month=2026-10", "signup_month=2026-11",
                            "signup_month=__HIVE_DEFAULT_PARTITION__"],
        "quarantine.orders": ["ingest_date=2026-11-21"],
    }
    counts = run_query(catalog_of(lake), "SELECT count(*) AS n FROM clean.orders").rows
    assert counts == [(6,)]
    nulls = run_query(catalog_of(lake), "SELECT customer_id FROM clean.customers "
                                        "WHERE signup_month IS NULL").rows
    assert nulls == [("C-3",)]  # the default partition reads as null


def test_a_second_crawl_changes_nothing(lake) -> None:
    again = crawl_all(lake)
    assert {t: (r.action, r.columns_added, r.partitions_added, r.logged, r.conflicts)
            for t, r in again.items()} == {
        t: ("unchanged", [], [], [], []) for t in again}


def test_every_dataset_is_a_target_of_both_crawlers() -> None:
    crawlers = load_crawlers()
    assert {c.zone: c.database for c in crawlers.values()} == {
        "clean": "clean", "quarantine": "quarantine"}
    for c in crawlers.values():
        assert sorted(c.targets) == sorted(available_contracts()), c.name
        assert (c.update_behavior, c.delete_behavior, c.recrawl_behavior) == (
            "UPDATE_IN_DATABASE", "LOG", "CRAWL_EVERYTHING")
        assert json.loads(c.glue_configuration()) == {
            "Version": 1.0,
            "CrawlerOutput": {"Partitions": {"AddOrUpdateBehavior": "InheritFromTable"},
                              "Tables": {"AddOrUpdateBehavior": "MergeNewColumns"}},
            "Grouping": {"TableGroupingPolicy": "CombineCompatibleSchemas"}}
        for excluded in ("_SUCCESS", "order_date=2026-11-01/_SUCCESS", "_temporary/0/x",
                         "_staging/orders/run/part.parquet",
                         "order_date=2026-11-01/.part-0.parquet.crc"):
            assert any(_glob_regex(p).match(excluded) for p in c.exclusions), excluded
        assert not any(_glob_regex(p).match("order_date=2026-11-01/u1_r1_00000.parquet")
                       for p in c.exclusions)


def test_v1_then_v2_then_a_crawl_reads_old_and_new_partitions_in_one_query(spark,
                                                                             tmp_path) -> None:
    lake = tmp_path / "lake"
    run(orders_v1, "orders_v1", lake, SAMPLES / "orders_2026-11-01.csv")
    crawl_all(lake)
    run(orders_v2, "orders_v2", lake, REPO / "samples" / "orders" /
        "orders_2026-11-04_discounts.csv")
    # The v2 run registered its partition when it committed; the crawl adds the new column.
    assert partitions(lake, "clean.orders")[-1] == "order_date=2026-11-04"
    results = crawl_all(lake)
    clean = results["clean.orders"]
    assert (clean.action, clean.columns_added, clean.partitions_added) == (
        "updated", ["discount_pct"], [])
    assert results["quarantine.orders"].columns_added == ["discount_pct"]
    got = run_query(catalog_of(lake), """
        SELECT order_id, _contract_version AS v, discount_pct, total_amount
        FROM clean.orders ORDER BY order_id""").rows
    assert got == [
        ("O-1001", "orders/1", None, Decimal("39.98")),
        ("O-1002", "orders/1", None, Decimal("5.00")),
        ("O-1003", "orders/1", None, Decimal("15.00")),
        ("O-1012", "orders/1", None, Decimal("1.50")),
        ("O-4001", "orders/2", Decimal("12.50"), Decimal("52.47")),
        ("O-4002", "orders/2", Decimal("50.00"), Decimal("5.03")),
        ("O-4003", "orders/2", None, Decimal("10.00")),
    ]


def test_update_behavior_log_only_logs_new_columns_and_delete_policies_apply(spark,
                                                                            tmp_path) -> None:
    lake = tmp_path / "lake"
    run(orders_v1, "orders_v1", lake, SAMPLES / "orders_2026-11-01.csv",
        SAMPLES / "orders_2026-11-02.csv.gz")
    clean = load_crawlers()["clean"]
    catalog = catalog_of(lake)
    crawl(clean, LakePaths.from_root(lake), catalog)
    run(orders_v2, "orders_v2", lake, REPO / "samples" / "orders" /
        "orders_2026-11-04_discounts.csv")
    log_only = replace(clean, update_behavior="LOG")
    # As if the run could not register its partition (the catalog was busy): the crawl does.
    catalog.drop_partitions("clean", "orders", [("2026-11-04",)])
    r = crawl(log_only, LakePaths.from_root(lake), catalog)[0]
    assert r.columns_added == [] and r.logged == [
        "new column(s) not added (update_behavior LOG): discount_pct"]
    assert "discount_pct" not in [c[0] for c in columns(lake, "clean.orders")]
    assert r.partitions_added == ["order_date=2026-11-04"]  # partitions are always registered

    shutil.rmtree(lake / "clean" / "orders" / "order_date=2026-11-02")
    r = crawl(log_only, LakePaths.from_root(lake), catalog)[0]
    assert r.logged[-1] == ("partition folder(s) gone, kept in the catalog (LOG): "
                            "order_date=2026-11-02")
    r = crawl(replace(clean, delete_behavior="DELETE_FROM_DATABASE"),
              LakePaths.from_root(lake), catalog)[0]
    assert (r.columns_added, r.partitions_removed) == (["discount_pct"],
                                                       ["order_date=2026-11-02"])
    assert partitions(lake, "clean.orders") == ["order_date=2026-11-01", "order_date=2026-11-04"]


def test_a_dataset_without_data_yet_is_skipped(tmp_path) -> None:
    results = crawl_all(tmp_path / "empty-lake")
    assert {r.action for r in results.values()} == {"no data yet"}
    assert run_query(catalog_of(tmp_path / "empty-lake"), "SHOW TABLES IN clean").rows == []


@pytest.mark.parametrize(("arrow", "hive"), [
    (pa.string(), "string"), (pa.int32(), "int"), (pa.int64(), "bigint"),
    (pa.decimal128(5, 2), "decimal(5,2)"), (pa.timestamp("ns"), "timestamp"),
    (pa.date32(), "date"), (pa.list_(pa.string()), "array<string>"), (pa.bool_(), "boolean"),
    (pa.float64(), "double"),
])
def test_parquet_types_map_to_hive_types(arrow, hive) -> None:
    assert hive_type(arrow) == hive


@pytest.mark.parametrize(("change", "message"), [
    ({"recrawl_policy": "CRAWL_NEW_FOLDERS_ONLY"},
     "x.yaml: recrawl_policy: CRAWL_NEW_FOLDERS_ONLY needs update_behavior LOG and "
     "delete_behavior LOG (as on AWS); use CRAWL_EVERYTHING to add new columns"),
    ({"table_grouping": "None"},
     "x.yaml: table_grouping: expected one of CombineCompatibleSchemas, got 'None'"),
    ({"partitions": "InheritFromPartition"},
     "x.yaml: partitions: expected one of InheritFromTable, got 'InheritFromPartition'"),
    ({"zone": "raw"}, "x.yaml: zone: expected one of clean, quarantine, got 'raw'"),
    ({"targets": [{"dataset": "orders"}, {"dataset": "orders"}]},
     "x.yaml: targets: a dataset is listed twice"),
    ({"schedule": "cron(0 * * * ? *)"},
     "x.yaml: schedule: unknown field; allowed: name, description, zone, database, "
     "table_prefix, targets, exclusions, schema_change_policy, recrawl_policy, partitions, "
     "table_grouping"),
])
def test_invalid_crawler_definitions_are_refused_with_the_field(change, message) -> None:
    import yaml

    doc = yaml.safe_load((REPO / "crawlers" / "clean.yaml").read_text())
    doc.update(change)
    with pytest.raises(CrawlerDefinitionError) as err:
        parse_crawler(doc, "x.yaml")
    assert str(err.value) == message


def test_a_type_change_in_the_files_is_a_conflict_and_the_table_keeps_its_type(
        spark, tmp_path, capsys) -> None:
    """A writer that breaks the contract (quantity as bigint) is reported, never applied:
    `lake crawl` exits 1 and the table still says int. A stray non-Parquet file is logged."""
    from pyspark.sql import functions as F

    from lib.tools import cli

    lake = tmp_path / "lake"
    run(orders_v1, "orders_v1", lake, SAMPLES / "orders_2026-11-01.csv")
    crawl_all(lake)
    clean = lake / "clean" / "orders"
    (spark.read.parquet(str(clean / "order_date=2026-11-01"))
     .withColumn("quantity", F.col("quantity").cast("bigint"))
     .write.parquet(str(tmp_path / "bad")))
    rogue = clean / "order_date=2026-12-01"
    rogue.mkdir()
    shutil.copy(next((tmp_path / "bad").glob("*.parquet")), rogue / "rogue.parquet")
    (rogue / "notes.txt").write_text("not data")
    (clean / "README.txt").write_text("at the table root, walked first")
    capsys.readouterr()
    assert cli.main(["--lake-root", str(lake), "crawl", "clean"]) == 1
    out = capsys.readouterr().out
    assert ("    conflict: order_date=2026-12-01/rogue.parquet: column quantity is bigint here "
            "but int in other files; kept as int") in out
    assert "    log: README.txt: not a Parquet file" in out  # and no partition-key conflict
    assert "differ from" not in out
    assert "    log: order_date=2026-12-01/notes.txt: not a Parquet file" in out
    assert ("quantity", "int", False) in columns(lake, "clean.orders")
