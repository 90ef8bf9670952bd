"""Read raw CSV uploads into the contract's raw frame (:func:`lib.engine.schemas.raw_schema`).

Each file is read on its own, with its own header mapped onto the contract (column order is
free per file), by Spark's CSV reader (RFC 4180: quoted fields may hold commas and quotes).
Every field is read as a string; a record whose field count differs from the header is kept
whole in ``_raw_record`` (PERMISSIVE mode) and later quarantined as ``row.malformed``.

A file whose upload check found no line break inside a quoted field is read line by line,
split across tasks (and Glue workers) like any splittable text file. Only a file that needs
it, or one checked before the check recorded it, is read in multi-line mode, whole, by one
task. gzip is never splittable: a big upload is better sent uncompressed (or in parts).
``_source_record`` is the record's read position (:func:`lib.sources.base.record_ordinal`);
the job makes it the exact 1-based ordinal in the file, header excluded.
"""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lib.contracts.contract import NESTED_FIELDS, RAW_RECORD, SOURCE_RECORD, Contract
from lib.contracts.header import HeaderPlan
from lib.sources.base import Upload, lineage_columns, record_ordinal
from lib.sources.files import csv_header

CSV_OPTIONS = {
    "header": "true",
    "multiLine": "true",
    "quote": '"',
    "escape": '"',  # RFC 4180: a quote inside a quoted field is doubled
    "sep": ",",
    "encoding": "UTF-8",
    "mode": "PERMISSIVE",
    "columnNameOfCorruptRecord": RAW_RECORD,
    "enforceSchema": "true",
}
# No quoted field of the file holds a line break (the upload check says so): split reads.
LINE_OPTIONS = {**CSV_OPTIONS, "multiLine": "false"}
# Every field of a record is tokenised, also those of columns the contract does not read:
# with pruning, a line read split (not multi-line) that has too few or too many fields is
# not seen as malformed when the file has a column the contract drops, and its missing
# fields are read as empty values instead.
SESSION_CONF = {"spark.sql.csv.parser.columnPruning.enabled": "false"}


read_header = csv_header  # the check is plain Python, shared with the DuckDB engine


def read_upload(spark: SparkSession, upload: Upload, plan: HeaderPlan, contract: Contract,
                ingested_at: datetime) -> DataFrame:
    """One CSV file -> the contract's raw frame."""
    schema = T.StructType(
        [T.StructField(n, T.StringType()) for n in plan.read_names]
        + [T.StructField(RAW_RECORD, T.StringType())]
    )
    options = CSV_OPTIONS if upload.multiline is not False else LINE_OPTIONS
    df = spark.read.schema(schema).options(**options).csv(upload.path)
    present = set(plan.matched)
    return df.select(
        *[
            (F.col(c) if c in present else F.lit(None).cast("string")).alias(c)
            for c in contract.column_names
        ],
        F.lit(None).cast("string").alias(NESTED_FIELDS),
        F.col(RAW_RECORD),
        record_ordinal().alias(SOURCE_RECORD),
        *lineage_columns(upload, contract, ingested_at),
    )

