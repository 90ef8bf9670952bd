"""The publish's writer: the lake's commit protocol (jvm/) writes each file once, under a
name of its upload and run, straight into the zone folder, and refuses a write it was not
made for."""

from __future__ import annotations

import json
import subprocess
import sys

import pyspark.sql.functions as F
import pytest
from chispa import assert_df_equality

from lib.errors import ConfigError
from lib.jobs import publish, spark_rows
from lib.lake.paths import to_uri
from tests.helpers import REPO


def test_each_file_is_written_once_under_its_upload_and_run(spark, tmp_path) -> None:
    rows = [("u1", "2026-11-01", 1), ("u1", "2026-11-02", 2), ("u2", "2026-11-01", 3),
            ("u2", "2026-11-01", 4)]
    df = spark.createDataFrame(rows, "_upload_id string, d string, v int").repartition(1)
    zone = tmp_path / "clean" / "orders"
    zone.mkdir(parents=True)
    (zone / "d=2026-11-01").mkdir()
    other = zone / "d=2026-11-01" / "u0_R0_00000.c000.snappy.parquet"
    other.write_bytes(b"another upload's file")

    key = "spark.sql.sources.commitProtocolClass"
    before = spark.conf.get(key, None)
    spark_rows.write(df, to_uri(zone), ("d",), "20261129T000000Z-abc123")

    files = sorted(str(p.relative_to(zone)) for p in zone.rglob("*")
                   if p.is_file() and not p.name.startswith("."))
    assert files == ["d=2026-11-01/u0_R0_00000.c000.snappy.parquet",
                     "d=2026-11-01/u1_20261129T000000Z-abc123_00000.c000.snappy.parquet",
                     "d=2026-11-01/u2_20261129T000000Z-abc123_00000.c000.snappy.parquet",
                     "d=2026-11-02/u1_20261129T000000Z-abc123_00000.c000.snappy.parquet"]
    # nothing left under the hidden name a task writes before it commits (checksums only)
    assert [p.name for p in zone.rglob(".*") if not p.name.endswith(".crc")] == []
    assert other.read_bytes() == b"another upload's file"  # untouched
    got = spark.read.parquet(*[str(zone / f) for f in files[1:]]).select("_upload_id", "v")
    expected = spark.createDataFrame([("u1", 1), ("u1", 2), ("u2", 3), ("u2", 4)],
                                     "_upload_id string, v int")
    assert_df_equality(got, expected, ignore_row_order=True)
    # the write leaves the session's commit protocol as it found it
    assert spark.conf.get(key, None) == before and before != spark_rows.PROTOCOL_CLASS


def test_a_write_not_partitioned_by_the_upload_first_is_refused(spark, tmp_path) -> None:
    df = spark.createDataFrame([("u1", "a")], "_upload_id string, d string")
    with spark_rows._protocol(spark), pytest.raises(Exception) as exc:
        df.write.partitionBy("d").option(spark_rows.RUN_ID_OPTION, "R1").parquet(
            to_uri(tmp_path / "zone"))
    assert "the write is not partitioned by pub_upload first: 'd=a'" in str(exc.value)
    with spark_rows._protocol(spark), pytest.raises(Exception) as exc:
        df.withColumn(spark_rows.PUBLISH_KEY, F.col("_upload_id")).write.partitionBy(
            spark_rows.PUBLISH_KEY).parquet(to_uri(tmp_path / "zone2"))
    assert "the write has no lake.publish.run_id option" in str(exc.value)


def test_a_session_that_cannot_load_the_protocol_is_refused_with_what_to_do(
        spark, monkeypatch) -> None:
    spark_rows.require_protocol(spark)  # this session has it
    monkeypatch.setattr(spark_rows, "PROTOCOL_CLASS", "lake.spark.NoSuchProtocol")
    with pytest.raises(ConfigError) as exc:
        spark_rows.require_protocol(spark)
    assert str(exc.value) == (
        "the Spark session cannot load lake.spark.NoSuchProtocol, the lake's commit protocol: "
        "on Glue pass lib/<release>/lake-spark.jar in --extra-jars (the deployed job does), "
        "locally build it with `make jars`")


def test_a_journal_of_the_staged_publish_is_still_completed(spark, tmp_path) -> None:
    """A run of the release before the write-once publish may have died while applying its
    journal (moves out of its staging folder, then deletes): recovery after an upgrade
    still carries it out, and again without harm."""
    from lib.lake.fs import HadoopFs

    zone, staging = tmp_path / "clean" / "orders", tmp_path / "clean" / "_staging" / "orders"
    staged = staging / "R1" / "pub_upload=u1" / "d=a" / "part-00000.parquet"
    staged.parent.mkdir(parents=True)
    staged.write_bytes(b"new")
    old = zone / "d=a" / "u1_R0_00000.parquet"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"old")
    target = zone / "d=a" / "u1_R1_00000.parquet"
    legacy = json.dumps({"dataset": "orders", "run_id": "R1",
                         "moves": [[f"file://{staged}", f"file://{target}"]],
                         "deletes": [f"file://{old}"], "uploads": {}})
    plan = publish.PublishPlan.from_json(legacy)
    fs = HadoopFs(spark)
    publish.apply(fs, plan)
    publish.apply(fs, plan)  # repeated after a crash: already done, no error
    assert target.read_bytes() == b"new"
    assert not staged.exists() and not old.exists()


RETRIED_WRITE = """
import sys
from pathlib import Path
from pyspark.sql import functions as F
from lib.jobs import spark_rows
from lib.jobs.local_spark import local_spark_session
from lib.lake.paths import to_uri

work, zone = Path(sys.argv[1]), Path(sys.argv[2])
spark = local_spark_session(work, master="local[1,2]")  # one thread, a task may run twice
df = (spark.range(0, 2000, numPartitions=1)
      .select(F.lit("u1").alias("_upload_id"),
              F.when(F.col("id") < 1000, "a").otherwise("b").alias("d"), F.col("id").alias("v")))
spark_rows.write(df, to_uri(zone), ("d",), "R1")
print(spark.read.parquet(str(zone)).count())
"""


@pytest.mark.spark
def test_a_task_that_fails_mid_write_deletes_its_files_and_its_retry_writes_the_same_names(
        tmp_path) -> None:
    """The task's first attempt writes d=a, then cannot create its d=b file (a folder is in
    the way, under the hidden name the task writes first): it is aborted, which deletes what
    it wrote (the folder included), and the second attempt writes both files again."""
    zone = tmp_path / "zone"
    blocker = zone / "d=b" / ".u1_R1_00000.c000.snappy.parquet"
    blocker.mkdir(parents=True)
    out = subprocess.run([sys.executable, "-c", RETRIED_WRITE, str(tmp_path / "spark"), str(zone)],
                         capture_output=True, text=True, cwd=REPO, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    spark_log = (tmp_path / "spark" / "spark.log").read_text(encoding="utf-8")
    assert "FileAlreadyExistsException: File already exists: " \
           f"file:{blocker}" in spark_log  # the first attempt failed there (Spark's own log)
    assert "Exception" not in out.stderr  # ... which stays out of the terminal
    assert out.stdout.split() == ["2000"]  # every row once
    assert not blocker.exists()  # removed by the aborted attempt
    assert sorted(str(p.relative_to(zone)) for p in zone.rglob("*")
                  if p.is_file() and not p.name.endswith(".crc")) == [
        "d=a/u1_R1_00000.c000.snappy.parquet", "d=b/u1_R1_00000.c000.snappy.parquet"]
