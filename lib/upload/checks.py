"""File-level checks at upload time, and landing a file in the lake. No Spark.

:func:`inspect_file` decides whether a file may enter the raw zone, from its content rather
than its name, in this order (the first failure is the reason):

==================== ==========================================================
``file.not_found``   the path is not a readable file
``file.too_large``   over the size limit (the file, and for gzip its content)
``file.empty``       no bytes, or only blank lines
``file.format``      binary or another format (PDF, zip, image, executable...),
                     JSON where the contract declares CSV (or not JSON Lines where
                     it declares ``jsonl``), a quoted CSV field never closed
``file.encoding``    not UTF-8 (the message gives the byte offset, line and column)
``file.checksum``    the SHA-256 differs from the one declared when the upload was
                     requested (uploads through the API only)
``file.duplicate``   same bytes (SHA-256) as an upload already accepted
``file.record_too_large``  a record longer than the contract's ``max_record_bytes``
``file.missing_columns`` / ``file.duplicate_columns``  header vs the contract
``file.no_rows``     a header and no data rows
==================== ==========================================================

The checks read a file as a stream, twice: one pass hashes and scans the bytes, a second
reads the structure of every record (:mod:`lib.upload.structure`). :func:`inspect_stream`
takes a function that opens the stream, so an S3 object is checked the same way without
landing on disk. Memory stays bounded by the record limit, whatever the file's size.

CSV: extra columns, and rows with another number of fields than the header, are accepted
with a warning (the job quarantines such rows as ``row.malformed``). JSON Lines has no
header: the keys of the first objects stand for it (a required key none of them carries ->
``file.missing_columns``); lines the job will quarantine are counted in a warning. The
record count, the longest record and whether a quoted field holds a line break are kept
in the ledger: the job checks that it read every record.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import os
import re
import secrets
import unicodedata
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from lib.contracts.contract import Contract
from lib.contracts.header import listed, plan_header, suggestion
from lib.errors import ConfigError, FileError, LakeError
from lib.ledger.base import Ledger
from lib.ledger.records import UploadRecord
from lib.upload.structure import Structure, StructureRejected, scan_csv, scan_jsonl

DEFAULT_MAX_BYTES = 1 << 30  # 1 GiB
MAX_BYTES_ENV = "LAKE_MAX_UPLOAD_BYTES"
NAME_MAX = 120
_CHUNK = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"
_SIGNATURES = (
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or an .xlsx/.docx file)"),
    (b"PK\x05\x06", "an empty ZIP archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "a legacy Office document (.xls/.doc)"),
    (b"PAR1", "a Parquet file"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"BZh", "a bzip2 archive"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\x28\xb5\x2f\xfd", "a zstd archive"),
    (b"SQLite format 3\x00", "a SQLite database"),
    (b"\x7fELF", "an executable (ELF)"),
    (b"\xff\xfe", "UTF-16 text (little-endian)"),
    (b"\xfe\xff", "UTF-16 text (big-endian)"),
)
_UTF16 = {"UTF-16 text (little-endian)", "UTF-16 text (big-endian)"}
_UTF8_BOM = b"\xef\xbb\xbf"
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_FORMAT_SUFFIX = {"csv": ".csv", "jsonl": ".jsonl"}
_FORMAT_NAME = {"csv": "a CSV file", "jsonl": "a JSON Lines file (one JSON object per line)"}
# Opens the file's bytes from the start, each time it is called.
Opener = Callable[[], BinaryIO]


class UploadRejected(LakeError):
    """The file may not enter the lake; ``code`` is the machine-readable reason and the
    message starts with the file's name."""

    def __init__(self, code: str, message: str) -> None:
        self.sha256 = ""  # set when the content was read before the rejection
        super().__init__(message, code)

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


@dataclass
class FileCheck:
    """What the checks learnt about an acceptable file."""

    size_bytes: int
    sha256: str
    compressed: bool
    warnings: list[str] = field(default_factory=list)
    header: tuple[str, ...] = ()
    records: int = 0  # data records in the whole file (what the job must read)
    longest_record_bytes: int = 0
    longest_record_line: int = 0
    multiline: bool = False  # a quoted field holds a line break: the job reads it whole

    def record(self, found: Structure) -> None:
        self.records = found.records
        self.longest_record_bytes = found.longest_record_bytes
        self.longest_record_line = found.longest_record_line
        self.multiline = found.multiline

    def ledger_fields(self) -> dict[str, object]:
        """What the ledger keeps of the structure, for the job to check its count against."""
        return {"record_count": self.records, "longest_record_bytes": self.longest_record_bytes,
                "multiline": self.multiline}


def max_upload_bytes(env: Mapping[str, str] | None = None) -> int:
    text = (os.environ if env is None else env).get(MAX_BYTES_ENV)
    if text is None:
        return DEFAULT_MAX_BYTES
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"{MAX_BYTES_ENV} must be a positive number of bytes, got {text!r}")
    return int(text)


def upload_limit(contract: Contract, ceiling: int) -> int:
    """A dataset's file size limit: its contract's ``max_upload_bytes``, never above the
    lake's ``ceiling`` (``$LAKE_MAX_UPLOAD_BYTES``, 1 GiB by default)."""
    return min(ceiling, contract.max_upload_bytes or ceiling)


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{n} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def safe_name(original: str, fmt: str, compressed: bool) -> str:
    """A stored file name from a user's: the last path component only, control and
    non-portable characters replaced, bounded in length, and the extension set from the
    sniffed content (``.csv`` / ``.csv.gz``), which is what the job's reader goes by."""
    base = re.split(r"[/\\]", original)[-1]
    base = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode("ascii")
    base = "".join(ch for ch in base if ch.isprintable())
    stem = base
    for suffix in (".gz", ".gzip", f".{fmt}", ".txt", ".jsonl", ".json", ".csv"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
    stem = _UNSAFE_NAME_CHARS.sub("_", stem).strip("._-") or "upload"
    suffix = _FORMAT_SUFFIX[fmt] + (".gz" if compressed else "")
    return stem[: NAME_MAX - len(suffix)] + suffix


def new_upload_id(now: datetime) -> str:
    """``u<yyyymmdd>-<12 hex>``: sortable by day, unique, safe in any path or file name."""
    return f"u{now.strftime('%Y%m%d')}-{secrets.token_hex(6)}"


def _sniff(head: bytes, source: str, what: str, fmt: str) -> None:
    for magic, kind in _SIGNATURES:
        if head.startswith(magic):
            if kind in _UTF16:
                raise UploadRejected("file.encoding", f"{source}: {what} is {kind}; save it as "
                                     "UTF-8 and upload again")
            raise UploadRejected("file.format", f"{source}: {what} is {kind}, not text; "
                                 f"upload {_FORMAT_NAME[fmt]}, optionally gzip-compressed")


class _TextScan:
    """One streaming pass over the (decompressed) bytes: UTF-8 validity with the position of
    the first bad byte, NUL bytes, blank content and the decompressed size."""

    def __init__(self, source: str, limit: int, fmt: str) -> None:
        self.source = source
        self.fmt = fmt
        self.limit = limit
        self.offset = 0  # bytes decoded so far
        self.line = 1
        self.line_start = 0  # offset where the current line starts
        self.carry = b""
        self.first_char: str | None = None

    def feed(self, chunk: bytes, final: bool = False) -> None:
        buf = self.carry + chunk
        if self.offset == 0 and buf.startswith(_UTF8_BOM):
            buf = buf[len(_UTF8_BOM):]
            self.offset = len(_UTF8_BOM)
            self.line_start = self.offset
        if len(buf) + self.offset > self.limit:
            raise UploadRejected("file.too_large", f"{self.source}: content is over the size "
                                 f"limit of {human_bytes(self.limit)} once decompressed")
        nul = buf.find(b"\x00")
        if nul >= 0:  # binary content: say so, rather than report its first non-UTF-8 byte
            self._advance(buf[:nul])
            raise UploadRejected("file.format", f"{self.source}: binary content (a NUL byte at "
                                 f"byte offset {self.offset}, line {self.line}); upload "
                                 f"{_FORMAT_NAME[self.fmt]}")
        try:
            text, used = codecs.utf_8_decode(buf, "strict", final)
        except UnicodeDecodeError as exc:
            self._advance(buf[: exc.start])
            bad = buf[exc.start: exc.start + 4]
            raise UploadRejected(
                "file.encoding",
                f"{self.source}: not valid UTF-8: byte 0x{buf[exc.start]:02x} at byte offset "
                f"{self.offset} (line {self.line}, column {self.offset - self.line_start + 1}; "
                f"bytes {bad.hex(' ')}); save the file as UTF-8 and upload again") from None
        if self.first_char is None and text.strip():
            self.first_char = text.lstrip()[0]
        self._advance(buf[:used])
        self.carry = buf[used:]

    def _advance(self, consumed: bytes) -> None:
        newlines = consumed.count(b"\n")
        if newlines:
            self.line += newlines
            self.line_start = self.offset + consumed.rfind(b"\n") + 1
        self.offset += len(consumed)


class _Inflater:
    """gzip decompression in pieces of at most one chunk, across concatenated members: a
    small compressed chunk can hold gigabytes, and none of it may be held at once."""

    def __init__(self) -> None:
        self._z = zlib.decompressobj(wbits=31)

    @property
    def eof(self) -> bool:
        return self._z.eof

    def __call__(self, chunk: bytes) -> Iterator[bytes]:
        data = chunk
        while data:
            yield self._z.decompress(data, _CHUNK)
            data = self._z.unconsumed_tail
            if self._z.eof and self._z.unused_data:  # a concatenated gzip member follows
                data = self._z.unused_data
                self._z = zlib.decompressobj(wbits=31)


def _scan(opener: Opener, source: str, limit: int, fmt: str) -> tuple[str, bool, _TextScan]:
    """Hash the stored bytes and scan the text in one read; returns (sha256, gzip?, scan)."""
    digest = hashlib.sha256()
    read = 0
    with opener() as fh:
        head = fh.read(_CHUNK)
        compressed = head.startswith(_GZIP_MAGIC)
        _sniff(head, source, "the file", fmt)
        scan = _TextScan(source, limit, fmt)
        inflater = _Inflater() if compressed else None
        chunk, first = head, True
        try:
            while chunk:
                digest.update(chunk)
                read += len(chunk)
                pieces = [chunk] if inflater is None else inflater(chunk)
                for data in pieces:
                    if first and data:
                        if compressed and data.startswith(_GZIP_MAGIC):
                            raise UploadRejected("file.format", f"{source}: gzip inside gzip; "
                                                 "compress the file once")
                        if compressed:
                            _sniff(data, source, "the gzip content", fmt)
                        first = False
                    scan.feed(data)
                chunk = fh.read(_CHUNK)
            if inflater is not None and not inflater.eof:
                raise UploadRejected("file.format", f"{source}: the gzip stream is truncated; "
                                     "upload the complete file")
        except zlib.error as exc:
            raise UploadRejected("file.format", f"{source}: corrupt gzip data at about byte "
                                 f"{read}: {exc}") from None
        scan.feed(b"", final=True)
    return digest.hexdigest(), compressed, scan


def inspect_file(path: Path, contract: Contract, *, max_bytes: int = DEFAULT_MAX_BYTES,
                 ledger: Ledger | None = None, source: str | None = None) -> FileCheck:
    """Check one local file against ``contract``; raise :class:`UploadRejected` with the
    first reason it cannot be accepted."""
    source = source or path.name or str(path)
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise UploadRejected("file.not_found", f"{source}: not a regular file")
    except FileNotFoundError:
        raise UploadRejected("file.not_found", f"{source}: no such file") from None
    except PermissionError as exc:
        raise UploadRejected("file.not_found", f"{source}: cannot be read: {exc}") from None
    return inspect_stream(lambda: open(path, "rb"), size, contract, max_bytes=max_bytes,
                          ledger=ledger, source=source)


def inspect_stream(opener: Opener, size: int, contract: Contract, *,
                   max_bytes: int = DEFAULT_MAX_BYTES, ledger: Ledger | None = None,
                   source: str, expected_sha256: str | None = None) -> FileCheck:
    """Check ``size`` bytes that ``opener`` streams, as :func:`inspect_file` checks a file;
    ``expected_sha256`` is the checksum the uploader declared, if any."""
    if size > max_bytes:
        raise UploadRejected("file.too_large", f"{source}: {human_bytes(size)} is over the size "
                             f"limit of {human_bytes(max_bytes)}; split the file and upload "
                             "the parts")
    if size == 0:
        raise UploadRejected("file.empty", f"{source}: the file is empty (0 bytes); "
                             f"{_expected(contract)}")
    sha256, compressed, scan = _scan(opener, source, max_bytes, contract.format)
    try:
        if expected_sha256 and sha256 != expected_sha256.lower():
            raise UploadRejected("file.checksum", f"{source}: the content's SHA-256 is "
                                 f"{sha256}, not the {expected_sha256} declared for the upload; "
                                 "the file changed or was damaged in transit, upload it again")
        return _check_text(opener, contract, source, sha256, compressed, scan, ledger, size)
    except UploadRejected as exc:
        exc.sha256 = sha256
        raise


def _expected(contract: Contract) -> str:
    """What a file of the contract's format must hold, for empty-file messages."""
    needs = ("a header row naming the columns is required" if contract.format == "csv"
             else "one JSON object per line is expected")
    return f"{needs} ({', '.join(contract.column_names)})"


def _check_text(opener: Opener, contract: Contract, source: str, sha256: str, compressed: bool,
                scan: _TextScan, ledger: Ledger | None, size: int) -> FileCheck:
    if scan.first_char is None:
        raise UploadRejected("file.empty", f"{source}: the file holds no text, only blank "
                             f"lines; {_expected(contract)}")
    if contract.format == "csv" and scan.first_char in "{[":
        raise UploadRejected("file.format", f"{source}: the content is JSON, but dataset "
                             f"{contract.dataset!r} expects CSV with a header row")
    if contract.format == "jsonl" and scan.first_char != "{":
        raise UploadRejected("file.format", f"{source}: dataset {contract.dataset!r} expects "
                             "JSON Lines (one JSON object per line), but the first line does "
                             f"not start with '{{' (it starts with {scan.first_char!r})")
    if ledger is not None:
        earlier = ledger.accepted_with_sha(contract.dataset, sha256)
        if earlier is not None:
            raise UploadRejected("file.duplicate", duplicate_message(source, earlier))
    check = FileCheck(size_bytes=size, sha256=sha256, compressed=compressed)
    if contract.format == "jsonl":
        _check_jsonl(opener, contract, source, compressed, check)
    else:
        _check_csv(opener, contract, source, compressed, check)
    return check


def duplicate_message(source: str, earlier: UploadRecord) -> str:
    return (f"{source}: same content (SHA-256 {earlier.sha256[:12]}...) as upload "
            f"{earlier.upload_id} ({earlier.original_name!r}, received {earlier.received_at}, "
            f"status {earlier.status}); to load it again run: lake reprocess "
            f"{earlier.upload_id}")


def _structure(opener: Opener, contract: Contract, source: str, compressed: bool) -> Structure:
    """The whole file's records (:mod:`lib.upload.structure`), streamed once more."""
    with opener() as raw, (gzip.open(raw) if compressed else nullcontext(raw)) as fh:
        try:
            return (scan_jsonl if contract.format == "jsonl" else scan_csv)(fh, contract, source)
        except StructureRejected as exc:
            raise UploadRejected(exc.code, exc.message) from None


def _check_csv(opener: Opener, contract: Contract, source: str, compressed: bool,
               check: FileCheck) -> None:
    """The header against the contract, and every record's structure."""
    found = _structure(opener, contract, source, compressed)
    try:
        plan = plan_header(found.header, contract, source)
    except FileError as exc:
        raise UploadRejected(exc.code, str(exc)) from None
    if found.records == 0:
        raise UploadRejected("file.no_rows", f"{source}: the file has a header but no data "
                             "rows")
    check.record(found)
    check.header = tuple(h.strip() for h in found.header or ())
    if plan.extra:
        check.warnings.append(f"extra column(s) dropped: {listed(list(plan.extra))}")
    if found.field_count_mismatch:
        check.warnings.append(
            f"{found.field_count_mismatch} of the {found.records} rows have another number of "
            f"fields than the header ({len(check.header)}), the first at line "
            f"{found.first_mismatch_line}; they will be quarantined as row.malformed")


def _check_jsonl(opener: Opener, contract: Contract, source: str, compressed: bool,
                 check: FileCheck) -> None:
    """Every line parsed as the job parses it. A JSON Lines file has no header: a required
    column no object among the first ones carries means the file is not this dataset's."""
    found = _structure(opener, contract, source, compressed)
    if found.objects == 0:
        raise UploadRejected("file.format", f"{source}: none of the {found.records} lines is "
                             f"a JSON object ({found.first_malformed}); expected JSON Lines, "
                             "one object per line")
    missing = [c for c in contract.required_columns if c not in found.keys]
    if missing:
        raise UploadRejected(
            "file.missing_columns",
            f"{source}: required key(s) {missing} for {contract.ref} appear in none of the "
            f"first {min(found.objects, 1000)} objects; keys found: {list(found.keys)[:50]}"
            f"{f' and {len(found.keys) - 50} more' if len(found.keys) > 50 else ''}; keys are "
            "case-sensitive" + suggestion(missing, [k for k in found.keys
                                                   if k not in contract.column_names]))
    check.record(found)
    check.header = tuple(found.keys)
    extra = [k for k in found.keys if k not in contract.column_names]
    if extra:
        check.warnings.append(f"keys not in the contract are dropped: {listed(extra)}")
    if found.malformed:
        check.warnings.append(
            f"{found.malformed} of the {found.records} lines are not one JSON object with "
            f"unique keys ({found.first_malformed}); they will be quarantined as "
            "row.malformed")
    if found.out_of_range:
        check.warnings.append(
            f"{found.out_of_range} of the {found.records} lines hold a number beyond the range "
            f"of a double in a contract field ({found.first_out_of_range}); they will be "
            "quarantined as <field>.type")
