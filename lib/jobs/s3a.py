"""The S3 file system of a local run: Hadoop's S3A connector, standing in for Glue's EMRFS.

On Glue, ``s3://`` paths go through EMRFS. The pyspark wheel has no S3 file system, so a
local session whose lake root is ``s3://`` (or ``s3a://``) loads the S3A connector that
matches pyspark 3.5.4's Hadoop (hadoop-aws 3.3.4 and the AWS SDK bundle it was built
with), fetched once into a cache by ``make jars`` (:mod:`lib.tools.jars`: pinned versions,
SHA-256 checked), and maps the ``s3://`` scheme to it. The endpoint and credentials are the
AWS SDKs' own environment variables (``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``), so boto3 (the
ledger) and the job's file system reach the same S3, a local endpoint in the tests. This
is configuration of the local branch of the runtime adapter only: the job code is the same.
"""

from __future__ import annotations

import os
from pathlib import Path

from lib.errors import ConfigError
from lib.jobs.jars import Jar, jars_dir

# hadoop-aws at pyspark 3.5.4's Hadoop (hadoop-client-api 3.3.4), with the SDK bundle its
# POM names. SHA-256 of the files Maven Central serves.
S3A_JARS = (
    Jar("org.apache.hadoop", "hadoop-aws", "3.3.4",
        "53f9ae03c681a30a50aa17524bd9790ab596b28481858e54efd989a826ed3a4a"),
    Jar("com.amazonaws", "aws-java-sdk-bundle", "1.12.262",
        "873fe7cf495126619997bec21c44de5d992544aea7e632fdc77adb1a0915bae5"),
)


def is_s3(uri: str | None) -> bool:
    return bool(uri) and str(uri).startswith(("s3://", "s3a://"))


def s3a_jars() -> list[Path]:
    """The cached S3A connector; a clear error if ``make jars`` never fetched it."""
    folder = jars_dir()
    missing = [j.file_name for j in S3A_JARS if not (folder / j.file_name).is_file()]
    if missing:
        raise ConfigError(f"a local run on s3:// needs the S3A connector in {folder} "
                          f"({', '.join(missing)} missing): run `make jars`")
    return [folder / j.file_name for j in S3A_JARS]


def s3a_conf() -> dict[str, str]:
    """Spark settings of a local session that reads and writes ``s3://`` through S3A (its
    jars: :func:`s3a_jars`)."""
    conf = {
        "spark.hadoop.fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "spark.hadoop.fs.AbstractFileSystem.s3.impl": "org.apache.hadoop.fs.s3a.S3A",
        "spark.hadoop.fs.s3a.aws.credentials.provider":
            "com.amazonaws.auth.EnvironmentVariableCredentialsProvider",
    }
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:  # a local S3 (moto's server in the tests): path-style, maybe plain HTTP
        conf |= {"spark.hadoop.fs.s3a.endpoint": endpoint,
                 "spark.hadoop.fs.s3a.path.style.access": "true",
                 "spark.hadoop.fs.s3a.connection.ssl.enabled":
                     str(endpoint.startswith("https://")).lower()}
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        conf["spark.hadoop.fs.s3a.endpoint.region"] = region
    return conf
