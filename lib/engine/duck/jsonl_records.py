"""One JSON Lines line read exactly as the Spark job's reader reads it
(:mod:`lib.sources.jsonl_reader`: ``from_json`` with Jackson 2.15 under Spark 3.5.4, JDK 17).

What Spark gives each contract field, and when a line is a record at all (observed on
Spark, row for row, in ``tests/sources/test_jsonl.py`` and ``tests/engine``):

* a line of nothing but spaces holds no record (Spark's ``trim`` drops spaces only); a line
  of spaces and tabs, or ``{}``, is a record whose fields are all null;
* the record is the first JSON object on the line, after spaces and tabs; whatever follows
  it is ignored (``{"a": 1} junk``);
* the line is malformed (its text kept whole, every field null) when that object is broken
  JSON, when the line starts with anything else (an array, a scalar, a byte-order mark
  after the first line, a control character), when ``NaN`` or ``Infinity`` appears, when a
  key repeats at the top level (keys compared after their escapes are decoded), when
  objects and arrays nest deeper than 1000 levels, when a number holds more than 1000
  digits (integer, fraction and exponent digits together), or when a string holds an
  unescaped control character;
* a field's value, as text: a string decoded (a lone surrogate becomes ``?``, as Java
  writes it to UTF-8); an integer in its digits (``-0`` is ``0``); ``true``/``false``; a
  float as Java's ``Double.toString`` writes the double it parses to (``1e3`` is
  ``1000.0``, ``1e7`` is ``1.0E7``); ``null`` is null; an object or array its compact JSON
  as Jackson writes it (see :func:`compact`), which lists the field in ``_nested_fields``;
  a number beyond the double range the text ``"Infinity"`` (quotes included), also listed.

What this module cannot reproduce exactly raises
:class:`~lib.engine.duck.csv_line.NotReproduced` (the upload goes to the Spark engine): a
single-quoted string or key (Jackson reads them, Python's ``json`` does not), a float in a
contract field outside ``[1e-300, 1e16)`` (JDK 17's ``Double.toString`` does not always
write the shortest digits there; inside the range it does, checked on 1.5 million doubles
against this JVM), a line over :data:`MAX_LINE_CHARS`.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal

from lib.engine.duck.csv_line import NotReproduced
from lib.errors import LakeError

MAX_DEPTH = 1000  # Jackson 2.15's StreamReadConstraints: nesting, the root object included
MAX_DIGITS = 1000  # ... and digits in one number
# Jackson's limit on one string changed between 2.15 releases (5 and 20 million chars):
# a line longer than the smaller one is left to the Spark engine.
MAX_LINE_CHARS = 5_000_000
# The doubles whose Double.toString (JDK 17) is the shortest text that reads back as them,
# which is what Python's repr writes: measured on 1.5 million doubles in this range.
_SHORTEST_FROM, _SHORTEST_TO = 1e-300, 1e16
BOM = "\ufeff"
_NON_FINITE = ('"Infinity"', '"-Infinity"', '"NaN"')  # a string field reading one is listed
_JSON_BLANK = " \t"  # JSON whitespace that can be inside a line (\r and \n end it)


class _Obj(list):
    """A JSON object as its (key, value) pairs, in order, repeats kept (Jackson writes a
    nested object back key for key)."""


@dataclass(frozen=True, slots=True)
class _Float:
    """A JSON float token: the double Jackson parses it to."""

    value: float


class _Malformed(LakeError):
    """A token Jackson refuses that Python's json accepts or never sees (caught in
    :func:`parse`: the line is malformed)."""

    default_code = "row.malformed"


def _int(text: str) -> int:
    if len(text) - (text[0] == "-") > MAX_DIGITS:
        raise _Malformed("too many digits")
    return int(text)


def _float(text: str) -> _Float:
    if sum(c.isdigit() for c in text) > MAX_DIGITS:
        raise _Malformed("too many digits")
    return _Float(float(text))


def _constant(name: str) -> None:
    raise _Malformed(name)  # NaN, Infinity, -Infinity: Spark reads with allowNonNumericNumbers off


_DECODER = json.JSONDecoder(object_pairs_hook=_Obj, parse_float=_float, parse_int=_int,
                            parse_constant=_constant, strict=True)
_BRACKETS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _deeper_than_limit(line: str, start: int) -> bool:
    """Whether the root object (from ``start``) nests deeper than :data:`MAX_DEPTH`."""
    depth = 0
    for m in _BRACKETS.finditer(line, start):
        c = m.group()
        if c in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif c in "]}":
            depth -= 1
            if depth == 0:
                return False
    return False


# --- what Jackson's generator writes -------------------------------------------------

_ESCAPES = {i: f"\\u{i:04X}" for i in range(32)}
_ESCAPES.update({0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r",
                 ord('"'): '\\"', ord("\\"): "\\\\"})
# Characters Jackson's UTF-8 generator writes as \\u escapes: surrogates (each half of a
# pair, as Java holds it) and so every character beyond the BMP.
_WIDE = re.compile("[\ud800-\udfff\U00010000-\U0010ffff]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _utf16_escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    if c < 0x10000:
        return f"\\u{c:04X}"
    c -= 0x10000
    return f"\\u{0xD800 + (c >> 10):04X}\\u{0xDC00 + (c & 0x3FF):04X}"


def _string(s: str) -> str:
    s = s.translate(_ESCAPES)
    if not s.isascii():
        s = _WIDE.sub(_utf16_escape, s)
    return f'"{s}"'


def java_double(x: float) -> str:
    """Java's ``Double.toString(x)`` (JDK 17) for 0, the non-finite values and every double
    in ``[1e-300, 1e16)``; anything else is :class:`NotReproduced`."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    sign = "-" if math.copysign(1.0, x) < 0 else ""
    if x == 0:
        return sign + "0.0"
    a = abs(x)
    if not _SHORTEST_FROM <= a < _SHORTEST_TO:
        raise NotReproduced(
            f"a float ({x!r}) outside [1e-300, 1e16), whose text JDK 17 does not always write "
            "in the shortest digits")
    t = Decimal(repr(a)).as_tuple()
    digits = "".join(map(str, t.digits)).rstrip("0") or "0"
    exp = t.exponent + len(t.digits) - 1  # type: ignore[operator]  # of the first digit
    if 1e-3 <= a < 1e7:
        if exp >= 0:
            whole, frac = digits[:exp + 1].ljust(exp + 1, "0"), digits[exp + 1:]
        else:
            whole, frac = "0", "0" * (-exp - 1) + digits
        return f"{sign}{whole}.{frac or '0'}"
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{exp}"


def _number(x: _Float) -> str:
    # Jackson writes a non-finite double as a string (QUOTE_NON_NUMERIC_NUMBERS).
    return f'"{java_double(x.value)}"' if math.isinf(x.value) else java_double(x.value)


def compact(value: object) -> str:
    """A parsed JSON value as Jackson's generator writes it back: no whitespace, ``/`` and
    non-ASCII characters as they are, control characters as short escapes (``\\n``,
    ``\\t``, ``\\b``, ``\\f``, ``\\r``) or ``\\u00XX`` in upper case, surrogates (so
    characters beyond the BMP) as ``\\uXXXX`` pairs, floats as :func:`java_double`."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, _Float):
        return _number(value)
    if isinstance(value, str):
        return _string(value)
    parts = []  # a loop, not a comprehension: one frame per level of nesting
    if isinstance(value, _Obj):
        for k, v in value:
            parts.append(f"{_string(k)}:{compact(v)}")
        return "{" + ",".join(parts) + "}"
    for v in value:  # type: ignore[attr-defined]
        parts.append(compact(v))
    return "[" + ",".join(parts) + "]"


def field_text(value: object) -> tuple[str | None, bool]:
    """What a string field reads from a parsed value, and whether it is listed in
    ``_nested_fields``."""
    if value is None:
        return None, False
    if isinstance(value, str):
        return (_LONE_SURROGATE.sub("?", value) if not value.isascii() else value), \
            value in _NON_FINITE
    if isinstance(value, (_Obj, list)):
        return compact(value), True
    if isinstance(value, _Float) and math.isinf(value.value):
        return _number(value), True
    return compact(value), False


# --- one line --------------------------------------------------------------------------

BLANK = None  # parse(): the line holds no record


@dataclass(frozen=True, slots=True)
class Record:
    """One record: each contract field's text (None: absent or null), the fields listed in
    ``_nested_fields`` (None: none), the line when it is malformed (then every field is
    None)."""

    values: tuple[str | None, ...]
    nested: str | None
    malformed: str | None


_SHALLOW = 100  # nesting Python's json and compact() take within the default limit


def _make_room() -> None:
    """Python's json decodes nesting recursively: room for :data:`MAX_DEPTH` levels. The
    limit is process-wide, so it is only ever raised (a run in another thread parsing its
    own deep line must never see it lowered under it)."""
    if sys.getrecursionlimit() < MAX_DEPTH * 4:
        sys.setrecursionlimit(MAX_DEPTH * 4)


def parse(line: str, names: Sequence[str]) -> Record | None:
    """The record a line holds for the contract fields ``names`` (None: a blank line). The
    caller removes a byte-order mark from the file's first line, as Spark does."""
    if not line.strip(" "):
        return BLANK
    if len(line) > MAX_LINE_CHARS:
        raise NotReproduced(f"a line longer than {MAX_LINE_CHARS} characters")
    nothing = (None,) * len(names)
    start = len(line) - len(line.lstrip(_JSON_BLANK))
    if start == len(line):  # spaces and tabs: no token, a record of nulls
        return Record(nothing, None, None)
    malformed = Record(nothing, None, line)
    if line[start] != "{":
        return malformed
    openers = line.count("{") + line.count("[")
    if openers > MAX_DEPTH:
        if "'" in line:
            raise NotReproduced("a line nested deeper than 1000 levels holding a single quote")
        if _deeper_than_limit(line, start):
            return malformed
    if openers > _SHALLOW:
        _make_room()
    return _read(line, start, names, malformed)


def _read(line: str, start: int, names: Sequence[str], malformed: Record) -> Record:
    try:
        obj, _ = _DECODER.raw_decode(line, start)
    except json.JSONDecodeError as exc:
        if exc.pos < len(line) and line[exc.pos] == "'" and exc.msg.startswith(
                ("Expecting value", "Expecting property name")):
            raise NotReproduced("a single-quoted string or key, which Spark's JSON reader "
                                "accepts") from None
        return malformed
    except _Malformed:
        return malformed
    fields = dict(obj)
    if len(fields) != len(obj):  # a key repeated at the top level
        return malformed
    values, nested = [], []
    for name in names:
        text, listed = field_text(fields.get(name))
        values.append(text)
        if listed:
            nested.append(name)
    return Record(tuple(values), ",".join(nested) or None, None)


def records(lines: Iterator[str], names: Sequence[str],
            first_line: int = 1) -> Iterator[tuple[int, Record]]:
    """(line number, record) for every line of ``lines`` that holds one, numbered from
    ``first_line`` (blank lines count); a byte-order mark is removed from line 1 only."""
    for n, line in enumerate(lines, first_line):
        if n == 1 and line.startswith(BOM):
            line = line[1:]
        try:
            rec = parse(line, names)
        except NotReproduced as exc:
            raise NotReproduced(f"line {n}: {exc.message}") from None
        if rec is not None:
            yield n, rec
