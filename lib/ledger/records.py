"""The upload ledger: one record per upload and the history of its statuses.

    RECEIVED --> ACCEPTED --> PROCESSING --> PROCESSED --> ARCHIVED
        |                      ^     |          |             |
        +--> REJECTED          |     +--> FAILED              |
                               +--------- FAILED (retry)      |
                               +--------- PROCESSED, ARCHIVED (reprocess)

Every change of status is a conditional write: it names the status it expects to find and
fails with :class:`ConflictError` when another writer got there first, and an edge not in
:data:`TRANSITIONS` raises :class:`IllegalTransition` before anything is written. Accepting
an upload claims its content hash for the dataset, so two uploads of the same bytes can
never both be accepted, however they race (:class:`DuplicateContentError`).

:class:`Ledger` is the storage-neutral interface the upload checker and the jobs use.
:class:`SqliteLedger` is the local implementation, a SQLite file under the lake root that
several ``lake`` processes may use at once. :class:`lib.ledger.dynamo.DynamoLedger` is the
one on AWS: each status change one conditional write (a ``ConditionExpression`` on the
status), with a ``claim#<dataset>#<sha256>`` item for the content claim.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from lib.errors import LakeError

RECEIVED = "RECEIVED"
ACCEPTED = "ACCEPTED"
REJECTED = "REJECTED"
PROCESSING = "PROCESSING"
PROCESSED = "PROCESSED"
FAILED = "FAILED"
ARCHIVED = "ARCHIVED"
STATUSES = (RECEIVED, ACCEPTED, REJECTED, PROCESSING, PROCESSED, FAILED, ARCHIVED)

TRANSITIONS: dict[str, frozenset[str]] = {
    RECEIVED: frozenset({ACCEPTED, REJECTED}),
    ACCEPTED: frozenset({PROCESSING}),
    PROCESSING: frozenset({PROCESSED, FAILED}),
    FAILED: frozenset({PROCESSING}),  # retry
    PROCESSED: frozenset({ARCHIVED, PROCESSING}),  # PROCESSING: reprocess
    ARCHIVED: frozenset({PROCESSING}),  # reprocess
    REJECTED: frozenset(),
}
# Statuses that hold the dataset's claim on a content hash: the bytes are in the lake.
CLAIMING = (ACCEPTED, PROCESSING, PROCESSED, FAILED, ARCHIVED)
# What a run picks up when it is not given upload ids.
PENDING = (ACCEPTED, FAILED)
# What a run may be given explicitly (PROCESSED / ARCHIVED: reprocess).
PROCESSABLE = (ACCEPTED, FAILED, PROCESSED, ARCHIVED)


class LedgerError(LakeError):
    """An upload cannot be recorded or changed as asked."""

    default_code = "ledger.error"


class UnknownUploadError(LedgerError):
    def __init__(self, upload_id: str) -> None:
        self.upload_id = upload_id
        super().__init__(f"no upload {upload_id!r} in the ledger")


class IllegalTransition(LedgerError):
    def __init__(self, upload_id: str, current: str, target: str) -> None:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none (final)"
        super().__init__(f"upload {upload_id}: illegal status change {current} -> {target} "
                         f"(allowed from {current}: {allowed})")


class ConflictError(LedgerError):
    """The record was not in the expected status: another writer changed it first."""

    def __init__(self, upload_id: str, expected: Sequence[str], actual: str) -> None:
        super().__init__(f"upload {upload_id}: expected status {'/'.join(expected)}, "
                         f"found {actual} (changed by another process)")


class DuplicateContentError(LedgerError):
    def __init__(self, dataset: str, sha256: str, existing_id: str) -> None:
        self.existing_id = existing_id
        super().__init__(f"{dataset}: content {sha256[:12]}... already accepted as upload "
                         f"{existing_id}")


class LockBusyError(LedgerError):
    """Another run of the dataset holds its run lock."""


@dataclass
class UploadRecord:
    upload_id: str
    dataset: str
    original_name: str
    stored_name: str
    size_bytes: int
    sha256: str
    status: str = RECEIVED
    reason_code: str | None = None
    reason: str | None = None
    warnings: list[str] = field(default_factory=list)
    location: str | None = None  # URI of the bytes now: raw, rejected or archive zone
    ingest_date: str = ""  # YYYY-MM-DD the upload was received (UTC)
    received_at: str = ""
    updated_at: str = ""
    rows_read: int | None = None
    clean: int | None = None
    quarantined: int | None = None
    duplicates_removed: int | None = None
    job_name: str | None = None
    job_version: int | None = None
    run_id: str | None = None
    error_code: str | None = None
    error: str | None = None
    # The structure the upload check found: data records, the longest one, and whether a
    # quoted field holds a line break. The job fails an upload whose rows read differ.
    record_count: int | None = None
    longest_record_bytes: int | None = None
    multiline: bool | None = None
    interruptions: int = 0  # runs that died while processing this upload
    held: bool = False  # it killed a run on its own: no automatic retry (lake reprocess)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class HistoryEntry:
    upload_id: str
    at: str
    from_status: str | None
    to_status: str
    note: str | None = None


# Fields a status change may set (the content hash is known once the checks have read the
# file); identity fields never change.
UPDATABLE = frozenset({
    "sha256", "stored_name", "reason_code", "reason", "warnings", "location", "rows_read",
    "clean", "quarantined", "duplicates_removed", "job_name", "job_version", "run_id", "error_code", "error",
    "record_count", "longest_record_bytes", "multiline", "interruptions", "held",
})


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def check_change(to_status: str, updates: Mapping[str, object]) -> None:
    """What every ledger refuses before it writes: an unknown status, an identity field."""
    if to_status not in STATUSES:
        raise LedgerError(f"unknown status {to_status!r}; statuses: {', '.join(STATUSES)}")
    unknown = set(updates) - UPDATABLE
    if unknown:
        raise LedgerError(f"cannot set {sorted(unknown)} on an upload record")


def stamp_new(record: UploadRecord) -> str:
    """A new record starts RECEIVED; sets its timestamps and returns 'now'."""
    if record.status != RECEIVED:
        raise IllegalTransition(record.upload_id, RECEIVED, record.status)
    now = utc_now()
    record.received_at = record.received_at or now
    record.updated_at = now
    return now
