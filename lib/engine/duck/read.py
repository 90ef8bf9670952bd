"""Read one CSV upload into the DuckDB engine's raw relation, record for record as the Spark
job's reader does (:mod:`lib.sources.csv_reader`).

A file whose upload check found no quoted line break is read line by line, as Spark's line
reader does:

* lines end at ``\\n``, ``\\r\\n`` or ``\\r`` (Hadoop's line reader); a line of nothing but
  characters up to the space (Java's ``trim``) holds no record and takes no ordinal; the
  first other line is the header;
* a line without a quote is split at every comma, in SQL; a line holding one is split by
  :func:`lib.engine.duck.csv_line.split_line`, Spark's parser written out;
* an empty field is null; a record whose field count is not the header's keeps its line in
  ``_raw_record`` (``row.malformed``) and its first fields in the columns;
* ``_source_record`` is the record's exact 1-based ordinal, header excluded.

An uncompressed file whose lines end in ``\\n`` is read by DuckDB's own CSV scanner, in
parallel, one column per line (:func:`scan_lines`, checked byte for byte against the file's
size); any other such file is streamed to DuckDB in blocks cut at a line end
(:func:`block_lines`; memory stays bounded by the block, whatever the file's size).

A file whose quoted fields hold line breaks (or whose check did not record whether they
do) is read whole, as Spark's multi-line reader reads it: :func:`record_lines` with
:mod:`lib.engine.duck.csv_records` (up to :data:`MULTILINE_MAX_BYTES`).

What this reader cannot reproduce exactly raises
:class:`~lib.engine.duck.csv_line.NotReproduced`: a compression other than gzip, a line or
record :mod:`~lib.engine.duck.csv_line` or :mod:`~lib.engine.duck.csv_records` refuses, a
multi-line file over the limit.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import duckdb
import pyarrow as pa

from lib.contracts.contract import NESTED_FIELDS, RAW_RECORD, SOURCE_RECORD, Contract
from lib.contracts.header import HeaderPlan
from lib.engine.duck.csv_line import BLANKS, NotReproduced, split_line
from lib.engine.duck.csv_records import records
from lib.engine.duck.rules import ident, lit

BLOCK_BYTES = 16 << 20
# A file read in multi-line mode is held whole, as Spark's one task holds it: up to this.
MULTILINE_MAX_BYTES = 256 << 20
# The codecs Hadoop picks by a file name's ending, besides gzip: Spark decompresses them.
_OTHER_CODECS = (".bz2", ".deflate", ".lz4", ".snappy", ".zst")
LINE = "__line"  # the record's line: the quarantine takes its values as read from it
UPLOAD = "__upload"  # the upload's place in its batch: the key of its lineage
_SPLIT = "lake_csv_split"
# Java's String.trim: every character up to the space (NUL never passes the upload check),
# the characters univocity skips after a closing quote.
_JAVA_BLANK = BLANKS
# A line of nothing but such characters between two \n (bare \r line ends take the slow path).
_BLANK_INSIDE = re.compile(r"\n[\x01-\x20]*\n")


def _has_blank_line(text: str) -> bool:
    """Whether a block (its lines joined by \n or \r\n) holds a blank line."""
    first, last = text.find("\n"), text.rfind("\n")
    if first < 0:
        return not text.strip(_JAVA_BLANK)
    return (not text[:first].strip(_JAVA_BLANK) or not text[last + 1:].strip(_JAVA_BLANK)
            or _BLANK_INSIDE.search(text) is not None)


def open_upload(path: Path) -> BinaryIO:
    """The file's bytes, decompressed when it is gzip (by its name, as Spark decides)."""
    if path.suffix == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def blocks(fh: BinaryIO, block_bytes: int = BLOCK_BYTES) -> Iterator[str]:
    """The text of ``fh`` in pieces that end where a line ends (the last line end of each
    piece removed, so that splitting a piece at every line end gives exactly its lines)."""
    carry = b""
    while True:
        data = fh.read(block_bytes)
        if not data:
            break
        data = carry + data
        cut = data.rfind(b"\n")
        if cut < 0:
            cut = data.rfind(b"\r", 0, len(data) - 1)  # a final \r may start a \r\n
        if cut < 0:
            carry = data
            continue
        end = cut - 1 if data[cut:cut + 1] == b"\n" and data[cut - 1:cut] == b"\r" else cut
        carry = data[cut + 1:]
        yield data[:max(end, 0)].decode("utf-8")
    if carry:
        for ending in (b"\r\n", b"\n", b"\r"):
            if carry.endswith(ending):
                carry = carry[:-len(ending)]
                break
        yield carry.decode("utf-8")


def _split(lines: pa.Array) -> pa.Array:
    return pa.array([split_line(x) for x in lines.to_pylist()], pa.list_(pa.string()))


def fields_sql(line: str) -> str:
    """The fields of a line, as the reader splits it."""
    return (f"CASE WHEN contains({line}, '\"') THEN {_SPLIT}({line}) "
            f"ELSE string_split({line}, ',') END")


def register(con: duckdb.DuckDBPyConnection) -> None:
    """Make :func:`split_line` callable from the engine's SQL (once per connection)."""
    con.create_function(_SPLIT, _split, ["VARCHAR"], "VARCHAR[]", type="arrow",
                        side_effects=False)


def not_reproduced_reason(path: Path, multiline: bool | None) -> str | None:
    if path.suffix.lower() in _OTHER_CODECS:
        return f"its compression ({path.suffix}) is read by the Spark engine only"
    return None


def not_reproduced(exc: duckdb.Error, source: str | None) -> NotReproduced | None:
    """The :class:`NotReproduced` a query raised through DuckDB, if it is one."""
    if NotReproduced.__name__ not in str(exc):
        return None
    return NotReproduced(refusal(str(exc).split(": ", 2)[-1]), source=source)


def refusal(why: str) -> str:
    return (f"the DuckDB engine does not read this file exactly as the Spark engine does: "
            f"{why}. Nothing of it was published; the upload stays FAILED and the next run "
            "with the Spark engine (lake run DATASET) processes it")


_BOM = b"\xef\xbb\xbf"


def scan_lines(con: duckdb.DuckDBPyConnection, name: str, path: Path) -> str | None:
    """The lines of an uncompressed file read by DuckDB's own parallel CSV scanner, one
    column per line (no quoting, no escapes, strict), into ``<name>_split`` in file order;
    returns the query of (ordinal, line, raw: the line again), or None when the scanner
    cannot be shown to have read the file line for line: a gzip file, a line end holding a
    ``\r`` (Hadoop's line ends are not the scanner's), a BOM on a line of its own, a line too
    long for it, or any other scanner error. The proof is arithmetic: the lines' bytes plus
    one ``\n`` between each two (and the BOM the scanner drops) must be the file's size, so
    not a byte was dropped or added."""
    if path.suffix == ".gz":
        return None
    with path.open("rb") as fh:
        size = fh.seek(0, 2)
        if size == 0:
            return None
        fh.seek(0)
        bom = fh.read(3) == _BOM
        fh.seek(size - 1)
        final_newline = fh.read(1) == b"\n"
    split = ident(name + "_split")
    try:
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE {split} AS
            SELECT line FROM read_csv({lit(str(path))}, columns = {{'line': 'VARCHAR'}},
                header = false, delim = E'\\x01', quote = '', escape = '', comment = '',
                auto_detect = false, new_line = '\\n', strict_mode = true,
                compression = 'none')""")
        lines, chars, low, crs = con.execute(f"""
            SELECT count(*), coalesce(sum(strlen(coalesce(line, ''))), 0),
                   count(*) FILTER (WHERE line IS NULL OR line < '!'),
                   count(*) FILTER (WHERE contains(line, E'\\r'))
            FROM {split}""").fetchall()[0]
    except duckdb.Error:
        con.execute(f"DROP TABLE IF EXISTS {split}")
        return None
    expected = size - (3 if bom else 0)
    # After a BOM (dropped by the scanner, kept by Hadoop's reader) the first line must hold
    # more than it, so that both take the same line as the header (which holds no record).
    if (crs or lines == 0 or chars + lines - (0 if final_newline else 1) != expected
            or bom and not con.execute(
                f"SELECT coalesce(trim(line, {lit(_JAVA_BLANK)}) <> '', false) FROM {split} "
                f"WHERE rowid = 0").fetchall()[0][0]):
        con.execute(f"DROP TABLE {split}")
        return None
    if not low:  # a line's ordinal is its place in the file (the header is 0): no sort
        return f"SELECT rowid AS ordinal, line, line AS raw FROM {split}"
    # Some line is empty or starts with a character up to the space: blank lines take no
    # ordinal (an empty line is a null here).
    return (f"SELECT row_number() OVER (ORDER BY rowid) - 1 AS ordinal, line, line AS raw "
            f"FROM {split} "
            f"WHERE line >= '!' OR trim(line, {lit(_JAVA_BLANK)}) <> ''")


def block_lines(con: duckdb.DuckDBPyConnection, name: str, path: Path) -> str:
    """The lines of any file the reader takes, cut by Python into blocks at line ends (every
    Hadoop line end: ``\n``, ``\r\n``, ``\r``) and split into lines by DuckDB, into
    ``<name>_split``; returns the query of (ordinal, line, raw: the line again)."""
    stats: list[tuple[int, bool]] = []  # per block: its lines, whether none is blank
    with open_upload(path) as fh:
        def batches() -> Iterator[pa.RecordBatch]:
            for i, text in enumerate(blocks(fh)):
                bare_crs = text.count("\r") - text.count("\r\n") if "\r" in text else 0
                lines = text.count("\n") + bare_crs + 1
                plain = bare_crs == 0 and not _has_blank_line(text)
                stats.append((lines, plain))
                yield pa.record_batch([pa.array([i], pa.int64()),
                                       pa.array([text], pa.large_string())],
                                      names=["block", "text"])
        schema = pa.schema([("block", pa.int64()), ("text", pa.large_string())])
        reader = pa.RecordBatchReader.from_batches(schema, batches())
        con.register(f"{name}_blocks", reader)
        try:
            con.execute(f"""
                CREATE OR REPLACE TEMP TABLE {ident(name + '_split')} AS
                SELECT block, generate_subscripts(parts, 1) AS idx, unnest(parts) AS line
                FROM (SELECT block, string_split(replace(replace(text, E'\\r\\n', E'\\n'),
                             E'\\r', E'\\n'), E'\\n') AS parts FROM {ident(name + '_blocks')})""")
        finally:
            con.unregister(f"{name}_blocks")
    split = ident(name + "_split")
    if all(plain for _, plain in stats):
        # No blank line and no line ending in a bare \r: a line's ordinal is its place in the
        # file (the header is 0), from the lines of the blocks before it; no sort.
        offsets, seen = [], 0
        for lines, _ in stats:
            offsets.append(seen)
            seen += lines
        starts = ", ".join(f"({i}, {o})" for i, o in enumerate(offsets)) or "(0, 0)"
        return (f"SELECT s.idx - 1 + o.start AS ordinal, s.line, s.line AS raw FROM {split} s "
                f"JOIN (VALUES {starts}) o(block, start) ON s.block = o.block")
    return (f"SELECT row_number() OVER (ORDER BY block, idx) - 1 AS ordinal, line, "
            f"line AS raw FROM {split} WHERE trim(line, {lit(_JAVA_BLANK)}) <> ''")


def record_lines(con: duckdb.DuckDBPyConnection, name: str, path: Path,
                 source_file: str) -> str:
    """The records of a file whose quoted fields hold line breaks (or of which the upload
    check did not record whether they do), cut as Spark's multi-line reader cuts them
    (:mod:`lib.engine.duck.csv_records`; the whole file in memory, as Spark reads it in one
    task), into ``<name>_split``; returns the query of (ordinal, record text with the line
    separator read as ``\\n``, record text as in the file)."""
    with open_upload(path) as fh:
        data = fh.read(MULTILINE_MAX_BYTES + 1)
    if len(data) > MULTILINE_MAX_BYTES:
        raise NotReproduced(refusal(
            f"its quoted fields hold line breaks, and the DuckDB engine holds such a file "
            f"whole (as Spark does) only up to {MULTILINE_MAX_BYTES >> 20} MiB"),
            source=source_file)
    try:
        cut = list(records(data.decode("utf-8")))
    except NotReproduced as exc:
        raise NotReproduced(refusal(str(exc)), source=source_file) from None
    table = pa.table({"ordinal": pa.array(range(len(cut)), pa.int64()),
                      "line": pa.array([r for r, _ in cut], pa.large_string()),
                      "raw": pa.array([r for _, r in cut], pa.large_string())})
    split = ident(name + "_split")
    con.register(f"{name}_records", table)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {split} AS SELECT ordinal, "
                    f"CAST(line AS VARCHAR) AS line, CAST(raw AS VARCHAR) AS raw "
                    f"FROM {ident(name + '_records')}")
    finally:
        con.unregister(f"{name}_records")
    return f"SELECT ordinal, line, raw FROM {split}"


def read_csv(con: duckdb.DuckDBPyConnection, name: str, index: int, path: Path,
             source_file: str, plan: HeaderPlan, contract: Contract,
             multiline: bool | None) -> str:
    """The raw relation of one CSV upload, the ``index``-th of its batch (its rows carry it as
    :data:`UPLOAD`; its lineage is added to them when they are written): its lines (or
    records) are read into the temporary table ``<name>_split`` and the view
    ``<name>_lines`` of (ordinal, line, raw text) is defined over it (both dropped by the
    caller); returns the query over the view that splits the lines into fields. A line
    :func:`split_line` refuses makes that query raise (see :func:`not_reproduced`)."""
    why = not_reproduced_reason(path, multiline)
    if why is not None:
        raise NotReproduced(refusal(why), source=source_file)
    if multiline is not False:  # as Spark reads it: whole, in multi-line mode
        lines_q = record_lines(con, name, path, source_file)
    else:
        lines_q = scan_lines(con, name, path) or block_lines(con, name, path)
    con.execute(f"CREATE OR REPLACE TEMP VIEW {ident(name + '_lines')} AS {lines_q}")
    width = len(plan.read_names)
    where = {n: i + 1 for i, n in enumerate(plan.read_names)}
    present = set(plan.matched)
    cols = [f"nullif(fields[{where[c.name]}], '') AS {ident(c.name)}" if c.name in present
            else f"CAST(NULL AS VARCHAR) AS {ident(c.name)}" for c in contract.columns]
    return f"""
        SELECT {', '.join(cols)},
               CAST(NULL AS VARCHAR) AS {ident(NESTED_FIELDS)},
               CASE WHEN len(fields) <> {width} THEN raw END AS {ident(RAW_RECORD)},
               line AS {ident(LINE)},
               ordinal AS {ident(SOURCE_RECORD)},
               CAST({index} AS INTEGER) AS {UPLOAD}
        FROM (SELECT ordinal, line, raw, {fields_sql('line')} AS fields
              FROM {ident(name + '_lines')} WHERE ordinal > 0)"""
