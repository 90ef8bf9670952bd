"""AWS resources for moto-backed tests, built from the CloudFormation templates' own
definitions so a test can never pass against a table or queue the stacks do not create."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

from lib.jobs.jars import jars_dir
from lib.jobs.s3a import S3A_JARS
from lib.tools.infra import FOUNDATION_PATH, load_template
from lib.tools.repo import REPO_ROOT
from tests.helpers import free_port

REGION = "us-east-1"
LEDGER_TABLE = "lake-test-ledger"


@contextlib.contextmanager
def moto_server() -> Iterator[tuple[ThreadedMotoServer, str]]:
    """moto's server on a free local port, and its endpoint URL, for as long as the block
    runs (the werkzeug log quiet: one line per request otherwise)."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def foundation_resource(name: str) -> dict:
    return load_template(FOUNDATION_PATH)["Resources"][name]["Properties"]


def create_ledger_table(dynamodb: Any, name: str = LEDGER_TABLE) -> str:
    """The ledger table exactly as ``LedgerTable`` in infra/foundation.yaml declares its keys,
    index and TTL."""
    props = foundation_resource("LedgerTable")
    dynamodb.create_table(
        TableName=name, BillingMode=props["BillingMode"],
        AttributeDefinitions=props["AttributeDefinitions"], KeySchema=props["KeySchema"],
        GlobalSecondaryIndexes=props["GlobalSecondaryIndexes"])
    ttl = props["TimeToLiveSpecification"]
    dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
    return name


def require_s3a() -> None:
    """Fail (not skip) when the S3A connector is missing: `make test` fetches it."""
    missing = [j.file_name for j in S3A_JARS if not (jars_dir() / j.file_name).is_file()]
    if missing:
        pytest.fail(f"the S3A connector is not in {jars_dir()} ({', '.join(missing)}): "
                    "`make test` fetches it (`make jars`)")


def run_job_on_s3(bucket: str, table: str, tmp: Path, *extra: str,
                  **env: str) -> subprocess.CompletedProcess:
    """orders v2 as Glue calls it (``--lake_root s3://<bucket> --ledger_table <table>``), in a
    process of its own whose session loads S3A; the AWS endpoint and credentials come from
    the environment."""
    return subprocess.run(
        [sys.executable, "-c", "import sys; from glue_jobs.orders.v2 import job; "
         "sys.exit(job.main(sys.argv[1:]))",
         "--JOB_NAME", "lake-dev-orders-v2", "--lake_root", f"s3://{bucket}",
         "--ledger_table", table, "--aws_region", REGION, *extra],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=600,
        env={**os.environ, "LAKE_SPARK_DIR": str(tmp / f"spark-{os.urandom(3).hex()}"), **env})


class S3Requests:
    """What moto's server receives while this records (a WSGI middleware around it): S3
    requests by kind, and the bytes they write (PUT bodies, and the bytes a server-side copy
    writes again)."""

    def __init__(self, server: ThreadedMotoServer) -> None:
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self.copied: list[str] = []  # the keys server-side copies wrote
        self._lock = threading.Lock()
        wsgi = server._server
        inner = wsgi.app

        def app(environ, start_response):  # noqa: ANN001, ANN202
            headers = {k[5:].lower().replace("_", "-"): v for k, v in environ.items()
                       if k.startswith("HTTP_")}
            headers["content-length"] = environ.get("CONTENT_LENGTH") or "0"
            url = environ.get("PATH_INFO", "") + "?" + environ.get("QUERY_STRING", "")
            with self._lock:
                self.seen.append((environ["REQUEST_METHOD"], url, headers))
            return inner(environ, start_response)

        wsgi.app = app
        self._undo = lambda: setattr(wsgi, "app", inner)

    def stop(self) -> dict[str, int]:
        self._undo()
        counts: dict[str, int] = {}
        size: dict[str, int] = {}  # bytes of each key written, through copies too

        def add(kind: str, n: int = 1) -> None:
            counts[kind] = counts.get(kind, 0) + n

        for method, url, headers in self.seen:
            key = unquote(url.split("?")[0]).lstrip("/").partition("/")[2]
            if "x-amz-target" in headers:  # DynamoDB: the ledger
                add("dynamodb requests")
            elif method == "PUT" and "x-amz-copy-source" in headers:
                source = unquote(headers["x-amz-copy-source"]).lstrip("/").partition("/")[2]
                size[key] = size.get(source.split("?")[0], 0)
                self.copied.append(key)
                add("s3 copies")
                add("bytes copied", size[key])  # written again, by S3
            elif method == "PUT":
                size[key] = int(headers.get("x-amz-decoded-content-length")
                                or headers.get("content-length") or 0)
                add("s3 puts")
                add("bytes put", size[key])
                if key.endswith(".parquet"):
                    add("parquet bytes put", size[key])
            elif method == "DELETE" or (method == "POST" and "delete" in url):
                add("s3 deletes")
            elif method == "GET" and "list-type" in url:
                add("s3 lists")
            else:
                add(f"s3 {method.lower()}s")
        return counts
