"""Source readers: one per contract ``format``, each turning one raw upload into the
contract's raw frame (:func:`lib.schemas.raw_schema`).

A reader is two functions: ``read_header(fs, upload, contract) -> HeaderPlan`` checks that
the file can be read and maps its columns onto the contract (or raises
:class:`SourceError`, failing that upload alone), and ``read_upload(spark, upload, plan,
contract, ingested_at) -> DataFrame`` builds the lazy raw frame. A new format is a new
module and one line in :func:`reader_for`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lib.contract import (
    CONTRACT_VERSION,
    INGESTED_AT,
    QUARANTINE_PARTITION,
    SOURCE_FILE,
    UPLOAD_ID,
    Contract,
)
from lib.hadoop_fs import HadoopFs, java_error_message

_ORDINAL_MASK = (1 << 33) - 1  # monotonically_increasing_id: partition id << 33 | ordinal


class SourceError(ValueError):
    """One input file cannot be processed; the rest of the batch goes on."""

    def __init__(self, source: str, message: str, code: str) -> None:
        self.source = source
        self.code = code
        super().__init__(f"{source}: {message}")


@dataclass(frozen=True)
class Upload:
    """One input file and the identity its rows carry."""

    upload_id: str
    path: str
    ingest_date: date


@dataclass(frozen=True)
class Reader:
    read_header: Callable
    read_upload: Callable
    # Session settings the read needs while the batch runs (restored afterwards).
    session_conf: Mapping[str, str] = field(default_factory=dict)


def open_check(fs: HadoopFs, upload: Upload) -> str | None:
    """The file's first line, proving it exists and can be read (gzip included)."""
    try:
        if not fs.exists(upload.path):
            raise SourceError(upload.path, "file not found", "file.not_found")
        if not fs.is_file(upload.path):
            raise SourceError(upload.path, "not a file", "file.not_found")
        return fs.read_first_line(upload.path)
    except SourceError:
        raise
    except Exception as exc:  # py4j surfaces Java I/O errors (bad gzip, permissions) here
        raise SourceError(upload.path, f"cannot read the file: {java_error_message(exc)}",
                          "file.unreadable") from exc


def record_ordinal() -> Column:
    """1-based position of the row in its read partition: the record's ordinal in its file
    when the file is read as one partition (every reader makes sure it is)."""
    return (F.monotonically_increasing_id().bitwiseAND(_ORDINAL_MASK)) + 1


def lineage_columns(upload: Upload, contract: Contract, ingested_at: datetime) -> list[Column]:
    """The identity every raw row of ``upload`` carries, and its quarantine partition."""
    return [
        F.lit(upload.upload_id).alias(UPLOAD_ID),
        F.lit(upload.path).alias(SOURCE_FILE),
        F.lit(ingested_at).cast("timestamp").alias(INGESTED_AT),
        F.lit(contract.ref).alias(CONTRACT_VERSION),
        F.lit(upload.ingest_date).alias(QUARANTINE_PARTITION),
    ]


def reader_for(contract: Contract) -> Reader:
    if contract.format == "csv":
        from lib import csv_source
        return Reader(csv_source.read_header, csv_source.read_upload)
    if contract.format == "jsonl":
        from lib import json_source
        return Reader(json_source.read_header, json_source.read_upload,
                      json_source.SESSION_CONF)
    raise ValueError(f"{contract.ref}: no reader for format {contract.format!r}")


def union_all(frames: list[DataFrame]) -> DataFrame:
    return reduce(DataFrame.unionByName, frames)
