"""What the upload Lambdas read from their environment, and the AWS services they use."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import boto3

from lib.errors import ConfigError
from lib.lake.paths import LakePaths
from lib.lake.s3stream import S3Stream
from lib.ledger.announce import Announcer, NoAnnouncer, announcer_for
from lib.ledger.dynamo import DynamoLedger
from lib.ledger.notify import Notifier, notifier_for
from lib.upload.checks import max_upload_bytes


@dataclass(frozen=True)
class Settings:
    ledger_table: str
    raw_bucket: str
    kms_key_arn: str | None
    alert_topic_arn: str | None
    metrics_namespace: str | None
    max_upload_bytes: int  # the lake-wide ceiling; a contract may lower it
    url_expires_seconds: int = 900
    event_bus: str | None = None  # where "Upload Accepted" events go (with event_source)
    event_source: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        missing = [k for k in ("LEDGER_TABLE", "RAW_BUCKET") if not env.get(k)]
        if missing:
            raise ConfigError(f"environment variable(s) {', '.join(missing)} not set")
        expires = env.get("UPLOAD_URL_EXPIRES_SECONDS", "900")
        if not expires.isdigit() or not 60 <= int(expires) <= 3600:
            raise ConfigError(f"UPLOAD_URL_EXPIRES_SECONDS must be 60..3600, got {expires!r}")
        ceiling = max_upload_bytes(env)
        return cls(
            ledger_table=env["LEDGER_TABLE"], raw_bucket=env["RAW_BUCKET"],
            kms_key_arn=env.get("KMS_KEY_ARN") or None,
            alert_topic_arn=env.get("ALERT_TOPIC_ARN") or None,
            metrics_namespace=env.get("METRICS_NAMESPACE") or None,
            max_upload_bytes=ceiling, url_expires_seconds=int(expires),
            event_bus=env.get("EVENT_BUS_NAME") or None,
            event_source=env.get("EVENT_SOURCE") or None)


def lake_paths(settings: Settings) -> LakePaths:
    """The zones in the raw bucket: raw/, rejected/ (and archive/, the jobs')."""
    return LakePaths.from_root(f"s3://{settings.raw_bucket}")


def object_key(bucket: str, uri: str) -> str:
    """The key of ``s3://<bucket>/<key>``."""
    prefix = f"s3://{bucket}/"
    if not uri.startswith(prefix):
        raise ValueError(f"{uri} is not in bucket {bucket}")
    return uri.removeprefix(prefix)


@dataclass
class Services:
    settings: Settings
    s3: Any
    ledger: DynamoLedger
    notifier: Notifier
    announcer: Announcer = field(default_factory=NoAnnouncer)


def build_services(settings: Settings, session: Any = None) -> Services:
    session = session or boto3.session.Session()
    events = session.client("events") if settings.event_bus and settings.event_source else None
    return Services(settings, session.client("s3"),
                    DynamoLedger(settings.ledger_table, client=session.client("dynamodb")),
                    notifier_for(settings.alert_topic_arn, session.client("sns")
                                 if settings.alert_topic_arn else None),
                    announcer_for(settings.event_bus, settings.event_source, events))


@cache
def services() -> Services:
    """Built once per Lambda container and reused by every invocation."""
    return build_services(Settings.from_env())


def open_object(s3: Any, bucket: str, key: str) -> io.BufferedReader:
    return io.BufferedReader(S3Stream(s3.get_object(Bucket=bucket, Key=key)["Body"]), 1 << 20)
