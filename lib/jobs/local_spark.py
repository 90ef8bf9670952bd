"""A local SparkSession configured like the Glue 5.0 runtime (Spark 3.5.4), with every
working folder (warehouse, spill, temp) kept under one directory so nothing litters the
working tree. The catalog is Spark's in-memory one: the local Glue Data Catalog is
:mod:`lib.lake.catalog`, which needs no JVM."""

from __future__ import annotations

import os
import sys
from importlib import resources
from pathlib import Path

from pyspark.sql import SparkSession

from lib.jobs.jars import protocol_jar
from lib.jobs.s3a import s3a_conf, s3a_jars
from lib.jobs.settings import DRIVER_MEMORY_ENV, driver_memory_setting

__all__ = ["DRIVER_MEMORY_ENV", "SESSION_CONF", "driver_memory_setting", "local_spark_session"]


# SQL settings every job runs with, locally and on Glue (set by lib.jobs.runtime).
SESSION_CONF = {
    "spark.sql.session.timeZone": "UTC",
    # Casts that fail yield null; the contract's rules report them with a reason code.
    "spark.sql.ansi.enabled": "false",
    "spark.sql.parquet.compression.codec": "snappy",
    # One Parquet encoding for both engines (the DuckDB engine writes the same): timestamps
    # as INT64 microseconds in UTC, the type Parquet defines (not Spark's default, the
    # deprecated INT96), and dates and times in the proleptic Gregorian calendar both ways,
    # as every other reader means them (no rebasing, no refusal of dates before 1582).
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.parquet.datetimeRebaseModeInWrite": "CORRECTED",
    "spark.sql.parquet.datetimeRebaseModeInRead": "CORRECTED",
    "spark.sql.parquet.int96RebaseModeInWrite": "CORRECTED",
    "spark.sql.parquet.int96RebaseModeInRead": "CORRECTED",
    # HotSpot never JIT-compiles a method over 8,000 bytes of bytecode: the validation's
    # generated code for ~30 rules is larger, and ran interpreted (3x slower). Above this
    # size Spark generates per-expression code (split in small methods) instead.
    "spark.sql.codegen.hugeMethodLimit": "8000",
}


def spark_log(work_dir: str | Path) -> Path:
    """The file a local session's JVM logs into (Spark's warnings and errors)."""
    return Path(work_dir).resolve() / "spark.log"


def local_spark_session(
    work_dir: str | Path,
    app_name: str = "lake",
    master: str | None = None,
    driver_memory: str | None = None,
    shuffle_partitions: int | None = None,
    s3: bool = False,
) -> SparkSession:
    """Get or create the process's local SparkSession, rooted at ``work_dir``, with the
    lake's commit protocol (:mod:`lib.jobs.jars`) on its classpath; with ``s3`` it reads and
    writes ``s3://`` through the S3A connector (:mod:`lib.jobs.s3a`)."""
    jars = [protocol_jar(), *(s3a_jars() if s3 else [])]
    work = Path(work_dir).resolve()
    for sub in ("warehouse", "tmp", "local"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    # Copied next to the session's files: lib may be imported from a zip (--extra-py-files),
    # and the JVM needs a real file.
    log4j = work / "log4j2.properties"
    log4j.write_text((resources.files("lib.jobs") / "conf" / "log4j2.properties").read_text("utf-8"),
                     encoding="utf-8")
    java_opts = " ".join([
        f"-Dlog4j.configurationFile=file:{log4j}",
        f"-Dlake.spark.log={spark_log(work)}",
        f"-Djava.io.tmpdir={work / 'tmp'}",
    ])
    builder = (
        SparkSession.builder.appName(app_name)
        .master(master or os.environ.get("LAKE_SPARK_MASTER", "local[2]"))
        .config("spark.driver.memory", driver_memory or driver_memory_setting())
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.extraJavaOptions", java_opts)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.debug.maxToStringFields", "500")  # wide plans print whole, no WARN
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions or 4))
        .config("spark.sql.adaptive.enabled", "true")
        .config("spark.sql.warehouse.dir", (work / "warehouse").as_uri())
        .config("spark.local.dir", str(work / "local"))
        .config("spark.jars", ",".join(str(j) for j in jars))
    )
    for key, value in {**SESSION_CONF, **(s3a_conf() if s3 else {})}.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
