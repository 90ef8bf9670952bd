"""Read one JSON Lines upload into the DuckDB engine's raw relation, record for record as the
Spark job's reader does (:mod:`lib.sources.jsonl_reader`).

The file is streamed in blocks cut at a line end (:func:`lib.engine.duck.read.blocks`; lines
end at ``\\n``, ``\\r\\n`` or ``\\r``, as Hadoop's line reader cuts them); each line is read
by :mod:`lib.engine.duck.jsonl_records` and the records go to DuckDB as Arrow batches, so
memory stays bounded by a block whatever the file's size. ``_source_record`` is the line's
1-based number in the file (blank lines count, as in Spark). What
:mod:`~lib.engine.duck.jsonl_records` cannot reproduce exactly raises
:class:`~lib.engine.duck.csv_line.NotReproduced` naming the line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa

from lib.contracts.contract import NESTED_FIELDS, RAW_RECORD, SOURCE_RECORD, Contract
from lib.engine.duck.csv_line import NotReproduced
from lib.engine.duck.jsonl_records import records
from lib.engine.duck.read import UPLOAD, blocks, not_reproduced_reason, open_upload, refusal
from lib.engine.duck.rules import ident

_LINE_END = re.compile(r"\r\n|\r|\n")


def _lines(path: Path) -> Iterator[list[str]]:
    """The file's lines, a block's worth at a time."""
    with open_upload(path) as fh:
        for text in blocks(fh):
            yield _LINE_END.split(text)


def read_jsonl(con: duckdb.DuckDBPyConnection, name: str, index: int, path: Path,
               source_file: str, contract: Contract) -> str:
    """The raw relation of one JSON Lines upload, the ``index``-th of its batch: its records
    are read into the temporary table ``<name>_split`` (dropped by the caller); returns the
    query over it."""
    why = not_reproduced_reason(path, None)
    if why is not None:
        raise NotReproduced(refusal(why), source=source_file)
    names = contract.column_names
    fields = [f"c{i}" for i in range(len(names))]
    schema = pa.schema([("ordinal", pa.int64()), *((f, pa.string()) for f in fields),
                        ("nested", pa.string()), ("raw", pa.string())])
    refused: list[NotReproduced] = []

    def batches() -> Iterator[pa.RecordBatch]:
        seen = 0
        for lines in _lines(path):
            start, seen = seen + 1, seen + len(lines)
            try:
                got = list(records(iter(lines), names, first_line=start))
            except NotReproduced as exc:
                # Raised inside DuckDB's scan it would come back as a DuckDB error: kept
                # here, and the scan ends.
                refused.append(exc)
                return
            columns = [pa.array([n for n, _ in got], pa.int64())]
            columns += [pa.array([r.values[i] for _, r in got], pa.string())
                        for i in range(len(names))]
            columns += [pa.array([r.nested for _, r in got], pa.string()),
                        pa.array([r.malformed for _, r in got], pa.string())]
            yield pa.record_batch(columns, schema=schema)

    split = ident(name + "_split")
    con.register(f"{name}_records", pa.RecordBatchReader.from_batches(schema, batches()))
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {split} AS "
                    f"SELECT * FROM {ident(name + '_records')}")
    finally:
        con.unregister(f"{name}_records")
    if refused:
        con.execute(f"DROP TABLE IF EXISTS {split}")
        raise NotReproduced(refusal(refused[0].message), source=source_file)
    cols = [f"{f} AS {ident(n)}" for f, n in zip(fields, names, strict=True)]
    return (f"SELECT {', '.join(cols)}, nested AS {ident(NESTED_FIELDS)}, "
            f"raw AS {ident(RAW_RECORD)}, ordinal AS {ident(SOURCE_RECORD)}, "
            f"CAST({index} AS INTEGER) AS {UPLOAD} FROM {split}")
