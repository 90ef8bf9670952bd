"""The filesystem adapter of :mod:`lib.lake.fs` for a lake on S3, in plain Python (boto3): what
a run of the DuckDB engine uses in the fast-lane Lambda, where there is no JVM and no Hadoop.
The same calls and the same answers as :class:`lib.lake.fs.HadoopFs` on ``s3://`` (S3A):
a "directory" is a key prefix that holds keys, a rename is a copy and a delete.

Two calls more than the protocol of :class:`lib.jobs.publish.Fs`, for an engine that reads and
writes local files: :meth:`S3Fs.fetch` copies an object to local disk, :meth:`S3Fs.put` moves
a local file to its key (:class:`lib.lake.localfs.LocalFs` has both, as a no-op and a rename).
"""

from __future__ import annotations

import fnmatch
import gzip
import hashlib
import io
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from lib.lake.fs import FileEntry
from lib.lake.s3stream import S3Stream

_CHUNK = 1 << 20
_FOOTER_GUESS = 64 << 10  # a footer of a few columns' statistics is a few KiB
_GLOB = frozenset("*?[")


def split_uri(uri: str) -> tuple[str, str]:
    """(bucket, key) of ``s3://bucket/key`` (the key without a trailing ``/``)."""
    if not uri.startswith("s3://"):
        raise OSError(f"{uri}: not an s3:// URI")
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not bucket:
        raise OSError(f"{uri}: no bucket")
    return bucket, key.rstrip("/")


class S3Fs:
    """Objects under ``s3://`` URIs, through a boto3 S3 client."""

    def __init__(self, client: Any) -> None:
        self.s3 = client

    def _keys(self, bucket: str, prefix: str) -> Iterator[tuple[str, int]]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            for obj in page.get("Contents", []):
                yield obj["Key"], int(obj["Size"])

    def _head(self, bucket: str, key: str) -> dict | None:
        if not key:
            return None
        try:
            return self.s3.head_object(Bucket=bucket, Key=key)
        except self.s3.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def _has_children(self, bucket: str, key: str) -> bool:
        answer = self.s3.list_objects_v2(Bucket=bucket, Prefix=f"{key}/" if key else "",
                                         MaxKeys=1)
        return bool(answer.get("KeyCount", 0))

    def exists(self, path: str) -> bool:
        bucket, key = split_uri(path)
        return self._head(bucket, key) is not None or self._has_children(bucket, key)

    def is_file(self, path: str) -> bool:
        bucket, key = split_uri(path)
        return self._head(bucket, key) is not None

    def list(self, path: str) -> list[FileEntry]:
        """Direct children of a "directory"; empty when it does not exist."""
        bucket, key = split_uri(path)
        prefix = f"{key}/" if key else ""
        out: list[FileEntry] = []
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix, Delimiter="/")
        for page in pages:
            for common in page.get("CommonPrefixes", []):
                name = common["Prefix"][len(prefix):].rstrip("/")
                out.append(FileEntry(f"s3://{bucket}/{prefix}{name}", name, 0, True))
            for obj in page.get("Contents", []):
                name = obj["Key"][len(prefix):]
                if name:  # not the "folder" marker itself
                    out.append(FileEntry(f"s3://{bucket}/{obj['Key']}", name,
                                         int(obj["Size"]), False))
        return sorted(out, key=lambda e: e.name)

    def glob_paths(self, pattern: str) -> list[str]:
        """The paths (objects and the "directories" above them) matching ``pattern``, segment
        by segment as Hadoop's glob: a ``*`` never crosses a ``/``."""
        bucket, key = split_uri(pattern)
        segments = key.split("/")
        fixed = next((i for i, s in enumerate(segments) if _GLOB & set(s)), len(segments))
        if fixed == len(segments):
            return [f"s3://{bucket}/{key}"] if self.exists(pattern) else []
        base = "/".join(segments[:fixed])
        found: set[str] = set()
        for obj_key, _ in self._keys(bucket, f"{base}/" if base else ""):
            parts = obj_key.split("/")
            if len(parts) < len(segments):
                continue
            candidate = parts[: len(segments)]
            if "" in candidate:  # a "folder" marker (``a/b/``) is no child of its own
                continue
            if all(fnmatch.fnmatchcase(p, s) for p, s in zip(candidate, segments, strict=True)):
                found.add("/".join(candidate))
        return sorted(f"s3://{bucket}/{k}" for k in found)

    def parquet_rows(self, path: str) -> int:
        """The rows of a Parquet file, from its footer: one ranged GET of the object's tail
        (a second when the footer is larger than that), whatever its size."""
        bucket, key = split_uri(path)
        tail = self.s3.get_object(Bucket=bucket, Key=key,
                                  Range=f"bytes=-{_FOOTER_GUESS}")["Body"].read()
        if len(tail) < 12 or tail[-4:] != b"PAR1":
            raise OSError(f"{path}: not a Parquet file (no PAR1 footer)")
        length = struct.unpack("<I", tail[-8:-4])[0]
        if length + 8 > len(tail):
            tail = self.s3.get_object(Bucket=bucket, Key=key,
                                      Range=f"bytes=-{length + 8}")["Body"].read()
        footer = tail[-(length + 8):]
        # The metadata alone, framed as a file: reading it touches no column chunk.
        return int(pq.ParquetFile(io.BytesIO(b"PAR1" + footer)).metadata.num_rows)

    def rename(self, src: str, dst: str) -> None:
        """An object moved (copied, then deleted): refused when ``src`` is missing or ``dst``
        exists, as on a file system."""
        (sb, sk), (db, dk) = split_uri(src), split_uri(dst)
        if self._head(sb, sk) is None or self._head(db, dk) is not None:
            raise OSError(f"could not move {src} to {dst}")
        self.s3.copy({"Bucket": sb, "Key": sk}, db, dk)
        self.s3.delete_object(Bucket=sb, Key=sk)

    def delete(self, path: str, recursive: bool = False) -> bool:
        bucket, key = split_uri(path)
        if self._head(bucket, key) is not None:
            self.s3.delete_object(Bucket=bucket, Key=key)
            return True
        keys = [k for k, _ in self._keys(bucket, f"{key}/" if key else "")]
        if not keys:
            return False
        if not recursive:
            raise OSError(f"{path} is a directory that is not empty")
        for i in range(0, len(keys), 1000):
            self.s3.delete_objects(Bucket=bucket, Delete={
                "Objects": [{"Key": k} for k in keys[i:i + 1000]], "Quiet": True})
        return True

    def write_text(self, path: str, text: str) -> None:
        bucket, key = split_uri(path)
        self.s3.put_object(Bucket=bucket, Key=key, Body=text.encode("utf-8"))

    def read_text(self, path: str) -> str:
        bucket, key = split_uri(path)
        return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")

    def _open(self, path: str) -> Any:
        bucket, key = split_uri(path)
        return self.s3.get_object(Bucket=bucket, Key=key)["Body"]

    def sha256(self, path: str) -> str:
        """The SHA-256 of the object's bytes as stored, hex; streamed."""
        digest = hashlib.sha256()
        body = self._open(path)
        try:
            for block in iter(lambda: body.read(_CHUNK), b""):
                digest.update(block)
        finally:
            body.close()
        return digest.hexdigest()

    def read_first_line(self, path: str) -> str | None:
        """First line of a text object, decompressed by extension (``.gz``); None when empty.
        Reads only the start of the object."""
        body = self._open(path)
        try:
            raw = io.BufferedReader(S3Stream(body), _CHUNK)
            stream: Any = gzip.GzipFile(fileobj=raw) if path.endswith(".gz") else raw
            with io.TextIOWrapper(stream, encoding="utf-8", newline=None) as text:
                line = text.readline()
        finally:
            body.close()
        if line == "":
            return None
        return line.rstrip("\n")

    def fetch(self, uri: str, folder: Path) -> Path:
        """The object copied into ``folder``, for an engine that reads files: under a folder
        named by the URI's hash and the key's last segment (its extension says gzip), so no
        key (``..`` segments, a trailing ``/``) places it outside ``folder``."""
        bucket, key = split_uri(uri)
        name = key.rsplit("/", 1)[-1]
        target = (folder / hashlib.sha256(uri.encode()).hexdigest()[:16]
                  / (name if name not in ("", ".", "..") else "object"))
        target.parent.mkdir(parents=True, exist_ok=True)
        self.s3.download_file(bucket, key, str(target))
        return target

    def put(self, local: Path, uri: str) -> None:
        """A local file moved to ``uri`` (uploaded, then removed from local disk)."""
        bucket, key = split_uri(uri)
        self.s3.upload_file(str(local), bucket, key)
        local.unlink()
