from __future__ import annotations

import os
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession

from lib.contract import Contract, load_contract
from lib.local_spark import local_spark_session
from lib.schemas import raw_schema

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples" / "orders"
INGESTED_AT = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
INGEST_DATE = date(2026, 11, 21)


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> SparkSession:
    """One local SparkSession for the whole run, with its own Derby/warehouse/temp dirs
    (so parallel runs never share a metastore)."""
    work = tmp_path_factory.mktemp("spark")
    os.environ["LAKE_SPARK_DIR"] = str(work)
    session = local_spark_session(work, app_name="lake-tests", shuffle_partitions=2)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def orders() -> Contract:
    return load_contract("orders", 1)


def raw_rows(spark: SparkSession, contract: Contract, rows: list[dict]) -> DataFrame:
    """A raw frame (every contract column a string) from partial row dicts; lineage filled
    with fixed test values, `_source_record` numbered from 1 unless given."""
    full = []
    for i, r in enumerate(rows, start=1):
        row = {c: r.get(c) for c in contract.column_names}
        row.update({
            "_raw_record": r.get("_raw_record"),
            "_source_record": r.get("_source_record", i),
            "_upload_id": r.get("_upload_id", "u1"),
            "_source_file": r.get("_source_file", "file:///in/u1.csv"),
            "_ingested_at": INGESTED_AT,
            "_contract_version": contract.ref,
            "ingest_date": INGEST_DATE,
        })
        full.append(row)
    schema = raw_schema(contract)
    return spark.createDataFrame([tuple(r[f.name] for f in schema) for r in full], schema)


def valid_order(**overrides: str | None) -> dict:
    """A raw orders row that passes every rule; override fields to break one."""
    row = {
        "order_id": "O-1",
        "customer_id": "C-1",
        "customer_email": "a@example.com",
        "product_sku": "SKU-1",
        "quantity": "2",
        "unit_price": "10.50",
        "currency": "USD",
        "order_ts": "2026-11-01T10:00:00Z",
        "country": "US",
    }
    row.update(overrides)
    return row
