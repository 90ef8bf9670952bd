"""Read one CSV upload into the DuckDB engine's raw relation, record for record as the Spark
job's reader does (:mod:`lib.sources.csv_reader`, line by line).

* lines end at ``\\n``, ``\\r\\n`` or ``\\r`` (Hadoop's line reader); a line of nothing but
  characters up to the space (Java's ``trim``) holds no record and takes no ordinal; the
  first other line is the header;
* a line without a quote is split at every comma, in SQL; a line holding one is split by
  :func:`lib.engine.duck.csv_line.split_line`, Spark's parser written out;
* an empty field is null; a record whose field count is not the header's keeps its line in
  ``_raw_record`` (``row.malformed``) and its first fields in the columns;
* ``_source_record`` is the record's exact 1-based ordinal, header excluded.

The file is streamed to DuckDB in blocks cut at a line end (memory stays bounded by the
block, whatever the file's size). What this reader cannot reproduce exactly raises
:class:`~lib.engine.duck.csv_line.NotReproduced`: a file whose quoted fields hold line
breaks (Spark reads it whole, with its own line-ending rules), a compression other than
gzip, a line :mod:`lib.engine.duck.csv_line` refuses.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import duckdb
import pyarrow as pa

from lib.contracts.contract import (
    CONTRACT_VERSION,
    INGESTED_AT,
    NESTED_FIELDS,
    QUARANTINE_PARTITION,
    RAW_RECORD,
    SOURCE_FILE,
    SOURCE_RECORD,
    UPLOAD_ID,
    Contract,
)
from lib.contracts.header import HeaderPlan
from lib.engine.duck.csv_line import NotReproduced, split_line
from lib.engine.duck.rules import ident, lit

BLOCK_BYTES = 16 << 20
# The codecs Hadoop picks by a file name's ending, besides gzip: Spark decompresses them.
_OTHER_CODECS = (".bz2", ".deflate", ".lz4", ".snappy", ".zst")
LINE = "__line"  # the record's line: the quarantine takes its values as read from it
_SPLIT = "lake_csv_split"
# Java's String.trim: every character up to the space (NUL never passes the upload check).
_JAVA_BLANK = "".join(chr(c) for c in range(1, 33))
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
    if multiline is not False:
        return ("its quoted fields hold line breaks (or the upload check did not record "
                "whether they do)")
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


def read_csv(con: duckdb.DuckDBPyConnection, name: str, path: Path, upload_id: str,
             source_file: str, ingest_date: object, plan: HeaderPlan, contract: Contract,
             ingested_at: datetime, multiline: bool | None) -> str:
    """The raw relation of one CSV upload: its lines are read into the temporary table
    ``<name>_split`` (dropped by the caller once the relation is read); returns the query
    over it that splits them into fields. A line :func:`split_line` refuses makes that
    query raise (see :func:`not_reproduced`)."""
    why = not_reproduced_reason(path, multiline)
    if why is not None:
        raise NotReproduced(refusal(why), source=source_file)
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
        lines_q = (f"SELECT s.idx - 1 + o.start AS ordinal, s.line FROM {split} s "
                   f"JOIN (VALUES {starts}) o(block, start) ON s.block = o.block")
    else:
        lines_q = (f"SELECT row_number() OVER (ORDER BY block, idx) - 1 AS ordinal, line "
                   f"FROM {split} WHERE trim(line, {lit(_JAVA_BLANK)}) <> ''")
    width = len(plan.read_names)
    where = {n: i + 1 for i, n in enumerate(plan.read_names)}
    present = set(plan.matched)
    cols = [f"nullif(fields[{where[c.name]}], '') AS {ident(c.name)}" if c.name in present
            else f"CAST(NULL AS VARCHAR) AS {ident(c.name)}" for c in contract.columns]
    return f"""
        SELECT {', '.join(cols)},
               CAST(NULL AS VARCHAR) AS {ident(NESTED_FIELDS)},
               CASE WHEN len(fields) <> {width} THEN line END AS {ident(RAW_RECORD)},
               line AS {ident(LINE)},
               ordinal AS {ident(SOURCE_RECORD)},
               {lit(upload_id)} AS {ident(UPLOAD_ID)},
               {lit(source_file)} AS {ident(SOURCE_FILE)},
               CAST({lit(ingested_at.isoformat())} AS TIMESTAMPTZ) AS {ident(INGESTED_AT)},
               {lit(contract.ref)} AS {ident(CONTRACT_VERSION)},
               CAST({lit(str(ingest_date))} AS DATE) AS {ident(QUARANTINE_PARTITION)}
        FROM (SELECT ordinal, line, {fields_sql('line')} AS fields
              FROM ({lines_q}) WHERE ordinal > 0)"""
