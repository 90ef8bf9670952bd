"""Arguments shared by every contract-driven job, and their translation into lake paths."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lib.jobs.argv import JobArgumentError
from lib.jobs.publish import DEFAULT_MAX_RECORDS_PER_FILE
from lib.jobs.register import Catalog, GlueRegistrar, LocalRegistrar
from lib.lake.catalog import LocalCatalog
from lib.lake.paths import LakePaths, local_path, to_uri
from lib.ledger.base import Ledger
from lib.ledger.dynamo import DEFAULT_RETENTION_DAYS, DynamoLedger
from lib.ledger.sqlite import open_ledger

REQUIRED = ("lake_root",)
OPTIONAL: dict[str, str | None] = {
    "upload_ids": None,  # JSON array of upload ids; default: the ledger's pending uploads
    "raw_root": None,  # per-zone overrides, e.g. one S3 bucket per zone
    "clean_root": None,
    "quarantine_root": None,
    "reports_root": None,
    "max_records_per_file": str(DEFAULT_MAX_RECORDS_PER_FILE),
    # On AWS: the DynamoDB ledger (default: the SQLite ledger under a local lake root), the
    # SNS topic told about FAILED uploads, and the CloudWatch namespace of the run's metrics.
    "ledger_table": None,
    "ledger_retention_days": None,
    "alert_topic_arn": None,
    "metrics_namespace": None,
    # EventBridge: where an "Uploads Pending" event goes after a run that leaves ACCEPTED
    # uploads waiting (lib.ledger.announce); both or neither.
    "event_bus_name": None,
    "event_source": None,
    "aws_region": None,  # region of the ledger table and topic (default: boto3's own lookup)
    # Where a run registers the partitions it published (lib.jobs.register): the Glue
    # databases of the clean and the quarantine tables (both or neither) and the prefix of
    # table names, as the crawler definitions say; without them, the local catalog of a
    # local lake root (none for a lake on S3).
    "clean_database": None,
    "quarantine_database": None,
    "table_prefix": "",
    # The fast lane: take the dataset's ACCEPTED uploads of at most this many bytes (instead
    # of --upload_ids or every pending upload).
    "small_uploads_only": None,
}


def job_argv(dataset: str, version: int, lake_root: str | Path,
             upload_ids: Sequence[str] | None = None) -> list[str]:
    """The arguments of a run of job ``<dataset>_v<version>`` on the lake at ``lake_root``:
    ``upload_ids``, or (None) the dataset's pending uploads."""
    argv = ["--JOB_NAME", f"{dataset}_v{version}", "--lake_root", to_uri(lake_root)]
    if upload_ids is not None:
        argv += ["--upload_ids", json.dumps(list(upload_ids))]
    return argv


def lake_paths(args: Mapping[str, str | None]) -> LakePaths:
    return LakePaths.from_root(
        str(args["lake_root"]),
        raw=args.get("raw_root"),
        clean=args.get("clean_root"),
        quarantine=args.get("quarantine_root"),
        reports=args.get("reports_root"),
    )


def ledger(args: Mapping[str, str | None]) -> Ledger:
    """The DynamoDB ledger ``--ledger_table`` names, else the lake root's SQLite ledger."""
    table = args.get("ledger_table")
    if not table:
        return open_ledger(str(args["lake_root"]))
    text = args.get("ledger_retention_days") or str(DEFAULT_RETENTION_DAYS)
    if not text.isdigit() or int(text) < 1:
        raise JobArgumentError(f"--ledger_retention_days must be a positive number of days, "
                               f"got {text!r}")
    return DynamoLedger(table, client=aws_client(args, "dynamodb"), retention_days=int(text))


def catalog(args: Mapping[str, str | None]) -> Catalog | None:
    """The Glue Data Catalog with ``--clean_database`` and ``--quarantine_database``, else
    the local catalog of a local lake root, else none."""
    clean, quarantine = args.get("clean_database"), args.get("quarantine_database")
    prefix = args.get("table_prefix") or ""
    if bool(clean) != bool(quarantine):
        raise JobArgumentError("--clean_database and --quarantine_database go together: give "
                               "both (the Glue databases of the crawlers) or neither")
    if clean and quarantine:
        return GlueRegistrar(aws_client(args, "glue"),
                             {"clean": clean, "quarantine": quarantine}, prefix)
    root = str(args["lake_root"])
    if local_path(to_uri(root)) is None:
        return None
    return LocalRegistrar(LocalCatalog.for_lake(root), table_prefix=prefix)


def aws_client(args: Mapping[str, str | None], service: str) -> Any:
    import boto3  # only a run on AWS needs it: a local run (the fast lane) starts faster

    return boto3.client(service, region_name=args.get("aws_region") or None)


def upload_ids(args: Mapping[str, str | None]) -> list[str] | None:
    text = args.get("upload_ids")
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise JobArgumentError(f"--upload_ids must be a JSON array of upload ids, got {text!r}: "
                               f"{exc}") from exc
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise JobArgumentError(f"--upload_ids must be a JSON array of upload ids, got {text!r}")
    return value


def small_uploads_only(args: Mapping[str, str | None]) -> int | None:
    text = args.get("small_uploads_only")
    if text is None:
        return None
    if not text.isdigit():
        raise JobArgumentError(f"--small_uploads_only must be a number of bytes, got {text!r}")
    if args.get("upload_ids") is not None:
        raise JobArgumentError("--small_uploads_only and --upload_ids exclude each other")
    return int(text)


def max_records_per_file(args: Mapping[str, str | None]) -> int:
    text = args.get("max_records_per_file") or str(DEFAULT_MAX_RECORDS_PER_FILE)
    if not text.isdigit() or int(text) < 1:
        raise JobArgumentError(f"--max_records_per_file must be a positive integer, got {text!r}")
    return int(text)
