"""Contract enforcement as pure DataFrame transforms.

    raw --validate--> validated --classify(duplicate_groups)--> classified --split--> (clean, quarantine)

* the **raw frame** (:func:`lib.engine.schemas.raw_schema`) has every contract column as a string
  exactly as read, plus ``_raw_record`` (set only for malformed records), the record's
  read position in its file, lineage and ``ingest_date``;
* :func:`validate` trims, normalises and casts every column and evaluates every row rule in
  chained projections (cleaned strings, literal shapes, typed values, reason codes), each value
  computed once per row; ``_errors`` holds all failed reason codes, sorted;
* :func:`duplicate_groups` finds, on a narrow projection with partial aggregation, the keys
  that repeat within an upload among rows that passed every rule; :func:`classify` joins
  them back (broadcast: they are few) and adds ``_disposition``: identical rows collapse to
  the first in file order, rows sharing the unique key with different content are all
  quarantined with ``<key>.conflict``, and only quarantined rows keep their raw values
  (``_raw``). The rows themselves are never shuffled for it;
* :func:`apply_contract` chains them;
* :func:`split` projects the clean rows (PII hashed, derived columns added) and the
  quarantined rows (raw strings, reason codes, exact ordinal in the file, lineage).

Nothing here reads or writes data or touches a global SparkSession.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import reduce

from pyspark.errors import ParseException
from pyspark.sql import Column, DataFrame, Row
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
from lib.engine.catalogue import folds_case, literal_shapes
from lib.engine.rules import (
    check_column,
    cleaned_value,
    received_value,
    trim_ascii,
    trim_invisible,
    typed_value,
)
from lib.engine.schemas import clean_schema, quarantine_schema, spark_type

RAW = "_raw"
DISPOSITION = "_disposition"
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


def _trim1(name: str) -> str:
    return f"__trim1_{name}"


def _trim2(name: str) -> str:
    return f"__trim2_{name}"


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

    Six projections (two trimming stages, cleaned strings, literal shapes, typed values,
    reason codes) so that each trimmed and cleaned string, regular expression and typed
    value is computed once per row and shared by every rule that reads it.
    """
    names = contract.column_names
    fixed = [RAW_RECORD, SOURCE_RECORD, *LINEAGE_COLUMNS, QUARANTINE_PARTITION]
    json = contract.format == "jsonl"

    def transform(df: DataFrame) -> DataFrame:
        passthrough = fixed
        nested = {c.name: _is_nested(c.name) for c in contract.columns} if json else {}
        received = _character_rules(contract)
        received_names = {c.name for c in received}

        # The trimming stages first, each in a projection of its own: every stage reads its
        # input several times, and as one expression the generated code of a few string
        # columns outgrows Java's 64 KB method limit (Spark then falls back to slow code).
        stage1 = df.select("*", *[trim_ascii(F.col(n)).alias(_trim1(n)) for n in names])
        trimmed = stage1.select("*", *[trim_invisible(F.col(_trim1(n))).alias(_trim2(n))
                                       for n in names])

        def clean(c: ContractColumn, as_received: bool = False) -> Column:
            value = (received_value if as_received else cleaned_value)(
                F.col(_trim2(c.name)), c, trimmed=True)
            return F.when(~nested[c.name], value) if json else value

        cleaned = trimmed.select(
            *[clean(c).alias(_cleaned(c.name)) for c in contract.columns],
            *[clean(c, as_received=True).alias(_received(c.name)) for c in received],
            *[flag.alias(_nested(n)) for n, flag in nested.items()],
            F.struct(*[F.col(n) for n in names]).alias(RAW),
            *passthrough,
        )
        # Each literal-shape regular expression once per value, shared by the cast and rules.
        shapes = {c.name: {rx: F.col(f"__shape_{c.name}_{i}")
                           for i, rx in enumerate(literal_shapes(c))} for c in contract.columns}
        shaped = cleaned.select("*", *[
            F.col(_cleaned(c.name)).rlike(rx).alias(f"__shape_{c.name}_{i}")
            for c in contract.columns for i, rx in enumerate(literal_shapes(c))])
        typed = shaped.select(
            "*",
            *[typed_value(F.col(_cleaned(c.name)), c, shapes[c.name]).alias(c.name)
              for c in contract.columns],
        )
        codes: dict[str, list[Column]] = {}
        for chk in contract.checks():
            if chk.kind in _NOT_ROW_LOCAL:
                continue
            col = contract.column(chk.column)
            codes.setdefault(chk.code, []).append(
                check_column(chk, col, F.col(_cleaned(col.name)), F.col(col.name),
                             F.col(_nested(col.name)) if json else None,
                             F.col(_received(col.name)) if col.name in received_names else None,
                             shapes[col.name]))
        errors = (
            F.when(F.col(RAW_RECORD).isNotNull(), F.array(F.lit(ROW_MALFORMED)))
            .otherwise(_error_codes(codes))
        )
        return typed.select(*names, RAW, errors.alias(ERRORS), *passthrough)
    return transform


# Columns of :func:`duplicate_groups` (prefixed: they sit beside the rows they are joined to).
GROUP_PREFIX = "_group_"
GROUP_ROWS = "_group_rows"  # valid rows sharing the key
GROUP_CONFLICT = "_group_conflict"  # whether their contents differ
GROUP_FIRST = "_group_first"  # read position of the first of them in file order


def _group_columns(contract: Contract) -> list[str]:
    """What identifies a group of repeats within an upload: the unique column, or without
    one every contract column (identical rows)."""
    key = contract.unique_column
    return [UPLOAD_ID, *([key.name] if key is not None else contract.column_names)]


def _content_hashes(contract: Contract) -> tuple[Column, Column]:
    """Two independent 64-bit hashes of a row's contract values (xxhash64, differently
    seeded): rows under one key are taken as equal only when both match. Spark's hashes skip
    nulls, so which columns are null is hashed too (else ``(x, null)`` would equal
    ``(null, x)``)."""
    nulls = F.concat(*[F.when(F.col(n).isNull(), F.lit("1")).otherwise(F.lit("0"))
                       for n in contract.column_names])
    content = [nulls, *[F.col(n) for n in contract.column_names]]
    return F.xxhash64(*content), F.xxhash64(F.lit("second hash"), *content)


OUTCOME_SET = "_set"  # which grouping of :func:`outcomes` a row belongs to
COUNTS, REPEATS = 0, 1
VALID = "_valid"


def outcomes(contract: Contract) -> Transform:
    """Validated frame -> one small aggregate, from one read of the rows, holding two kinds
    of rows (``_set``):

    * ``COUNTS``: rows per (upload, read partition, reason codes) (``count``), from which the
      run's counts and the offsets of :func:`ordinal` are derived;
    * ``REPEATS``: the keys (upload + unique column, or every contract column) shared by two
      or more valid rows: how many (``_group_rows``), whether their contents differ
      (``_group_conflict``) and the read position of the first in file order
      (``_group_first``).

    A narrow projection (upload, read partition, codes, key, two content hashes, position)
    aggregated over both grouping sets with partial aggregation: the rows themselves never
    move, and only the keys that repeat come out. Rows with errors take no part in the
    repeats (conditional aggregates, not a filter: a filter on ``_errors`` would be pushed
    below validation and evaluate every rule twice)."""
    names = _group_columns(contract)
    keyed = contract.unique_column is not None

    def transform(df: DataFrame) -> DataFrame:
        h1, h2 = _content_hashes(contract) if keyed else (F.lit(0), F.lit(0))
        narrow = df.select(*[F.col(n) for n in names],
                           read_partition(F.col(SOURCE_RECORD)).alias(READ_PARTITION),
                           ERRORS, SOURCE_RECORD, (F.size(ERRORS) == 0).alias(VALID),
                           h1.alias("_h1"), h2.alias("_h2"))
        keys = ", ".join(f"`{n}`" for n in names[1:])
        rp, up = f"`{READ_PARTITION}`", f"`{UPLOAD_ID}`"
        agg = df.sparkSession.sql(f"""
            SELECT {up}, {rp}, `{ERRORS}`, {keys}, grouping({rp}) AS `{OUTCOME_SET}`,
                   count(*) AS `count`,
                   count(IF(`{VALID}`, 1, NULL)) AS `{GROUP_ROWS}`,
                   min(IF(`{VALID}`, _h1, NULL)) <> max(IF(`{VALID}`, _h1, NULL))
                     OR min(IF(`{VALID}`, _h2, NULL)) <> max(IF(`{VALID}`, _h2, NULL))
                     AS `{GROUP_CONFLICT}`,
                   min(IF(`{VALID}`, `{SOURCE_RECORD}`, NULL)) AS `{GROUP_FIRST}`
            FROM {{narrow}}
            GROUP BY GROUPING SETS (({up}, {rp}, `{ERRORS}`), ({up}, {keys}))""",
            narrow=narrow)
        return agg.where((F.col(OUTCOME_SET) == COUNTS) | (F.col(GROUP_ROWS) > 1))
    return transform


def repeats(outcome: DataFrame) -> DataFrame:
    """The ``REPEATS`` rows of :func:`outcomes`, key columns prefixed ``_group_``: what
    :func:`classify` joins back."""
    keys = [c for c in outcome.columns
            if c not in (READ_PARTITION, ERRORS, OUTCOME_SET, "count", GROUP_ROWS,
                         GROUP_CONFLICT, GROUP_FIRST)]
    return outcome.where(F.col(OUTCOME_SET) == REPEATS).select(
        *[F.col(n).alias(GROUP_PREFIX + n) for n in keys],
        GROUP_ROWS, F.coalesce(F.col(GROUP_CONFLICT), F.lit(False)).alias(GROUP_CONFLICT),
        GROUP_FIRST)


def duplicate_groups(contract: Contract) -> Transform:
    """Validated frame -> the keys that repeat among its valid rows (see :func:`outcomes`)."""
    return lambda df: repeats(df.transform(outcomes(contract)))


def classify(contract: Contract, groups: DataFrame, *, broadcast: bool = True) -> Transform:
    """Validated frame -> classified frame: every row gets ``_disposition``.

    Rows with errors are quarantined. Among the valid rows of one upload: rows sharing the
    unique column with different content are all quarantined with ``<key>.conflict``; rows
    equal in every contract column collapse to the first in file order (the rest are
    ``duplicate``). ``groups`` is :func:`duplicate_groups` of the same frame; it holds only
    the keys that repeat, so it is broadcast (``broadcast``) and the rows keep their
    partitioning. Only quarantined rows keep their raw values (``_raw``)."""
    names = _group_columns(contract)
    key = contract.unique_column

    def transform(df: DataFrame) -> DataFrame:
        match = [F.col(n).eqNullSafe(F.col(GROUP_PREFIX + n)) for n in names]
        joined = df.join(F.broadcast(groups) if broadcast else groups,
                         reduce(Column.__and__, match), "left")
        valid = F.size(ERRORS) == 0
        conflict = valid & F.coalesce(F.col(GROUP_CONFLICT), F.lit(False))
        repeated = F.col(GROUP_FIRST).isNotNull()
        disposition = (
            F.when(~valid | conflict, F.lit(QUARANTINE))
            .when(~repeated | (F.col(SOURCE_RECORD) == F.col(GROUP_FIRST)), F.lit(CLEAN))
            .otherwise(F.lit(DUPLICATE))
        )
        errors = (F.when(conflict, F.array(F.lit(key.code("conflict")))).otherwise(F.col(ERRORS))
                  if key is not None else F.col(ERRORS))
        replaced = {
            ERRORS: errors,
            RAW: F.when(disposition == QUARANTINE, F.col(RAW)),
        }
        return joined.select(*[replaced.get(n, F.col(n)).alias(n) for n in df.columns],
                             disposition.alias(DISPOSITION))
    return transform


def apply_contract(contract: Contract) -> Transform:
    """raw frame -> classified frame: :func:`validate`, then :func:`classify` against the
    :func:`duplicate_groups` of the validated rows. (The job runs the same steps, with the
    validated rows read once: :mod:`lib.jobs.run`.)"""
    def transform(df: DataFrame) -> DataFrame:
        validated = df.transform(validate(contract))
        return validated.transform(
            classify(contract, validated.transform(duplicate_groups(contract))))
    return transform


def with_derived(contract: Contract) -> Transform:
    """Add the contract's derived columns (computed from the typed values), so the rows can
    be clustered by a derived partition column before they are split into the zones."""
    def transform(df: DataFrame) -> DataFrame:
        derived = derived_columns(contract)
        return df.select(*[c for c in df.columns if c not in derived],
                         *[e.alias(n) for n, e in derived.items()])
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
        exprs.update({n: F.col(n) if n in df.columns else e
                      for n, e in derived_columns(contract).items()})
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
    the rows per partition :func:`outcomes` counts; none: one partition)."""
    within = (position - 1).bitwiseAND((1 << POSITION_BITS) - 1) + 1
    pairs = [(u, p, n) for (u, p), n in sorted((offsets or {}).items()) if n]
    if not pairs:
        return within
    key = F.concat_ws(":", F.col(UPLOAD_ID), read_partition(position).cast("string"))
    table = F.create_map(*[F.lit(x) for u, p, n in pairs for x in (f"{u}:{p}", n)])
    return within + F.coalesce(F.element_at(table, key), F.lit(0))


def partition_offsets(counts: list[Row]) -> dict[tuple[str, int], int]:
    """Rows of each upload's earlier read partitions, from the ``COUNTS`` rows of
    :func:`outcomes`."""
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
