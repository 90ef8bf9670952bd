"""Dataset contracts: one declarative YAML file per dataset version.

A contract is the single source of truth for a dataset: the columns a raw file
must carry, how each value is normalised and cast, the row rules and their
reason codes, the clean schema and the partitioning. This module only parses
and validates contracts into typed objects; it must import without pyspark (the
upload checker runs without Spark). ``lib.engine.schemas`` and ``lib.engine.rules`` turn a contract into
Spark types and Column expressions; ``lib.contracts.evolution`` compares two versions.

Reason codes are ``<column>.<rule>`` (``quantity.range``), plus ``row.malformed``
for a raw record that is not a record: a CSV line whose field count differs from the
header, a JSON Lines line that is not a JSON object. In JSON Lines a field holding an
object or an array reports ``<column>.type`` (numbers and booleans where a string is due
are read as their text).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from lib.contracts.expressions import check_expression
from lib.contracts.regex import PatternError, portable
from lib.errors import LakeError

# Lineage columns carried by every clean and quarantined row.
UPLOAD_ID = "_upload_id"
SOURCE_FILE = "_source_file"
INGESTED_AT = "_ingested_at"
CONTRACT_VERSION = "_contract_version"
LINEAGE_COLUMNS = (UPLOAD_ID, SOURCE_FILE, INGESTED_AT, CONTRACT_VERSION)

# Quarantine-only columns.
ERRORS = "_errors"
SOURCE_RECORD = "_source_record"
# In the raw frame _source_record is a read position: the read partition above this many
# bits, the row's place in it below (Spark's monotonically_increasing_id, plus one).
POSITION_BITS = 33
RAW_RECORD = "_raw_record"
# Raw frame only: comma-separated names of JSON fields holding an object or array.
NESTED_FIELDS = "_nested_fields"
QUARANTINE_PARTITION = "ingest_date"

ROW_MALFORMED = "row.malformed"

FORMATS = ("csv", "jsonl")
# Date layouts a date column may accept (``formats``); without ``formats``: YYYY-MM-DD.
DATE_FORMATS = ("YYYY-MM-DD", "YYYY/MM/DD")
NORMALIZERS = ("upper", "lower", "collapse_whitespace")
PII_METHODS = ("sha256",)
SIMPLE_TYPES = ("string", "int", "bigint", "date", "timestamp")
TYPE_NAMES = (*SIMPLE_TYPES, "decimal(p,s)")
TEMPORAL_TYPES = ("date", "timestamp")
INTEGER_TYPES = ("int", "bigint")

_DECIMAL_RE = re.compile(r"^decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)$")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_DATASET_RE = re.compile(r"^[a-z][a-z0-9_]*$")

# Which rules apply to which types, and the code suffix each one reports.
RULE_TYPES: dict[str, tuple[str, ...]] = {
    "length": ("string",),
    "pattern": ("string",),
    "enum": ("string",),
    "range": (*INTEGER_TYPES, "decimal", *TEMPORAL_TYPES),
}
RULE_CODES = {"length": "length", "pattern": "format", "enum": "enum", "range": "range"}

_COLUMN_KEYS = ("name", "type", "required", "unique", "normalize", "pii", "rules", "formats",
                "default", "description")
_DERIVED_KEYS = ("name", "type", "expression", "description")
_TOP_KEYS = (
    "dataset",
    "version",
    "description",
    "format",
    "columns",
    "derived",
    "partition_by",
    "max_upload_bytes",
    "max_record_bytes",
    "fast_lane_max_bytes",
    "quality",
)
# A record (a CSV row, a JSON line) longer than this is refused at upload unless the contract
# sets its own max_record_bytes: one huge record would have to fit in a Spark task's memory.
DEFAULT_MAX_RECORD_BYTES = 1 << 20  # 1 MiB


class ContractError(LakeError):
    """A contract file is malformed. The message names the file, the field and what is allowed."""

    default_code = "contract.invalid"

    def __init__(self, source: str, field_path: str, message: str) -> None:
        self.field_path = field_path
        super().__init__(f"{field_path}: {message}", source=source)


class ContractNotFoundError(LakeError):
    """No contract for the requested dataset or version."""

    default_code = "contract.not_found"


@dataclass(frozen=True)
class DataType:
    """A clean column type: ``string``, ``int``, ``bigint``, ``date``, ``timestamp`` or
    ``decimal`` (with precision and scale)."""

    name: str
    precision: int | None = None
    scale: int | None = None

    @property
    def is_temporal(self) -> bool:
        return self.name in TEMPORAL_TYPES

    def __str__(self) -> str:
        if self.name == "decimal":
            return f"decimal({self.precision},{self.scale})"
        return self.name


@dataclass(frozen=True)
class Rule:
    """One declared row rule on a column; ``code`` is its reason code."""

    kind: str
    params: Mapping[str, Any]
    code: str


@dataclass(frozen=True)
class Column:
    name: str
    type: DataType
    required: bool = False
    unique: bool = False
    normalize: tuple[str, ...] = ()
    pii: str | None = None
    rules: tuple[Rule, ...] = ()
    formats: tuple[str, ...] = ()
    default: str | None = None
    description: str = ""

    def code(self, suffix: str) -> str:
        return f"{self.name}.{suffix}"

    @property
    def type_code(self) -> str:
        """Code reported when a present value cannot be read as the column's type.
        Dates and timestamps report ``.format``; numbers report ``.type``."""
        return self.code("format" if self.type.is_temporal else "type")


@dataclass(frozen=True)
class DerivedColumn:
    name: str
    type: DataType
    expression: str
    description: str = ""


QUARANTINED_SHARE = "quarantined"  # the quality threshold on an upload's quarantined rows


@dataclass(frozen=True)
class Threshold:
    """How large a share of an upload's rows read may fail (``measure``: a reason code, or
    :data:`QUARANTINED_SHARE` for every quarantined row) before the upload is flagged
    (``warn``: published, with a warning) or kept out of the clean zone (``fail``); a share
    above the value trips it. None: no such level."""

    measure: str
    warn: float | None = None
    fail: float | None = None

    def outcome(self, share: float) -> str:
        """``fail``, ``warn`` or ``ok`` for a share of the rows read."""
        if self.fail is not None and share > self.fail:
            return "fail"
        if self.warn is not None and share > self.warn:
            return "warn"
        return "ok"


@dataclass(frozen=True)
class Check:
    """One entry of the compiled check list: what is checked, on which column, and the
    stable reason code a failing row carries."""

    code: str
    column: str | None
    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Contract:
    dataset: str
    version: int
    format: str
    columns: tuple[Column, ...]
    derived: tuple[DerivedColumn, ...] = ()
    partition_by: tuple[str, ...] = ()
    description: str = ""
    source: str = "<contract>"
    max_upload_bytes: int | None = None  # file size limit of the dataset (<= the lake-wide one)
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES  # longest record an upload may hold
    # Uploads at or under this many bytes go through the fast lane (the DuckDB engine, right
    # after they are accepted); None: the lake's default; 0: no fast lane for the dataset.
    fast_lane_max_bytes: int | None = None
    # What share of an upload's rows may be quarantined, in all and per reason code.
    quality: tuple[Threshold, ...] = ()

    @property
    def ref(self) -> str:
        """Contract reference stamped on every row, e.g. ``orders/1``."""
        return f"{self.dataset}/{self.version}"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def required_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    @property
    def unique_column(self) -> Column | None:
        return next((c for c in self.columns if c.unique), None)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.ref} has no column {name!r}; columns: {list(self.column_names)}")

    def checks(self) -> tuple[Check, ...]:
        """The contract compiled to a neutral, ordered list of checks."""
        out: list[Check] = [Check(ROW_MALFORMED, None, "malformed")]
        for col in self.columns:
            if self.format == "jsonl":
                out.append(Check(col.code("type"), col.name, "nested"))
            if col.required:
                out.append(Check(col.code("required"), col.name, "required"))
            if col.type.name != "string":
                out.append(Check(col.type_code, col.name, "type", {"type": str(col.type)}))
            if col.type.name == "decimal":
                out.append(Check(col.code("precision"), col.name, "precision",
                                 {"scale": col.type.scale}))
                out.append(Check(col.code("range"), col.name, "decimal_range",
                                 {"integer_digits": col.type.precision - col.type.scale}))
            if col.type.name in INTEGER_TYPES:
                out.append(Check(col.code("range"), col.name, "integer_range",
                                 {"type": col.type.name}))
            out.extend(Check(r.code, col.name, r.kind, r.params) for r in col.rules)
            if col.unique:
                out.append(Check(col.code("conflict"), col.name, "conflict"))
        return tuple(out)

    def reason_codes(self) -> tuple[str, ...]:
        """Every reason code a row of this contract can carry, sorted, without repeats."""
        return tuple(sorted({c.code for c in self.checks()}))


# --------------------------------------------------------------------------- parsing


def parse_type(text: Any, source: str, where: str) -> DataType:
    if not isinstance(text, str):
        raise ContractError(source, where, f"expected a type name, got {text!r}; allowed: "
                            f"{', '.join(TYPE_NAMES)}")
    t = text.strip().lower()
    if t in SIMPLE_TYPES:
        return DataType(t)
    m = _DECIMAL_RE.match(t)
    if m:
        precision, scale = int(m.group(1)), int(m.group(2))
        if not (1 <= precision <= 38) or scale > precision:
            raise ContractError(source, where, f"invalid {text!r}: need 1 <= p <= 38 and "
                                "0 <= s <= p in decimal(p,s)")
        return DataType("decimal", precision, scale)
    raise ContractError(source, where, f"unknown type {text!r}; allowed: {', '.join(TYPE_NAMES)}")


def _require_mapping(value: Any, source: str, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ContractError(source, where, f"expected a mapping, got {type(value).__name__}")
    return value


def _check_keys(obj: Mapping[str, Any], allowed: tuple[str, ...], source: str, where: str) -> None:
    unknown = sorted(set(obj) - set(allowed))
    if unknown:
        raise ContractError(source, f"{where}.{unknown[0]}" if where else unknown[0],
                            f"unknown field; allowed: {', '.join(allowed)}")


def _required_field(obj: Mapping[str, Any], key: str, source: str, where: str) -> Any:
    if key not in obj or obj[key] is None:
        raise ContractError(source, f"{where}.{key}" if where else key, "missing required field")
    return obj[key]


def _parse_bool(value: Any, source: str, where: str) -> bool:
    if not isinstance(value, bool):
        raise ContractError(source, where, f"expected true or false, got {value!r}")
    return value


def _parse_bound(value: Any, dtype: DataType, source: str, where: str) -> Any:
    """Range bounds are numbers for numeric types and ISO strings for dates/timestamps."""
    if value is None:
        return None
    if dtype.is_temporal:
        if isinstance(value, datetime | date):
            raise ContractError(source, where, f"quote {dtype} bounds as strings, e.g. "
                                "\"2000-01-01T00:00:00Z\"")
        if not isinstance(value, str):
            raise ContractError(source, where, f"expected an ISO 8601 string, got {value!r}")
        try:
            if dtype.name == "date":
                date.fromisoformat(value)
            else:
                datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ContractError(source, where, f"not an ISO 8601 {dtype}: {value!r}") from exc
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ContractError(source, where, f"expected a number, got {value!r}")
    if dtype.name in INTEGER_TYPES and not isinstance(value, int):
        raise ContractError(source, where, f"expected an integer bound for {dtype}, got {value!r}")
    return value


def _parse_rule(raw: Any, col_name: str, dtype: DataType, source: str, where: str) -> Rule:
    allowed = ", ".join(RULE_TYPES)
    if not isinstance(raw, Mapping) or len(raw) != 1:
        raise ContractError(source, where, f"a rule is a mapping with one key; allowed: {allowed}")
    (kind, params), = raw.items()
    if kind not in RULE_TYPES:
        raise ContractError(source, f"{where}.{kind}", f"unknown rule {kind!r}; allowed: {allowed}")
    type_family = "decimal" if dtype.name == "decimal" else dtype.name
    if type_family not in RULE_TYPES[kind]:
        raise ContractError(source, f"{where}.{kind}", f"rule {kind!r} does not apply to type "
                            f"{dtype}; it applies to: {', '.join(RULE_TYPES[kind])}")
    here = f"{where}.{kind}"
    parsed: dict[str, Any]
    if kind in ("length", "range"):
        params = _require_mapping(params, source, here)
        _check_keys(params, ("min", "max"), source, here)
        if "min" not in params and "max" not in params:
            raise ContractError(source, here, "give at least one of min, max")
        if kind == "length":
            for k in ("min", "max"):
                v = params.get(k)
                if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                    raise ContractError(source, f"{here}.{k}", f"expected a non-negative integer, "
                                        f"got {v!r}")
            parsed = {"min": params.get("min"), "max": params.get("max")}
        else:
            parsed = {k: _parse_bound(params.get(k), dtype, source, f"{here}.{k}")
                      for k in ("min", "max")}
        lo, hi = parsed["min"], parsed["max"]
        if lo is not None and hi is not None and not dtype.is_temporal and lo > hi:
            raise ContractError(source, here, f"min {lo!r} is greater than max {hi!r}")
    elif kind == "pattern":
        if not isinstance(params, str):
            raise ContractError(source, here, f"expected a regular expression string, "
                                f"got {params!r}")
        try:
            portable(params)  # one meaning for every engine, or refused (lib.contracts.regex)
        except PatternError as exc:
            raise ContractError(source, here, str(exc)) from None
        parsed = {"regex": params}
    else:  # enum
        if (not isinstance(params, list) or not params
                or not all(isinstance(v, str) for v in params)):
            raise ContractError(source, here, f"expected a non-empty list of strings, "
                                f"got {params!r}")
        parsed = {"values": tuple(params)}
    return Rule(kind, parsed, f"{col_name}.{RULE_CODES[kind]}")


def _parse_name(value: Any, source: str, where: str) -> str:
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise ContractError(source, where, f"invalid column name {value!r}; use lower-case "
                            "letters, digits and underscores, starting with a letter")
    return value


def _parse_column(raw: Any, source: str, where: str) -> Column:
    obj = _require_mapping(raw, source, where)
    _check_keys(obj, _COLUMN_KEYS, source, where)
    name = _parse_name(_required_field(obj, "name", source, where), source, f"{where}.name")
    dtype = parse_type(_required_field(obj, "type", source, where), source, f"{where}.type")
    normalize_raw = obj.get("normalize") or ()
    normalize = (normalize_raw,) if isinstance(normalize_raw, str) else tuple(normalize_raw)
    for n in normalize:
        if n not in NORMALIZERS:
            raise ContractError(source, f"{where}.normalize", f"unknown normalizer {n!r}; "
                                f"allowed: {', '.join(NORMALIZERS)}")
    if normalize and dtype.name != "string":
        raise ContractError(source, f"{where}.normalize", f"normalize applies to string "
                            f"columns, not {dtype}")
    pii = obj.get("pii")
    if pii is not None and pii not in PII_METHODS:
        raise ContractError(source, f"{where}.pii", f"unknown pii method {pii!r}; allowed: "
                            f"{', '.join(PII_METHODS)}")
    if pii is not None and dtype.name != "string":
        raise ContractError(source, f"{where}.pii", f"pii hashing applies to string columns, "
                            f"not {dtype}")
    rules_raw = obj.get("rules") or []
    if not isinstance(rules_raw, list):
        raise ContractError(source, f"{where}.rules", "expected a list of rules")
    rules = tuple(_parse_rule(r, name, dtype, source, f"{where}.rules[{i}]")
                  for i, r in enumerate(rules_raw))
    formats = _parse_formats(obj.get("formats"), dtype, source, f"{where}.formats")
    default = _parse_default(obj.get("default"), dtype, rules, source, f"{where}.default")
    return Column(
        name=name,
        type=dtype,
        required=_parse_bool(obj.get("required", False), source, f"{where}.required"),
        unique=_parse_bool(obj.get("unique", False), source, f"{where}.unique"),
        normalize=normalize,
        pii=pii,
        rules=rules,
        formats=formats,
        default=default,
        description=str(obj.get("description") or ""),
    )


def _parse_formats(raw: Any, dtype: DataType, source: str, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if dtype.name != "date":
        raise ContractError(source, where, f"formats apply to date columns, not {dtype}")
    if (not isinstance(raw, list) or not raw
            or not all(isinstance(f, str) and f in DATE_FORMATS for f in raw)):
        raise ContractError(source, where, f"expected a non-empty list of date layouts; "
                            f"allowed: {', '.join(DATE_FORMATS)}; got {raw!r}")
    return tuple(dict.fromkeys(raw))


def _parse_default(raw: Any, dtype: DataType, rules: tuple[Rule, ...], source: str,
                   where: str) -> str | None:
    """A value used when the field is absent or empty; it must pass the column's rules."""
    if raw is None:
        return None
    if dtype.name != "string" or not isinstance(raw, str) or not raw.strip():
        raise ContractError(source, where, f"defaults apply to string columns and must be a "
                            f"non-empty string; got {raw!r} for a {dtype} column")
    for rule in rules:
        if rule.kind == "enum" and raw not in rule.params["values"]:
            raise ContractError(source, where, f"default {raw!r} is not one of the allowed "
                                f"values {list(rule.params['values'])}")
        if rule.kind == "pattern" and not portable(rule.params["regex"]).search(raw):
            raise ContractError(source, where, f"default {raw!r} does not match the "
                                f"column's pattern {rule.params['regex']!r}")
    return raw


def _parse_derived(raw: Any, source: str, where: str) -> DerivedColumn:
    obj = _require_mapping(raw, source, where)
    _check_keys(obj, _DERIVED_KEYS, source, where)
    expression = _required_field(obj, "expression", source, where)
    if not isinstance(expression, str) or not expression.strip():
        raise ContractError(source, f"{where}.expression", "expected a Spark SQL expression")
    return DerivedColumn(
        name=_parse_name(_required_field(obj, "name", source, where), source, f"{where}.name"),
        type=parse_type(_required_field(obj, "type", source, where), source, f"{where}.type"),
        expression=expression.strip(),
        description=str(obj.get("description") or ""),
    )


def _positive_bytes(obj: Mapping[str, Any], key: str, default: int | None,
                    source: str) -> int | None:
    value = obj.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ContractError(source, key, f"expected a positive number of bytes, got {value!r}")
    return value


def parse_contract(data: Any, source: str = "<contract>") -> Contract:
    """Validate a contract document (already loaded from YAML) into a :class:`Contract`."""
    obj = _require_mapping(data, source, "<root>")
    _check_keys(obj, _TOP_KEYS, source, "")
    dataset = _required_field(obj, "dataset", source, "")
    if not isinstance(dataset, str) or not _DATASET_RE.match(dataset):
        raise ContractError(source, "dataset", f"invalid dataset name {dataset!r}; use lower-case "
                            "letters, digits and underscores, starting with a letter")
    version = _required_field(obj, "version", source, "")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ContractError(source, "version", f"expected a positive integer, got {version!r}")
    fmt = _required_field(obj, "format", source, "")
    if fmt not in FORMATS:
        raise ContractError(source, "format", f"unknown format {fmt!r}; allowed: "
                            f"{', '.join(FORMATS)}")
    columns_raw = _required_field(obj, "columns", source, "")
    if not isinstance(columns_raw, list) or not columns_raw:
        raise ContractError(source, "columns", "expected a non-empty list of columns")
    columns = tuple(_parse_column(c, source, f"columns[{i}]") for i, c in enumerate(columns_raw))
    derived_raw = obj.get("derived") or []
    if not isinstance(derived_raw, list):
        raise ContractError(source, "derived", "expected a list of derived columns")
    derived = tuple(_parse_derived(d, source, f"derived[{i}]") for i, d in enumerate(derived_raw))
    readable = [c.name for c in columns]
    for i, d in enumerate(derived):
        why = check_expression(d.expression, readable)
        if why:
            raise ContractError(source, f"derived[{i}].expression",
                                f"{d.expression!r} is refused: {why}")
        readable.append(d.name)

    seen: set[str] = set()
    for i, name in enumerate([c.name for c in columns] + [d.name for d in derived]):
        if name in seen:
            where = f"columns[{i}]" if i < len(columns) else f"derived[{i - len(columns)}]"
            raise ContractError(source, f"{where}.name", f"duplicate column name {name!r}")
        seen.add(name)
    uniques = [c.name for c in columns if c.unique]
    if len(uniques) > 1:
        raise ContractError(source, "columns", f"at most one column may be unique; found "
                            f"{uniques}")
    for i, c in enumerate(columns):
        if c.default is not None and c.required:
            raise ContractError(source, f"columns[{i}].default", f"{c.name} has a default, so "
                                "it is never missing; drop 'required: true' or the default")
        if c.unique and not c.required:
            raise ContractError(source, f"columns[{i}].unique", f"a unique column must also be "
                                f"required (a null {c.name} cannot identify a row); add "
                                "'required: true'")
    partition_by = obj.get("partition_by") or []
    if not isinstance(partition_by, list) or not all(isinstance(p, str) for p in partition_by):
        raise ContractError(source, "partition_by", "expected a list of column names")
    for i, p in enumerate(partition_by):
        if p not in seen:
            raise ContractError(source, f"partition_by[{i}]", f"unknown column {p!r}; columns: "
                                f"{', '.join(sorted(seen))}")
    max_upload = _positive_bytes(obj, "max_upload_bytes", None, source)
    max_record = _positive_bytes(obj, "max_record_bytes", DEFAULT_MAX_RECORD_BYTES, source)
    fast_lane = obj.get("fast_lane_max_bytes")
    if fast_lane is not None and (isinstance(fast_lane, bool) or not isinstance(fast_lane, int)
                                  or fast_lane < 0):
        raise ContractError(source, "fast_lane_max_bytes", f"expected a number of bytes (0 turns "
                            f"the fast lane off for the dataset), got {fast_lane!r}")
    contract = Contract(
        dataset=dataset,
        version=version,
        format=fmt,
        max_upload_bytes=max_upload,
        max_record_bytes=max_record,
        fast_lane_max_bytes=fast_lane,
        columns=columns,
        derived=derived,
        partition_by=tuple(partition_by),
        description=str(obj.get("description") or ""),
        source=source,
    )
    if obj.get("quality") is None:
        return contract
    return replace(contract, quality=_parse_quality(obj["quality"], contract, source))


_QUALITY_KEYS = ("quarantined", "rules")
_LEVELS = ("warn", "fail")


def _parse_threshold(raw: Any, measure: str, source: str, where: str) -> Threshold:
    if not isinstance(raw, Mapping) or not raw:
        raise ContractError(source, where, "expected warn and/or fail, each a share of the "
                            "upload's rows read from 0 to 1, e.g. {warn: 0.05, fail: 0.5}")
    _check_keys(raw, _LEVELS, source, where)
    levels: dict[str, float | None] = {}
    for level in _LEVELS:
        value = raw.get(level)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                  or not 0 <= value <= 1):
            raise ContractError(source, f"{where}.{level}", f"expected a share of the rows "
                                f"read from 0 to 1 (0.05 is 5%), got {value!r}")
        levels[level] = None if value is None else float(value)
    if levels["warn"] is not None and levels["fail"] is not None and \
            levels["warn"] > levels["fail"]:
        raise ContractError(source, where, f"warn ({levels['warn']:g}) is above fail "
                            f"({levels['fail']:g}): a warning must come first")
    return Threshold(measure, levels["warn"], levels["fail"])


def _parse_quality(raw: Any, contract: Contract, source: str) -> tuple[Threshold, ...]:
    if not isinstance(raw, Mapping):
        raise ContractError(source, "quality", "expected a mapping: quarantined (the share of "
                            "an upload's rows quarantined) and/or rules (per reason code)")
    _check_keys(raw, _QUALITY_KEYS, source, "quality")
    out = []
    if raw.get("quarantined") is not None:
        out.append(_parse_threshold(raw["quarantined"], QUARANTINED_SHARE, source,
                                    "quality.quarantined"))
    rules = raw.get("rules") or {}
    if not isinstance(rules, Mapping):
        raise ContractError(source, "quality.rules", "expected reason codes, each with warn "
                            "and/or fail, e.g. {email.pattern: {warn: 0.01}}")
    codes = sorted({c.code for c in contract.checks()})
    for code, levels in rules.items():
        if code not in codes:
            close = difflib.get_close_matches(str(code), codes, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise ContractError(source, f"quality.rules.{code}", f"{contract.dataset} has no "
                                f"reason code {code!r}; {hint}its codes: {', '.join(codes)}")
        out.append(_parse_threshold(levels, str(code), source, f"quality.rules.{code}"))
    return tuple(out)


def load_contract_file(path: str | Path) -> Contract:
    """Load and validate one contract YAML file."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ContractNotFoundError(f"contract file not found: {source}") from exc
    return _parse_text(text, source)


def _parse_text(text: str, source: str) -> Contract:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ContractError(source, "<yaml>", f"not valid YAML: {exc}") from exc
    return parse_contract(data, source)


_VERSION_FILE_RE = re.compile(r"^v(\d+)\.yaml$")


def _contracts_root() -> Any:
    return resources.files("lib.contracts")


def available_contracts() -> dict[str, tuple[int, ...]]:
    """Bundled contracts: dataset name -> sorted versions."""
    out: dict[str, tuple[int, ...]] = {}
    for ds_dir in sorted(_contracts_root().iterdir(), key=lambda p: p.name):
        if not ds_dir.is_dir() or ds_dir.name.startswith(("_", ".")):
            continue
        versions = sorted(int(m.group(1)) for f in ds_dir.iterdir()
                          if (m := _VERSION_FILE_RE.match(f.name)))
        if versions:
            out[ds_dir.name] = tuple(versions)
    return out


def load_contract(dataset: str, version: int | None = None) -> Contract:
    """Load a bundled contract (``lib/contracts/<dataset>/v<version>.yaml``); the latest
    version when ``version`` is None."""
    known = available_contracts()
    if dataset not in known:
        raise ContractNotFoundError(f"no contract for dataset {dataset!r}; known datasets: "
                                    f"{', '.join(sorted(known)) or '(none)'}")
    if version is None:
        version = known[dataset][-1]
    if version not in known[dataset]:
        raise ContractNotFoundError(f"no contract {dataset!r} version {version}; available "
                                    f"versions: {', '.join(map(str, known[dataset]))}")
    resource = _contracts_root() / dataset / f"v{version}.yaml"
    contract = _parse_text(resource.read_text(encoding="utf-8"), f"contracts/{dataset}/v{version}.yaml")
    if contract.dataset != dataset or contract.version != version:
        raise ContractError(contract.source, "dataset", f"file declares {contract.ref}, "
                            f"but its path says {dataset}/{version}")
    return contract
