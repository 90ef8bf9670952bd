"""The upload ledger as a DynamoDB table: the ledger the Lambdas and the Glue jobs share on AWS.

One table (``pk`` the only key), three kinds of item:

``upload#<upload_id>``      the :class:`~lib.ledger.UploadRecord`, with its status history as
                            a list attribute (so a status change and its history entry are
                            one atomic write), and ``status_key`` = ``STATUS#received_at#id``
``claim#<dataset>#<sha256>`` the dataset's claim on a content hash: ``upload_id``
``lock#<dataset>``           a job run's lease on the dataset: ``owner``, ``lease_until``

The GSI ``by_dataset_status`` (``dataset`` / ``status_key``, keys only) is the job's input
list: the ACCEPTED and FAILED uploads of a dataset. Only upload items carry those attributes,
so the index holds nothing else. Its hits are re-read with consistent reads.

**Every status change is a conditional write.** :meth:`DynamoLedger.transition` reads the
record, then writes with ``#status = :seen AND #status IN (<statuses the edge is legal
from>)``: the condition, not Python, refuses an illegal edge, and a writer that read a status
another writer has since changed fails instead of overwriting it. Moving to ACCEPTED writes the
claim item in the same transaction (``attribute_not_exists``), so two uploads of the same bytes
can never both be accepted.

**TTL.** An ARCHIVED record (and its claim) gets ``expires_at`` = now + ``retention_days``; the
table's TTL deletes both after that. Reprocessing an ARCHIVED upload removes the expiry again.
After expiry the same content may be uploaded again.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from lib.ledger.base import Ledger
from lib.ledger.records import (
    ACCEPTED,
    ARCHIVED,
    PROCESSING,
    RECEIVED,
    STATUSES,
    TRANSITIONS,
    ConflictError,
    DuplicateContentError,
    HistoryEntry,
    IllegalTransition,
    LedgerError,
    LockBusyError,
    UnknownUploadError,
    UploadRecord,
    check_change,
    stamp_new,
    utc_now,
)

INDEX = "by_dataset_status"
DEFAULT_RETENTION_DAYS = 400
LOCK_LEASE_SECONDS = 300
_RECORD_FIELDS = tuple(UploadRecord.__dataclass_fields__)
_CONDITION_FAILED = "ConditionalCheckFailed"

_ser = TypeSerializer()
_de = TypeDeserializer()


def _upload_key(upload_id: str) -> dict:
    return {"pk": {"S": f"upload#{upload_id}"}}


def _claim_key(dataset: str, sha256: str) -> dict:
    return {"pk": {"S": f"claim#{dataset}#{sha256}"}}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _decode(item: dict) -> dict:
    return {k: _plain(_de.deserialize(v)) for k, v in item.items()}


def _values(values: dict[str, Any]) -> dict:
    return {k: _ser.serialize(v) for k, v in values.items()}


def status_key(status: str, received_at: str, upload_id: str) -> str:
    return f"{status}#{received_at}#{upload_id}"


def legal_sources(to_status: str) -> tuple[str, ...]:
    """The statuses an upload may move to ``to_status`` from."""
    return tuple(s for s in STATUSES if to_status in TRANSITIONS[s])


class DynamoLedger(Ledger):
    """:class:`~lib.ledger.Ledger` on a DynamoDB table (see the module docstring)."""

    def __init__(self, table: str, *, client: Any = None,
                 retention_days: int | None = DEFAULT_RETENTION_DAYS,
                 lock_lease_seconds: int = LOCK_LEASE_SECONDS) -> None:
        if client is None:
            client = boto3.client("dynamodb")
        self.table = table
        self._db = client
        self._retention = retention_days
        self._lease = lock_lease_seconds

    # -- reading -------------------------------------------------------------------------

    def _item(self, key: dict) -> dict | None:
        item = self._db.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")
        return _decode(item) if item else None

    @staticmethod
    def _record(item: dict) -> UploadRecord:
        values = {f: item[f] for f in _RECORD_FIELDS if f in item}
        values["warnings"] = values.get("warnings") or []
        return UploadRecord(**values)

    def _raw(self, upload_id: str) -> dict:
        item = self._item(_upload_key(upload_id))
        if item is None:
            raise UnknownUploadError(upload_id)
        return item

    def get(self, upload_id: str) -> UploadRecord:
        return self._record(self._raw(upload_id))

    def history(self, upload_id: str) -> list[HistoryEntry]:
        out, previous = [], None
        for h in self._raw(upload_id).get("history") or []:
            out.append(HistoryEntry(upload_id, h["at"], previous, h["to"], h.get("note")))
            previous = h["to"]
        return out

    def find(self, dataset: str | None = None,
             statuses: Sequence[str] | None = None) -> list[UploadRecord]:
        """Oldest first. With a dataset this queries the GSI (eventually consistent); the hits
        are re-read with consistent reads, so a record that has since moved on is dropped and
        every record returned is current."""
        wanted = tuple(statuses) if statuses is not None else STATUSES
        ids: list[str] = []
        if dataset is not None:
            for status in wanted:
                ids += [i["pk"].removeprefix("upload#") for i in self._pages(
                    "query", IndexName=INDEX,
                    KeyConditionExpression="dataset = :d AND begins_with(status_key, :s)",
                    ExpressionAttributeValues=_values({":d": dataset, ":s": f"{status}#"}))]
        else:
            ids = [i["pk"].removeprefix("upload#") for i in self._pages(
                "scan", FilterExpression="begins_with(pk, :p)",
                ExpressionAttributeValues=_values({":p": "upload#"}), ProjectionExpression="pk")]
        records = [r for r in self._batch_get(ids) if r.status in wanted
                   and (dataset is None or r.dataset == dataset)]
        return sorted(records, key=lambda r: (r.received_at, r.upload_id))

    def _pages(self, op: str, **kwargs: Any) -> Iterator[dict]:
        paginator = self._db.get_paginator(op)
        for page in paginator.paginate(TableName=self.table, **kwargs):
            for item in page.get("Items", []):
                yield _decode(item)

    def _batch_get(self, ids: Sequence[str]) -> list[UploadRecord]:
        out: list[UploadRecord] = []
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), 100):
            keys = [_upload_key(i) for i in unique[start:start + 100]]
            request = {self.table: {"Keys": keys, "ConsistentRead": True}}
            while request:
                resp = self._db.batch_get_item(RequestItems=request)
                out += [self._record(_decode(i)) for i in resp["Responses"].get(self.table, [])]
                request = resp.get("UnprocessedKeys") or {}
        return out

    def note(self, upload_id: str, note: str) -> None:
        item = self._raw(upload_id)  # unknown: UnknownUploadError
        self._db.update_item(
            TableName=self.table, Key=_upload_key(upload_id),
            UpdateExpression="SET history = list_append(history, :h)",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues=_values({":h": [{"at": utc_now(), "to": item["status"],
                                                       "note": note}]}))

    def accepted_with_sha(self, dataset: str, sha256: str) -> UploadRecord | None:
        claim = self._item(_claim_key(dataset, sha256))
        if claim is None or _expired(claim):
            return None
        try:
            return self.get(claim["upload_id"])
        except UnknownUploadError:  # the record expired; its claim is about to
            return None

    # -- writing -------------------------------------------------------------------------

    def create(self, record: UploadRecord, note: str | None = None) -> UploadRecord:
        now = stamp_new(record)
        item = {**record.to_dict(), "pk": f"upload#{record.upload_id}",
                "status_key": status_key(RECEIVED, record.received_at, record.upload_id),
                "history": [{"at": now, "to": RECEIVED, "note": note}]}
        try:
            self._db.put_item(TableName=self.table, Item=_values(item),
                              ConditionExpression="attribute_not_exists(pk)")
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                raise LedgerError(f"upload {record.upload_id} already exists") from None
            raise
        return record

    def transition(self, upload_id: str, to_status: str, *,
                   expected: Sequence[str] | None = None, note: str | None = None,
                   **updates: object) -> UploadRecord:
        check_change(to_status, updates)
        item = self._raw(upload_id)
        seen = item["status"]
        if expected is not None and seen not in expected:
            raise ConflictError(upload_id, expected, seen)
        now = utc_now()
        values = {**updates, "status": to_status, "updated_at": now,
                  "status_key": status_key(to_status, item["received_at"], upload_id)}
        sets = [f"#f{i} = :v{i}" for i in range(len(values))]
        names = {f"#f{i}": k for i, k in enumerate(values)}
        vals = {f":v{i}": v for i, v in enumerate(values.values())}
        sets.append("history = list_append(history, :h)")
        vals[":h"] = [{"at": now, "to": to_status, "note": note}]
        removes: list[str] = []
        expires = self._expires_at() if to_status == ARCHIVED else None
        if expires is not None:
            sets.append("expires_at = :exp")
            vals[":exp"] = expires
        else:
            removes.append("expires_at")
        # The condition is the rule: the status is still the one read, and the edge is legal.
        sources = legal_sources(to_status)
        names["#status"] = "status"
        vals[":seen"] = seen
        vals.update({f":src{i}": s for i, s in enumerate(sources)})
        legal = (f"#status IN ({', '.join(f':src{i}' for i in range(len(sources)))})"
                 if sources else "attribute_not_exists(pk)")  # no edge leads to RECEIVED
        condition = f"#status = :seen AND {legal}"
        update = {
            "TableName": self.table, "Key": _upload_key(upload_id),
            "UpdateExpression": f"SET {', '.join(sets)}"
                                + (f" REMOVE {', '.join(removes)}" if removes else ""),
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": _values(vals),
        }
        sha = str(updates.get("sha256", item.get("sha256")) or "")
        claim = self._claim_write(item, to_status, seen, sha, expires)
        try:
            if claim is None:
                self._db.update_item(**update)
            else:
                self._db.transact_write_items(TransactItems=[{"Update": update}, claim])
        except ClientError as exc:
            self._refused(exc, upload_id, to_status, seen, item["dataset"], sha)
            raise
        return self.get(upload_id)

    def _claim_write(self, item: dict, to_status: str, seen: str, sha: str,
                     expires: int | None) -> dict | None:
        """The claim item's part of a status change, if it has one."""
        uid = item["upload_id"]
        key = _claim_key(item["dataset"], sha)
        if to_status == ACCEPTED:
            return {"Put": {
                "TableName": self.table,
                "Item": _values({"pk": key["pk"]["S"], "upload_id": uid,
                                 "claim_dataset": item["dataset"], "sha256": sha}),
                # Free, held by this upload already, or left by an expired record.
                "ConditionExpression": "attribute_not_exists(pk) OR upload_id = :u OR "
                                       "(attribute_exists(expires_at) AND expires_at < :now)",
                "ExpressionAttributeValues": _values({":u": uid, ":now": int(time.time())}),
            }}
        if to_status == ARCHIVED and expires is not None:
            expression = "SET expires_at = :exp"
        elif seen == ARCHIVED and to_status == PROCESSING:  # reprocess: keep the claim
            expression, expires = "REMOVE expires_at", None
        else:
            return None
        vals = {":u": uid} | ({":exp": expires} if expires is not None else {})
        return {"Update": {"TableName": self.table, "Key": key, "UpdateExpression": expression,
                           "ConditionExpression": "upload_id = :u",
                           "ExpressionAttributeValues": _values(vals)}}

    def _refused(self, exc: ClientError, upload_id: str, to_status: str, seen: str,
                 dataset: str, sha: str) -> None:
        """Turn a refused write into the ledger's error; returns only for other errors."""
        code = _code(exc)
        if code == "ConditionalCheckFailedException":
            record_failed, claim_failed = True, False
        elif code == "TransactionCanceledException":
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            record_failed = bool(reasons) and reasons[0] == _CONDITION_FAILED
            claim_failed = len(reasons) > 1 and reasons[1] == _CONDITION_FAILED
        else:
            return
        if record_failed:  # as SqliteLedger: an illegal edge first, then a changed status
            current = self._raw(upload_id)["status"]
            if to_status not in TRANSITIONS[current]:
                raise IllegalTransition(upload_id, current, to_status) from None
            raise ConflictError(upload_id, (seen,), current) from None
        if claim_failed:
            holder = self._item(_claim_key(dataset, sha)) or {}
            if to_status == ACCEPTED:
                raise DuplicateContentError(dataset, sha, holder.get("upload_id", "?")) from None
            raise ConflictError(upload_id, (seen,), f"the content claim held by upload "
                                f"{holder.get('upload_id', '(none)')}") from None

    def _expires_at(self) -> int | None:
        if self._retention is None:
            return None
        return int(time.time()) + self._retention * 86400

    # -- the run lock --------------------------------------------------------------------

    @contextlib.contextmanager
    def run_lock(self, dataset: str) -> Iterator[None]:
        """A lease item renewed by a heartbeat thread while the run lasts; a run that dies
        stops renewing, and its lease lapses after ``lock_lease_seconds``."""
        key = {"pk": {"S": f"lock#{dataset}"}}
        owner = f"pid {os.getpid()} on {socket.gethostname()} since {utc_now()}"
        try:
            self._db.put_item(
                TableName=self.table,
                Item=_values({"pk": key["pk"]["S"], "owner": owner,
                              "lease_until": int(time.time()) + self._lease}),
                ConditionExpression="attribute_not_exists(pk) OR lease_until < :now",
                ExpressionAttributeValues=_values({":now": int(time.time())}))
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise
            holder = (self._item(key) or {}).get("owner", "another process")
            raise LockBusyError(f"another run of {dataset!r} is in progress ({holder}); "
                                f"try again when it has finished") from None
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(max(1.0, self._lease / 5)):
                with contextlib.suppress(ClientError):
                    self._db.update_item(
                        TableName=self.table, Key=key, UpdateExpression="SET lease_until = :t",
                        ConditionExpression="#o = :o", ExpressionAttributeNames={"#o": "owner"},
                        ExpressionAttributeValues=_values({
                            ":t": int(time.time()) + self._lease, ":o": owner}))

        heartbeat = threading.Thread(target=renew, name=f"lock-{dataset}", daemon=True)
        heartbeat.start()
        try:
            yield
        finally:
            stop.set()
            heartbeat.join()
            with contextlib.suppress(ClientError):
                self._db.delete_item(TableName=self.table, Key=key,
                                     ConditionExpression="#o = :o",
                                     ExpressionAttributeNames={"#o": "owner"},
                                     ExpressionAttributeValues=_values({":o": owner}))


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _expired(item: dict) -> bool:
    expires = item.get("expires_at")
    return expires is not None and int(expires) < time.time()
