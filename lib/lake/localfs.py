"""The filesystem adapter of :mod:`lib.lake.fs` for a lake on local disk, in plain Python: what
a run of the DuckDB engine uses, where no JVM is started. The same calls, the same
``file:///`` URIs and the same answers as :class:`lib.lake.fs.HadoopFs` on ``file://``."""

from __future__ import annotations

import glob
import gzip
import hashlib
import io
import os
import shutil
from pathlib import Path

import pyarrow.parquet as pq

from lib.lake.fs import FileEntry
from lib.lake.paths import local_path

_CHUNK = 1 << 20


class LocalFs:
    """Files under ``file://`` URIs (or plain paths)."""

    @staticmethod
    def _p(uri: str) -> Path:
        path = local_path(uri)
        if path is None:
            raise OSError(f"{uri}: not a local path (the DuckDB engine runs on a local lake)")
        return path

    @staticmethod
    def _uri(path: Path) -> str:
        return "file://" + str(path.absolute())  # as Hadoop prints it (lib.lake.fs.normalise_uri)

    def exists(self, path: str) -> bool:
        return self._p(path).exists()

    def is_file(self, path: str) -> bool:
        return self._p(path).is_file()

    def list(self, path: str) -> list[FileEntry]:
        """Direct children of a directory; empty when it does not exist."""
        p = self._p(path)
        if not p.is_dir():
            return []
        out = []
        for child in sorted(p.iterdir()):
            is_dir = child.is_dir()
            out.append(FileEntry(self._uri(child), child.name,
                                 0 if is_dir else child.stat().st_size, is_dir))
        return out

    def glob_paths(self, pattern: str) -> list[str]:
        """The paths matching ``pattern`` (hidden names included, as Hadoop's glob), sorted."""
        p = self._p(pattern)
        return sorted(self._uri(Path(m)) for m in glob.glob(str(p), include_hidden=True))

    def parquet_rows(self, path: str) -> int:
        return int(pq.ParquetFile(self._p(path)).metadata.num_rows)

    def rename(self, src: str, dst: str) -> None:
        s, d = self._p(src), self._p(dst)
        if not s.exists() or d.exists():
            raise OSError(f"could not move {src} to {dst}")
        d.parent.mkdir(parents=True, exist_ok=True)
        os.rename(s, d)

    def delete(self, path: str, recursive: bool = False) -> bool:
        p = self._p(path)
        if p.is_dir() and not p.is_symlink():
            if recursive:
                shutil.rmtree(p)
            else:
                p.rmdir()
            return True
        if p.exists() or p.is_symlink():
            p.unlink()
            return True
        return False

    def write_text(self, path: str, text: str) -> None:
        p = self._p(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(text.encode("utf-8"))

    def read_text(self, path: str) -> str:
        return self._p(path).read_bytes().decode("utf-8")

    def sha256(self, path: str) -> str:
        """The SHA-256 of the file's bytes as stored (a gzip file's compressed bytes), hex."""
        digest = hashlib.sha256()
        with self._p(path).open("rb") as fh:
            for block in iter(lambda: fh.read(_CHUNK), b""):
                digest.update(block)
        return digest.hexdigest()

    def fetch(self, uri: str, folder: Path) -> Path:
        """The file itself: it is local already (``folder`` is for :class:`S3Fs`)."""
        return self._p(uri)

    def put(self, local: Path, uri: str) -> None:
        """A local file moved to ``uri`` (a rename: the same disk)."""
        target = self._p(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(local, target)

    def read_first_line(self, path: str) -> str | None:
        """First line of a text file, decompressed by extension (``.gz``); None when empty.
        A line ends at ``\\n``, ``\\r`` or ``\\r\\n``, as Java's ``readLine``."""
        p = self._p(path)
        with (gzip.open(p, "rb") if p.suffix == ".gz" else p.open("rb")) as raw, \
                io.TextIOWrapper(raw, encoding="utf-8", newline=None) as text:  # type: ignore[arg-type]
            line = text.readline()
        if line == "":
            return None
        return line.rstrip("\n")
