"""The runtime adapter: every job opens one :class:`JobContext` and never asks where it runs.

Inside AWS Glue (the ``awsglue`` package importable, or ``LAKE_RUNTIME=glue``) the context
wraps ``GlueContext`` and ``Job`` (``init`` on open, ``commit`` on success). Anywhere else it
wraps a local SparkSession configured like Glue 5.0 (:mod:`lib.jobs.local_spark`). Both apply the
same SQL settings (UTC session time zone, non-ANSI casts) so a job behaves the same in both.

Arguments follow Glue's convention: ``--KEY value`` (or ``--KEY=value``); ``JOB_NAME`` is
always required. Arguments Glue adds on its own (``--JOB_ID``, ``--TempDir``,
``--job-bookmark-option`` ...) are accepted and ignored unless the job asks for them.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from lib.errors import LakeError
from lib.jobs.argv import JobArgumentError, job_logger, parse_job_args
from lib.jobs.local_spark import (
    DRIVER_MEMORY_ENV,
    SESSION_CONF,
    driver_memory_setting,
    local_spark_session,
)
from lib.jobs.s3a import is_s3
from lib.lake.fs import java_error_message
from lib.lake.paths import join, local_path, to_uri

__all__ = ["JobArgumentError", "JobContext", "open_job", "parse_job_args"]


@dataclass
class JobContext:
    spark: SparkSession
    args: dict[str, str | None]
    logger: logging.Logger
    runtime: str
    _job: Any = field(default=None, repr=False)

    @property
    def job_name(self) -> str:
        return str(self.args["JOB_NAME"])


def _on_glue() -> bool:
    forced = os.environ.get("LAKE_RUNTIME")
    if forced:
        return forced == "glue"
    return importlib.util.find_spec("awsglue") is not None


def local_work_dir(lake_root: str | None) -> Path:
    """Where a local session keeps its warehouse, spill and temp files: ``$LAKE_SPARK_DIR``,
    else ``<lake root>/_local/spark``."""
    explicit = os.environ.get("LAKE_SPARK_DIR")
    if explicit:
        return Path(explicit)
    local = local_path(join(to_uri(lake_root), "_local", "spark")) if lake_root else None
    return local or Path(tempfile.gettempdir()) / "lake-spark"


def _apply_session_conf(spark: SparkSession) -> None:
    for key, value in SESSION_CONF.items():
        spark.conf.set(key, value)


class DriverStartError(LakeError):
    """The local Spark driver could not start."""

    default_code = "job.driver"


def _start_local(args: Mapping[str, str | None]) -> SparkSession:
    try:
        return local_spark_session(local_work_dir(args.get("lake_root")),
                                   app_name=str(args["JOB_NAME"]),
                                   s3=is_s3(args.get("lake_root")))
    except LakeError:  # e.g. the S3A connector is not fetched: its own message
        raise
    except Exception as exc:  # py4j: the JVM refused to start the context
        raise DriverStartError(
            f"the local Spark driver could not start: {java_error_message(exc)}; check "
            f"{DRIVER_MEMORY_ENV} (now {driver_memory_setting()}; Spark needs at least 450m) "
            "and that Java 17 runs") from exc


@contextmanager
def open_job(argv: Sequence[str], required: Sequence[str] = (),
             optional: Mapping[str, str | None] | None = None) -> Iterator[JobContext]:
    """Open the job's context; commit the Glue job only if the body succeeds."""
    args = parse_job_args(argv, required, optional)
    log = job_logger(str(args["JOB_NAME"]))
    if _on_glue():
        from awsglue.context import GlueContext  # type: ignore[import-not-found]
        from awsglue.job import Job  # type: ignore[import-not-found]
        from pyspark.context import SparkContext

        glue_context = GlueContext(SparkContext.getOrCreate())
        spark = glue_context.spark_session
        job = Job(glue_context)
        job.init(args["JOB_NAME"], {k: v for k, v in args.items() if v is not None})
        ctx = JobContext(spark, args, log, "glue", job)
    else:
        spark = SparkSession.getActiveSession() or _start_local(args)
        where = spark.sparkContext._jvm.System.getProperty("lake.spark.log")
        if where:  # the session's own, which may be another lake root's
            log.info("Spark's own warnings and errors go to %s", where)
        ctx = JobContext(spark, args, log, "local")
    _apply_session_conf(ctx.spark)
    yield ctx
    if ctx._job is not None:
        ctx._job.commit()
