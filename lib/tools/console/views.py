"""What the console's pages show, in people's terms: sizes, times and durations; which
dataset takes which files; a quarantined row with its failing cells marked and its line in
the file; errors as pages; the state of a run the console started. No HTTP here: the routes
are in :mod:`lib.tools.console.app`."""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment
from starlette.requests import Request

from lib.contracts.contract import QUARANTINED_SHARE, Contract, available_contracts
from lib.contracts.reasons import explain
from lib.lake.humane import duration, when
from lib.lake.paths import local_path
from lib.ledger.records import UnknownUploadError, UploadRecord
from lib.upload.checks import human_bytes

FORMATS = {"csv": "CSV with a header row", "jsonl": "JSON Lines (one JSON object per line)"}
EXTENSIONS = {"csv": ".csv,.csv.gz,.txt,text/csv", "jsonl": ".jsonl,.ndjson,.json,.jsonl.gz"}
LINEAGE = ("_source_record", "_upload_id", "_source_file", "_ingested_at", "_contract_version")
LINE_SCAN_BYTES = 64 * 1024 * 1024  # how far into a CSV upload its rows' lines are counted
ERROR_TITLES = {400: "Bad request", 404: "Not found", 405: "Not allowed", 409: "Conflict",
                413: "Too large", 422: "Invalid request", 500: "Console error"}
_UPLOAD_ID = re.compile(r"\bupload (u[0-9]{8}-[0-9a-f]{12})\b")
# an example value per type, for a JSON Lines template
_EXAMPLES: dict[str, object] = {"string": "text", "int": 1, "bigint": 1, "decimal": 1.5,
                                "date": "2026-01-31", "timestamp": "2026-01-31T09:30:00Z"}


# -- formatting ------------------------------------------------------------------------------

def count(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def install(env: Environment) -> None:
    """The filters and globals every console template may use."""
    env.filters.update(size=human_bytes, when=when, duration=duration, count=count)
    env.globals.update(nav_datasets=lambda: sorted(available_contracts()),
                       format_name=lambda f: FORMATS.get(f, f), explain=explain_code)


# -- requests and errors ---------------------------------------------------------------------

def wants_page(request: Request, page_prefixes: Sequence[str]) -> bool:
    """Whether an error goes back as an HTML page: a page's route, or a browser asking for a
    page (its ``Accept`` puts text/html first); the API's routes answer JSON."""
    path = request.url.path
    if path == "/" or path.startswith(tuple(page_prefixes)):
        return True
    if path.startswith(("/uploads", "/datasets", "/static", "/openapi")):
        return False
    return request.headers.get("accept", "").lstrip().startswith("text/html")


def validation_message(errors: Iterable[dict[str, Any]]) -> str:
    """FastAPI's validation errors as one line: ``size_bytes: Input should be a valid
    integer; file_name: Field required``."""
    parts = []
    for e in list(errors)[:5]:
        where = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "body"
        parts.append(f"{where[:80]}: {str(e.get('msg', 'invalid'))[:200]}")
    return ("the request is not valid: " + "; ".join(parts) +
            "; expected a JSON body {\"dataset\", \"file_name\", \"size_bytes\"}"
            if parts else "the request is not valid")


# -- the upload page -------------------------------------------------------------------------

@dataclass(frozen=True)
class DatasetOffer:
    """A dataset as the upload page offers it: what it takes and up to what size."""

    name: str
    format: str
    format_name: str
    accept: str
    limit: int
    columns: tuple[str, ...]
    warn: float | None
    fail: float | None

    @classmethod
    def of(cls, contract: Contract, limit: int) -> DatasetOffer:
        t = next((q for q in contract.quality if q.measure == QUARANTINED_SHARE), None)
        return cls(contract.dataset, contract.format, FORMATS.get(contract.format,
                                                                  contract.format),
                   EXTENSIONS.get(contract.format, ""), limit, contract.column_names,
                   t.warn if t else None, t.fail if t else None)


def template_file(contract: Contract) -> tuple[str, str, str]:
    """(file name, media type, text) of a file to fill in for the contract's dataset."""
    if contract.format == "jsonl":
        example = {c.name: _EXAMPLES.get(c.type.name, "text") for c in contract.columns}
        return (f"{contract.dataset}_template.jsonl", "application/x-ndjson",
                json.dumps(example) + "\n")
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(contract.column_names)
    return f"{contract.dataset}_template.csv", "text/csv", buf.getvalue()


# -- an upload's page ------------------------------------------------------------------------

def explain_code(code: str | None) -> dict[str, str] | None:
    reason = explain(code) if code else None
    return {"meaning": reason.meaning, "action": reason.action} if reason else None


def original_of(record: UploadRecord, ledger: Any) -> UploadRecord | None:
    """The upload a ``file.duplicate`` rejection repeats: the accepted one with the same
    content, else the one its message names."""
    if record.sha256:
        found = ledger.accepted_with_sha(record.dataset, record.sha256)
        if found is not None and found.upload_id != record.upload_id:
            return found
    named = _UPLOAD_ID.search(record.reason or "")
    if named:
        try:
            return ledger.get(named.group(1))
        except UnknownUploadError:  # an id the ledger no longer holds: no link
            return None
    return None


@dataclass
class Cell:
    value: object
    failing: list[str] = field(default_factory=list)  # the reason codes this cell fails


@dataclass
class QuarantineTable:
    """The shown quarantined rows: line, reasons first, then the columns that differ from
    row to row; what every shown row shares is said once above."""

    columns: list[str]
    rows: list[dict[str, Any]]  # line, codes, cells (by column), raw
    same: dict[str, object]  # column -> the value every shown row has
    lineage: dict[str, object]
    line_word: str  # "line" or "record" (a CSV beyond the scanned bytes)
    show_raw: bool


def quarantine_table(columns: Sequence[str], rows: Sequence[dict[str, Any]],
                     contract: Contract, location: str | None = None) -> QuarantineTable:
    """The table of an upload's shown quarantined rows; ``location``: where the upload's
    bytes are now (the archive, once processed), to count a CSV's lines in."""
    data_cols = [c for c in columns if not c.startswith("_")]
    failing_cols = {code.rpartition(".")[0] for r in rows for code in (r.get("_errors") or ())}
    same: dict[str, object] = {}
    if len(rows) > 1:
        for c in data_cols:
            values = {repr(r.get(c)) for r in rows}
            if len(values) == 1 and c not in failing_cols:
                same[c] = rows[0].get(c)
    shown = [c for c in data_cols if c not in same]
    lines, word = _lines(rows, contract, location)
    out = []
    for r in rows:
        codes = list(r.get("_errors") or ())
        cells = {}
        for c in shown:
            cells[c] = Cell(r.get(c), [k for k in codes if k.rpartition(".")[0] == c])
        record = r.get("_source_record")
        out.append({"line": lines.get(record, record), "codes": codes, "cells": cells,
                    "raw": r.get("_raw_record")})
    lineage = {c: rows[0].get(c) for c in LINEAGE[1:] if rows and c in columns}
    return QuarantineTable(shown, out, same, lineage, word,
                           any(r.get("_raw_record") for r in rows))


def _lines(rows: Sequence[dict[str, Any]], contract: Contract,
           location: str | None) -> tuple[dict[int, int], str]:
    """Each shown row's line in its file. JSON Lines rows carry it; a CSV row carries its
    record number (a quoted value may span lines), so the raw file is read, up to
    :data:`LINE_SCAN_BYTES`, to find where each record starts."""
    if contract.format == "jsonl" or not rows:
        return {}, "line"
    wanted = {r.get("_source_record") for r in rows if isinstance(r.get("_source_record"), int)}
    found_at = [local_path(u) for u in (location, str(rows[0].get("_source_file") or "")) if u]
    source = next((f for f in found_at if f is not None and f.is_file()), None)
    if source is None or not wanted:
        return {}, "record"
    try:
        found = csv_record_lines(source, wanted)
    except (OSError, UnicodeDecodeError, csv.Error):
        return {}, "record"
    return (found, "line") if wanted <= set(found) else ({}, "record")


def csv_record_lines(path: Path, records: set[int], limit: int = LINE_SCAN_BYTES) -> dict[
        int, int]:
    """Record number (1-based, header excluded) -> the line it starts on, for ``records``,
    reading at most ``limit`` bytes of the (possibly gzipped) CSV file."""
    last = max(records)
    out: dict[int, int] = {}
    with gzip.open(path) if path.name.endswith(".gz") else path.open("rb") as raw:
        reader = csv.reader(_text_lines(raw, limit))
        end = 0  # the line the previous record ended on
        n = -1  # the header is record 0
        for row in reader:
            start, end = end + 1, reader.line_num
            if not row:  # a blank line is no record
                continue
            n += 1
            if n in records:
                out[n] = start
            if n >= last:
                break
    return out


def _text_lines(raw: Any, limit: int) -> Iterable[str]:
    read = 0
    for i, line in enumerate(raw):
        read += len(line)
        if read > limit:
            return
        text = line.decode("utf-8")
        yield text.removeprefix("\ufeff") if i == 0 else text


# -- runs the console starts -----------------------------------------------------------------

class RunState:
    """A run the console started in a thread: whether it still goes, then its outcome."""

    def __init__(self, dataset: str, job: str, upload_ids: list[str]) -> None:
        self.dataset, self.job, self.upload_ids = dataset, job, upload_ids
        self.started_at = datetime.now(UTC).isoformat()
        self.exit_code: int | None = None
        self.error: str | None = None
        self.thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def start(self, main: Callable[[list[str]], Any], argv: list[str]) -> None:
        def run() -> None:
            try:
                self.exit_code = int(main(argv) or 0)
            except BaseException as exc:  # noqa: BLE001 - said on the page, not lost
                self.exit_code, self.error = 1, f"{type(exc).__name__}: {exc}"[:500]

        self.thread = threading.Thread(target=run, daemon=True, name=f"run-{self.dataset}")
        self.thread.start()

    def outcome(self, reports: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """The run's report (the newest that started after this run did), or the error."""
        mine = [d for d in reports if str(d.get("started_at", "")) >= self.started_at[:19]]
        if mine:
            d = mine[-1]
            return {"run_id": d["run_id"], "status": d.get("status"),
                    "totals": d.get("totals", {}), "error": d.get("error"),
                    "report_url": f"/reports/{self.dataset}/{d['run_id']}",
                    "duration": duration(d.get("started_at"), d.get("finished_at"))}
        return {"run_id": None, "status": "failed" if self.exit_code else "no report",
                "totals": {}, "report_url": None, "duration": None,
                "error": self.error or (f"the job ended with exit code {self.exit_code} and "
                                        "wrote no report; lake serve's terminal has its log")}
