"""A small filesystem adapter over Hadoop's FileSystem API, reached through the active
SparkSession. The same calls work on ``file://`` paths locally and ``s3://`` paths on Glue,
so the job code never branches on where it runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def normalise_uri(uri: str) -> str:
    """Hadoop prints local paths as ``file:/x``; the lake writes ``file:///x``. One form
    lets paths be compared and sliced."""
    if uri.startswith("file:/") and not uri.startswith("file:///"):
        return "file:///" + uri[len("file:/"):]
    return uri


def java_error_message(exc: BaseException, limit: int = 500) -> str:
    """The meaningful line of an error raised through py4j (``java.io.IOException: ...``)
    rather than the whole Java stack."""
    text = str(exc).strip()
    lines = [ln.strip().lstrip(": ").strip() for ln in text.splitlines()]
    causes = [ln.removeprefix("Caused by:").strip() for ln in lines if ln.startswith("Caused by:")]
    if causes:  # the root cause says what is wrong with the file
        return causes[-1][:limit]
    for ln in lines:
        if "Exception:" in ln or "Error:" in ln:
            return ln[:limit]
    return (next((ln for ln in lines if ln), "") or type(exc).__name__)[:limit]


@dataclass(frozen=True)
class FileEntry:
    path: str
    name: str
    size: int
    is_dir: bool


class HadoopFs:
    """Each call to the JVM is a round trip through py4j, and naming a class by its package
    (``jvm.org.apache...``) costs one per segment: the classes are resolved once here (a
    ``Path`` is then made in 0.03 ms instead of 0.5 ms)."""

    def __init__(self, spark: SparkSession) -> None:
        jvm = self._jvm = spark.sparkContext._jvm
        self._conf = spark.sparkContext._jsc.hadoopConfiguration()
        self._Path = jvm.org.apache.hadoop.fs.Path
        self._FileUtil = jvm.org.apache.hadoop.fs.FileUtil
        self._ParquetFileReader = jvm.org.apache.parquet.hadoop.ParquetFileReader
        self._HadoopInputFile = jvm.org.apache.parquet.hadoop.util.HadoopInputFile

    def _path(self, path: str):  # noqa: ANN202 - a py4j object
        return self._Path(path)

    def _fs(self, jpath):  # noqa: ANN001, ANN202
        return jpath.getFileSystem(self._conf)

    def exists(self, path: str) -> bool:
        p = self._path(path)
        return bool(self._fs(p).exists(p))

    def is_file(self, path: str) -> bool:
        p = self._path(path)
        return bool(self._fs(p).isFile(p))

    def list(self, path: str) -> list[FileEntry]:
        """Direct children of a directory; empty when it does not exist."""
        p = self._path(path)
        fs = self._fs(p)
        if not fs.exists(p):
            return []
        return [self._entry(st) for st in fs.listStatus(p)]

    def glob_paths(self, pattern: str) -> list[str]:
        """The paths matching ``pattern``, sorted. A glob, not a recursive listing: on the local
        file system that runs ``ls`` per file for its permissions (Hadoop's
        ``LocatedFileStatus``), a glob does not."""
        p = self._path(pattern)
        statuses = self._fs(p).globStatus(p)
        if statuses is None:
            return []
        return sorted(normalise_uri(str(path.toString()))
                      for path in self._FileUtil.stat2Paths(statuses))

    def parquet_rows(self, path: str) -> int:
        """The rows of a Parquet file, from its footer (nothing else is read)."""
        reader = self._ParquetFileReader.open(
            self._HadoopInputFile.fromPath(self._path(path), self._conf))
        try:
            return int(reader.getRecordCount())
        finally:
            reader.close()

    def rename(self, src: str, dst: str) -> None:
        s, d = self._path(src), self._path(dst)
        fs = self._fs(s)
        fs.mkdirs(d.getParent())
        if not fs.rename(s, d):
            raise OSError(f"could not move {src} to {dst}")

    def delete(self, path: str, recursive: bool = False) -> bool:
        p = self._path(path)
        return bool(self._fs(p).delete(p, recursive))

    def write_text(self, path: str, text: str) -> None:
        p = self._path(path)
        out = self._fs(p).create(p, True)
        try:
            out.write(bytearray(text.encode("utf-8")))
        finally:
            out.close()

    def read_text(self, path: str) -> str:
        p = self._path(path)
        stream = self._fs(p).open(p)
        try:
            data = self._jvm.org.apache.commons.io.IOUtils.toByteArray(stream)
        finally:
            stream.close()
        return bytes(data).decode("utf-8")

    def sha256(self, path: str) -> str:
        """The SHA-256 of the file's bytes (as stored: a gzip file's compressed bytes), hex.
        Streamed and hashed in the JVM (commons-codec, on Spark's class path): one round
        trip, whatever the size."""
        p = self._path(path)
        stream = self._fs(p).open(p)
        try:
            return str(self._jvm.org.apache.commons.codec.digest.DigestUtils.sha256Hex(stream))
        finally:
            stream.close()

    def read_first_line(self, path: str) -> str | None:
        """First line of a text file, decompressed by extension (``.gz``); None when empty.
        Reads only the start of the file, whatever its size."""
        p = self._path(path)
        stream = self._fs(p).open(p)
        codec = self._jvm.org.apache.hadoop.io.compress.CompressionCodecFactory(
            self._conf).getCodec(p)
        if codec is not None:
            stream = codec.createInputStream(stream)
        reader = self._jvm.java.io.BufferedReader(
            self._jvm.java.io.InputStreamReader(stream, "UTF-8"))
        try:
            return reader.readLine()
        finally:
            reader.close()

    @staticmethod
    def _entry(status) -> FileEntry:  # noqa: ANN001
        path = status.getPath()
        return FileEntry(path=normalise_uri(str(path.toString())), name=str(path.getName()),
                         size=int(status.getLen()), is_dir=bool(status.isDirectory()))
