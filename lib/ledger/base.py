"""The storage-neutral interface of the upload ledger: what the upload checker and the jobs
need from it. :mod:`lib.ledger.sqlite` (local) and :mod:`lib.ledger.dynamo` (AWS)
implement it."""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Sequence

from lib.ledger.records import HistoryEntry, LockBusyError, UploadRecord


class Ledger(ABC):
    """What the upload checker and the jobs need from a ledger."""

    @abstractmethod
    def create(self, record: UploadRecord, note: str | None = None) -> UploadRecord:
        """Record a new upload in status RECEIVED."""

    @abstractmethod
    def get(self, upload_id: str) -> UploadRecord:
        """The record, or :class:`UnknownUploadError`."""

    @abstractmethod
    def find(self, dataset: str | None = None,
             statuses: Sequence[str] | None = None) -> list[UploadRecord]:
        """Records, oldest first, optionally of one dataset and some statuses."""

    @abstractmethod
    def history(self, upload_id: str) -> list[HistoryEntry]:
        """Status changes of one upload, oldest first."""

    @abstractmethod
    def transition(self, upload_id: str, to_status: str, *,
                   expected: Sequence[str] | None = None, note: str | None = None,
                   **updates: object) -> UploadRecord:
        """Move an upload to ``to_status`` if it is in one of ``expected`` (default: any
        status the edge is legal from) and set ``updates``; atomic. Moving to ACCEPTED
        claims the content hash for the dataset."""

    @abstractmethod
    def note(self, upload_id: str, note: str) -> None:
        """Add ``note`` to the upload's history without changing its status (what happened
        to it that is not a status change: a run that could not take it)."""

    @abstractmethod
    def accepted_with_sha(self, dataset: str, sha256: str) -> UploadRecord | None:
        """The upload holding the dataset's claim on this content, if any."""

    @abstractmethod
    def run_lock(self, dataset: str) -> contextlib.AbstractContextManager[None]:
        """Held by a job run for the whole run: at most one run per dataset at a time, so
        an upload left PROCESSING when no run holds the lock was orphaned by a crash."""

    def run_lock_holder(self, dataset: str) -> str | None:
        """Who holds the dataset's run lock now (the refusal a run would get), or None: a
        probe that takes the lock and lets it go at once, so that a run can be refused
        before it starts anything costly. The run still takes the lock itself."""
        try:
            with self.run_lock(dataset):
                return None
        except LockBusyError as exc:
            return str(exc)
