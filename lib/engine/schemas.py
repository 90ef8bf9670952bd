"""Spark schemas derived from a contract: the raw read frame, the clean zone and the
quarantine zone.

Every field is nullable: that is how Spark stores and reads back Parquet columns, so the
schemas here are exactly what a reader of the zones sees. Required-ness is a row rule
(``<column>.required``), enforced before a row reaches the clean zone."""

from __future__ import annotations

from pyspark.sql import types as T

from lib.contracts.contract import (
    CONTRACT_VERSION,
    ERRORS,
    INGESTED_AT,
    NESTED_FIELDS,
    QUARANTINE_PARTITION,
    RAW_RECORD,
    SOURCE_FILE,
    SOURCE_RECORD,
    UPLOAD_ID,
    Contract,
    DataType,
)


def spark_type(dtype: DataType) -> T.DataType:
    if dtype.name == "decimal":
        return T.DecimalType(dtype.precision, dtype.scale)
    return {
        "string": T.StringType(),
        "int": T.IntegerType(),
        "bigint": T.LongType(),
        "date": T.DateType(),
        "timestamp": T.TimestampType(),
    }[dtype.name]


def lineage_fields() -> list[T.StructField]:
    return [
        T.StructField(UPLOAD_ID, T.StringType()),
        T.StructField(SOURCE_FILE, T.StringType()),
        T.StructField(INGESTED_AT, T.TimestampType()),
        T.StructField(CONTRACT_VERSION, T.StringType()),
    ]


def raw_schema(contract: Contract) -> T.StructType:
    """The frame a source reader hands to :func:`lib.engine.transforms.apply_contract`: every
    contract column as a nullable string, the names of JSON fields that held an object or
    array (null for CSV), the raw text of malformed records, the record's ordinal in its
    file, lineage and the quarantine partition."""
    return T.StructType(
        [T.StructField(c.name, T.StringType()) for c in contract.columns]
        + [
            T.StructField(NESTED_FIELDS, T.StringType()),
            T.StructField(RAW_RECORD, T.StringType()),
            T.StructField(SOURCE_RECORD, T.LongType()),
            *lineage_fields(),
            T.StructField(QUARANTINE_PARTITION, T.DateType()),
        ]
    )


def clean_schema(contract: Contract) -> T.StructType:
    """Schema of the clean zone, partition columns included (last)."""
    fields = [
        T.StructField(c.name, spark_type(c.type))
        for c in contract.columns
    ]
    fields += [T.StructField(d.name, spark_type(d.type)) for d in contract.derived]
    fields += lineage_fields()
    data = [f for f in fields if f.name not in contract.partition_by]
    parts = [next(f for f in fields if f.name == p) for p in contract.partition_by]
    return T.StructType(data + parts)


def quarantine_schema(contract: Contract) -> T.StructType:
    """Schema of the quarantine zone: raw values as strings, every reason code, lineage."""
    return T.StructType(
        [T.StructField(c.name, T.StringType()) for c in contract.columns]
        + [
            T.StructField(ERRORS, T.ArrayType(T.StringType())),
            T.StructField(RAW_RECORD, T.StringType()),
            T.StructField(SOURCE_RECORD, T.LongType()),
            *lineage_fields(),
            T.StructField(QUARANTINE_PARTITION, T.DateType()),
        ]
    )
