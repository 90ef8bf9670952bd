"""An upload's quarantined rows, read from the quarantine zone's Parquet files with pyarrow
(no Spark): the files of an upload are named ``<upload_id>_<run_id>_<n>.parquet`` under
``quarantine/<dataset>/ingest_date=D/``. Read a batch at a time: a CSV of millions of rows
streams without being held in memory."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq

from lib.tools.spreadsheet import safe_cell

BATCH_ROWS = 10_000


def upload_files(zone_dataset: Path, upload_id: str) -> list[Path]:
    """The upload's quarantine files, in the order they were written."""
    if not zone_dataset.is_dir():
        return []
    return sorted(zone_dataset.glob(f"*/{upload_id}_*.parquet"))


def rows(files: list[Path]) -> Iterator[dict]:
    for f in files:
        for batch in pq.ParquetFile(f).iter_batches(batch_size=BATCH_ROWS):
            yield from batch.to_pylist()


def reason_counts(files: list[Path]) -> dict[str, int]:
    """Quarantined rows per reason code (a row may carry several), the most frequent
    first."""
    counts: Counter[str] = Counter()
    for f in files:
        for batch in pq.ParquetFile(f).iter_batches(batch_size=BATCH_ROWS, columns=["_errors"]):
            for codes in batch.column(0).to_pylist():
                counts.update(codes or [])
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def first(files: list[Path], n: int) -> tuple[list[str], list[dict]]:
    """The column names and the first ``n`` rows, in file order."""
    columns = pq.ParquetFile(files[0]).schema_arrow.names if files else []
    out = []
    for row in rows(files):
        if len(out) >= n:
            break
        out.append(row)
    return columns, sorted(out, key=lambda r: r.get("_source_record") or 0)


def _cell(value: object) -> str:
    """A CSV cell; text that a spreadsheet would run as a formula is neutralised
    (:mod:`lib.tools.spreadsheet`)."""
    if value is None:
        return ""
    if isinstance(value, list):
        return safe_cell(";".join(str(v) for v in value))
    return safe_cell(value) if isinstance(value, str) else str(value)


def as_csv(files: list[Path]) -> Iterator[str]:
    """Every quarantined row of the files as CSV text, header first, a batch at a time;
    safe to open in a spreadsheet."""
    columns = pq.ParquetFile(files[0]).schema_arrow.names if files else ["_errors"]
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(columns)
    for f in files:
        for batch in pq.ParquetFile(f).iter_batches(batch_size=BATCH_ROWS):
            for row in batch.to_pylist():
                writer.writerow([_cell(row.get(c)) for c in columns])
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()
