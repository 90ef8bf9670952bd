"""What both engines share about a row's values, in plain Python (no Spark, no DuckDB): the
characters trimmed, the case mappings, the shapes a literal of each type must have, the
integer bounds. :mod:`lib.engine.rules` (Spark) and :mod:`lib.engine.duck.rules` (DuckDB)
compile the same contract from these, so a rule has one definition of what it accepts.
"""

from __future__ import annotations

import re
import unicodedata

from lib.contracts.contract import Column as ContractColumn

# Trimmed from both ends of every value: ASCII whitespace and controls that separate, and
# every character of the Basic Multilingual Plane that Unicode files as a separator (Zs, Zl,
# Zp: no-break, thin, ideographic spaces ...) or an invisible format character (Cf:
# zero-width space and joiners, word joiner, byte-order mark, bidi marks ...). The full set
# is searched only in values holding a non-ASCII character; an ASCII value is trimmed of
# ASCII_SPACE alone.
INVISIBLE = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f\x85" + "".join(
    chr(c) for c in range(0x10000)
    if not 0xD800 <= c <= 0xDFFF and unicodedata.category(chr(c)) in ("Zs", "Zl", "Zp", "Cf"))
ASCII_SPACE = " \t\n\x0b\x0c\r"
# What collapse_whitespace turns into one space: Java's \s (which holds \x0B) and every
# separator (Zs, Zl, Zp), as explicit characters so that both regex engines read one set.
COLLAPSED = ASCII_SPACE + "".join(
    chr(c) for c in range(0x80, 0x10000)
    if not 0xD800 <= c <= 0xDFFF and unicodedata.category(chr(c)) in ("Zs", "Zl", "Zp"))
CASE_NORMALIZERS = ("upper", "lower")

# Lower-casing is context-free: a capital sigma is always the medial 'σ' (Java alone would
# pick the final 'ς' by the word around it), so both engines map it the same way.
CAPITAL_SIGMA, SMALL_SIGMA = "\u03a3", "\u03c3"

INT_LITERAL = r"^[+-]?[0-9]+$"
# An integer literal that fits in a signed 64-bit value without overflow (<= 18 digits).
LONG_SAFE_LITERAL = r"^[+-]?0*[0-9]{1,18}$"
DECIMAL_LITERAL = r"^[0-9]+(\.[0-9]+)?$"
TIMESTAMP_LITERAL = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})?$"
)
DATE_LITERAL = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
# Date layouts a contract may list (lib.contracts.contract.DATE_FORMATS) -> the literal's shape.
DATE_LAYOUTS = {
    "YYYY-MM-DD": DATE_LITERAL,
    "YYYY/MM/DD": r"^[0-9]{4}/[0-9]{2}/[0-9]{2}$",
}

INTEGER_BOUNDS = {"int": (-(2**31), 2**31 - 1), "bigint": (-(2**63), 2**63 - 1)}


def folds_case(col: ContractColumn) -> bool:
    return any(step in CASE_NORMALIZERS for step in col.normalize)


def too_many_fraction_digits(scale: int) -> str:
    return rf"\.[0-9]{{{scale + 1},}}$"


def too_many_integer_digits(integer_digits: int) -> str:
    # a non-zero leading digit followed by at least `integer_digits` more digits
    return rf"^0*[1-9][0-9]{{{integer_digits},}}"


def literal_shapes(col: ContractColumn) -> tuple[str, ...]:
    """The regular expressions a cleaned value of ``col`` is tested against (by the cast and
    by the implied checks), each evaluated once per row by either engine."""
    t = col.type
    if t.name in INTEGER_BOUNDS:
        return (INT_LITERAL, LONG_SAFE_LITERAL)
    if t.name == "decimal":
        return (DECIMAL_LITERAL, too_many_fraction_digits(t.scale),
                too_many_integer_digits(t.precision - t.scale))
    if t.name == "timestamp":
        return (TIMESTAMP_LITERAL,)
    if t.name == "date":
        return tuple(DATE_LAYOUTS[layout] for layout in (col.formats or ("YYYY-MM-DD",)))
    return ()


def enum_regex(values: list[str]) -> str:
    """An anchored alternation of the literal values, ASCII case-insensitive (Java syntax;
    RE2 reads it the same: ``re.escape`` escapes only ASCII punctuation and spaces)."""
    return "(?i)^(?:" + "|".join(re.escape(str(v)) for v in values) + ")$"
