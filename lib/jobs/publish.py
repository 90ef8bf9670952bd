"""Per-upload publishing into a zone.

A run first writes its rows to a run-private staging folder inside the zone
(``<zone>/_staging/<dataset>/<run_id>/``), partitioned by upload and by the zone's
partition columns, one file per (upload, partition) unless ``max_records_per_file`` splits
it. Only after the whole run has been written and its row counts verified is a publish
plan written: the journal ``<clean zone>/_commits/<dataset>/<run_id>.json`` listing every
staged file to move into the zones, named ``<upload_id>_<run_id>_<n>.parquet``, and every
file an earlier run wrote for the same uploads, to delete. Writing the journal is the commit
point. Before it, the zones are untouched and a crash leaves only staging files behind;
after it, the plan is applied, and if the run dies while applying it the next run of the
dataset applies it again (moves and deletes are idempotent) before doing anything else.

So re-running an upload replaces exactly its rows, never duplicates them, and never touches
the files other uploads wrote into the same partitions (which a dynamic partition
overwrite would wipe). Readers and crawlers skip the ``_staging`` folder.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lib.contracts.contract import UPLOAD_ID
from lib.lake.fs import HadoopFs
from lib.lake.paths import join

PUBLISH_KEY = "pub_upload"  # staging-only partition column (a copy of _upload_id)
DEFAULT_MAX_RECORDS_PER_FILE = 5_000_000
_PARTITION_DIR = re.compile(r"^[^=/]+=[^/]*$")


def stage(df: DataFrame, staging_uri: str, partition_by: tuple[str, ...],
          max_records_per_file: int = DEFAULT_MAX_RECORDS_PER_FILE) -> None:
    """Write ``df`` under ``staging_uri`` partitioned by upload and ``partition_by``.

    ``df`` comes clustered by (upload, partition) (:func:`lib.jobs.run.rebalanced`): each
    task writes one file per (upload, partition) it holds, so a partition gets one file per
    run unless it is large enough to be spread over several tasks."""
    keys = [PUBLISH_KEY, *partition_by]
    (
        df.withColumn(PUBLISH_KEY, F.col(UPLOAD_ID))
        .write.mode("errorifexists")
        .partitionBy(*keys)
        .option("maxRecordsPerFile", max_records_per_file)
        .parquet(staging_uri)
    )


def _upload_prefix(upload_id: str) -> str:
    return f"{upload_id}_"


@dataclass
class PublishPlan:
    """The commit journal of one run: every file to move into the zones and every older
    file to delete, with the per-upload results to record once it is applied. Written
    before the first visible change (:func:`commit`); from then on the run's outcome is
    decided and :func:`apply` (idempotent) completes it, in this run or the next."""

    dataset: str
    run_id: str
    moves: list[tuple[str, str]] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    uploads: dict[str, dict] = field(default_factory=dict)  # upload id -> its result

    def to_json(self) -> str:
        return json.dumps({"dataset": self.dataset, "run_id": self.run_id,
                           "moves": self.moves, "deletes": self.deletes,
                           "uploads": self.uploads}, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> PublishPlan:
        d = json.loads(text)
        return cls(d["dataset"], d["run_id"], [tuple(m) for m in d["moves"]], d["deletes"],
                   d["uploads"])


def plan_upload(fs: HadoopFs, plan: PublishPlan, staging_uri: str, target_uri: str,
                upload_id: str, partition_depth: int) -> tuple[list[str], int, dict[str, int]]:
    """Add one upload's staged files of one zone to ``plan``: each moves to
    ``<target>/<partition>/<upload_id>_<run_id>_<n>.parquet``, and the upload's files from
    earlier runs are deleted. Returns the partitions (``k=v/...``) touched, the number of
    files to delete, and the rows written per partition (from the files' footers)."""
    staged_root = join(staging_uri, f"{PUBLISH_KEY}={upload_id}")
    staged = fs.glob_paths(join(staged_root, *(["*"] * partition_depth), "*.parquet"))
    partitions = set()
    rows: dict[str, int] = {}
    with ThreadPoolExecutor(PUBLISH_THREADS, thread_name_prefix="footers") as pool:
        counts = list(pool.map(fs.parquet_rows, staged))
    for n, (path, count) in enumerate(zip(staged, counts, strict=True)):
        parts = path[len(staged_root):].strip("/").split("/")[:-1]
        if not all(_PARTITION_DIR.match(p) for p in parts):
            raise OSError(f"unexpected staged file layout: {path}")
        plan.moves.append((path, join(target_uri, *parts,
                                      f"{upload_id}_{plan.run_id}_{n:05d}.parquet")))
        partitions.add("/".join(parts))
        rows["/".join(parts)] = rows.get("/".join(parts), 0) + count
    current = f"{_upload_prefix(upload_id)}{plan.run_id}_"
    pattern = join(target_uri, *(["*"] * partition_depth), f"{_upload_prefix(upload_id)}*.parquet")
    older = [p for p in fs.glob_paths(pattern) if not p.rsplit("/", 1)[-1].startswith(current)]
    plan.deletes += older
    partitions.update(path[len(target_uri):].strip("/").rsplit("/", 1)[0] for path in older)
    return sorted(partitions), len(older), rows


def commit(fs: HadoopFs, journal_uri: str, plan: PublishPlan) -> None:
    """Write the journal (the commit point) under a temporary name, then rename it into
    place, so a journal is either complete or absent."""
    tmp = f"{journal_uri}.tmp"
    fs.write_text(tmp, plan.to_json())
    fs.rename(tmp, journal_uri)


# Moves and deletes of a publish run this many at a time: each is a round trip to the file
# system (a copy on S3), and they are independent of one another.
PUBLISH_THREADS = 8


def apply(fs: HadoopFs, plan: PublishPlan, after_move: Callable[[int], None] | None = None) -> None:
    """Carry out a committed plan: every move, then every delete, several at a time. Safe to
    repeat after a crash: a file already moved or deleted is skipped."""
    def move(item: tuple[int, tuple[str, str]]) -> None:
        i, (src, dst) = item
        try:
            fs.rename(src, dst)
        except Exception:  # moved by an earlier attempt, or really failed: the files say
            if fs.exists(src):
                raise
            if not fs.exists(dst):
                raise OSError(f"publish of run {plan.run_id}: {src} is gone and {dst} was "
                              "never written") from None
        if after_move is not None:
            after_move(i)

    with ThreadPoolExecutor(PUBLISH_THREADS, thread_name_prefix="publish") as pool:
        list(pool.map(move, enumerate(plan.moves)))
        list(pool.map(fs.delete, plan.deletes))


def pending_journals(fs: HadoopFs, journal_dir: str) -> list[tuple[str, PublishPlan]]:
    """Committed plans not yet fully applied (a run died while publishing), oldest first."""
    return [(e.path, PublishPlan.from_json(fs.read_text(e.path)))
            for e in fs.list(journal_dir) if not e.is_dir and e.name.endswith(".json")]
