"""S3Fs (the DuckDB engine's files on S3, in the fast-lane Lambda) answers as LocalFs does on
the same tree of files: the run code above them cannot tell the two apart."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from lib.lake.localfs import LocalFs
from lib.lake.s3fs import S3Fs

BUCKET = "lake-test-zone"
TREE = {
    "clean/orders/order_date=2026-11-01/u1_r1_duckdb-00000.c000.snappy.parquet": None,
    "clean/orders/order_date=2026-11-02/u2_r1_duckdb-00000.c000.snappy.parquet": None,
    "clean/orders/order_date=a%2Fb/u3_r1_duckdb-00000.c000.snappy.parquet": None,
    "clean/_commits/orders/r1.intent.json": b'{"run_id": "r1"}',
    "raw/orders/ingest_date=2026-11-01/u1/orders.csv": b"a,b\r\n1,2\n",
    "raw/orders/ingest_date=2026-11-01/u2/orders.csv.gz": gzip.compress("h\u00e9,x\n1,2\n".encode()),
    "raw/orders/ingest_date=2026-11-01/u4/empty.csv": b"",
    "clean/orders/": b"",  # a "folder" made in the S3 console: no entry of its own
}


def _parquet(rows: int) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({"x": list(range(rows))}), sink)
    return sink.getvalue().to_pybytes()


@pytest.fixture
def both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple]:
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        for i, (key, data) in enumerate(TREE.items()):
            body = _parquet(10 + i) if data is None else data
            s3.put_object(Bucket=BUCKET, Key=key, Body=body)
            if key.endswith("/"):
                continue
            (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / key).write_bytes(body)
        yield S3Fs(s3), LocalFs(), f"s3://{BUCKET}", "file://" + str(tmp_path)


def _same(s3_answer, local_answer, s3_root: str, local_root: str) -> None:
    assert str(s3_answer).replace(s3_root, "<root>") == str(local_answer).replace(
        local_root, "<root>")


@pytest.mark.parametrize("path", [
    "clean/orders", "clean/orders/order_date=2026-11-01", "clean", "raw/orders/nope",
    "raw/orders/ingest_date=2026-11-01/u1/orders.csv"])
def test_list_exists_and_is_file_answer_alike(both, path: str) -> None:
    s3fs, local, s3_root, local_root = both
    for call in ("list", "exists", "is_file"):
        _same(getattr(s3fs, call)(f"{s3_root}/{path}"),
              getattr(local, call)(f"{local_root}/{path}"), s3_root, local_root)


@pytest.mark.parametrize("pattern", [
    "clean/orders/*/*.parquet", "clean/orders/*", "clean/*/order_date=2026-11-0[12]",
    "raw/orders/*/*/*.csv", "clean/_commits/orders/*.intent.json", "clean/nothing/*"])
def test_glob_answers_alike_and_a_star_never_crosses_a_slash(both, pattern: str) -> None:
    s3fs, local, s3_root, local_root = both
    found = s3fs.glob_paths(f"{s3_root}/{pattern}")
    _same(found, local.glob_paths(f"{local_root}/{pattern}"), s3_root, local_root)
    assert all(p.count("/") == f"{s3_root}/{pattern}".count("/") for p in found)


def test_files_read_alike(both) -> None:
    s3fs, local, s3_root, local_root = both
    for key in (k for k in TREE if not k.endswith("/")):
        s3_uri, local_uri = f"{s3_root}/{key}", f"{local_root}/{key}"
        assert s3fs.sha256(s3_uri) == local.sha256(local_uri)
        if key.endswith(".parquet"):
            assert s3fs.parquet_rows(s3_uri) == local.parquet_rows(local_uri) >= 10
        else:
            assert s3fs.read_first_line(s3_uri) == local.read_first_line(local_uri)
    assert s3fs.read_first_line(f"{s3_root}/raw/orders/ingest_date=2026-11-01/u2/orders.csv.gz") \
        == "h\u00e9,x"
    assert s3fs.read_text(f"{s3_root}/clean/_commits/orders/r1.intent.json") == '{"run_id": "r1"}'


def test_rename_refuses_a_missing_source_or_an_existing_target_as_a_disk_does(both) -> None:
    s3fs, local, s3_root, _ = both
    src = f"{s3_root}/raw/orders/ingest_date=2026-11-01/u1/orders.csv"
    dst = f"{s3_root}/archive/orders/ingest_date=2026-11-01/u1/orders.csv"
    s3fs.rename(src, dst)
    assert (s3fs.exists(src), s3fs.read_first_line(dst)) == (False, "a,b")
    with pytest.raises(OSError, match="could not move"):
        s3fs.rename(src, dst)
    s3fs.write_text(src, "again")
    with pytest.raises(OSError, match="could not move"):
        s3fs.rename(src, dst)


def test_delete_takes_a_folder_only_when_recursive(both) -> None:
    s3fs, _, s3_root, _ = both
    folder = f"{s3_root}/clean/orders"
    with pytest.raises(OSError, match="not empty"):
        s3fs.delete(folder)
    assert s3fs.delete(folder, recursive=True) is True
    assert (s3fs.exists(folder), s3fs.list(folder), s3fs.delete(folder)) == (False, [], False)
    assert s3fs.exists(f"{s3_root}/clean/_commits")  # a sibling prefix is untouched


def test_fetch_and_put_move_files_between_local_disk_and_keys(both, tmp_path: Path) -> None:
    s3fs, _, s3_root, _ = both
    got = s3fs.fetch(f"{s3_root}/raw/orders/ingest_date=2026-11-01/u1/orders.csv",
                     tmp_path / "scratch")
    assert got.read_bytes() == b"a,b\r\n1,2\n"
    s3fs.put(got, f"{s3_root}/clean/orders/order_date=x/f.parquet")
    assert not got.exists() and s3fs.is_file(f"{s3_root}/clean/orders/order_date=x/f.parquet")


def test_a_file_that_is_not_parquet_is_named(both) -> None:
    s3fs, _, s3_root, _ = both
    with pytest.raises(OSError, match="not a Parquet file"):
        s3fs.parquet_rows(f"{s3_root}/clean/_commits/orders/r1.intent.json")


def test_a_footer_larger_than_the_first_read_is_read_whole(both) -> None:
    s3fs, _, s3_root, _ = both
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({f"column_{i}": [i] * 3 for i in range(1500)}), sink)
    data = sink.getvalue().to_pybytes()
    footer = int.from_bytes(data[-8:-4], "little")
    assert footer > 64 << 10  # so that one ranged GET of 64 KiB cannot hold it
    s3fs.s3.put_object(Bucket=BUCKET, Key="wide.parquet", Body=data)
    assert s3fs.parquet_rows(f"{s3_root}/wide.parquet") == 3


def test_a_fetched_object_stays_in_its_folder_whatever_its_key(both, tmp_path: Path) -> None:
    s3fs, _, s3_root, _ = both
    scratch = tmp_path / "scratch"
    for key in ("raw/../../../../escape.csv.gz", "raw/x/.."):
        s3fs.s3.put_object(Bucket=BUCKET, Key=key, Body=b"a,b\n")
        got = s3fs.fetch(f"{s3_root}/{key}", scratch)
        assert got.resolve().is_relative_to(scratch.resolve()) and got.read_bytes() == b"a,b\n"
    assert got.name == "object"
    assert s3fs.fetch(f"{s3_root}/raw/../../../../escape.csv.gz", scratch).name == "escape.csv.gz"
