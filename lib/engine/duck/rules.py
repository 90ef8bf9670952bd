"""Row rules as DuckDB SQL, each the exact counterpart of :mod:`lib.engine.rules` (Spark).

The same three stages per contract column, as SQL text over the previous stage's columns:

* :func:`clean_steps` - the cleaning of :func:`lib.engine.rules.clean_string` as a list of
  steps, each an expression over the previous one's value (``{v}``), so that a caller
  evaluates each once per row in a projection of its own (a nested expression would repeat
  a value that a step reads twice);
* :func:`typed_value` - the cleaned string cast to the column's type, or null;
* :func:`check_column` - the reason code when the row fails one compiled check, else null.

Where DuckDB and the JVM mean different things, the difference is written out here:

* **case mapping**: DuckDB maps case one character to one character; Java applies Unicode's
  full mappings (``ß`` -> ``SS``, ``ﬁ`` -> ``FI``, ``İ`` -> ``i̇``). The characters with a
  longer mapping are replaced by it first (:data:`UPPER_SPECIAL`, :data:`LOWER_SPECIAL`),
  only in values that hold a non-ASCII character;
* **regular expressions**: patterns come from :mod:`lib.contracts.regex` in RE2 syntax with
  the Java meaning; ``(?i)`` is ASCII-only there, so the enum of a case-mapped column is
  matched with explicit ``[aA]`` classes rather than RE2's Unicode folding;
* **casts**: DuckDB accepts more than Spark (``24:00:00``, a ``+18:30`` offset, ``1e3``,
  `` 5``); every cast here runs only on a literal whose shape the shared regular
  expressions of :mod:`lib.engine.catalogue` already accepted, with the field ranges Spark
  checks on top.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Callable
from decimal import Decimal

from lib.contracts.contract import Check
from lib.contracts.contract import Column as ContractColumn
from lib.contracts.regex import portable
from lib.engine.catalogue import (
    ASCII_SPACE,
    CASE_NORMALIZERS,
    COLLAPSED,
    DATE_LAYOUTS,
    DECIMAL_LITERAL,
    INT_LITERAL,
    INTEGER_BOUNDS,
    INVISIBLE,
    LONG_SAFE_LITERAL,
    TIMESTAMP_LITERAL,
    folds_case,
    too_many_fraction_digits,
    too_many_integer_digits,
)


# Characters whose full upper-case mapping is longer than one character (Unicode's
# SpecialCasing: ß, ligatures, ŉ, ǰ, Greek with ypogegrammeni ...), and the one whose full
# lower-case mapping is (İ): replaced by their mapping before DuckDB's one-to-one mapping.
def _longer_mappings(*fns: Callable[[str], str]) -> list[dict[str, str]]:
    """For each of ``fns``, every character (surrogates aside) it maps to more than one
    character. A case mapping never shortens a character, so a block of characters whose
    mapping is as long as the block holds none: the blocks that do are halved until the
    characters are found (every character once, in blocks, instead of one by one)."""
    found: list[dict[str, str]] = [{} for _ in fns]

    def scan(text: str, fn: Callable[[str], str], out: dict[str, str]) -> None:
        if len(fn(text)) == len(text):
            return
        if len(text) == 1:
            out[text] = fn(text)
            return
        mid = len(text) // 2
        scan(text[:mid], fn, out)
        scan(text[mid:], fn, out)

    for lo, hi in ((0, 0xD800), (0xE000, sys.maxunicode + 1)):
        text = array("I", range(lo, hi)).tobytes().decode("utf-32-le" if sys.byteorder ==
                                                         "little" else "utf-32-be")
        for start in range(0, len(text), 4096):
            block = text[start:start + 4096]
            for fn, out in zip(fns, found, strict=True):
                scan(block, fn, out)
    return found


UPPER_SPECIAL, LOWER_SPECIAL = _longer_mappings(str.upper, str.lower)

# Characters Unicode 14 gave a case (Glagolitic, Latin Extended-D, Vithkuqi): Java 17, the
# JVM of Glue 5, knows Unicode 13 and leaves them as they are; DuckDB maps them. A value
# holding one is mapped character by character, these kept.
JAVA_UNCASED = "".join(chr(c) for lo, hi in ((0x2C2F, 0x2C2F), (0x2C5F, 0x2C5F), (0xA7C0, 0xA7C1),
                                             (0xA7D0, 0xA7D1), (0xA7D6, 0xA7D9),
                                             (0x10570, 0x105BC))
                       for c in range(lo, hi + 1))

DUCK_TYPES = {"string": "VARCHAR", "int": "INTEGER", "bigint": "BIGINT", "date": "DATE",
              "timestamp": "TIMESTAMPTZ"}


def ident(name: str) -> str:
    """A quoted identifier."""
    return '"' + name.replace('"', '""') + '"'


def lit(value: str) -> str:
    """A string literal (standard SQL: a quote is doubled, a backslash is itself)."""
    return "'" + value.replace("'", "''") + "'"


def duck_type(col_type: object) -> str:
    name = col_type.name  # type: ignore[attr-defined]
    if name == "decimal":
        return f"DECIMAL({col_type.precision}, {col_type.scale})"  # type: ignore[attr-defined]
    return DUCK_TYPES[name]


def _re2_char(ch: str) -> str:
    return f"\\x{{{ord(ch):x}}}"


_COLLAPSE = "[" + "".join(_re2_char(c) for c in COLLAPSED) + "]+"


def _ascii(v: str) -> str:
    """True when the value holds ASCII only (as many bytes as characters)."""
    return f"strlen({v}) = length({v})"


def _replaced(v: str, table: dict[str, str]) -> str:
    for src, dst in table.items():
        v = f"replace({v}, {lit(src)}, {lit(dst)})"
    return v


def _case_mapped(fn: str, special: dict[str, str]) -> str:
    """``fn`` (upper or lower) of ``{v}`` with Java's meaning (see the module docstring)."""
    kept = "[" + "".join(_re2_char(c) for c in JAVA_UNCASED) + "]"
    listed = ", ".join(lit(c) for c in JAVA_UNCASED)
    per_char = (f"array_to_string(list_transform(string_split({{v}}, ''), lambda c: CASE WHEN c IN "
                f"({listed}) THEN c ELSE {fn}({_replaced('c', special)}) END), '')")
    return (f"CASE WHEN {{a}} THEN {fn}({{v}}) "
            f"WHEN regexp_matches({{v}}, {lit(kept)}) THEN {per_char} "
            f"ELSE {fn}({_replaced('{v}', special)}) END")


def ascii_flag(raw: str) -> str:
    """Whether the value as read holds ASCII only: ``{a}`` in :func:`clean_steps`. (Trimming
    ASCII keeps a value with another character non-ASCII; a value the full trim made ASCII
    takes the slower branch of the case mapping, with the same result.)"""
    return _ascii(raw)


def clean_steps(normalize: tuple[str, ...] = ()) -> list[str]:
    """Trim, empty -> null, then each normaliser: expressions over ``{v}``, the previous
    step's value (the first step's ``{v}`` is the value as read), and ``{a}``, whether the
    value as read is ASCII (:func:`ascii_flag`), computed once."""
    # Most values have nothing to trim: the ends are looked at first (as in the Spark engine),
    # and only a value with a character up to the space at an end is trimmed.
    steps = [
        f"CASE WHEN ascii({{v}}) <= 32 OR ascii(right({{v}}, 1)) <= 32 "
        f"THEN trim({{v}}, {lit(ASCII_SPACE)}) ELSE {{v}} END",
        f"nullif(CASE WHEN {{a}} THEN {{v}} ELSE trim({{v}}, {lit(INVISIBLE)}) END, '')",
    ]
    for step in normalize:
        if step in CASE_NORMALIZERS:
            steps.append(_case_mapped(step, UPPER_SPECIAL if step == "upper" else LOWER_SPECIAL))
        elif step == "collapse_whitespace":
            steps.append(f"regexp_replace({{v}}, {lit(_COLLAPSE)}, ' ', 'g')")
        else:  # pragma: no cover - the contract parser refuses unknown normalisers
            raise ValueError(f"unknown normalizer {step!r}")
    return steps


def cleaned_steps(col: ContractColumn) -> list[str]:
    """:func:`clean_steps` with the column's normalisers, then its default when empty."""
    steps = clean_steps(col.normalize)
    if col.default is not None:
        steps.append(f"coalesce({{v}}, {lit(str(col.default))})")
    return steps


def received_steps(col: ContractColumn) -> list[str]:
    """The value as received, for the character rules of a column that maps case."""
    steps = clean_steps(tuple(s for s in col.normalize if s not in CASE_NORMALIZERS))
    if col.default is not None:
        steps.append(f"coalesce({{v}}, {lit(str(col.default))})")
    return steps


Shapes = dict[str, str]  # regular expression -> a column holding whether the value matches it


def matches(s: str, regex: str, shapes: Shapes | None = None) -> str:
    """Whether ``s`` matches ``regex`` (written for Java; the literal shapes mean the same in
    RE2: ASCII classes, anchors on values that end in no line break)."""
    if shapes and regex in shapes:
        return shapes[regex]
    return f"regexp_matches({s}, {lit(regex)})"


def typed_value(s: str, col: ContractColumn, shapes: Shapes | None = None) -> str:
    """The cleaned string ``s`` cast to the column's type; null when it is not a valid
    literal of that type or does not fit it (as :func:`lib.engine.rules.typed_value`)."""
    t = col.type
    if t.name == "string":
        return s
    if t.name in INTEGER_BOUNDS:
        lo, hi = INTEGER_BOUNDS[t.name]
        v = f"(CASE WHEN {matches(s, LONG_SAFE_LITERAL, shapes)} THEN TRY_CAST({s} AS BIGINT) END)"
        return (f"(CASE WHEN {matches(s, INT_LITERAL, shapes)} AND {v} BETWEEN {lo} AND {hi} "
                f"THEN CAST({v} AS {duck_type(t)}) END)")
    if t.name == "decimal":
        return (f"(CASE WHEN {_decimal_ok(s, t.precision, t.scale, shapes)} "
                f"THEN TRY_CAST({s} AS {duck_type(t)}) END)")
    if t.name == "timestamp":
        # Spark's fields: hour <= 23, minute and second <= 59, an offset within +-18:00.
        zoned = f"(right({s}, 1) = 'Z' OR substr({s}, -6, 1) IN ('+', '-'))"
        offset = (f"(substr({s}, -5, 2) < '18' OR substr({s}, -5, 5) = '18:00') "
                  f"AND substr({s}, -2, 2) <= '59'")
        fields = (f"substr({s}, 12, 2) <= '23' AND substr({s}, 15, 2) <= '59' "
                  f"AND substr({s}, 18, 2) <= '59' "
                  f"AND (right({s}, 1) = 'Z' OR substr({s}, -6, 1) NOT IN ('+', '-') "
                  f"OR ({offset}))")
        return (f"(CASE WHEN {matches(s, TIMESTAMP_LITERAL, shapes)} AND {fields} THEN "
                f"TRY_CAST(CASE WHEN {zoned} THEN {s} ELSE {s} || 'Z' END AS TIMESTAMPTZ) END)")
    if t.name == "date":
        layouts = col.formats or ("YYYY-MM-DD",)
        ok = " OR ".join(matches(s, DATE_LAYOUTS[layout], shapes) for layout in layouts)
        iso = f"replace({s}, '/', '-')" if "YYYY/MM/DD" in layouts else s
        return f"(CASE WHEN {ok} THEN TRY_CAST({iso} AS DATE) END)"
    raise ValueError(f"no cast for type {t}")  # pragma: no cover - parser refuses it


def _decimal_ok(s: str, precision: int, scale: int, shapes: Shapes | None = None) -> str:
    return (f"({matches(s, DECIMAL_LITERAL, shapes)} "
            f"AND NOT {matches(s, too_many_fraction_digits(scale), shapes)} "
            f"AND NOT {matches(s, too_many_integer_digits(precision - scale), shapes)})")


def _bound_literal(value: object, col: ContractColumn) -> str:
    if col.type.is_temporal:
        return f"CAST({lit(str(value))} AS {duck_type(col.type)})"
    if col.type.name == "decimal":
        d = Decimal(str(value))
        digits = max(len(d.as_tuple().digits), 1)
        scale = max(-d.as_tuple().exponent, 0)  # type: ignore[operator]
        return f"CAST({lit(str(d))} AS DECIMAL({max(digits, scale + 1)}, {scale}))"
    return str(int(value))  # type: ignore[call-overload]


def _ascii_insensitive(text: str) -> str:
    """``text`` as an RE2 literal matching ASCII letters in either case only."""
    out = []
    for ch in text:
        if ch.isascii() and ch.isalpha():
            out.append(f"[{ch.lower()}{ch.upper()}]")
        elif ch.isascii() and not ch.isalnum():
            out.append(_re2_char(ch))
        else:
            out.append(ch)
    return "".join(out)


def enum_regex(values: list[str]) -> str:
    """The RE2 counterpart of :func:`lib.engine.catalogue.enum_regex`."""
    return r"\A(?:" + "|".join(_ascii_insensitive(str(v)) for v in values) + r")\z"


def _outside(value: str, p: dict, low: object, high: object) -> str:
    """``value`` below ``p['min']`` (as ``low``) or above ``p['max']`` (as ``high``)."""
    bad = []
    if p.get("min") is not None:
        bad.append(f"{value} < {low}")
    if p.get("max") is not None:
        bad.append(f"{value} > {high}")
    return " OR ".join(bad) or "false"


def _failed(condition: str, code: str) -> str:
    return f"CASE WHEN {condition} THEN {lit(code)} END"


def check_column(check: Check, col: ContractColumn, s: str, v: str, nested: str | None = None,
                 received: str | None = None, shapes: Shapes | None = None) -> str:
    """Reason code when the row fails ``check``, else null (as
    :func:`lib.engine.rules.check_column`, whose docstring says what each argument is)."""
    kind, p = check.kind, check.params
    if kind == "nested":
        return _failed(nested if nested is not None else "false", check.code)
    if kind == "required":
        missing = f"{s} IS NULL" if nested is None else f"{s} IS NULL AND NOT {nested}"
        return _failed(missing, check.code)
    if kind == "type":
        if col.type.name == "decimal":
            return _failed(f"{s} IS NOT NULL AND NOT {matches(s, DECIMAL_LITERAL, shapes)}",
                           check.code)
        if col.type.name in INTEGER_BOUNDS:
            return _failed(f"{s} IS NOT NULL AND NOT {matches(s, INT_LITERAL, shapes)}",
                           check.code)
        return _failed(f"{s} IS NOT NULL AND {v} IS NULL", check.code)
    if kind == "precision":
        return _failed(f"{matches(s, DECIMAL_LITERAL, shapes)} AND "
                       f"{matches(s, too_many_fraction_digits(p['scale']), shapes)}", check.code)
    if kind == "decimal_range":
        return _failed(f"{matches(s, DECIMAL_LITERAL, shapes)} AND "
                       f"{matches(s, too_many_integer_digits(p['integer_digits']), shapes)}",
                       check.code)
    if kind == "integer_range":
        return _failed(f"{matches(s, INT_LITERAL, shapes)} AND {v} IS NULL", check.code)
    if kind == "length":
        bounds = _outside(f"length({s})", p, p.get("min"), p.get("max"))
        return _failed(f"{s} IS NOT NULL AND ({bounds})", check.code)
    if kind == "pattern":
        regex = portable(p["regex"])
        if received is not None and folds_case(col):
            return _failed(f"{received} IS NOT NULL AND NOT regexp_matches({received}, "
                           f"{lit(regex.re2(ignore_case=True))})", check.code)
        return _failed(f"{s} IS NOT NULL AND NOT regexp_matches({s}, {lit(regex.re2())})",
                       check.code)
    if kind == "enum":
        if received is not None and folds_case(col):
            return _failed(f"{received} IS NOT NULL AND NOT regexp_matches({received}, "
                           f"{lit(enum_regex(p['values']))})", check.code)
        values = ", ".join(lit(str(x)) for x in p["values"])
        return _failed(f"{s} IS NOT NULL AND {s} NOT IN ({values})", check.code)
    if kind == "range":
        low, high = (_bound_literal(p[k], col) if p.get(k) is not None else None
                     for k in ("min", "max"))
        return _failed(f"{v} IS NOT NULL AND ({_outside(v, p, low, high)})", check.code)
    raise ValueError(f"check {check.code!r}: kind {kind!r} is not a row rule")
