"""The upload API (API Gateway HTTP API, payload format 2.0, IAM authorisation).

``POST /uploads`` with a JSON body::

    {"dataset": "orders", "file_name": "orders 2026-11.csv", "size_bytes": 1234,
     "content_type": "text/csv", "sha256": "<64 hex digits>"}

records the upload as RECEIVED and answers ``201`` with its id and a presigned POST. The
POST's policy fixes everything about the object: the key
``raw/<dataset>/ingest_date=<today>/<upload_id>/<safe name>``, the exact size (which must be
within the dataset's limit), the content type, the SHA-256 (S3 refuses other bytes) and
SSE-KMS with the lake's key. The bytes then go straight to S3; the validator Lambda checks
them when S3 reports the new object, and the upload becomes ACCEPTED or REJECTED.

``GET /uploads/{upload_id}`` answers the upload's record (status, reason, counts) and its
status history.

Refusals are ``4xx`` with ``{"error": <code>, "message": <what and why>}``: ``request.invalid``
(not JSON, a field missing or of the wrong type), ``dataset.unknown``, ``file.empty``,
``file.too_large`` (413), ``file.unsafe_name``, ``file.content_type``, ``upload.unknown`` (404).
An unexpected failure (a throttled table, say) is ``500`` ``internal`` with the request id.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any

from lib.contracts.contract import available_contracts, load_contract
from lib.errors import LakeError
from lib.lambdas.settings import Services, lake_paths, object_key, services
from lib.ledger.base import Ledger
from lib.ledger.records import UnknownUploadError, UploadRecord
from lib.upload.checks import human_bytes, new_upload_id, safe_name, upload_limit

log = logging.getLogger("lake.upload_api")
log.setLevel(logging.INFO)

CREATE_ROUTE = "POST /uploads"
STATUS_ROUTE = "GET /uploads/{upload_id}"
ROUTES = (CREATE_ROUTE, STATUS_ROUTE)  # infra/uploads.yaml declares exactly these
CONTENT_TYPES = ("text/csv", "text/plain", "application/jsonl", "application/x-ndjson",
                 "application/json", "application/gzip", "application/x-gzip",
                 "application/octet-stream")
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_UPLOAD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class ApiError(LakeError):
    """A refused request: the HTTP ``status``, the ``code`` and message of the JSON body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status = status
        super().__init__(message, code)


def _response(status: int, body: dict) -> dict:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"},
            "body": json.dumps(body, default=str)}


def unsafe_name_reason(name: str) -> str | None:
    """Why a file name may not be used, or None. Names are stored sanitised, but a name that
    tries to be a path, hides control characters or is not a name at all is refused."""
    if not name.strip():
        return "the file name is empty"
    if len(name) > 255:
        return f"the file name is {len(name)} characters long; at most 255 are allowed"
    if "/" in name or "\\" in name:
        return "the file name contains a path separator ('/' or '\\'); send the name only"
    if name.strip() in (".", "..") or name.startswith("."):
        return "the file name starts with '.'; hidden files and relative paths are refused"
    if any(unicodedata.category(ch)[0] == "C" for ch in name):
        return "the file name contains control or invisible characters"
    return None


def _field(body: dict, name: str, kind: type, example: str) -> Any:
    value = body.get(name)
    if value is None or isinstance(value, bool) or not isinstance(value, kind):
        what = "missing" if value is None else f"a {type(value).__name__}, not a {kind.__name__}"
        raise ApiError(400, "request.invalid", f"field {name!r} is {what}; expected e.g. "
                       f"{example}")
    return value


def create_upload(svc: Services, body: Any, caller: str | None,
                  now: datetime | None = None) -> dict:
    """Validate the request, record RECEIVED, and presign the POST (the 201 body)."""
    if not isinstance(body, dict):
        raise ApiError(400, "request.invalid", "the body must be a JSON object with dataset, "
                       "file_name, size_bytes, content_type and sha256")
    dataset = _field(body, "dataset", str, '"orders"')
    name = _field(body, "file_name", str, '"orders-2026-11.csv"')
    size = _field(body, "size_bytes", int, "1234")
    content_type = _field(body, "content_type", str, '"text/csv"')
    sha256 = _field(body, "sha256", str, "the file's SHA-256 as 64 hex digits")
    known = available_contracts()
    if dataset not in known:
        raise ApiError(400, "dataset.unknown", f"unknown dataset {dataset!r}; known datasets: "
                       f"{', '.join(sorted(known)) or '(none)'}")
    contract = load_contract(dataset)
    limit = upload_limit(contract, svc.settings.max_upload_bytes)
    if size <= 0:
        raise ApiError(400, "file.empty", f"{name}: size_bytes is {size}; an upload needs at "
                       "least one byte")
    if size > limit:
        raise ApiError(413, "file.too_large", f"{name}: {human_bytes(size)} is over the limit "
                       f"of {human_bytes(limit)} for dataset {dataset!r}; split the file and "
                       "upload the parts")
    why = unsafe_name_reason(name)
    if why:
        raise ApiError(400, "file.unsafe_name", f"{name!r}: {why}")
    if content_type.split(";")[0].strip().lower() not in CONTENT_TYPES:
        raise ApiError(400, "file.content_type", f"content type {content_type!r} is not accepted;"
                       f" use one of {', '.join(CONTENT_TYPES)}")
    if not _SHA256.match(sha256):
        raise ApiError(400, "request.invalid", "field 'sha256' must be the file's SHA-256 as 64 "
                       "hex digits")
    now = now or datetime.now(UTC)
    upload_id = new_upload_id(now)
    ingest_date = now.date().isoformat()
    stored = safe_name(name, contract.format, name.lower().endswith((".gz", ".gzip")))
    key = object_key(svc.settings.raw_bucket,
                     lake_paths(svc.settings).landed(dataset, ingest_date, upload_id, stored))
    svc.ledger.create(UploadRecord(
        upload_id=upload_id, dataset=dataset, original_name=name,
        stored_name=stored, size_bytes=size, sha256=sha256.lower(), ingest_date=ingest_date,
        received_at=now.isoformat(timespec="microseconds"),
    ), note=f"upload requested by {caller or 'an unknown caller'}")
    fields = {
        "Content-Type": content_type,
        "x-amz-checksum-algorithm": "SHA256",
        "x-amz-checksum-sha256": base64.b64encode(bytes.fromhex(sha256)).decode("ascii"),
        "x-amz-meta-upload-id": upload_id,
    }
    if svc.settings.kms_key_arn:
        fields["x-amz-server-side-encryption"] = "aws:kms"
        fields["x-amz-server-side-encryption-aws-kms-key-id"] = svc.settings.kms_key_arn
    conditions: list[Any] = [{k: v} for k, v in fields.items()]
    conditions.append(["content-length-range", size, size])
    expires = svc.settings.url_expires_seconds
    post = svc.s3.generate_presigned_post(
        Bucket=svc.settings.raw_bucket, Key=key, Fields=fields, Conditions=conditions,
        ExpiresIn=expires)
    log.info("upload %s requested by %s: %s (%d bytes) -> s3://%s/%s", upload_id, caller,
             name, size, svc.settings.raw_bucket, key)
    return {
        "upload_id": upload_id, "status": "RECEIVED", "dataset": dataset,
        "contract": contract.ref, "stored_name": stored, "key": key, "size_bytes": size,
        "max_upload_bytes": limit,
        "expires_at": (now + timedelta(seconds=expires)).isoformat(timespec="seconds"),
        "upload": {"url": post["url"], "fields": post["fields"]},
        "status_url": f"/uploads/{upload_id}",
    }


def upload_status(svc: Services, upload_id: str) -> dict:
    if not _UPLOAD_ID.match(upload_id or ""):
        raise ApiError(400, "request.invalid", f"{upload_id!r} is not an upload id")
    try:
        record = svc.ledger.get(upload_id)
    except UnknownUploadError:
        raise ApiError(404, "upload.unknown", f"no upload {upload_id!r}") from None
    return with_history(svc.ledger, record)


def with_history(ledger: Ledger, record: UploadRecord) -> dict:
    """An upload's record and its status history, as the API answers them."""
    history = [{"at": h.at, "from": h.from_status, "to": h.to_status, "note": h.note}
               for h in ledger.history(record.upload_id)]
    return {**record.to_dict(), "history": history}


def handler(event: dict, context: Any = None, svc: Services | None = None) -> dict:
    svc = svc or services()
    route = event.get("routeKey", "")
    caller = (((event.get("requestContext") or {}).get("authorizer") or {}).get("iam") or {}) \
        .get("userArn")
    try:
        if route == CREATE_ROUTE:
            text = event.get("body") or ""
            if event.get("isBase64Encoded"):
                text = base64.b64decode(text).decode("utf-8", "replace")
            try:
                body = json.loads(text)
            except ValueError as exc:
                raise ApiError(400, "request.invalid", f"the body is not JSON: {exc}") from None
            return _response(201, create_upload(svc, body, caller))
        if route == STATUS_ROUTE:
            return _response(200, upload_status(svc, (event.get("pathParameters") or {})
                                                .get("upload_id", "")))
        raise ApiError(404, "route.unknown", f"no route {route!r}; routes: {', '.join(ROUTES)}")
    except ApiError as exc:
        log.info("refused %s from %s: %s %s", route, caller, exc.code, exc.message)
        return _response(exc.status, {"error": exc.code, "message": exc.message})
    except Exception:  # noqa: BLE001 - a JSON 500 the client can act on, the trace in the log
        request_id = ((event.get("requestContext") or {}).get("requestId")) or "-"
        log.exception("request %s (%s from %s) failed", request_id, route, caller)
        return _response(500, {"error": "internal", "message": "the upload service failed; "
                               f"retry later (request id {request_id})"})
