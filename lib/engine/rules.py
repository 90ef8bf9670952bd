"""Row rules as native Spark Column expressions.

Each contract column is read as a string and goes through three stages, each a Column:

* :func:`clean_string` - trim every Unicode space and invisible format character (no-break
  and zero-width spaces included: a value made only of them is empty), empty -> null, then
  the contract's normalisers (upper / lower / collapse_whitespace);
* :func:`typed_value` - the string cast to the column's clean type, or null when it is not
  a valid literal of that type (never a silent wrong value: syntax is checked first);
* :func:`check_column` - for one compiled :class:`~lib.contracts.contract.Check`, the reason code
  when the row fails it, else null.

Rules about characters (``pattern``, ``enum``) are checked on the value as received
(trimmed, whitespace collapsed, but before any case mapping), case-insensitively for ASCII
letters when the column normalises case: ``sku-abc`` passes ``^[A-Z-]+$`` under ``upper``,
but ``sku-ııı`` and ``ß-123`` do not pass because Unicode case mapping turns them into
``SKU-III`` and ``SS-123``.

No Python UDFs: everything here is evaluated by the JVM in one pass.
"""

from __future__ import annotations

import operator
from decimal import Decimal
from functools import reduce

from pyspark.sql import Column
from pyspark.sql import functions as F

from lib.contracts.contract import Check
from lib.contracts.contract import Column as ContractColumn
from lib.contracts.regex import portable
from lib.engine.catalogue import (
    ASCII_SPACE,
    CAPITAL_SIGMA,
    CASE_NORMALIZERS,
    COLLAPSED,
    DATE_LAYOUTS,
    DECIMAL_LITERAL,
    INT_LITERAL,
    INTEGER_BOUNDS,
    INVISIBLE,
    LONG_SAFE_LITERAL,
    SMALL_SIGMA,
    TIMESTAMP_LITERAL,
    enum_regex,
    folds_case,
    too_many_fraction_digits,
    too_many_integer_digits,
)
from lib.engine.schemas import spark_type


def _java_char(ch: str) -> str:
    """One character as a Java escape, safe anywhere in a character class."""
    return f"\\x{{{ord(ch):04x}}}"


_SPACES = "[" + "".join(_java_char(c) for c in COLLAPSED) + "]+"


def trim_ascii(raw: Column) -> Column:
    """Stage 1 of :func:`clean_string`: the ASCII spaces at both ends trimmed."""
    # Most values have nothing to trim: a test of the first and last byte is cheaper than
    # the trim itself (which copies the value), so only values with a space at an end pay.
    at_edge = reduce(operator.or_, [raw.startswith(ch) | raw.endswith(ch) for ch in ASCII_SPACE])
    return F.when(at_edge, F.btrim(raw, F.lit(ASCII_SPACE))).otherwise(raw)


def trim_invisible(value: Column) -> Column:
    """Stage 2 of :func:`clean_string`, on stage 1's value: every Unicode space and invisible
    format character at both ends trimmed."""
    # Only a value with a non-ASCII character can hold more to trim (as many characters as
    # bytes: ASCII): the full set is searched for those alone.
    ascii_only = F.length(value) == F.octet_length(value)
    return F.when(ascii_only, value).otherwise(F.btrim(value, F.lit(INVISIBLE)))


def normalised(value: Column, normalize: tuple[str, ...] = ()) -> Column:
    """Stage 3 of :func:`clean_string`, on stage 2's value: empty -> null, then the
    normalisers."""
    value = F.when(value != "", value)
    for step in normalize:
        if step == "upper":
            value = F.upper(value)
        elif step == "lower":  # context-free: see lib.engine.catalogue.CAPITAL_SIGMA
            value = F.lower(F.translate(value, CAPITAL_SIGMA, SMALL_SIGMA))
        elif step == "collapse_whitespace":
            value = F.regexp_replace(value, _SPACES, " ")
        else:  # pragma: no cover - the contract parser refuses unknown normalisers
            raise ValueError(f"unknown normalizer {step!r}")
    return value


def clean_string(raw: Column, normalize: tuple[str, ...] = ()) -> Column:
    """Trim, turn empty into null, then normalise case / whitespace: the three stages in one
    expression. Each stage reads its input more than once, so the expression holds the
    first stage eight times over: :func:`lib.engine.transforms.validate` computes the stages
    in projections of their own (a column each), which keeps the generated code small."""
    return normalised(trim_invisible(trim_ascii(raw)), normalize)


def cleaned_value(raw: Column, col: ContractColumn, *, trimmed: bool = False) -> Column:
    """:func:`clean_string` with the column's normalisers, then its default when empty
    (``trimmed``: ``raw`` is already :func:`trim_invisible`'s value)."""
    value = normalised(raw, col.normalize) if trimmed else clean_string(raw, col.normalize)
    return F.coalesce(value, F.lit(col.default)) if col.default is not None else value


def received_value(raw: Column, col: ContractColumn, *, trimmed: bool = False) -> Column:
    """The value as received, for the character rules of a column that maps case: like
    :func:`cleaned_value` but without the case mapping."""
    steps = tuple(s for s in col.normalize if s not in CASE_NORMALIZERS)
    value = normalised(raw, steps) if trimmed else clean_string(raw, steps)
    return F.coalesce(value, F.lit(col.default)) if col.default is not None else value


Shapes = dict[str, Column]  # regular expression -> whether the cleaned string matches it


def _matches(s: Column, regex: str, shapes: Shapes | None) -> Column:
    return shapes[regex] if shapes and regex in shapes else s.rlike(regex)


def _long_value(s: Column, shapes: Shapes | None = None) -> Column:
    return F.when(_matches(s, LONG_SAFE_LITERAL, shapes), s.cast("long"))


def _decimal_ok(s: Column, precision: int, scale: int, shapes: Shapes | None = None) -> Column:
    """True when ``s`` is a plain decimal literal fitting decimal(precision, scale)."""
    return (
        _matches(s, DECIMAL_LITERAL, shapes)
        & ~_matches(s, too_many_fraction_digits(scale), shapes)
        & ~_matches(s, too_many_integer_digits(precision - scale), shapes)
    )


def typed_value(s: Column, col: ContractColumn, shapes: Shapes | None = None) -> Column:
    """The cleaned string ``s`` cast to the column's type; null when it is not a valid
    literal of that type or does not fit it. ``shapes``: see :func:`literal_shapes`."""
    t = col.type
    if t.name == "string":
        return s
    if t.name in INTEGER_BOUNDS:
        lo, hi = INTEGER_BOUNDS[t.name]
        v = _long_value(s, shapes)
        return F.when(_matches(s, INT_LITERAL, shapes) & v.between(lo, hi),
                      v.cast(spark_type(t)))
    if t.name == "decimal":
        return F.when(_decimal_ok(s, t.precision, t.scale, shapes), s.cast(spark_type(t)))
    if t.name == "timestamp":
        # No zone means UTC: make that explicit rather than trust the session time zone.
        # Once the literal matched, a zone is a trailing 'Z' or a sign 6 characters from
        # the end ('+05:30'); no second regex needed.
        has_zone = s.endswith("Z") | F.substring(s, -6, 1).isin("+", "-")
        zoned = F.when(has_zone, s).otherwise(F.concat(s, F.lit("Z")))
        return F.when(_matches(s, TIMESTAMP_LITERAL, shapes), zoned.cast("timestamp"))
    if t.name == "date":
        # Each accepted layout has the ISO field order; a strict cast (null for 2024-02-30)
        # after normalising the separator. No pattern-based parser: no lenient parsing.
        layouts = col.formats or ("YYYY-MM-DD",)
        ok = _matches(s, DATE_LAYOUTS[layouts[0]], shapes)
        for layout in layouts[1:]:
            ok = ok | _matches(s, DATE_LAYOUTS[layout], shapes)
        iso = F.translate(s, "/", "-") if "YYYY/MM/DD" in layouts else s
        return F.when(ok, iso.cast("date"))
    raise ValueError(f"no cast for type {t}")  # pragma: no cover - parser refuses it


def _bound_literal(value: object, col: ContractColumn) -> Column:
    if col.type.is_temporal:
        return F.lit(value).cast(spark_type(col.type))
    if col.type.name == "decimal":
        return F.lit(Decimal(str(value)))
    return F.lit(value)


def _failed(condition: Column, code: str) -> Column:
    return F.when(condition, F.lit(code))


def check_column(check: Check, col: ContractColumn, s: Column, v: Column,
                 nested: Column | None = None, received: Column | None = None,
                 shapes: Shapes | None = None) -> Column:
    """Reason code when the row fails ``check``, else null.

    ``s`` is the cleaned string (see :func:`cleaned_value`) and ``v`` the typed value (see
    :func:`typed_value`). A null value fails only ``required``; every other rule applies
    to present values. ``nested`` (JSON Lines) is true when the field held an object or an
    array: such a value is null in ``s`` and fails ``nested`` (``<column>.type``) only.
    ``received`` (see :func:`received_value`) is what ``pattern`` and ``enum`` check when the
    column maps case. ``shapes``: see :func:`literal_shapes`.
    """
    kind, p = check.kind, check.params
    if kind == "nested":
        return _failed(nested if nested is not None else F.lit(False), check.code)
    if kind == "required":
        missing = s.isNull() if nested is None else s.isNull() & ~nested
        return _failed(missing, check.code)
    if kind == "type":
        if col.type.name == "decimal":
            return _failed(s.isNotNull() & ~_matches(s, DECIMAL_LITERAL, shapes), check.code)
        if col.type.name in INTEGER_BOUNDS:
            return _failed(s.isNotNull() & ~_matches(s, INT_LITERAL, shapes), check.code)
        # dates and timestamps: a literal of the right shape that is not a real date/time
        # (2024-02-30, 25:00:00) fails the same format check
        return _failed(s.isNotNull() & v.isNull(), check.code)
    if kind == "precision":
        return _failed(_matches(s, DECIMAL_LITERAL, shapes)
                       & _matches(s, too_many_fraction_digits(p["scale"]), shapes), check.code)
    if kind == "decimal_range":
        return _failed(_matches(s, DECIMAL_LITERAL, shapes)
                       & _matches(s, too_many_integer_digits(p["integer_digits"]), shapes),
                       check.code)
    if kind == "integer_range":
        return _failed(_matches(s, INT_LITERAL, shapes) & v.isNull(), check.code)
    if kind == "length":
        n = F.length(s)
        bad = F.lit(False)
        if p.get("min") is not None:
            bad = bad | (n < p["min"])
        if p.get("max") is not None:
            bad = bad | (n > p["max"])
        return _failed(s.isNotNull() & bad, check.code)
    if kind == "pattern":  # the pattern's one meaning, written for Java (lib.contracts.regex)
        regex = portable(p["regex"])
        if received is not None and folds_case(col):
            return _failed(received.isNotNull() & ~received.rlike(regex.java(ignore_case=True)),
                           check.code)
        return _failed(s.isNotNull() & ~s.rlike(regex.java()), check.code)
    if kind == "enum":
        if received is not None and folds_case(col):
            return _failed(received.isNotNull() & ~received.rlike(enum_regex(p["values"])),
                           check.code)
        return _failed(s.isNotNull() & ~s.isin(list(p["values"])), check.code)
    if kind == "range":
        bad = F.lit(False)
        if p.get("min") is not None:
            bad = bad | (v < _bound_literal(p["min"], col))
        if p.get("max") is not None:
            bad = bad | (v > _bound_literal(p["max"], col))
        return _failed(v.isNotNull() & bad, check.code)
    raise ValueError(f"check {check.code!r}: kind {kind!r} is not a row rule")
