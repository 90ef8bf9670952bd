"""`lake push`: send files to a deployed lake through its upload API.

For each file: hash it, ``POST /uploads`` (SigV4-signed for ``execute-api`` with the caller's
AWS credentials), stream the bytes to S3 with the presigned POST it answers, then poll
``GET /uploads/{id}`` until the validator has decided (ACCEPTED or REJECTED) or ``wait``
seconds have passed. Only botocore (signing) and urllib3 (HTTP) are used, both already
there with boto3.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from lib.errors import LakeError

_CHUNK = 1 << 20
CONTENT_TYPES = {".csv": "text/csv", ".jsonl": "application/x-ndjson",
                 ".json": "application/json", ".gz": "application/gzip",
                 ".txt": "text/plain"}


class PushError(LakeError):
    """The upload API refused a file or could not be reached."""

    default_code = "push.error"


@dataclass
class Pushed:
    path: Path
    upload_id: str
    status: str
    record: dict


def content_type(path: Path) -> str:
    return CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class UploadApi:
    """A SigV4-signing client of one deployment's upload API."""

    def __init__(self, base_url: str, session: Any, region: str | None = None,
                 http: urllib3.PoolManager | None = None) -> None:
        credentials = session.get_credentials()
        if credentials is None:
            raise PushError("no AWS credentials: configure them (aws configure, AWS_PROFILE, "
                            "or the AWS_* variables) for a principal allowed "
                            "execute-api:Invoke on the upload API")
        region = region or session.region_name
        if not region:
            raise PushError("no AWS region: pass --region or configure a default region")
        self.base = base_url.rstrip("/")
        self._signer = SigV4Auth(credentials.get_frozen_credentials(), "execute-api", region)
        self._http = http or urllib3.PoolManager()

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        request = AWSRequest(method=method, url=f"{self.base}{path}", data=data,
                             headers={"Content-Type": "application/json"} if data else {})
        self._signer.add_auth(request)
        resp = self._http.request(method, request.url, body=data,
                                  headers=dict(request.headers.items()))
        try:
            payload = json.loads(resp.data or b"{}")
        except ValueError:
            payload = {"error": "response.invalid", "message": resp.data[:500].decode("utf-8",
                                                                                      "replace")}
        return resp.status, payload


def _multipart(fields: dict[str, str], path: Path, size: int) -> tuple[str, int, Iterator[bytes]]:
    """A multipart/form-data body with the file last, streamed from disk; returns (content
    type, length, chunks). S3 needs the length up front, so no chunked encoding."""
    boundary = f"lake-{secrets.token_hex(12)}"
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items())
    head += (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
             f'filename="{path.name}"\r\nContent-Type: application/octet-stream\r\n\r\n').encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def chunks() -> Iterator[bytes]:
        yield head
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                yield chunk
        yield tail
    return f"multipart/form-data; boundary={boundary}", len(head) + size + len(tail), chunks()


def push(api: UploadApi, dataset: str, path: Path, *, wait: float = 120,
         poll: float = 2.0, http: urllib3.PoolManager | None = None) -> Pushed:
    if not path.is_file():
        raise PushError(f"{path}: no such file")
    size = path.stat().st_size
    status, answer = api.call("POST", "/uploads", {
        "dataset": dataset, "file_name": path.name, "size_bytes": size,
        "content_type": content_type(path), "sha256": sha256_of(path)})
    if status != 201:
        raise PushError(f"{path}: the upload API refused it ({status} "
                        f"{answer.get('error', '?')}): {answer.get('message', answer)}")
    upload_id = answer["upload_id"]
    ctype, length, body = _multipart(answer["upload"]["fields"], path, size)
    resp = (http or urllib3.PoolManager()).request(
        "POST", answer["upload"]["url"], body=body,
        headers={"Content-Type": ctype, "Content-Length": str(length)}, preload_content=True)
    if resp.status not in (200, 201, 204):
        raise PushError(f"{path}: S3 refused the upload {upload_id} ({resp.status}): "
                        f"{resp.data[:1000].decode('utf-8', 'replace')}")
    deadline = time.monotonic() + wait
    while True:
        status, record = api.call("GET", f"/uploads/{upload_id}")
        if status != 200:
            raise PushError(f"{path}: GET /uploads/{upload_id} answered {status}: {record}")
        if record.get("status") != "RECEIVED" or time.monotonic() >= deadline:
            return Pushed(path, upload_id, record.get("status", "?"), record)
        time.sleep(poll)
