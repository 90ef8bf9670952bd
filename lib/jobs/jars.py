"""The jars a job's Spark session loads beside pyspark's own.

- The lake's commit protocol (``jvm/lake/spark/UploadFilesCommitProtocol.java``, see
  :mod:`lib.jobs.publish`): every session that writes the zones needs it. ``make jars``
  (``lake jars``) compiles it against pyspark's jars into ``lake-spark.jar``; ``lake
  package`` ships it for Glue's ``--extra-jars``.
- Hadoop's S3A connector (:mod:`lib.jobs.s3a`), for a local session on ``s3://`` only,
  fetched from Maven Central at pinned versions.

Both live in one cache folder: ``$LAKE_JARS_DIR``, else ``.cache/jars`` in the checkout.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from lib.errors import ConfigError

JARS_DIR_ENV = "LAKE_JARS_DIR"
PROTOCOL_JAR = "lake-spark.jar"
# The class Spark instantiates for the publish's writes (spark.sql.sources.commitProtocolClass).
PROTOCOL_CLASS = "lake.spark.UploadFilesCommitProtocol"


@dataclass(frozen=True)
class Jar:
    group: str
    artifact: str
    version: str
    sha256: str

    @property
    def file_name(self) -> str:
        return f"{self.artifact}-{self.version}.jar"

    @property
    def path(self) -> str:
        """Its path in a Maven repository."""
        return (f"{self.group.replace('.', '/')}/{self.artifact}/{self.version}/"
                f"{self.file_name}")


def jars_dir() -> Path:
    """``$LAKE_JARS_DIR``, else ``.cache/jars`` in the checkout."""
    explicit = os.environ.get(JARS_DIR_ENV)
    return Path(explicit) if explicit else Path(__file__).resolve().parents[2] / ".cache" / "jars"


def protocol_jar() -> Path:
    """The built commit protocol jar of a local session; a clear error if it was never built."""
    jar = jars_dir() / PROTOCOL_JAR
    if not jar.is_file():
        raise ConfigError(f"a local Spark session needs the lake's commit protocol {jar}, "
                          "built from jvm/ by `make jars` (a JDK 17's javac)")
    return jar
