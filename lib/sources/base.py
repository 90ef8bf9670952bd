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
from datetime import datetime
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
from lib.sources.files import Upload, open_check

__all__ = ["Reader", "Upload", "first_in_partition", "lineage_columns", "open_check",
           "record_ordinal", "union_all"]

_ORDINAL_MASK = (1 << POSITION_BITS) - 1  # monotonically_increasing_id: partition, ordinal


@dataclass(frozen=True)
class Reader:
    read_header: Callable
    read_upload: Callable
    # Session settings the read needs while the batch runs (restored afterwards).
    session_conf: Mapping[str, str] = field(default_factory=dict)


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
