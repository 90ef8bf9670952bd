"""Per-upload publishing into a zone: each file written once, under its final name.

A run writes an upload's rows straight into the zones (the Spark engine through the lake's
commit protocol, ``jvm/lake/spark/UploadFilesCommitProtocol.java``, in
:mod:`lib.jobs.spark_rows`; the DuckDB engine in :mod:`lib.jobs.duck_rows`), one file per
(upload, partition) unless ``max_records_per_file`` splits it::

    <zone>/<dataset>/<partition>/<upload_id>_<run_id>_<task>.c<n>.snappy.parquet

Nothing is renamed or copied afterwards: on S3 a rename is a copy of every byte. Three small
records under ``<clean zone>/_commits/<dataset>/`` make the switch from an upload's old
files to its new ones:

1. the **intent** ``<run_id>.intent.json``, before the first file is written: the uploads
   the run is writing. If the run fails it deletes their files (the names start with
   ``<upload_id>_<run_id>_``) and the intent; if its process dies, the next run of the
   dataset does that from the intent.
2. the **journal** ``<run_id>.json``, the commit point, once every file is written and its
   Parquet footer's rows add up to the rows counted: each upload's files (its published
   state from now on) and every file an earlier run wrote for the same uploads, to delete.
3. **apply**: the older files are deleted (idempotent). Then the uploads are marked
   PROCESSED and the journal and the intent are removed. A run that dies while applying is
   completed by the next run of the dataset, before anything else.

So re-running an upload replaces exactly its rows and never touches the files other uploads
wrote into the same partitions (which a dynamic partition overwrite would wipe). What a
reader that lists the folders (a crawler, Athena) sees meanwhile is in docs/data.md
("What a reader sees while a run publishes").
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from lib.lake.fs import FileEntry
from lib.lake.paths import join


class Fs(Protocol):
    """A filesystem adapter: :class:`lib.lake.fs.Fs` (Spark, ``file://`` and ``s3://``)
    or :class:`lib.lake.localfs.LocalFs` (plain Python, ``file://``)."""

    def exists(self, path: str) -> bool: ...
    def is_file(self, path: str) -> bool: ...
    def list(self, path: str) -> list[FileEntry]: ...
    def glob_paths(self, pattern: str) -> list[str]: ...
    def parquet_rows(self, path: str) -> int: ...
    def rename(self, src: str, dst: str) -> None: ...
    def delete(self, path: str, recursive: bool = False) -> bool: ...
    def write_text(self, path: str, text: str) -> None: ...
    def read_text(self, path: str) -> str: ...
    def sha256(self, path: str) -> str: ...
    def read_first_line(self, path: str) -> str | None: ...

DEFAULT_MAX_RECORDS_PER_FILE = 5_000_000
_PARTITION_DIR = re.compile(r"^[^=/]+=[^/]*$")
# Moves and deletes of a publish run this many at a time: each is a round trip to the file
# system, and they are independent of one another.
PUBLISH_THREADS = 8


def run_prefix(upload_id: str, run_id: str) -> str:
    """How the names of the files ``run_id`` wrote for ``upload_id`` start."""
    return f"{upload_id}_{run_id}_"


def zone_files(fs: Fs, dataset_uri: str, partition_depth: int) -> list[str]:
    """Every Parquet file of a zone's dataset folder, in one listing: the published ones and
    those a task is still writing as ``.<name>`` (on a file system, not on S3)."""
    return fs.glob_paths(join(dataset_uri, *(["*"] * partition_depth), "*.parquet"))


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


@dataclass
class PublishPlan:
    """The commit journal of one run: each upload's new files and every older file of those
    uploads to delete, with the per-upload results to record once it is applied. Written
    once every file is in place (:func:`commit`); from then on the run's outcome is decided
    and :func:`apply` (idempotent) completes it, in this run or the next."""

    dataset: str
    run_id: str
    files: dict[str, list[str]] = field(default_factory=dict)  # upload id -> its files
    deletes: list[str] = field(default_factory=list)
    uploads: dict[str, dict] = field(default_factory=dict)  # upload id -> its result
    moves: list[tuple[str, str]] = field(default_factory=list)  # journals of earlier releases

    def to_json(self) -> str:
        return json.dumps({"dataset": self.dataset, "run_id": self.run_id,
                           "files": self.files, "deletes": self.deletes,
                           "uploads": self.uploads}, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> PublishPlan:
        d = json.loads(text)
        return cls(d["dataset"], d["run_id"], d.get("files", {}), d["deletes"], d["uploads"],
                   [tuple(m) for m in d.get("moves", [])])


def plan_upload(fs: Fs, plan: PublishPlan, listing: Iterable[str], dataset_uri: str,
                upload_id: str) -> tuple[list[str], int, dict[str, int]]:
    """Add one upload's files of one zone to ``plan``: those this run wrote (named
    :func:`run_prefix`) are its new state, those earlier runs wrote for it are deleted.
    ``listing`` is the zone's :func:`zone_files`. Returns the partitions (``k=v/...``)
    touched, the number of files to delete, and the rows written per partition (from the
    new files' footers)."""
    own, current = f"{upload_id}_", run_prefix(upload_id, plan.run_id)
    new = [p for p in listing if _name(p).startswith(current)]
    older = [p for p in listing if _name(p).startswith(own) and not _name(p).startswith(current)]
    with ThreadPoolExecutor(PUBLISH_THREADS, thread_name_prefix="footers") as pool:
        counts = list(pool.map(fs.parquet_rows, new))
    rows: dict[str, int] = {}
    for path, count in zip(new, counts, strict=True):
        partition = _partition(dataset_uri, path)
        rows[partition] = rows.get(partition, 0) + count
    plan.files.setdefault(upload_id, []).extend(new)
    plan.deletes += older
    partitions = set(rows) | {_partition(dataset_uri, p) for p in older}
    return sorted(partitions), len(older), rows


def _partition(dataset_uri: str, path: str) -> str:
    parts = path[len(dataset_uri):].strip("/").split("/")[:-1]
    if not all(_PARTITION_DIR.match(p) for p in parts):
        raise OSError(f"unexpected file layout: {path}")
    return "/".join(parts)


def write_record(fs: Fs, uri: str, text: str) -> None:
    """Write a journal or an intent under a temporary name, then rename it into place (a
    small file: one copy on S3), so it is either complete or absent."""
    tmp = f"{uri}.tmp"
    fs.write_text(tmp, text)
    fs.rename(tmp, uri)


def intent_json(run_id: str, upload_ids: Iterable[str]) -> str:
    return json.dumps({"run_id": run_id, "uploads": sorted(upload_ids)}, indent=1) + "\n"


def read_intent(fs: Fs, uri: str) -> tuple[str, list[str]]:
    d = json.loads(fs.read_text(uri))
    return d["run_id"], d["uploads"]


def remove_files(fs: Fs, listing: Iterable[str], run_id: str,
                 upload_ids: Iterable[str]) -> int:
    """Delete the files ``run_id`` wrote for ``upload_ids`` (a run that did not commit),
    hidden ones a task never renamed included. Returns how many there were."""
    prefixes = tuple(p for u in upload_ids for p in (run_prefix(u, run_id),
                                                     f".{run_prefix(u, run_id)}"))
    doomed = [p for p in listing if _name(p).startswith(prefixes)] if prefixes else []
    with ThreadPoolExecutor(PUBLISH_THREADS, thread_name_prefix="unwrite") as pool:
        list(pool.map(fs.delete, doomed))
    return len(doomed)


def commit(fs: Fs, journal_uri: str, plan: PublishPlan) -> None:
    """Write the journal: the commit point."""
    write_record(fs, journal_uri, plan.to_json())


def apply(fs: Fs, plan: PublishPlan, after_delete: Callable[[int], None] | None = None) -> None:
    """Carry out a committed plan: every delete, several at a time (and the moves of a
    journal an earlier release wrote). Safe to repeat after a crash: a file already deleted
    is skipped."""
    def move(item: tuple[str, str]) -> None:
        src, dst = item
        try:
            fs.rename(src, dst)
        except Exception:  # moved by an earlier attempt, or really failed: the files say
            if fs.exists(src) or not fs.exists(dst):
                raise

    def delete(item: tuple[int, str]) -> None:
        i, path = item
        fs.delete(path)
        if after_delete is not None:
            after_delete(i)

    with ThreadPoolExecutor(PUBLISH_THREADS, thread_name_prefix="publish") as pool:
        list(pool.map(move, plan.moves))
        list(pool.map(delete, enumerate(plan.deletes)))


def pending_journals(fs: Fs, journal_dir: str) -> list[tuple[str, PublishPlan]]:
    """Committed plans not yet fully applied (a run died while publishing), oldest first."""
    return [(e.path, PublishPlan.from_json(fs.read_text(e.path)))
            for e in fs.list(journal_dir)
            if not e.is_dir and e.name.endswith(".json") and not e.name.endswith(".intent.json")]


def pending_intents(fs: Fs, journal_dir: str) -> list[str]:
    """Intents left by runs (their journals, if any, already applied): oldest first."""
    return [e.path for e in fs.list(journal_dir) if e.name.endswith(".intent.json")]
