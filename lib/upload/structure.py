"""The structure of a whole upload, read in one streaming pass: every record, not a sample.

The pass runs after the byte scan of :mod:`lib.upload.checks` has proved the content is
UTF-8 without NUL bytes, on the decompressed stream, one line at a time: a line is never
read past the dataset's ``max_record_bytes``, so memory stays bounded by the record limit
whatever the file's size.

CSV is split into records by Python's C ``csv`` reader with the job's dialect (RFC 4180:
a quote opens a field only at its start, a doubled quote inside a quoted field is a quote,
a line break inside a quoted field belongs to the field). Blank lines hold no record; the
first record is the header. Found:

* ``file.format``: a quoted field that is never closed, with the line where its record
  starts (Spark would read the rest of the file as one field), or a carriage return outside
  quotes that does not end a line with ``\\n`` (classic Mac line ends);
* ``file.record_too_large``: a record over ``max_record_bytes``, with its line;
* the data record count (a line of nothing but spaces, tabs and other characters up to
  U+0020 holds no record in a file read line by line, as in Spark's reader, and is one in a
  file read whole; so is a line of a lone ``\\r`` in a file whose lines end with ``\\n``),
  the longest record and its line, whether
  any quoted field holds a line break (then the file needs a multi-line read), and how many
  records have another field count than the header (the job quarantines them as
  ``row.malformed``).

JSON Lines: every non-blank line is a record (blank: nothing but spaces, as the job reads
it). Each line is parsed as the job parses it; a line that is not one JSON object, or is
nested deeper than :data:`JSON_MAX_DEPTH`, or holds ``NaN`` / ``Infinity`` (not JSON), or
repeats a key at its top level is counted as ``row.malformed``; a contract field holding a
number beyond the double range is counted as ``<field>.type``. Both are reported as
warnings; the file is accepted.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from lib.contracts.contract import Contract
from lib.errors import LakeError

# Spark 3.5 parses JSON with Jackson 2.15, whose default nesting limit is 1000 levels; a
# deeper line is a corrupt record there (row.malformed), and so it is counted here.
JSON_MAX_DEPTH = 1000
_BOM = "\ufeff"
# A line of nothing but these (Java's trim: every character up to the space) holds no record:
# Spark's CSV reader skips it, so it is no record here either.
_JAVA_BLANK = "".join(chr(c) for c in range(33))
_SENTINEL = "\x00end-of-file\x00\n"  # NUL never passes the byte scan: it cannot be data
_SAMPLE_KEYS = 1000  # JSON Lines: keys are collected from the first objects only
_CHUNK = 1 << 20

csv.field_size_limit(2**31 - 1)  # records are bounded by max_record_bytes instead


class StructureRejected(LakeError):
    """The file's structure is unusable: ``code`` is the upload reason code."""


@dataclass
class Structure:
    records: int = 0  # data records: CSV rows after the header, JSON Lines non-blank lines
    longest_record_bytes: int = 0
    longest_record_line: int = 0  # the line where the longest record starts
    multiline: bool = False  # CSV: a quoted field holds a line break
    header: list[str] | None = None  # CSV: the first record
    field_count_mismatch: int = 0  # CSV: records with another field count than the header
    first_mismatch_line: int = 0
    keys: dict[str, None] = field(default_factory=dict)  # JSON Lines: keys of the first objects
    objects: int = 0  # JSON Lines: lines that are one JSON object
    malformed: int = 0  # JSON Lines: lines the job quarantines as row.malformed
    first_malformed: str = ""
    out_of_range: int = 0  # JSON Lines: contract fields holding a non-finite number
    first_out_of_range: str = ""


class _Oversized(LakeError):
    """A record grew past the limit (internal: turned into a rejection by the caller)."""

    def __init__(self, line: int, spans_lines: bool, tail: bytes) -> None:
        self.line, self.spans_lines, self.tail = line, spans_lines, tail
        super().__init__(f"the record starting at line {line} is too long",
                         "file.record_too_large")


class _Lines:
    """The decoded lines of a binary stream, numbered, never reading more than the record
    limit at once; ``record_start`` is set by the caller where a record begins."""

    def __init__(self, fh: BinaryIO, limit: int) -> None:
        self.fh = fh
        self.cap = limit + 2  # the record's bytes, with a CRLF line end
        self.number = 0
        self.offset = 0
        self.record_start = 0
        self.record_line = 1
        self.last = ""  # the last line read
        self.lf_file = True  # the first line ends with \n alone

    def start_record(self) -> None:
        self.record_start = self.offset
        self.record_line = self.number + 1

    def __iter__(self) -> Iterator[str]:
        while True:
            raw = self.fh.readline(self.cap + 1)
            if not raw:
                return
            self.number += 1
            self.offset += len(raw)
            if self.offset - self.record_start > self.cap:
                raise _Oversized(self.record_line, self.number > self.record_line, raw)
            text = raw.decode("utf-8")
            if self.number == 1:
                text = text.removeprefix(_BOM)
                self.lf_file = not text.endswith("\r\n")
            self.last = text
            yield text


def _too_large(source: str, contract: Contract, line: int) -> StructureRejected:
    return StructureRejected(
        f"{source}: the record starting at line {line} is longer than {contract.ref}'s limit "
        f"of {contract.max_record_bytes} bytes per record (max_record_bytes); split the value "
        "or raise the contract's max_record_bytes", "file.record_too_large")


def _never_closed(source: str, line: int) -> StructureRejected:
    return StructureRejected(
        f"{source}: a quoted field in the record starting at line {line} is never closed; "
        "every field that opens with a quote (\") must end with one (a quote inside it is "
        "written twice: \"\")", "file.format")


def scan_csv(fh: BinaryIO, contract: Contract, source: str) -> Structure:
    """Every record of a CSV stream (see the module docstring)."""
    lines = _Lines(fh, contract.max_record_bytes)
    out = Structure()

    def with_sentinel() -> Iterator[str]:
        yield from lines
        yield _SENTINEL

    reader = csv.reader(with_sentinel(), strict=False)
    spaced: list[tuple[int, int]] = []  # (bytes, line) of each line of nothing but spaces
    try:
        for row in reader:
            if row and row[-1].endswith(_SENTINEL):  # the sentinel was swallowed by a quote
                raise _never_closed(source, lines.record_line)
            if row == [_SENTINEL.rstrip("\n")]:
                break
            length = lines.offset - lines.record_start
            record_line = lines.record_line
            if lines.number > record_line:
                out.multiline = True
            spaces = (len(row) == 1 and lines.number == record_line
                      and not lines.last.strip(_JAVA_BLANK))
            if not row and lines.last == "\r\n" and lines.lf_file:
                # A line of a lone \r in a file whose lines end with \n: Spark's multi-line
                # read (whose line separator is the file's first line end) reads it as a
                # record holding "\r"; Python's csv reader sees an empty line.
                spaces = True
            lines.start_record()
            if spaces and not row:
                spaced.append((length, record_line))
                continue
            if not row:
                continue  # an empty line holds no record
            if out.header is None:
                if not spaces:
                    out.header = row
                continue
            if spaces:  # a record only if the file is read whole (see below)
                spaced.append((length, record_line))
                continue
            _count(out, length, record_line, len(row) != len(out.header))
    except _Oversized as big:
        if big.spans_lines and _ends_inside_quotes(fh, big.tail):
            raise _never_closed(source, big.line) from None
        raise _too_large(source, contract, big.line) from None
    except csv.Error:  # the only one left: a carriage return outside quotes, not before \n
        raise StructureRejected(
            f"{source}: the record starting at line {lines.record_line} holds a carriage "
            "return (\\r) that does not end a line with \\n; lines must end with \\n or "
            "\\r\\n (save the file with Unix or Windows line endings), and a \\r inside a "
            "value must be in a quoted field", "file.format") from None
    # A line of nothing but spaces: Spark's reader skips it when it reads the file line by
    # line, and reads it as a (malformed) record when it reads the file whole, which it does
    # when a quoted field holds a line break.
    if out.multiline:
        for length, line in spaced:
            _count(out, length, line, out.header is not None and len(out.header) != 1)
    return out


def _count(out: Structure, length: int, line: int, mismatch: bool) -> None:
    out.records += 1
    if length > out.longest_record_bytes:
        out.longest_record_bytes, out.longest_record_line = length, line
    if mismatch:
        out.field_count_mismatch += 1
        out.first_mismatch_line = min(out.first_mismatch_line or line, line)


def _ends_inside_quotes(fh: BinaryIO, tail: bytes) -> bool:
    """Inside a quoted field at the start of ``tail``: is the stream still inside one at its
    end? Each quote flips the state (a doubled quote flips it twice)."""
    quotes = tail.count(b'"')
    for chunk in iter(lambda: fh.read(_CHUNK), b""):
        quotes += chunk.count(b'"')
    return quotes % 2 == 0


def _depth(text: str) -> int:
    """Bracket nesting depth of a JSON text, strings skipped (only for very bracketed lines)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _not_json(name: str) -> float:
    raise ValueError(f"{name} is not a JSON value")


class _JsonLines:
    """The per-line checks of :func:`scan_jsonl`, counting into one :class:`Structure`."""

    def __init__(self, contract: Contract) -> None:
        self.columns = set(contract.column_names)
        self.out = Structure()
        self.last_object: tuple[str | None] = (None,)  # a repeated key of the last object parsed

    def _pairs(self, items: list[tuple[str, object]]) -> dict:
        """json's object hook: called innermost first, so after a parse it holds the
        top-level object's repeated key (the job checks the top level only)."""
        obj = dict(items)
        repeated = None
        if len(obj) != len(items):
            seen: set[str] = set()
            repeated = next(k for k, _ in items if k in seen or seen.add(k))
        self.last_object = (repeated,)
        return obj

    def _malformed(self, lineno: int, why: str) -> None:
        self.out.malformed += 1
        self.out.first_malformed = self.out.first_malformed or f"line {lineno} {why}"

    def record(self, body: str, lineno: int, length: int) -> None:
        out = self.out
        out.records += 1
        if length > out.longest_record_bytes:
            out.longest_record_bytes, out.longest_record_line = length, lineno
        if body.count("[") + body.count("{") > JSON_MAX_DEPTH and _depth(body) > JSON_MAX_DEPTH:
            self._malformed(lineno, f"is nested deeper than {JSON_MAX_DEPTH} levels")
            return
        try:
            value = json.loads(body, object_pairs_hook=self._pairs, parse_constant=_not_json)
        except json.JSONDecodeError as exc:
            self._malformed(lineno, f"is not valid JSON ({exc.msg} at column {exc.colno})")
            return
        except ValueError as exc:  # NaN, Infinity
            self._malformed(lineno, f"is not valid JSON ({exc})")
            return
        except RecursionError:
            self._malformed(lineno, f"is nested deeper than {JSON_MAX_DEPTH} levels")
            return
        if not isinstance(value, dict):
            self._malformed(lineno, f"is a JSON {type(value).__name__}, not an object")
            return
        if self.last_object[0] is not None:
            self._malformed(lineno, f"repeats the key {self.last_object[0]!r}")
            return
        out.objects += 1
        if out.objects <= _SAMPLE_KEYS:
            out.keys.update(dict.fromkeys(value))
        bad = next((k for k, v in value.items() if k in self.columns and isinstance(v, float)
                    and not math.isfinite(v)), None)
        if bad is not None:
            out.out_of_range += 1
            out.first_out_of_range = out.first_out_of_range or f"line {lineno}, key {bad!r}"


def _records(text: str) -> list[str]:
    """The records of one line as Spark's text reader splits them: a carriage return ends a
    line too; blank records (nothing but spaces) are skipped, as the job skips them."""
    body = text.rstrip("\r\n")
    parts = body.split("\r") if "\r" in body else [body]
    return [p for p in parts if p.strip(" ")]


def scan_jsonl(fh: BinaryIO, contract: Contract, source: str) -> Structure:
    """Every line of a JSON Lines stream (see the module docstring)."""
    lines = _Lines(fh, contract.max_record_bytes)
    check = _JsonLines(contract)
    try:
        for text in lines:
            lineno, length = lines.number, lines.offset - lines.record_start
            lines.start_record()
            for body in _records(text):
                check.record(body, lineno, length)
    except _Oversized as big:
        raise _too_large(source, contract, big.line) from None
    return check.out
