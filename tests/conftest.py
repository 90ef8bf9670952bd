"""Fixtures shared by every test folder (one local SparkSession for the whole run, the
orders contract, a processed lake) and the marker hooks. Helpers live in tests/helpers.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from glue_jobs.customers.v1 import job as customers_job
from glue_jobs.orders.v1 import job as orders_v1
from lib.contracts.contract import Contract, load_contract
from lib.jobs.local_spark import local_spark_session
from tests.helpers import CUSTOMERS, SAMPLES, run


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs the local SparkSession (directly or through a fixture),
    and every test of a module that runs against moto's AWS stand-ins (``pytest -m aws``,
    ``pytest -m "not spark"``)."""
    for item in items:
        if "spark" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.spark)
        if _uses_moto(getattr(item, "module", None)):
            item.add_marker(pytest.mark.aws)


def _uses_moto(module: object) -> bool:
    return any(getattr(v, "__module__", "").startswith("moto")
               for v in vars(module).values()) if module is not None else False


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> SparkSession:
    """One local SparkSession for the whole run, with its own warehouse/temp dirs."""
    work = tmp_path_factory.mktemp("spark")
    os.environ["LAKE_SPARK_DIR"] = str(work)
    session = local_spark_session(work, app_name="lake-tests", shuffle_partitions=2)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def orders() -> Contract:
    return load_contract("orders", 1)


@pytest.fixture(scope="session")
def processed_lake(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """orders v1 (two uploads) and customers (two uploads) processed (the runs registered
    their tables and partitions in the local catalog; not crawled).
    Shared by the catalog and query tests: never change its data."""
    lake = tmp_path_factory.mktemp("catalog") / "lake"
    run(orders_v1, "orders_v1", lake, SAMPLES / "orders_2026-11-01.csv",
        SAMPLES / "orders_2026-11-02.csv.gz")
    run(customers_job, "customers_v1", lake, CUSTOMERS / "customers_2026-11-01.jsonl",
        CUSTOMERS / "customers_2026-11-02.jsonl.gz", dataset="customers")
    return lake


