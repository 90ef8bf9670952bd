"""Landing an upload in a local lake.

:func:`upload_file` records the upload in the ledger (RECEIVED), runs the checks, and lands
the file under ``raw/<dataset>/ingest_date=D/<upload_id>/<safe name>`` (ACCEPTED) or keeps
it under ``rejected/<dataset>/ingest_date=D/<upload_id>/`` beside ``<safe name>.reason.json``
(REJECTED), in the zones of the given :class:`LakePaths`. A file is copied under a
temporary name and renamed into place, so the raw zone never shows a partial file.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from datetime import UTC, datetime
from pathlib import Path

from lib.contracts.contract import Contract
from lib.contracts.header import printable
from lib.errors import LakeError
from lib.lake.paths import LakePaths, local_path
from lib.ledger.base import Ledger
from lib.ledger.records import ACCEPTED, REJECTED, DuplicateContentError, UploadRecord
from lib.upload.checks import (
    DEFAULT_MAX_BYTES,
    UploadRejected,
    duplicate_message,
    inspect_file,
    new_upload_id,
    safe_name,
)


def _local(uri: str) -> Path:
    """The local file of a zone URI; landing files here needs a local lake (on AWS the
    upload goes to S3 by a presigned POST instead)."""
    path = local_path(uri)
    if path is None:
        raise LakeError("uploads are landed on a local lake root only (on AWS a file is sent "
                        "through the upload API: lake push)", "lake.not_local", uri)
    return path


def _copy_into(src: Path, dest: Path) -> None:
    """Copy under a temporary name, then rename: ``dest`` appears whole or not at all."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.partial")
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _write_json(dest: Path, payload: dict) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.partial")
    tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, dest)


def upload_file(src: Path, contract: Contract, ledger: Ledger, paths: LakePaths, *,
                max_bytes: int = DEFAULT_MAX_BYTES, original_name: str | None = None,
                now: datetime | None = None) -> UploadRecord:
    """Check one file and land it. Returns its ledger record, ACCEPTED or REJECTED."""
    original = original_name or src.name or str(src)
    try:
        size = src.stat().st_size
    except OSError:
        size = 0
    record = receive(contract, ledger, original, size, now=now)
    return check_and_land(src, record, contract, ledger, paths, max_bytes=max_bytes)


def receive(contract: Contract, ledger: Ledger, original: str, size: int, *,
            now: datetime | None = None, note: str | None = None) -> UploadRecord:
    """Record an upload RECEIVED (its bytes may still be on their way)."""
    now = now or datetime.now(UTC)
    guessed_gz = original.lower().endswith((".gz", ".gzip"))
    return ledger.create(UploadRecord(
        upload_id=new_upload_id(now), dataset=contract.dataset, original_name=original,
        stored_name=safe_name(original, contract.format, guessed_gz), size_bytes=size,
        sha256="", ingest_date=now.date().isoformat(),
        received_at=now.isoformat(timespec="microseconds"),
    ), note=note or f"received {original}")


def check_and_land(src: Path, record: UploadRecord, contract: Contract, ledger: Ledger,
                   paths: LakePaths, *, max_bytes: int = DEFAULT_MAX_BYTES) -> UploadRecord:
    """Check the bytes of a RECEIVED upload (``src``) and land them in the raw zone
    (ACCEPTED), or set them aside with the reason (REJECTED)."""
    original, upload_id = record.original_name, record.upload_id
    try:
        check = inspect_file(src, contract, max_bytes=max_bytes, ledger=ledger,
                             source=printable(original))
    except UploadRejected as exc:
        record.sha256 = exc.sha256
        return _reject(src, record, paths, exc, ledger)
    stored = safe_name(original, contract.format, check.compressed)
    dest_uri = paths.landed(contract.dataset, record.ingest_date, upload_id, stored)
    dest = _local(dest_uri)
    _copy_into(src, dest)
    try:
        return ledger.transition(
            upload_id, ACCEPTED, note="passed the file checks", sha256=check.sha256,
            stored_name=stored, location=dest_uri, warnings=check.warnings,
            **check.ledger_fields())
    except DuplicateContentError as exc:  # an identical file was accepted meanwhile
        dest.unlink(missing_ok=True)
        _prune_empty(dest.parent, _local(paths.raw))
        record.sha256 = check.sha256
        earlier = ledger.get(exc.existing_id)
        return _reject(src, record, paths,
                       UploadRejected("file.duplicate",
                                      duplicate_message(printable(original), earlier)),
                       ledger)


def reject(record: UploadRecord, code: str, message: str, ledger: Ledger,
           paths: LakePaths) -> UploadRecord:
    """REJECT a RECEIVED upload whose bytes never arrived whole (nothing is kept)."""
    return _reject(None, record, paths, UploadRejected(code, message), ledger)


def rejection_document(record: UploadRecord, exc: UploadRejected, kept: bool) -> dict:
    """The ``<name>.reason.json`` kept beside a rejected file (``kept``: whether the file
    itself could be kept)."""
    return {
        "upload_id": record.upload_id, "dataset": record.dataset,
        "original_name": record.original_name,
        "stored_name": record.stored_name if kept else None, "size_bytes": record.size_bytes,
        "sha256": record.sha256 or None, "status": REJECTED, "reason_code": exc.code,
        "reason": exc.message, "received_at": record.received_at,
    }


def _reject(src: Path | None, record: UploadRecord, paths: LakePaths, exc: UploadRejected,
            ledger: Ledger) -> UploadRecord:
    kept: str | None = None
    dest_uri = paths.set_aside(record.dataset, record.ingest_date, record.upload_id,
                               record.stored_name)
    dest = _local(dest_uri)
    if src is not None and src.is_file():
        try:
            _copy_into(src, dest)
            kept = dest_uri
        except OSError:
            kept = None
    _write_json(dest.with_name(f"{dest.name}.reason.json"),
                rejection_document(record, exc, kept is not None))
    return ledger.transition(record.upload_id, REJECTED, note=exc.code, reason_code=exc.code,
                             reason=exc.message, location=kept, sha256=record.sha256)


def _prune_empty(folder: Path, stop: Path) -> None:
    while folder != stop and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent
