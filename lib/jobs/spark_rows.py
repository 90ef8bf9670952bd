"""The Spark engine of a run (:mod:`lib.jobs.run`): the steps that touch rows, on a
SparkSession, locally or on Glue.

:class:`SparkRows` reads a batch's uploads as one lazy frame (:mod:`lib.sources`), enforces
the contract in one pass over the input (:func:`enforce`: every row validated as it is read
and clustered by (upload, partition) in one shuffle, whose files every later step reads;
the keys that repeat found on a narrow projection; the rows classified and counted), and
writes each upload's files once, under their final names, through the lake's commit
protocol (:func:`write`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F

from lib.contracts.contract import ERRORS, QUARANTINE_PARTITION, UPLOAD_ID, Contract
from lib.engine.transforms import (
    COUNTS,
    GROUP_CONFLICT,
    GROUP_PREFIX,
    GROUP_ROWS,
    OUTCOME_SET,
    READ_PARTITION,
    classify,
    derived_columns,
    outcomes,
    partition_offsets,
    repeats,
    split,
    validate,
    with_derived,
)
from lib.errors import ConfigError
from lib.jobs.faults import crash_point
from lib.jobs.jars import PROTOCOL_CLASS
from lib.jobs.publish import DEFAULT_MAX_RECORDS_PER_FILE
from lib.jobs.run import Batch, Run
from lib.lake.fs import HadoopFs
from lib.sources.base import Reader, lineage_columns, union_all
from lib.sources.registry import reader_for

PUBLISH_KEY = "pub_upload"  # the write's first partition column: the start of a file's name
RUN_ID_OPTION = "lake.publish.run_id"  # the write option the commit protocol names files by


class SparkRows:
    """The Spark engine: what :func:`lib.jobs.run.process_uploads` asks of an engine."""

    name = "spark"

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark
        self.fs = HadoopFs(spark)

    def prepare(self, contract: Contract) -> None:
        """Fail before any upload is claimed on a derived expression Spark cannot parse or a
        session without the commit protocol."""
        derived_columns(contract)
        require_protocol(self.spark)

    def alive(self) -> bool:
        return driver_alive(self.spark)

    @contextlib.contextmanager
    def batch(self, run: Run, batch: Batch) -> Iterator[Enforced]:
        """The batch read and enforced, with the settings its read and shuffles need; its
        cached aggregate released afterwards."""
        reader = reader_for(run.contract)
        with session_conf(self.spark, {**reader.session_conf, **cluster_conf(run, batch)}):
            enforced = enforce(run, read(run, reader, batch), batch)
            try:
                yield enforced
            finally:
                enforced.release()


def read(run: Run, reader: Reader, batch: Batch) -> DataFrame:
    """The batch's raw frame: every upload read lazily with its own header plan."""
    return union_all([reader.read_upload(run.rows.spark, u, plan, run.contract, run.started)
                      for u, plan in batch])


def driver_alive(spark: SparkSession) -> bool:
    """Whether the JVM behind the session still answers (it exits on an out-of-memory)."""
    try:
        return not spark.sparkContext._jsc.sc().isStopped()
    except Exception:  # noqa: BLE001 - py4j: the gateway is gone with the JVM
        return False


# Rows (upload, key) that repeat, beyond which the repeats are joined back with a shuffle
# instead of broadcast (the rows are then clustered again for the write).
BROADCAST_GROUPS = 250_000
# What a zone file should hold at most: the rows of one (upload, partition) are written by one
# task up to about this size (shuffle bytes, close to the Parquet bytes here), by several
# above it.
TARGET_FILE_BYTES = 128 * 1024 * 1024


@dataclass
class Enforced:
    """The keys that repeat and the counts, from one aggregate of the batch's rows
    (``outcome``, kept in memory: it is small); the rows classified (``classified``: read
    and validated once, clustered by (upload, partition) in shuffle files that every later
    step reads, which live as long as it does); the rows per (upload, read partition,
    reason codes) (``counts``) and, per upload with repeats, the rows in conflict and the
    duplicates (``repeated``)."""

    outcome: DataFrame
    classified: DataFrame
    clustered: bool  # whether ``classified`` kept the clustering of ``rows``
    counts: list[Row]
    repeated: dict[str, tuple[int, int]]

    def release(self) -> None:
        self.outcome.unpersist()

    def write(self, run: Run, upload_ids: Sequence[str]) -> None:
        write_rows(run, self, upload_ids)


def cluster_conf(run: Run, batch: Batch) -> dict[str, str]:
    """AQE settings for the batch's shuffles. Tasks of at most about
    :data:`TARGET_FILE_BYTES` (a larger (upload, partition) is split over several), and
    enough of them: 4 per core of the cluster, or 4 per :data:`TARGET_FILE_BYTES` of input
    (gzip counted at 8x its size) if that is more. They are not coalesced: on a few cores a
    handful of uneven tasks leaves cores idle, and one (upload, partition) still goes to one
    task, so coalescing would not save a file."""
    size = 0
    for up, _ in batch:
        record = run.claimed.get(up.upload_id)
        nbytes = record.size_bytes if record is not None else 0
        size += nbytes * (8 if up.path.endswith(".gz") else 1)
    cores = run.rows.spark.sparkContext.defaultParallelism
    return {
        "spark.sql.adaptive.enabled": "true",
        "spark.sql.adaptive.advisoryPartitionSizeInBytes": str(TARGET_FILE_BYTES),
        "spark.sql.adaptive.coalescePartitions.enabled": "false",
        "spark.sql.shuffle.partitions": str(max(4 * cores, -(-4 * size // TARGET_FILE_BYTES))),
    }


def rebalanced(spark: SparkSession, df: DataFrame, keys: Sequence[str]) -> DataFrame:
    """``df`` clustered by ``keys`` with Spark's ``REBALANCE`` (with AQE): the rows of one key
    value go to one task unless they exceed the advisory size, then to several; small ones
    share a task."""
    cols = ", ".join(f"`{k}`" for k in keys)
    return spark.sql(f"SELECT /*+ REBALANCE({cols}) */ * FROM {{df}}", df=df)


def shuffled_once(spark: SparkSession, df: DataFrame) -> DataFrame:
    """Run ``df`` (which ends in a shuffle) now, and return a frame that reads that shuffle's
    files: every later action on it starts from them instead of reading and validating the
    input again, and sees exactly the same rows. It costs nothing beyond the shuffle itself
    (persisting the same rows cost more than reading and validating them); the files live as
    long as the frame."""
    rdd = df._jdf.queryExecution().toRdd()  # AQE runs the shuffle's map stage here
    return DataFrame(spark._jsparkSession.internalCreateDataFrame(rdd, df._jdf.schema(), False),
                     spark)


def enforce(run: Run, raw: DataFrame, batch: Batch) -> Enforced:
    """The contract on the batch in one pass over the input: read and validate every row,
    cluster the rows by (upload, partition) for the write (the one wide shuffle), then, from
    one read of the shuffle files, the keys that repeat and the counts; classify."""
    contract, spark = run.contract, run.rows.spark
    records = sum(up.expected_records or 0 for up, _ in batch)
    run.log.info("reading and validating %d upload(s)%s", len(batch),
                 f", {records:,} records" if records else "")
    t0 = time.perf_counter()
    validated = raw.transform(validate(contract)).transform(with_derived(contract))
    # What is the same for every row of an upload (its file, ingest date, the run's time and
    # contract) does not go through the shuffle: it is joined back from a row per upload.
    lineage = union_all([spark.range(1).select(*lineage_columns(up, contract, run.started))
                         for up, _ in batch])
    keys = [UPLOAD_ID, *contract.partition_by]
    constant = [c for c in lineage.columns if c not in keys]
    shuffled = shuffled_once(spark, rebalanced(spark, validated.drop(*constant), keys))
    rows = (shuffled.join(F.broadcast(lineage.select(UPLOAD_ID, *constant)), UPLOAD_ID)
            .select(*validated.columns))
    t1 = time.perf_counter()
    run.log.info("read, validated and clustered the rows in %.1fs; finding repeats and "
                 "counting", t1 - t0)
    outcome = rows.transform(outcomes(contract)).persist(StorageLevel.MEMORY_AND_DISK)
    counts = (outcome.where(F.col(OUTCOME_SET) == COUNTS)
              .select(UPLOAD_ID, READ_PARTITION, ERRORS, "count").collect())
    groups = repeats(outcome)
    conflict = F.col(GROUP_CONFLICT)
    per_upload = groups.groupBy(F.col(GROUP_PREFIX + UPLOAD_ID).alias("upload")).agg(
        F.sum(F.when(conflict, F.col(GROUP_ROWS)).otherwise(0)).alias("conflicting"),
        F.sum(F.when(~conflict, F.col(GROUP_ROWS) - 1).otherwise(0)).alias("duplicates"),
        F.count(F.lit(1)).alias("keys"),
    ).collect()  # one row per upload with repeats
    repeated = {r["upload"]: (int(r["conflicting"]), int(r["duplicates"])) for r in per_upload}
    n_keys = sum(int(r["keys"]) for r in per_upload)
    broadcast = n_keys <= BROADCAST_GROUPS
    classified = rows.transform(classify(contract, groups, broadcast=broadcast))
    run.log.info("counted outcomes in %.1fs: %s rows read, %d repeated key(s)",
                 time.perf_counter() - t1, f"{sum(int(r['count']) for r in counts):,}", n_keys)
    return Enforced(outcome, classified, broadcast, counts, repeated)


def write_rows(run: Run, enforced: Enforced, upload_ids: Sequence[str]) -> None:
    """Write the clean and the quarantined rows of ``upload_ids`` into the zones, each file
    under a name of its (upload, run). The clean rows are already clustered (unless the
    repeats were joined back with a shuffle); the quarantined ones, few, are clustered by
    upload here."""
    contract, paths = run.contract, run.paths
    classified = enforced.classified
    if set(upload_ids) != {r[UPLOAD_ID] for r in enforced.counts}:  # some failed the count
        classified = classified.where(F.col(UPLOAD_ID).isin(list(upload_ids)))
    # A file read in several partitions: the records before each one give exact ordinals.
    clean, quarantine = split(contract, classified, partition_offsets(enforced.counts))
    clean_uri, quarantine_uri = paths.clean_dataset(run.dataset), paths.quarantine_dataset(run.dataset)
    run.log.info("writing the clean and the quarantined rows of %d upload(s)", len(upload_ids))
    t0 = time.perf_counter()
    if not enforced.clustered:
        clean = rebalanced(run.rows.spark, clean, [UPLOAD_ID, *contract.partition_by])
    write(clean, clean_uri, contract.partition_by, run.run_id, run.max_records_per_file)
    t1 = time.perf_counter()
    run.log.info("wrote clean rows in %.1fs (%s)", t1 - t0, clean_uri)
    crash_point("writing")
    write(rebalanced(run.rows.spark, quarantine, [UPLOAD_ID, QUARANTINE_PARTITION]),
          quarantine_uri, (QUARANTINE_PARTITION,), run.run_id, run.max_records_per_file)
    run.log.info("wrote quarantined rows in %.1fs (%s)", time.perf_counter() - t1,
                 quarantine_uri)


def require_protocol(spark: SparkSession) -> None:
    """Fail before any upload is claimed if the session cannot load the commit protocol."""
    try:  # as Spark finds it for a write (FileCommitProtocol.instantiate)
        spark.sparkContext._jvm.org.apache.spark.util.Utils.classForName(PROTOCOL_CLASS, True,
                                                                         False)
    except Exception:  # py4j wraps ClassNotFoundException
        raise ConfigError(
            f"the Spark session cannot load {PROTOCOL_CLASS}, the lake's commit protocol: "
            "on Glue pass lib/<release>/lake-spark.jar in --extra-jars (the deployed job "
            "does), locally build it with `make jars`") from None



@contextlib.contextmanager
def _protocol(spark: SparkSession) -> Iterator[None]:
    key = "spark.sql.sources.commitProtocolClass"
    before = spark.conf.get(key, None)
    spark.conf.set(key, PROTOCOL_CLASS)
    try:
        yield
    finally:
        if before is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, before)



def write(df: DataFrame, dataset_uri: str, partition_by: tuple[str, ...], run_id: str,
          max_records_per_file: int = DEFAULT_MAX_RECORDS_PER_FILE) -> None:
    """Write ``df`` into the zone folder ``dataset_uri``, partitioned by ``partition_by``,
    each file named by its upload and ``run_id``.

    ``df`` comes clustered by (upload, partition) (:func:`lib.jobs.run.rebalanced`): each
    task writes one file per (upload, partition) it holds, so a partition gets one file per
    upload and run unless it is large enough to be spread over several tasks."""
    with _protocol(df.sparkSession):
        (
            df.withColumn(PUBLISH_KEY, F.col(UPLOAD_ID))
            .write.mode("append")
            .partitionBy(PUBLISH_KEY, *partition_by)
            .option(RUN_ID_OPTION, run_id)
            .option("maxRecordsPerFile", max_records_per_file)
            .parquet(dataset_uri)
        )



@contextlib.contextmanager
def session_conf(spark: SparkSession, conf: Mapping[str, str]) -> Iterator[None]:
    """Set session settings for the duration of a batch, then restore them."""
    before = {k: spark.conf.get(k, None) for k in conf}
    for k, v in conf.items():
        spark.conf.set(k, v)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                spark.conf.unset(k)
            else:
                spark.conf.set(k, v)
