"""Shared test helpers: the repo's sample folders, raw frames built from partial rows,
uploads landed without the checks, a crawl of every crawler, and ledger records.

Tests import these from here; conftest.py holds only fixtures and marker hooks."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from lib.contracts.contract import Contract
from lib.engine.schemas import raw_schema
from lib.lake.catalog import LocalCatalog, catalog_file
from lib.lake.paths import LakePaths, to_uri
from lib.ledger.base import Ledger
from lib.ledger.records import ACCEPTED, UploadRecord
from lib.ledger.sqlite import open_ledger
from lib.tools.crawl import crawl
from lib.tools.crawlers import load_crawlers

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples" / "orders"
CUSTOMERS = REPO / "samples" / "customers"
INGESTED_AT = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
INGEST_DATE = date(2026, 11, 21)


def raw_rows(spark: SparkSession, contract: Contract, rows: list[dict]) -> DataFrame:
    """A raw frame (every contract column a string) from partial row dicts; lineage filled
    with fixed test values, `_source_record` numbered from 1 unless given."""
    full = []
    for i, r in enumerate(rows, start=1):
        row = {c: r.get(c) for c in contract.column_names}
        row.update({
            "_nested_fields": r.get("_nested_fields"),
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


def spark_read_jsonl(spark: SparkSession, path: Path, contract: Contract) -> list:
    """The raw rows the Spark job's JSON Lines reader gives for one file, in line order."""
    from lib.contracts.header import HeaderPlan
    from lib.sources.base import Upload
    from lib.sources.jsonl_reader import SESSION_CONF, read_upload

    names = contract.column_names
    plan = HeaderPlan(source=str(path), header=names, read_names=names, matched=names,
                      missing_optional=(), extra=())
    for k, v in SESSION_CONF.items():
        spark.conf.set(k, v)
    return read_upload(spark, Upload("u1", str(path), date(2026, 11, 1), multiline=False),
                       plan, contract, datetime(2026, 11, 1, tzinfo=UTC)) \
        .orderBy("_source_record").collect()


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


def land(lake: Path, src: Path, *, upload_id: str | None = None,
         ingest_date: str = "2026-11-21", dataset: str = "orders") -> str:
    """Put ``src`` in the raw zone as an ACCEPTED upload *without* the upload checks, as if it
    had passed them (the job must cope with any file: a check can miss, bytes can rot).
    A ``src`` that does not exist is registered all the same. Returns the upload id."""
    ledger = open_ledger(lake)
    uid = upload_id or landed_id(src)
    dest = lake / "raw" / dataset / f"ingest_date={ingest_date}" / uid / src.name
    sha = f"missing-{uid}"
    if src.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        sha = hashlib.sha256(src.read_bytes()).hexdigest()
    ledger.create(UploadRecord(upload_id=uid, dataset=dataset, original_name=src.name,
                               stored_name=src.name, size_bytes=len(src.read_bytes())
                               if src.exists() else 0, sha256=sha, ingest_date=ingest_date))
    ledger.transition(uid, ACCEPTED, location=landed_uri(lake, src, uid, ingest_date, dataset))
    return uid


def landed_id(src: Path) -> str:
    return f"t-{re.sub(r'[^A-Za-z0-9]+', '-', src.name.split('.')[0])}"


def landed_uri(lake: Path, src: Path, upload_id: str | None = None,
               ingest_date: str = "2026-11-21", dataset: str = "orders") -> str:
    """Where :func:`land` puts ``src`` (the URI the job reports it by)."""
    return (f"{to_uri(lake / 'raw' / dataset)}/ingest_date={ingest_date}/"
            f"{upload_id or landed_id(src)}/{src.name}")


# -- catalog ---------------------------------------------------------------------------------

def reset_catalog(lake: Path) -> None:
    """Start ``lake`` from an empty catalog: its catalog file goes, its data stays."""
    path = catalog_file(lake)
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def catalog_of(lake: Path) -> LocalCatalog:
    return LocalCatalog.for_lake(lake)


def run(job: Any, name: str, lake: Path, *files: Path, dataset: str = "orders") -> None:
    ids = [land(lake, f, dataset=dataset) for f in files]
    assert job.main(["--JOB_NAME", name, "--lake_root", to_uri(lake),
                     "--upload_ids", json.dumps(ids)]) == 0


def cli_query(lake: Path, sql: str, capsys: Any) -> str:
    """What ``lake query --format csv SQL`` prints for ``lake`` (it must succeed)."""
    from lib.tools import cli

    capsys.readouterr()
    assert cli.main(["--lake-root", str(lake), "query", "--format", "csv", sql]) == 0
    return capsys.readouterr().out


def crawl_all(lake: Path, crawlers: dict | None = None) -> dict:
    out = {}
    for c in (crawlers or load_crawlers()).values():
        for r in crawl(c, LakePaths.from_root(lake), catalog_of(lake)):
            out[r.table] = r
    return out




def new_record(ledger: Ledger, uid: str, sha: str = "", dataset: str = "orders") -> UploadRecord:
    """A RECEIVED upload record with fixed test values."""
    return ledger.create(UploadRecord(upload_id=uid, dataset=dataset, original_name=f"{uid}.csv",
                                      stored_name=f"{uid}.csv", size_bytes=10,
                                      sha256=sha or f"sha-{uid}", ingest_date="2026-11-22"))


CONSOLE_URL = "http://127.0.0.1:8000"  # the console answers to its own address only


@contextmanager
def serving(app: Any) -> Iterator[int]:
    """``app`` served by uvicorn on a free port of 127.0.0.1, in a thread; yields the port."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


def free_port() -> int:
    """A TCP port nothing listens on now, on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
