"""Contract enforcement as pure DataFrame transforms.

    raw frame --validate--> validated --resolve_duplicates--> classified --split--> (clean, quarantine)

* the **raw frame** (:func:`lib.schemas.raw_schema`) has every contract column as a string
  exactly as read, plus ``_raw_record`` (set only for malformed records), the record's
  ordinal in its file, lineage and ``ingest_date``;
* :func:`validate` trims, normalises and casts every column and evaluates every row rule in
  one projection; ``_errors`` holds all failed reason codes, sorted;
* :func:`resolve_duplicates` handles repeats within one upload among rows that passed every
  other rule: identical rows collapse to one, rows sharing the unique key with different
  content are all quarantined with ``<key>.conflict``. It adds ``_disposition``;
* :func:`split` projects the clean rows (PII hashed, derived columns added) and the
  quarantined rows (raw strings, reason codes, lineage).

Nothing here reads or writes data or touches a global SparkSession.
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from lib.contract import (
    ERRORS,
    LINEAGE_COLUMNS,
    QUARANTINE_PARTITION,
    RAW_RECORD,
    ROW_MALFORMED,
    SOURCE_RECORD,
    UPLOAD_ID,
    Contract,
)
from lib.rules import check_column, clean_string, typed_value
from lib.schemas import clean_schema, quarantine_schema, spark_type

RAW = "_raw"
DISPOSITION = "_disposition"
CLEAN = "clean"
QUARANTINE = "quarantine"
DUPLICATE = "duplicate"
DISPOSITIONS = (CLEAN, QUARANTINE, DUPLICATE)

Transform = Callable[[DataFrame], DataFrame]

# Checks evaluated per row in `validate`; the others need the whole upload or the reader.
_NOT_ROW_LOCAL = ("malformed", "conflict")


def validate(contract: Contract) -> Transform:
    """Clean, cast and check every contract column in a single projection.

    Output: each contract column with its clean type (PII not yet hashed), ``_raw`` (a struct
    of the values as read), ``_errors`` (sorted reason codes, empty when the row is valid),
    and the reader's bookkeeping and lineage columns unchanged. A malformed record carries
    only ``row.malformed``: its fields are not where the header says they are.
    """
    def transform(df: DataFrame) -> DataFrame:
        strings = {c.name: clean_string(F.col(c.name), c.normalize) for c in contract.columns}
        typed = {c.name: typed_value(strings[c.name], c) for c in contract.columns}
        codes = [
            check_column(chk, contract.column(chk.column), strings[chk.column], typed[chk.column])
            for chk in contract.checks()
            if chk.kind not in _NOT_ROW_LOCAL
        ]
        rule_errors = F.array_sort(F.array_distinct(F.array_compact(F.array(*codes))))
        errors = (
            F.when(F.col(RAW_RECORD).isNotNull(), F.array(F.lit(ROW_MALFORMED)))
            .otherwise(rule_errors)
        )
        return df.select(
            *[typed[c.name].alias(c.name) for c in contract.columns],
            F.struct(*[F.col(c.name) for c in contract.columns]).alias(RAW),
            errors.alias(ERRORS),
            RAW_RECORD,
            SOURCE_RECORD,
            *LINEAGE_COLUMNS,
            QUARANTINE_PARTITION,
        )
    return transform


def resolve_duplicates(contract: Contract) -> Transform:
    """Classify every row as clean, quarantine or duplicate (``_disposition``).

    Among the rows of one upload that passed every rule: rows equal in all contract columns
    collapse to the first in file order (the rest are ``duplicate``); rows sharing the
    unique column with different content are all quarantined with ``<key>.conflict``.
    One window, one shuffle; rows with errors pass through untouched.
    """
    names = list(contract.column_names)
    key = contract.unique_column
    conflict_code = key.code("conflict") if key is not None else None

    def transform(df: DataFrame) -> DataFrame:
        valid = F.size(ERRORS) == 0
        partition = [F.col(UPLOAD_ID), valid] + ([F.col(key.name)] if key else
                                                 [F.col(n) for n in names])
        ordered = Window.partitionBy(*partition).orderBy(SOURCE_RECORD)
        whole = ordered.rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)
        content = F.struct(*[F.col(n) for n in names])
        conflict: Column = (
            valid & ~F.min(content).over(whole).eqNullSafe(F.max(content).over(whole))
            if key is not None else F.lit(False)
        )
        first = F.row_number().over(ordered) == 1
        disposition = (
            F.when(~valid | conflict, F.lit(QUARANTINE))
            .when(first, F.lit(CLEAN))
            .otherwise(F.lit(DUPLICATE))
        )
        errors = (F.when(conflict, F.array(F.lit(conflict_code))).otherwise(F.col(ERRORS))
                  if key is not None else F.col(ERRORS))
        return (
            df.withColumn(DISPOSITION, disposition)
            .withColumn(ERRORS, errors)
        )
    return transform


def apply_contract(contract: Contract) -> Transform:
    """raw frame -> classified frame (validated, with ``_disposition``)."""
    def transform(df: DataFrame) -> DataFrame:
        return df.transform(validate(contract)).transform(resolve_duplicates(contract))
    return transform


def clean_rows(contract: Contract) -> Transform:
    """Classified frame -> clean zone rows: PII hashed, derived columns computed, lineage
    kept, columns in :func:`lib.schemas.clean_schema` order."""
    def transform(df: DataFrame) -> DataFrame:
        exprs: dict[str, Column] = {}
        for c in contract.columns:
            v = F.col(c.name)
            exprs[c.name] = F.sha2(v, 256) if c.pii == "sha256" else v
        for d in contract.derived:
            exprs[d.name] = F.expr(d.expression).cast(spark_type(d.type))
        for n in LINEAGE_COLUMNS:
            exprs[n] = F.col(n)
        rows = df.where(F.col(DISPOSITION) == CLEAN)
        return rows.select(*[exprs[f.name].alias(f.name) for f in clean_schema(contract)])
    return transform


def quarantine_rows(contract: Contract) -> Transform:
    """Classified frame -> quarantine rows: the raw values as strings, every reason code,
    the raw text of malformed records, the record's ordinal in its file and lineage."""
    def transform(df: DataFrame) -> DataFrame:
        raw_cols = {c.name: F.col(f"{RAW}.{c.name}") for c in contract.columns}
        rows = df.where(F.col(DISPOSITION) == QUARANTINE)
        return rows.select(*[
            raw_cols.get(f.name, F.col(f.name)).alias(f.name)
            for f in quarantine_schema(contract)
        ])
    return transform


def split(contract: Contract, classified: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(clean, quarantine) from a classified frame."""
    return (
        classified.transform(clean_rows(contract)),
        classified.transform(quarantine_rows(contract)),
    )


def disposition_counts(classified: DataFrame) -> DataFrame:
    """Rows per upload, disposition and error set: a small aggregate (one row per distinct
    combination) from which every count of the run report is derived."""
    return classified.groupBy(UPLOAD_ID, DISPOSITION, ERRORS).count()
