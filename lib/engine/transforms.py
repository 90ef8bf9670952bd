"""Contract enforcement as pure DataFrame transforms.

    raw frame --validate--> validated --resolve_duplicates--> classified --split--> (clean, quarantine)

* the **raw frame** (:func:`lib.engine.schemas.raw_schema`) has every contract column as a string
  exactly as read, plus ``_raw_record`` (set only for malformed records), the record's
  ordinal in its file, lineage and ``ingest_date``;
* :func:`validate` trims, normalises and casts every column and evaluates every row rule in
  three chained projections (cleaned strings, typed values, reason codes), each value
  computed once per row; ``_errors`` holds all failed reason codes, sorted;
* :func:`resolve_duplicates` handles repeats within one upload among rows that passed every
  other rule: identical rows collapse to one, rows sharing the unique key with different
  content are all quarantined with ``<key>.conflict``. It adds ``_disposition`` and keeps
  the raw values (``_raw``) only on quarantined rows;
* :func:`apply_contract` chains the two, first hash-partitioning rows by (upload, unique
  key) so validation runs after that shuffle, in parallel, and the window needs no other;
* :func:`split` projects the clean rows (PII hashed, derived columns added) and the
  quarantined rows (raw strings, reason codes, lineage).

Nothing here reads or writes data or touches a global SparkSession.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from pyspark.errors import ParseException
from pyspark.sql import Column, DataFrame, Row, Window
from pyspark.sql import functions as F

from lib.contracts.contract import (
    ERRORS,
    LINEAGE_COLUMNS,
    NESTED_FIELDS,
    POSITION_BITS,
    QUARANTINE_PARTITION,
    RAW_RECORD,
    ROW_MALFORMED,
    SOURCE_RECORD,
    UPLOAD_ID,
    Contract,
    ContractError,
)
from lib.contracts.contract import Column as ContractColumn
from lib.engine.rules import check_column, cleaned_value, folds_case, received_value, typed_value
from lib.engine.schemas import clean_schema, quarantine_schema, spark_type

RAW = "_raw"
DISPOSITION = "_disposition"
DEDUPE_KEY = "_dedupe_key"  # transient: the typed unique key rows are partitioned by
CLEAN = "clean"
QUARANTINE = "quarantine"
DUPLICATE = "duplicate"
DISPOSITIONS = (CLEAN, QUARANTINE, DUPLICATE)

Transform = Callable[[DataFrame], DataFrame]

# Checks evaluated per row in `validate`; the others need the whole upload or the reader.
_NOT_ROW_LOCAL = ("malformed", "conflict")


def _error_codes(codes: dict[str, list[Column]]) -> Column:
    """Sorted, distinct, non-null reason codes as an array, without higher-order functions
    (``filter``/``array_sort`` would drop the whole projection out of code generation).
    Codes are sorted when the plan is built; checks sharing a code are merged; codes never
    contain commas."""
    merged = [F.coalesce(*cols) if len(cols) > 1 else cols[0]
              for _, cols in sorted(codes.items())]
    joined = F.concat_ws(",", *merged)
    return F.when(joined == "", F.array().cast("array<string>")).otherwise(F.split(joined, ","))


def _cleaned(name: str) -> str:
    return f"__clean_{name}"


def _nested(name: str) -> str:
    return f"__nested_{name}"


def _received(name: str) -> str:
    return f"__received_{name}"


def _character_rules(contract: Contract) -> list[ContractColumn]:
    """Columns that map case and have a pattern or enum rule: checked on the received value."""
    return [c for c in contract.columns
            if folds_case(c) and any(r.kind in ("pattern", "enum") for r in c.rules)]


def _is_nested(name: str) -> Column:
    """True when the JSON reader listed ``name`` among the fields holding an object/array."""
    listed = F.concat(F.lit(","), F.col(NESTED_FIELDS), F.lit(","))
    return F.coalesce(F.instr(listed, f",{name},") > 0, F.lit(False))


def validate(contract: Contract) -> Transform:
    """Clean, cast and check every contract column.

    Output: each contract column with its clean type (PII not yet hashed), ``_raw`` (a struct
    of the values as read), ``_errors`` (sorted reason codes, empty when the row is valid),
    and the reader's bookkeeping and lineage columns unchanged. A malformed record carries
    only ``row.malformed``: its fields are not where the header says they are.

    Three projections (cleaned strings, typed values, reason codes) so that each cleaned
    string and typed value is computed once per row and shared by every rule that reads it.
    """
    names = contract.column_names
    fixed = [RAW_RECORD, SOURCE_RECORD, *LINEAGE_COLUMNS, QUARANTINE_PARTITION]
    json = contract.format == "jsonl"

    def transform(df: DataFrame) -> DataFrame:
        passthrough = fixed + ([DEDUPE_KEY] if DEDUPE_KEY in df.columns else [])
        nested = {c.name: _is_nested(c.name) for c in contract.columns} if json else {}
        received = _character_rules(contract)
        received_names = {c.name for c in received}

        def clean(c: ContractColumn, as_received: bool = False) -> Column:
            value = (received_value if as_received else cleaned_value)(F.col(c.name), c)
            return F.when(~nested[c.name], value) if json else value

        cleaned = df.select(
            *[clean(c).alias(_cleaned(c.name)) for c in contract.columns],
            *[clean(c, as_received=True).alias(_received(c.name)) for c in received],
            *[flag.alias(_nested(n)) for n, flag in nested.items()],
            F.struct(*[F.col(n) for n in names]).alias(RAW),
            *passthrough,
        )
        typed = cleaned.select(
            "*",
            *[typed_value(F.col(_cleaned(c.name)), c).alias(c.name) for c in contract.columns],
        )
        codes: dict[str, list[Column]] = {}
        for chk in contract.checks():
            if chk.kind in _NOT_ROW_LOCAL:
                continue
            col = contract.column(chk.column)
            codes.setdefault(chk.code, []).append(
                check_column(chk, col, F.col(_cleaned(col.name)), F.col(col.name),
                             F.col(_nested(col.name)) if json else None,
                             F.col(_received(col.name)) if col.name in received_names else None))
        errors = (
            F.when(F.col(RAW_RECORD).isNotNull(), F.array(F.lit(ROW_MALFORMED)))
            .otherwise(_error_codes(codes))
        )
        return typed.select(*names, RAW, errors.alias(ERRORS), *passthrough)
    return transform


def resolve_duplicates(contract: Contract) -> Transform:
    """Classify every row as clean, quarantine or duplicate (``_disposition``).

    Among the rows of one upload that passed every rule: rows equal in all contract columns
    collapse to the first in file order (the rest are ``duplicate``); rows sharing the
    unique column with different content are all quarantined with ``<key>.conflict``.
    Rows with errors are quarantined and never count as duplicates or conflicts.

    One window over (upload, key). When the frame carries ``_dedupe_key`` (see
    :func:`apply_contract`) the window reuses that partitioning and adds no shuffle.
    """
    names = list(contract.column_names)
    key = contract.unique_column

    def transform(df: DataFrame) -> DataFrame:
        if DEDUPE_KEY in df.columns:
            partition = [F.col(UPLOAD_ID), F.col(DEDUPE_KEY)]
        elif key is not None:
            partition = [F.col(UPLOAD_ID), F.col(key.name)]
        else:
            partition = [F.col(UPLOAD_ID), *[F.col(n) for n in names]]
        valid = F.size(ERRORS) == 0
        ordered = Window.partitionBy(*partition).orderBy(SOURCE_RECORD)
        so_far = ordered.rowsBetween(Window.unboundedPreceding, Window.currentRow)
        whole = ordered.rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)
        # min/max skip nulls, so only valid rows' content is compared
        content = F.when(valid, F.struct(*[F.col(n) for n in names]))
        conflict: Column = (
            valid & ~F.min(content).over(whole).eqNullSafe(F.max(content).over(whole))
            if key is not None else F.lit(False)
        )
        first_valid = F.count(F.when(valid, 1)).over(so_far) == 1
        disposition = (
            F.when(~valid | conflict, F.lit(QUARANTINE))
            .when(first_valid, F.lit(CLEAN))
            .otherwise(F.lit(DUPLICATE))
        )
        errors = (F.when(conflict, F.array(F.lit(key.code("conflict")))).otherwise(F.col(ERRORS))
                  if key is not None else F.col(ERRORS))
        out = df.withColumn(DISPOSITION, disposition).withColumn(ERRORS, errors)
        # only quarantined rows keep their raw values: the frame stays small when persisted
        out = out.withColumn(RAW, F.when(F.col(DISPOSITION) == QUARANTINE, F.col(RAW)))
        return out.drop(DEDUPE_KEY)
    return transform


def apply_contract(contract: Contract) -> Transform:
    """raw frame -> classified frame (validated, with ``_disposition``).

    With a unique column, rows are first hash-partitioned by (upload, typed key), so that
    validation runs in parallel after that shuffle (a multi-line CSV file is read by a
    single task) and the duplicate window needs no second shuffle."""
    key = contract.unique_column

    def transform(df: DataFrame) -> DataFrame:
        if key is not None:
            typed_key = typed_value(cleaned_value(F.col(key.name), key), key)
            df = df.withColumn(DEDUPE_KEY, typed_key).repartition(UPLOAD_ID, DEDUPE_KEY)
        return df.transform(validate(contract)).transform(resolve_duplicates(contract))
    return transform


def derived_columns(contract: Contract) -> dict[str, Column]:
    """Each derived column as a Column of its type, parsed by Spark's own parser: an
    expression that does not parse is a :class:`~lib.contracts.contract.ContractError`
    naming the file and the field."""
    out: dict[str, Column] = {}
    for i, d in enumerate(contract.derived):
        try:
            out[d.name] = F.expr(d.expression).cast(spark_type(d.type))
        except ParseException as exc:
            first = str(exc).strip().splitlines()[0]
            raise ContractError(contract.source, f"derived[{i}].expression",
                                f"{d.expression!r} does not parse: {first}") from None
    return out


def clean_rows(contract: Contract) -> Transform:
    """Classified frame -> clean zone rows: PII hashed, derived columns computed, lineage
    kept, columns in :func:`lib.engine.schemas.clean_schema` order."""
    def transform(df: DataFrame) -> DataFrame:
        exprs: dict[str, Column] = {}
        for c in contract.columns:
            v = F.col(c.name)
            exprs[c.name] = F.sha2(v, 256) if c.pii == "sha256" else v
        exprs.update(derived_columns(contract))
        for n in LINEAGE_COLUMNS:
            exprs[n] = F.col(n)
        rows = df.where(F.col(DISPOSITION) == CLEAN)
        return rows.select(*[exprs[f.name].alias(f.name) for f in clean_schema(contract)])
    return transform


READ_PARTITION = "_read_partition"
Offsets = Mapping[tuple[str, int], int]  # (upload, read partition) -> rows in earlier ones


def read_partition(position: Column) -> Column:
    """The read partition of a row's read position (``_source_record`` of the raw frame)."""
    return F.shiftright(position - 1, POSITION_BITS)


def ordinal(position: Column, offsets: Offsets | None = None) -> Column:
    """The exact 1-based ordinal of a record in its file from its read position: its place in
    its read partition plus the rows of the upload's earlier partitions (``offsets``, from
    the rows per partition :func:`disposition_counts` counts; none: one partition)."""
    within = (position - 1).bitwiseAND((1 << POSITION_BITS) - 1) + 1
    pairs = [(u, p, n) for (u, p), n in sorted((offsets or {}).items()) if n]
    if not pairs:
        return within
    key = F.concat_ws(":", F.col(UPLOAD_ID), read_partition(position).cast("string"))
    table = F.create_map(*[F.lit(x) for u, p, n in pairs for x in (f"{u}:{p}", n)])
    return within + F.coalesce(F.element_at(table, key), F.lit(0))


def partition_offsets(counts: list[Row]) -> dict[tuple[str, int], int]:
    """Rows of each upload's earlier read partitions, from :func:`disposition_counts`."""
    per: dict[str, dict[int, int]] = {}
    for r in counts:
        parts = per.setdefault(r[UPLOAD_ID], {})
        parts[r[READ_PARTITION]] = parts.get(r[READ_PARTITION], 0) + int(r["count"])
    out: dict[tuple[str, int], int] = {}
    for upload, parts in per.items():
        seen = 0
        for p in sorted(parts):
            out[(upload, p)] = seen
            seen += parts[p]
    return out


def quarantine_rows(contract: Contract, offsets: Offsets | None = None) -> Transform:
    """Classified frame -> quarantine rows: the raw values as strings, every reason code,
    the raw text of malformed records, the record's ordinal in its file and lineage."""
    def transform(df: DataFrame) -> DataFrame:
        raw_cols = {c.name: F.col(f"{RAW}.{c.name}") for c in contract.columns}
        raw_cols[SOURCE_RECORD] = ordinal(F.col(SOURCE_RECORD), offsets)
        rows = df.where(F.col(DISPOSITION) == QUARANTINE)
        return rows.select(*[
            raw_cols.get(f.name, F.col(f.name)).alias(f.name)
            for f in quarantine_schema(contract)
        ])
    return transform


def split(contract: Contract, classified: DataFrame,
          offsets: Offsets | None = None) -> tuple[DataFrame, DataFrame]:
    """(clean, quarantine) from a classified frame."""
    return (
        classified.transform(clean_rows(contract)),
        classified.transform(quarantine_rows(contract, offsets)),
    )


def disposition_counts(classified: DataFrame) -> DataFrame:
    """Rows per upload, read partition, disposition and error set: a small aggregate (one
    row per distinct combination) from which every count of the run report, and the
    offsets of :func:`ordinal`, are derived."""
    return classified.groupBy(UPLOAD_ID, read_partition(F.col(SOURCE_RECORD))
                              .alias(READ_PARTITION), DISPOSITION, ERRORS).count()
