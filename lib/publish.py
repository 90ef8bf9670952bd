"""Per-upload publishing into a zone.

A run first writes its rows to a run-private staging folder inside the zone
(``<zone>/_staging/<dataset>/<run_id>/``), partitioned by upload and by the zone's
partition columns, one file per (upload, partition) unless ``max_records_per_file`` splits
it. Only after the whole run has been written and its row counts verified are the staged
files moved into the zone, named ``<upload_id>_<run_id>_<n>.parquet``. Then the files an
earlier run wrote for the same upload are deleted.

So re-running an upload replaces exactly its rows, never duplicates them, and never touches
the files other uploads wrote into the same partitions (which a dynamic partition
overwrite would wipe). Readers and crawlers skip the ``_staging`` folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lib.contract import UPLOAD_ID
from lib.hadoop_fs import HadoopFs
from lib.lake_paths import join

PUBLISH_KEY = "pub_upload"  # staging-only partition column (a copy of _upload_id)
DEFAULT_MAX_RECORDS_PER_FILE = 5_000_000
_PARTITION_DIR = re.compile(r"^[^=/]+=[^/]*$")


@dataclass(frozen=True)
class PublishedUpload:
    upload_id: str
    files_written: tuple[str, ...]
    files_replaced: tuple[str, ...]
    partitions: tuple[str, ...]


def stage(df: DataFrame, staging_uri: str, partition_by: tuple[str, ...],
          max_records_per_file: int = DEFAULT_MAX_RECORDS_PER_FILE) -> None:
    """Write ``df`` under ``staging_uri`` partitioned by upload and ``partition_by``.

    Rows are first clustered by (upload, partition) so each lands in one task: one file
    per (upload, partition) per run instead of one per task."""
    keys = [PUBLISH_KEY, *partition_by]
    (
        df.withColumn(PUBLISH_KEY, F.col(UPLOAD_ID))
        .repartition(*keys)
        .write.mode("errorifexists")
        .partitionBy(*keys)
        .option("maxRecordsPerFile", max_records_per_file)
        .parquet(staging_uri)
    )


def staged_counts(spark: SparkSession, fs: HadoopFs, staging_uri: str) -> dict[str, int]:
    """Rows per upload as written to staging, read back from the Parquet files. Grouped by
    the staging partition column, so Spark answers from the files' footers without reading
    any column data."""
    if not any(e.is_dir and e.name.startswith(f"{PUBLISH_KEY}=") for e in fs.list(staging_uri)):
        return {}  # nothing staged (Spark wrote only its _SUCCESS marker)
    rows = spark.read.parquet(staging_uri).groupBy(PUBLISH_KEY).count().collect()
    return {str(r[PUBLISH_KEY]): int(r["count"]) for r in rows}


def _upload_prefix(upload_id: str) -> str:
    return f"{upload_id}_"


def publish_upload(fs: HadoopFs, staging_uri: str, target_uri: str, upload_id: str,
                   run_id: str, partition_depth: int) -> PublishedUpload:
    """Move one upload's staged files into the zone, then delete the files earlier runs
    wrote for that upload. Returns the partitions (relative ``k=v/...`` paths) touched."""
    staged_root = join(staging_uri, f"{PUBLISH_KEY}={upload_id}")
    staged = [e for e in fs.walk_files(staged_root) if e.name.endswith(".parquet")]
    written, partitions = [], set()
    for n, entry in enumerate(staged):
        parts = entry.path[len(staged_root):].strip("/").split("/")[:-1]
        if len(parts) != partition_depth or not all(_PARTITION_DIR.match(p) for p in parts):
            raise OSError(f"unexpected staged file layout: {entry.path}")
        target = join(target_uri, *parts, f"{upload_id}_{run_id}_{n:05d}.parquet")
        fs.rename(entry.path, target)
        written.append(target)
        partitions.add("/".join(parts))
    current = f"{_upload_prefix(upload_id)}{run_id}_"
    pattern = join(target_uri, *(["*"] * partition_depth), f"{_upload_prefix(upload_id)}*.parquet")
    replaced = []
    for old in fs.glob(pattern):
        if not old.name.startswith(current):
            fs.delete(old.path)
            replaced.append(old.path)
            rel = old.path[len(target_uri):].strip("/").rsplit("/", 1)[0]
            partitions.add(rel)
    return PublishedUpload(upload_id, tuple(written), tuple(replaced), tuple(sorted(partitions)))
