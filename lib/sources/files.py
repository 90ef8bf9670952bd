"""What a run needs of an upload's file before any engine reads its rows, in plain Python (no
Spark, no DuckDB): the upload's identity (:class:`Upload`) and the header check of each
format (:func:`read_header`), which proves the file can be read and maps its columns onto
the contract, or raises :class:`~lib.errors.FileError`, failing that upload alone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Protocol

from lib.contracts.contract import Contract
from lib.contracts.header import HeaderPlan, parse_header_line, plan_header
from lib.errors import FileError, LakeError
from lib.lake.fs import java_error_message


class ReadsFiles(Protocol):  # the part of a filesystem adapter (lib.lake) the checks use
    def exists(self, path: str) -> bool: ...
    def is_file(self, path: str) -> bool: ...
    def read_first_line(self, path: str) -> str | None: ...


@dataclass(frozen=True)
class Upload:
    """One input file and the identity its rows carry."""

    upload_id: str
    path: str
    ingest_date: date
    expected_records: int | None = None  # counted by the upload check (None: not counted)
    # Whether a quoted field holds a line break (None: not known): only then is a CSV file
    # read whole, in one task; otherwise it is split across tasks.
    multiline: bool | None = None


def open_check(fs: ReadsFiles, upload: Upload) -> str | None:
    """The file's first line, proving it exists and can be read (gzip included)."""
    try:
        if not fs.exists(upload.path):
            raise FileError("file not found", "file.not_found", upload.path)
        if not fs.is_file(upload.path):
            raise FileError("not a file", "file.not_found", upload.path)
        return fs.read_first_line(upload.path)
    except FileError:
        raise
    except Exception as exc:  # Java I/O errors through py4j, OSError, a bad gzip stream
        raise FileError(f"cannot read the file: {java_error_message(exc)}", "file.unreadable",
                        upload.path) from exc


def csv_header(fs: ReadsFiles, upload: Upload, contract: Contract) -> HeaderPlan:
    """Read and match one CSV file's header."""
    return plan_header(parse_header_line(open_check(fs, upload)), contract, upload.path)


def jsonl_header(fs: ReadsFiles, upload: Upload, contract: Contract) -> HeaderPlan:
    """JSON Lines has no header: check the file can be read; every column is looked up by
    key in every line."""
    open_check(fs, upload)
    names = contract.column_names
    return HeaderPlan(source=upload.path, header=names, read_names=names, matched=names,
                      missing_optional=(), extra=())


HEADERS = {"csv": csv_header, "jsonl": jsonl_header}


def read_header(fs: ReadsFiles, upload: Upload, contract: Contract) -> HeaderPlan:
    check = HEADERS.get(contract.format)
    if check is None:
        raise LakeError(f"no reader for format {contract.format!r}; readers: "
                        f"{', '.join(sorted(HEADERS))}", "contract.format", contract.ref)
    return check(fs, upload, contract)
