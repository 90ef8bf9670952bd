"""Source readers: one per contract ``format``, each turning one raw upload into the
contract's raw frame (:func:`lib.engine.schemas.raw_schema`).

A reader is two functions: ``read_header(fs, upload, contract) -> HeaderPlan`` checks that
the file can be read and maps its columns onto the contract (or raises
:class:`~lib.errors.FileError`, failing that upload alone), and ``read_upload(spark, upload, plan,
contract, ingested_at) -> DataFrame`` builds the lazy raw frame. A new format is a new
module and one line in :data:`lib.sources.registry.READERS`; this module knows none of
them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lib.contracts.contract import (
    CONTRACT_VERSION,
    INGESTED_AT,
    POSITION_BITS,
    QUARANTINE_PARTITION,
    SOURCE_FILE,
    UPLOAD_ID,
    Contract,
)
from lib.errors import FileError
from lib.lake.fs import HadoopFs, java_error_message

_ORDINAL_MASK = (1 << POSITION_BITS) - 1  # monotonically_increasing_id: partition, ordinal


@dataclass(frozen=True)
class Upload:
    """One input file and the identity its rows carry."""

    upload_id: str
    path: str
    ingest_date: date
    expected_records: int | None = None  # counted by the upload check (None: not counted)
    # Whether a quoted field holds a line break (None: not known): only then is a CSV file
    # read whole, in one task; otherwise it is split across tasks.
    multiline: bool | None = None


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
            raise FileError("file not found", "file.not_found", upload.path)
        if not fs.is_file(upload.path):
            raise FileError("not a file", "file.not_found", upload.path)
        return fs.read_first_line(upload.path)
    except FileError:
        raise
    except Exception as exc:  # py4j surfaces Java I/O errors (bad gzip, permissions) here
        raise FileError(f"cannot read the file: {java_error_message(exc)}", "file.unreadable",
                        upload.path) from exc


def record_ordinal() -> Column:
    """The row's read position, 1-based: ``monotonically_increasing_id() + 1``, that is the
    read partition in the high bits and the row's place in it in the low 33 bits. Ordered
    as the file is, so it orders the rows of an upload; when an upload is one read
    partition the low bits are its exact ordinal. The job turns it into the exact ordinal of
    a file read in several partitions with :func:`lib.engine.transforms.ordinal` and the
    rows per partition it counts anyway."""
    return F.monotonically_increasing_id() + 1


def first_in_partition(position: Column) -> Column:
    """True for the first row of its read partition (the first line of an unsplit file)."""
    return (position - 1).bitwiseAND(_ORDINAL_MASK) == 0


def lineage_columns(upload: Upload, contract: Contract, ingested_at: datetime) -> list[Column]:
    """The identity every raw row of ``upload`` carries, and its quarantine partition."""
    return [
        F.lit(upload.upload_id).alias(UPLOAD_ID),
        F.lit(upload.path).alias(SOURCE_FILE),
        F.lit(ingested_at).cast("timestamp").alias(INGESTED_AT),
        F.lit(contract.ref).alias(CONTRACT_VERSION),
        F.lit(upload.ingest_date).alias(QUARANTINE_PARTITION),
    ]


def union_all(frames: list[DataFrame]) -> DataFrame:
    return reduce(DataFrame.unionByName, frames)
