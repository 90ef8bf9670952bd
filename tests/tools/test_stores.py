"""The lake's SQLite stores (the upload ledger, the local catalog) never start over silently:
an existing file that is empty, not SQLite, or another store's is an error naming the file
and what to do, never a fresh empty store; one locked beyond the wait says so; on a
read-only lake root reads work and changes are refused in plain words, never a traceback."""

from __future__ import annotations

import gc
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lib.contracts.contract import load_contract
from lib.lake.catalog import CatalogError, LocalCatalog, catalog_file
from lib.lake.paths import LakePaths
from lib.ledger.records import LedgerError, UploadRecord
from lib.ledger.sqlite import LEDGER_FILE, SqliteLedger, open_ledger
from lib.upload.landing import upload_file
from tests.helpers import REPO, SAMPLES, crawl_all

GOOD = SAMPLES / "orders_2026-11-01.csv"


def lake_cli(lake: Path, *args: str, read_only: bool = False) -> subprocess.CompletedProcess:
    """`lake` in its own process; ``read_only``: with the lake root mounted read-only for that
    process alone when this is root (root may write any file whatever its mode), else as
    the :func:`read_only_lake` fixture left it (no write bits)."""
    cmd = [sys.executable, "-m", "lib.tools.cli", "--lake-root", str(lake), *args]
    if read_only and os.geteuid() == 0:
        if shutil.which("unshare") is None:
            pytest.skip("root and no unshare(1): cannot make a lake read-only for root")
        cmd = ["unshare", "-m", "sh", "-c", 'mount --bind "$0" "$0" && '
               'mount -o remount,bind,ro "$0" && exec "$@"', str(lake), *cmd]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env,
                          timeout=300, check=False)


def ledger_file(lake: Path) -> Path:
    return lake.joinpath(*LEDGER_FILE)


# -- the ledger ------------------------------------------------------------------------------

def test_an_empty_ledger_file_is_an_error_never_a_new_ledger(tmp_path) -> None:
    lake = tmp_path / "lake"
    record = upload_file(GOOD, load_contract("orders"), open_ledger(lake),
                         LakePaths.from_root(lake))
    ledger_file(lake).write_bytes(b"")  # truncated
    with pytest.raises(LedgerError) as err:
        open_ledger(lake)
    assert str(err.value) == (
        f"{ledger_file(lake)}: the upload ledger is empty (0 bytes): it was truncated or "
        "replaced. It is never started anew over a damaged file, since the lake's state is "
        "recorded in it: restore it from a backup; or, to start a new ledger knowingly, move "
        "the file aside (the uploads already in the raw zone are then unknown to the lake and "
        "must be uploaded again)")
    for command in (["status"], ["upload", "--dataset", "orders", str(GOOD)]):
        done = lake_cli(lake, *command)
        assert done.returncode == 2, done.stderr
        assert "the upload ledger is empty (0 bytes)" in done.stderr
        assert "Traceback" not in done.stderr
    assert ledger_file(lake).stat().st_size == 0  # not replaced by a new one
    assert record.status == "ACCEPTED"


@pytest.mark.parametrize(("content", "why"), [
    (b"this is not a database\n" * 10, "is not a SQLite database"),
    (b"SQLite format 3\x00" + b"\x07" * 4000, "is damaged (file is not a database)"),
])
def test_a_garbage_ledger_file_is_a_clear_error(tmp_path, content, why) -> None:
    lake = tmp_path / "lake"
    ledger_file(lake).parent.mkdir(parents=True)
    ledger_file(lake).write_bytes(content)
    with pytest.raises(LedgerError, match=re.escape("the upload ledger " + why)):
        open_ledger(lake).find()
    done = lake_cli(lake, "status")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"{ledger_file(lake)}: the upload ledger {why}" in done.stderr
    assert ledger_file(lake).read_bytes() == content


def test_another_stores_file_is_not_taken_for_the_ledger(tmp_path) -> None:
    path = tmp_path / "ledger.sqlite"
    sqlite3.connect(path).executescript("CREATE TABLE notes (x); INSERT INTO notes VALUES (1);")
    with pytest.raises(LedgerError, match="without the 'uploads' table"):
        SqliteLedger(path)


def test_a_ledger_locked_beyond_the_wait_says_so(tmp_path) -> None:
    path = tmp_path / "ledger.sqlite"
    SqliteLedger(path).create(UploadRecord(upload_id="u1", dataset="orders", original_name="a",
                                           stored_name="a.csv", size_bytes=1, sha256=""))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process in the middle of a change
    try:
        with pytest.raises(LedgerError) as err:
            SqliteLedger(path, timeout=0.2).find()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert str(err.value).startswith(
        f"{path}: the upload ledger is locked by another process and stayed locked for over "
        "0.2 s (database is locked); try again when it has finished")


def test_reading_a_lake_with_no_ledger_creates_nothing(tmp_path) -> None:
    lake = tmp_path / "lake"
    lake.mkdir()
    assert open_ledger(lake).find() == []
    assert not ledger_file(lake).exists()
    done = lake_cli(lake, "status")
    assert done.returncode == 0 and done.stdout.strip() == "no uploads"


# -- the catalog -----------------------------------------------------------------------------

@pytest.mark.parametrize(("content", "why"), [
    (b"", "is empty (0 bytes)"), (b"garbage" * 100, "is not a SQLite database")])
def test_a_damaged_catalog_is_a_clear_error_never_a_new_catalog(tmp_path, content, why) -> None:
    lake = tmp_path / "lake"
    path = catalog_file(lake)
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    with pytest.raises(CatalogError, match=re.escape("the local catalog " + why)):
        LocalCatalog(path).tables()
    for command in (["query", "SELECT 1"], ["crawl"], ["catalog"]):
        done = lake_cli(lake, *command)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert f"{path}: the local catalog {why}" in done.stderr
        assert "move it aside and run `lake crawl`" in done.stderr
    assert path.read_bytes() == content


def test_a_catalog_locked_beyond_the_wait_says_so(tmp_path, monkeypatch) -> None:
    path = tmp_path / "catalog.sqlite"
    LocalCatalog(path).create_database("clean", "x")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # a crawl holds the write lock
    monkeypatch.setattr("lib.lake.catalog.BUSY_TIMEOUT_S", 0.2)
    try:
        with pytest.raises(CatalogError, match="the local catalog is locked by another process"):
            LocalCatalog(path).create_database("quarantine", "y")
        assert LocalCatalog(path).databases() == {"clean": "x"}  # readers never wait (WAL)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_reading_a_lake_with_no_catalog_creates_nothing(tmp_path) -> None:
    lake = tmp_path / "lake"
    lake.mkdir()
    assert LocalCatalog.for_lake(lake).tables() == []
    assert not catalog_file(lake).exists()


# -- a read-only lake root -------------------------------------------------------------------

@pytest.fixture
def read_only_lake(processed_lake, tmp_path) -> Iterator[Path]:
    """The processed lake, catalogued, without write bits (which bind every user but root;
    for root :func:`lake_cli` mounts it read-only)."""
    lake = tmp_path / "lake"
    shutil.copytree(processed_lake, lake, ignore=shutil.ignore_patterns("_local"))
    crawl_all(lake)
    gc.collect()  # the crawl's connections close: the catalog's WAL is checkpointed
    for path in [lake, *lake.rglob("*")]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    yield lake
    for path in [lake, *lake.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


def test_reads_work_on_a_read_only_lake_root_and_changes_are_refused(read_only_lake) -> None:
    lake = read_only_lake
    probe = lake_cli(lake, "crawl", read_only=True)
    status = lake_cli(lake, "status", "--dataset", "orders", read_only=True)
    assert status.returncode == 0, status.stderr
    assert status.stdout.count("ARCHIVED") == 2
    query = lake_cli(lake, "query", "SELECT count(*) AS n FROM clean.orders",
                     "--format", "csv", read_only=True)
    assert (query.returncode, query.stdout.strip()) == (0, "n\n6"), query.stderr
    catalog = lake_cli(lake, "catalog", read_only=True)
    assert catalog.returncode == 0 and "table clean.orders" in catalog.stdout
    upload = lake_cli(lake, "upload", "--dataset", "orders", str(GOOD), read_only=True)
    assert upload.returncode == 2 and "Traceback" not in upload.stderr, upload.stderr
    assert "the upload ledger cannot be written by this user" in upload.stderr
    assert probe.returncode == 2 and "Traceback" not in probe.stderr, probe.stderr
    assert "the local catalog cannot be written by this user" in probe.stderr


def test_a_read_only_lake_root_without_a_ledger_yet_is_refused_in_plain_words(tmp_path) -> None:
    lake = tmp_path / "lake"
    (lake / "_ledger").mkdir(parents=True)
    for path in (lake / "_ledger", lake):
        path.chmod(0o555)
    try:
        status = lake_cli(lake, "status", read_only=True)
        assert (status.returncode, status.stdout.strip()) == (0, "no uploads"), status.stderr
        upload = lake_cli(lake, "upload", "--dataset", "orders", str(GOOD), read_only=True)
    finally:
        for path in (lake, lake / "_ledger"):
            path.chmod(0o755)
    assert upload.returncode == 2 and "Traceback" not in upload.stderr, upload.stderr
    assert f"{ledger_file(lake)}: cannot create the upload ledger: " in upload.stderr
    assert "the lake root is read-only here (reading works)" in upload.stderr
    assert not ledger_file(lake).exists()
