"""Read raw JSON Lines uploads into the contract's raw frame (:func:`lib.engine.schemas.raw_schema`).

One line is one record; blank lines are skipped (they hold no record) but still count for
``_source_record``, which is the record's 1-based line number in its file. Each line is
parsed three ways by ``from_json`` (native, no Python), every contract field:

* as a string: the value as read (a number or boolean becomes its text, an object or array
  its JSON text, kept for the quarantine);
* as an array and as a map: non-null only when the field held an array / an object, which
  lists the field in ``_nested_fields`` (reported as ``<field>.type``); so does a number
  beyond the double range (``1e400``).

A line that is not one JSON object keeps its text in ``_raw_record`` and is quarantined as
``row.malformed``: an array, a scalar, broken JSON, ``NaN`` or ``Infinity`` (not JSON), a
key repeated at the top level (no value silently wins), a line nested deeper than Jackson's
limit (1000 levels), and a byte-order mark anywhere but at the start of the file. Keys are
matched to contract columns exactly (JSON keys are case-sensitive); other keys are ignored.
The upload check (:mod:`lib.upload.structure`) counts the same lines the same way.

A file is read as one partition (``SESSION_CONF``: files are never split), so that the line
number can be taken from the read order, as for CSV.
"""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lib.contracts.contract import NESTED_FIELDS, RAW_RECORD, SOURCE_RECORD, Contract
from lib.contracts.header import HeaderPlan
from lib.sources.base import Upload, first_in_partition, lineage_columns, record_ordinal
from lib.sources.files import jsonl_header

_HUGE = str(1 << 50)
# Never split a file: one read partition per file keeps line numbers exact.
SESSION_CONF = {
    "spark.sql.files.maxPartitionBytes": _HUGE,
    "spark.sql.files.openCostInBytes": _HUGE,
    "spark.sql.json.enablePartialResults": "true",  # a bad field does not null the record
}
_LINE = "value"


read_header = jsonl_header  # the check is plain Python, shared with the DuckDB engine


def _struct(contract: Contract, dtype: T.DataType, corrupt: bool = False) -> T.StructType:
    fields = [T.StructField(n, dtype) for n in contract.column_names]
    if corrupt:
        fields.append(T.StructField(RAW_RECORD, T.StringType()))
    return T.StructType(fields)


# A number beyond the double range (1e400) reaches a string field as the JSON text of an
# infinite double, quotes included: it is no value of any column type.
_NON_FINITE = ('"Infinity"', '"-Infinity"', '"NaN"')


def _nested_fields(contract: Contract, line: Column, parsed: Column) -> Column:
    """Comma-separated contract fields whose value cannot be read as text: an object, an
    array, or a number beyond the double range (each reported as ``<field>.type``)."""
    arrays = F.from_json(line, _struct(contract, T.ArrayType(T.StringType())))
    maps = F.from_json(line, _struct(contract, T.MapType(T.StringType(), T.StringType())))
    flags = [F.when(arrays[n].isNotNull() | maps[n].isNotNull()
                    | parsed[n].isin(*_NON_FINITE), F.lit(n))
             for n in contract.column_names]
    listed = F.concat_ws(",", *flags)  # skips nulls
    return F.when(listed != "", listed)


def read_upload(spark: SparkSession, upload: Upload, plan: HeaderPlan, contract: Contract,
                ingested_at: datetime) -> DataFrame:
    """One JSON Lines file -> the contract's raw frame."""
    lines = spark.read.text(upload.path).select(
        F.col(_LINE),
        record_ordinal().alias(SOURCE_RECORD),
    )
    # Filter after numbering: the projection holds a non-deterministic expression, so the
    # filter is not pushed below it and blank lines keep their place in the count.
    line = F.when(first_in_partition(F.col(SOURCE_RECORD)),  # a BOM starts the file only
                  F.regexp_replace(F.col(_LINE), "^\ufeff", "")).otherwise(F.col(_LINE))
    parsed = F.from_json(line, _struct(contract, T.StringType(), corrupt=True),
                         {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": RAW_RECORD,
                          "allowNonNumericNumbers": "false"})  # NaN, Infinity: not JSON
    keys = F.json_object_keys(line)
    records = lines.where(F.trim(line) != "").select(
        parsed.alias("r"), F.col(SOURCE_RECORD), line.alias(_LINE),
        # A key repeated at the top level: the object is not one record (no value silently wins).
        F.coalesce(F.size(keys) != F.size(F.array_distinct(keys)), F.lit(False)).alias("_dup"))
    records = records.select("*", _nested_fields(contract, F.col(_LINE), F.col("r"))
                             .alias(NESTED_FIELDS))
    malformed = F.col(f"r.{RAW_RECORD}").isNotNull() | F.col("_dup")
    return records.select(
        *[F.when(~malformed, F.col(f"r.{n}")).alias(n) for n in contract.column_names],
        F.when(~malformed, F.col(NESTED_FIELDS)).alias(NESTED_FIELDS),
        F.when(malformed, F.col(_LINE)).alias(RAW_RECORD),
        F.col(SOURCE_RECORD),
        *lineage_columns(upload, contract, ingested_at),
    )
