"""Contract enforcement as DuckDB SQL: the counterpart of :mod:`lib.engine.transforms`.

The raw relation (the columns of :func:`lib.engine.schemas.raw_schema` but the lineage: every
contract column as text exactly as read, the JSON fields that held an object or array, the
raw text of malformed records, the record's exact ordinal in its file; instead of the
lineage, the upload's place in its batch, :data:`lib.engine.duck.read.UPLOAD`, the lineage
being added by the zones' queries (:func:`lineage`); for CSV also each record's line,
:data:`lib.engine.duck.read.LINE`) goes through:

* :func:`validate` - the cleaning steps, literal shapes, typed values and reason codes of
  :mod:`lib.engine.duck.rules`, one projection per stage, so that each value is computed once
  per row; ``_errors`` holds every failed reason code, sorted;
* :func:`groups` and :func:`classify` - among the valid rows of one upload, the keys that
  repeat (the unique column, or without one every contract column): rows sharing a key with
  different content
  are all quarantined with ``<key>.conflict``; identical rows collapse to the first in file
  order (the others are ``duplicate``);
* :func:`clean_rows` / :func:`quarantine_rows` - one upload's rows of the two zones, their
  columns in the order and types of :func:`lib.engine.schemas.clean_schema` /
  ``quarantine_schema``.

Each function returns a SQL query over a named relation; nothing here runs a query.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from lib.contracts.contract import (
    CONTRACT_VERSION,
    ERRORS,
    INGESTED_AT,
    LINEAGE_COLUMNS,
    NESTED_FIELDS,
    QUARANTINE_PARTITION,
    RAW_RECORD,
    ROW_MALFORMED,
    SOURCE_FILE,
    SOURCE_RECORD,
    UPLOAD_ID,
    Contract,
)
from lib.contracts.contract import Column as ContractColumn
from lib.engine.catalogue import folds_case, literal_shapes
from lib.engine.duck.derived import derived_sql
from lib.engine.duck.read import LINE, UPLOAD, fields_sql
from lib.engine.duck.rules import (
    ascii_flag,
    check_column,
    cleaned_steps,
    duck_type,
    ident,
    lit,
    received_steps,
    typed_value,
)

RAW = "__raw_"  # prefix of the values as read, kept beside the typed ones
DISPOSITION = "_disposition"
CLEAN, QUARANTINE, DUPLICATE = "clean", "quarantine", "duplicate"
_NOT_ROW_LOCAL = ("malformed", "conflict")


# The upload's lineage (its id, file, ingestion time, contract version and quarantine
# partition) is added to its rows as they are written (see lineage()): the rows carry only
# the upload's place in the batch (a copy of the lineage in every row of a table held in
# memory costs more than the values).
_PASSTHROUGH = (RAW_RECORD, SOURCE_RECORD, UPLOAD)
_LINEAGE = (*LINEAGE_COLUMNS, QUARANTINE_PARTITION)


def _character_rules(contract: Contract) -> list[ContractColumn]:
    return [c for c in contract.columns
            if folds_case(c) and any(r.kind in ("pattern", "enum") for r in c.rules)]


# A step's placeholders, ``{v}`` and ``{a}``, outside its string literals (a regular
# expression's ``\x{a}`` or a default value's text is never one).
_PLACEHOLDER = re.compile(r"'(?:[^']|'')*'|\{([va])\}")


def fill(step: str, v: str, a: str) -> str:
    """A step of :func:`lib.engine.duck.rules.cleaned_steps` with its placeholders filled:
    ``{v}`` the previous step's value, ``{a}`` whether the value as read is ASCII."""
    values = {"v": v, "a": a}
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)] if m.group(1) else m.group(), step)


def _chain(steps_per_value: dict[str, tuple[str, list[str]]], source: str) -> str:
    """Apply each value's steps, one projection per step: ``{alias: (input column, steps)}``.
    Returns a query whose columns are those of ``source`` plus each alias."""
    depth = max((len(steps) for _, steps in steps_per_value.values()), default=0)
    sources = sorted({src for src, _ in steps_per_value.values()})
    flags = {src: f"{src}__ascii" for src in sources}
    query = (f"SELECT *, {', '.join(f'{ascii_flag(ident(s))} AS {ident(flags[s])}' for s in sources)} "
             f"FROM {source}") if sources else f"SELECT * FROM {source}"
    current = {alias: src for alias, (src, _) in steps_per_value.items()}
    for i in range(depth):
        cols = []
        for alias, (src, steps) in steps_per_value.items():
            if i < len(steps):
                name = f"{alias}__{i}"
                step = fill(steps[i], v=ident(current[alias]), a=ident(flags[src]))
                cols.append(f"{step} AS {ident(name)}")
                current[alias] = name
        query = f"SELECT *, {', '.join(cols)} FROM ({query})"
    finals = ", ".join(f"{ident(src)} AS {ident(alias)}" for alias, src in current.items())
    return f"SELECT *, {finals} FROM ({query})" if finals else query


def _nested_flag(name: str) -> str:
    listed = f"(',' || {ident(NESTED_FIELDS)} || ',')"
    return f"coalesce(contains({listed}, {lit(',' + name + ',')}), false)"


def validate(contract: Contract, source: str, line: str | None = None) -> str:
    """The raw relation ``source`` -> each contract column typed (PII not yet hashed), its
    value as read (``__raw_<name>``), ``_errors`` (sorted reason codes, empty when valid) and
    the reader's bookkeeping and lineage columns."""
    json = contract.format == "jsonl"
    received = {c.name for c in _character_rules(contract)}
    chains: dict[str, tuple[str, list[str]]] = {}
    for c in contract.columns:
        chains[f"__clean_{c.name}"] = (RAW + c.name, cleaned_steps(c))
        if c.name in received:
            chains[f"__received_{c.name}"] = (RAW + c.name, received_steps(c))
    renamed = ", ".join(f"{ident(c.name)} AS {ident(RAW + c.name)}" for c in contract.columns)
    base = f"SELECT {renamed}, * EXCLUDE ({', '.join(ident(c.name) for c in contract.columns)}) " \
           f"FROM {source}"
    cleaned_q = _chain(chains, f"({base})")

    def cleaned(name: str) -> str:
        return ident(f"__clean_{name}")

    # JSON Lines: a field that held an object or array is no value (null in every rule but
    # <column>.type).
    nested = {c.name: ident(f"__nested_{c.name}") for c in contract.columns} if json else {}
    if json:
        flags = ", ".join(f"{_nested_flag(c.name)} AS {nested[c.name]}" for c in contract.columns)
        masks = ", ".join(
            f"CASE WHEN NOT {nested[n]} THEN {ident(a)} END AS {ident(a)}"
            for a, (src, _) in chains.items() for n in [src[len(RAW):]])
        cleaned_q = (f"SELECT * REPLACE ({masks}) FROM (SELECT *, {flags} FROM ({cleaned_q}))")
    shapes = {c.name: {rx: ident(f"__shape_{c.name}_{i}")
                       for i, rx in enumerate(literal_shapes(c))} for c in contract.columns}
    shape_cols = [f"regexp_matches({cleaned(c.name)}, {lit(rx)}) AS {shapes[c.name][rx]}"
                  for c in contract.columns for rx in literal_shapes(c)]
    shaped_q = f"SELECT *{''.join(', ' + s for s in shape_cols)} FROM ({cleaned_q})"
    typed_cols = [f"{typed_value(cleaned(c.name), c, shapes[c.name])} AS {ident(c.name)}"
                  for c in contract.columns]
    typed_q = f"SELECT *, {', '.join(typed_cols)} FROM ({shaped_q})"
    codes: dict[str, list[str]] = {}
    for chk in contract.checks():
        if chk.kind in _NOT_ROW_LOCAL:
            continue
        col = contract.column(chk.column)
        codes.setdefault(chk.code, []).append(check_column(
            chk, col, cleaned(col.name), ident(col.name), nested.get(col.name),
            ident(f"__received_{col.name}") if col.name in received else None,
            shapes[col.name]))
    merged = [f"coalesce({', '.join(cols)})" if len(cols) > 1 else cols[0]
              for _, cols in sorted(codes.items())]
    # The codes joined by commas (concat_ws skips nulls; codes hold no comma) in a projection
    # of their own, split only when a row failed something: most rows build no list at all.
    joined = f"concat_ws(',', {', '.join(merged)})" if merged else "''"
    codes_q = f"SELECT *, {joined} AS __codes FROM ({typed_q})"
    errors = (f"CASE WHEN {ident(RAW_RECORD)} IS NOT NULL THEN [{lit(ROW_MALFORMED)}] "
              f"WHEN __codes = '' THEN CAST([] AS VARCHAR[]) ELSE string_split(__codes, ',') END")
    # The values as read, for the quarantine: each column's, or only the record's line
    # (``line``: one string per row instead of one per column; the quarantine splits it),
    # kept for the rows that failed (a valid row's line is fetched by :func:`conflicts`).
    raws = ([f"CASE WHEN {ident(RAW_RECORD)} IS NOT NULL OR __codes <> '' THEN {ident(line)} "
             f"END AS {ident(line)}"] if line
            else [ident(RAW + c.name) for c in contract.columns])
    keep = [ident(c.name) for c in contract.columns] + raws
    return (f"SELECT {', '.join(keep)}, {errors} AS {ident(ERRORS)}, "
            f"{', '.join(ident(n) for n in _PASSTHROUGH)} FROM ({codes_q})")


def _group_columns(contract: Contract) -> list[str]:
    key = contract.unique_column
    return [UPLOAD, *([key.name] if key is not None else contract.column_names)]


def groups(contract: Contract, source: str) -> str:
    """The keys that repeat among the valid rows of each upload of the validated relation
    ``source``: how many rows (``g_rows``), whether their contents differ (``g_conflict``,
    compared exactly) and the first in file order (``g_first``). The repeated keys are found
    first (one aggregate on the key alone); only their rows are compared."""
    names = _group_columns(contract)
    keys = ", ".join(ident(n) for n in names)
    valid = f"len({ident(ERRORS)}) = 0"
    content = "struct_pack(" + ", ".join(f"{ident(n)} := r.{ident(n)}"
                                         for n in contract.column_names) + ")"
    match = " AND ".join(f"r.{ident(n)} IS NOT DISTINCT FROM k.{ident(n)}" for n in names)
    return (f"SELECT {', '.join(f'r.{ident(n)}' for n in names)}, count(*) AS g_rows, "
            f"count(DISTINCT {content}) > 1 AS g_conflict, "
            f"min(r.{ident(SOURCE_RECORD)}) AS g_first "
            f"FROM {source} r SEMI JOIN (SELECT {keys} FROM {source} WHERE {valid} "
            f"GROUP BY {keys} HAVING count(*) > 1) k ON {match} "
            f"WHERE len(r.{ident(ERRORS)}) = 0 GROUP BY ALL")


def classify(contract: Contract, source: str, repeated: str) -> str:
    """Validated relation ``source`` -> every row with ``_disposition`` (see the module
    docstring), ``repeated`` being :func:`groups` of it (few rows: joined back)."""
    names = _group_columns(contract)
    key = contract.unique_column
    match = " AND ".join(f"r.{ident(n)} IS NOT DISTINCT FROM g.{ident(n)}" for n in names)
    valid = f"len(r.{ident(ERRORS)}) = 0"
    conflict = f"({valid} AND coalesce(g.g_conflict, false))"
    disposition = (f"CASE WHEN NOT {valid} OR {conflict} THEN '{QUARANTINE}' "
                   f"WHEN g.g_first IS NULL OR r.{ident(SOURCE_RECORD)} = g.g_first "
                   f"THEN '{CLEAN}' ELSE '{DUPLICATE}' END")
    errors = (f"CASE WHEN {conflict} THEN [{lit(key.code('conflict'))}] ELSE r.{ident(ERRORS)} END"
              if key is not None else f"r.{ident(ERRORS)}")
    return (f"SELECT r.* REPLACE ({errors} AS {ident(ERRORS)}), {disposition} AS "
            f"{ident(DISPOSITION)} "
            f"FROM {source} r LEFT JOIN {repeated} g ON {match}")


def clean_columns(contract: Contract) -> list[tuple[str, str]]:
    """(name, DuckDB type) of the clean zone, partition columns last (the order of
    :func:`lib.engine.schemas.clean_schema`)."""
    fields = [(c.name, duck_type(c.type)) for c in contract.columns]
    fields += [(d.name, duck_type(d.type)) for d in contract.derived]
    fields += [(UPLOAD_ID, "VARCHAR"), (SOURCE_FILE, "VARCHAR"), (INGESTED_AT, "TIMESTAMPTZ"),
               (CONTRACT_VERSION, "VARCHAR")]
    data = [f for f in fields if f[0] not in contract.partition_by]
    parts = [next(f for f in fields if f[0] == p) for p in contract.partition_by]
    return data + parts


def lineage(upload_id: str, source_file: str, ingested_at: str, contract_ref: str,
            ingest_date: str) -> dict[str, str]:
    """The SQL of one upload's lineage columns, the same on each of its rows: literals (the
    upload id and file as enums of one value, which the Parquet writer stores as a
    dictionary of one entry instead of hashing and comparing the string on every row; they
    are text in the files as in Spark's)."""
    def one(text: str) -> str:
        return f"CAST({lit(text)} AS ENUM({lit(text)}))"
    return {UPLOAD_ID: one(upload_id), SOURCE_FILE: one(source_file),
            INGESTED_AT: f"CAST({lit(ingested_at)} AS TIMESTAMPTZ)",
            CONTRACT_VERSION: lit(contract_ref),
            QUARANTINE_PARTITION: f"CAST({lit(ingest_date)} AS DATE)"}


def clean_rows(contract: Contract, source: str, upload: int,
               lineage: Mapping[str, str]) -> str:
    """Classified relation -> the clean zone rows of its ``upload``-th upload (``lineage``:
    its :func:`lineage`): PII hashed, derived columns computed."""
    exprs = {c.name: (f"sha256({ident(c.name)})" if c.pii == "sha256" else ident(c.name))
             for c in contract.columns}
    derived = derived_sql(contract)
    exprs.update({n: e for n, (e, _) in derived.items()})
    exprs.update({n: lineage[n] for n in LINEAGE_COLUMNS})
    cols = ", ".join(f"{exprs[n]} AS {ident(n)}" for n, _ in clean_columns(contract))
    return (f"SELECT {cols} FROM {source} "
            f"WHERE {UPLOAD} = {upload} AND {ident(DISPOSITION)} = '{CLEAN}'")


def conflicts(contract: Contract, validated: str, repeated: str) -> str:
    """The valid rows whose key is in conflict: (upload, ordinal) of each."""
    names = _group_columns(contract)
    match = " AND ".join(f"r.{ident(n)} IS NOT DISTINCT FROM g.{ident(n)}" for n in names)
    return (f"SELECT r.{UPLOAD}, r.{ident(SOURCE_RECORD)} FROM {validated} r "
            f"JOIN (SELECT * FROM {repeated} WHERE g_conflict) g ON {match} "
            f"WHERE len(r.{ident(ERRORS)}) = 0")


def quarantine_columns(contract: Contract) -> list[tuple[str, str]]:
    return ([(c.name, "VARCHAR") for c in contract.columns]
            + [(ERRORS, "VARCHAR[]"), (RAW_RECORD, "VARCHAR"), (SOURCE_RECORD, "BIGINT"),
               (UPLOAD_ID, "VARCHAR"), (SOURCE_FILE, "VARCHAR"), (INGESTED_AT, "TIMESTAMPTZ"),
               (CONTRACT_VERSION, "VARCHAR"), (QUARANTINE_PARTITION, "DATE")])


def quarantine_rows(contract: Contract, validated: str, repeated: str, upload: int,
                    lineage: Mapping[str, str],
                    from_line: Mapping[str, int | None] | None = None) -> str:
    """Validated relation (and its :func:`groups`) -> the quarantine rows of its ``upload``-th
    upload (``lineage``: its :func:`lineage`): the values as read, every reason code, the raw
    text of malformed records, the record's ordinal in its file, lineage. The rows that
    failed a rule, then the valid rows of the keys in conflict: only those are joined to the
    groups (the same rows as :func:`classify` quarantines)."""
    mine = f"{UPLOAD} = {upload}"
    if from_line is None:
        exprs = {c.name: f"r.{ident(RAW + c.name)}" for c in contract.columns}
        validated = f"(SELECT * FROM {validated} WHERE {mine})"
    else:  # ``from_line``: each column's field in the line (None: not in the file)
        exprs = {c.name: f"nullif(r.__fields[{from_line[c.name]}], '')"
                 if from_line.get(c.name) else "CAST(NULL AS VARCHAR)" for c in contract.columns}
        validated = (f"(SELECT *, {fields_sql(ident(LINE))} AS __fields FROM {validated} "
                     f"WHERE {mine} AND {ident(LINE)} IS NOT NULL)")
    exprs.update({n: lineage[n] for n in _LINEAGE})
    cols = [(n, exprs.get(n, f"r.{ident(n)}")) for n, _ in quarantine_columns(contract)]
    failed = (f"SELECT {', '.join(f'{e} AS {ident(n)}' for n, e in cols)} FROM {validated} r "
              f"WHERE len(r.{ident(ERRORS)}) > 0")
    key = contract.unique_column
    if key is None:  # without a unique key, repeats are identical rows: never in conflict
        return failed
    names = _group_columns(contract)
    match = " AND ".join(f"r.{ident(n)} IS NOT DISTINCT FROM g.{ident(n)}" for n in names)
    conflict = [(n, f"[{lit(key.code('conflict'))}]" if n == ERRORS else e) for n, e in cols]
    return (f"{failed} UNION ALL SELECT {', '.join(f'{e} AS {ident(n)}' for n, e in conflict)} "
            f"FROM {validated} r JOIN (SELECT * FROM {repeated} WHERE g_conflict) g ON {match} "
            f"WHERE len(r.{ident(ERRORS)}) = 0")
