"""The lake console's HTTP API with the framework's test client: an upload streamed and
checked as `lake upload` checks it, the size limit enforced mid-stream, refusals with their
code and message, the live status stream, cross-site requests refused, and the responses
against the OpenAPI description the framework generates."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jsonschema
from fastapi.testclient import TestClient

from lib.ledger.sqlite import open_ledger
from lib.tools.console.app import CSRF_HEADER, create_app
from tests.helpers import CONSOLE_URL, SAMPLES

GOOD = SAMPLES / "orders_2026-11-01.csv"
LEGACY = SAMPLES / "orders_2026-11-03_legacy_export.csv"  # lacks required columns
H = {CSRF_HEADER: "1"}
BASE = CONSOLE_URL


def schema_of(client: TestClient, path: str, method: str, status: str) -> dict:
    spec = client.get("/openapi.json").json()
    schema = spec["paths"][path][method]["responses"][status]["content"]["application/json"][
        "schema"]
    return {**schema, "components": spec["components"]}


def check(client: TestClient, response, path: str, method: str) -> dict:  # noqa: ANN001
    body = response.json()
    schema = schema_of(client, path, method, str(response.status_code))
    jsonschema.validate(body, schema)  # its $refs point into the merged components
    return body


def send(client: TestClient, path: Path, dataset: str = "orders", chunk: int = 300):
    created = client.post("/uploads", headers=H, json={
        "dataset": dataset, "file_name": path.name, "size_bytes": path.stat().st_size})
    assert created.status_code == 201, created.text
    body = check(client, created, "/uploads", "post")
    data = path.read_bytes()

    def chunks():  # the body arrives in pieces, as from a browser
        for i in range(0, len(data), chunk):
            yield data[i:i + chunk]
    sent = client.put(body["upload"]["url"], headers=H, content=chunks())
    return body, sent


def test_an_upload_is_streamed_checked_and_accepted(client, lake) -> None:
    created, sent = send(client, GOOD)
    assert created["status"] == "RECEIVED" and created["upload"]["method"] == "PUT"
    assert sent.status_code == 200
    record = check(client, sent, "/uploads/{upload_id}/content", "put")
    assert record["status"] == "ACCEPTED" and record["upload_id"] == created["upload_id"]
    status = check(client, client.get(created["status_url"]), "/uploads/{upload_id}", "get")
    assert [h["to"] for h in status["history"]] == ["RECEIVED", "ACCEPTED"]
    landed = open_ledger(lake).get(created["upload_id"])
    assert Path(landed.location.removeprefix("file://")).read_bytes() == GOOD.read_bytes()
    assert not any((lake / "_console" / "incoming").rglob("*.*"))  # nothing left behind


def test_a_refused_file_shows_the_same_reason_as_the_cli(client) -> None:
    _, sent = send(client, LEGACY)
    record = sent.json()
    assert (record["status"], record["reason_code"]) == ("REJECTED", "file.missing_columns")
    assert LEGACY.name in record["reason"] and "quantity" in record["reason"]


def test_the_size_limit_is_enforced_while_the_bytes_arrive(client, lake, tmp_path) -> None:
    big = tmp_path / "big.csv"
    big.write_bytes(GOOD.read_bytes() * 20)  # 22 KB against a 10,000-byte limit
    created = client.post("/uploads", headers=H, json={
        "dataset": "orders", "file_name": "big.csv", "size_bytes": 500})  # it lies
    def chunks():
        data = big.read_bytes()
        for i in range(0, len(data), 1000):
            yield data[i:i + 1000]
    sent = client.put(created.json()["upload"]["url"], headers=H, content=chunks())
    assert sent.status_code == 413
    assert sent.json()["error"] == "file.too_large" and "9.8 KiB" in sent.json()["message"]
    record = open_ledger(lake).get(created.json()["upload_id"])
    assert (record.status, record.reason_code) == ("REJECTED", "file.too_large")
    assert not any((lake / "_console" / "incoming").rglob("*.*"))
    declared = client.post("/uploads", headers=H, json={
        "dataset": "orders", "file_name": "big.csv", "size_bytes": 22_000})
    assert declared.status_code == 413 and declared.json()["error"] == "file.too_large"


def test_an_unknown_dataset_and_an_unsafe_name_are_refused(client) -> None:
    unknown = client.post("/uploads", headers=H, json={
        "dataset": "invoices", "file_name": "a.csv", "size_bytes": 10})
    assert unknown.status_code == 400
    assert unknown.json() == {"error": "dataset.unknown", "message": unknown.json()["message"]}
    assert "customers, orders" in unknown.json()["message"]
    unsafe = client.post("/uploads", headers=H, json={
        "dataset": "orders", "file_name": "../etc/passwd", "size_bytes": 10})
    assert (unsafe.status_code, unsafe.json()["error"]) == (400, "file.unsafe_name")
    missing = client.get("/uploads/u-nope")
    assert (missing.status_code, missing.json()["error"]) == (404, "upload.unknown")


def test_requests_without_the_console_header_are_refused(client) -> None:
    forged = client.post("/uploads", json={"dataset": "orders", "file_name": "a.csv",
                                           "size_bytes": 10})
    assert forged.status_code == 403 and forged.json()["error"] == "request.cross_site"
    assert client.post("/datasets/orders/runs").status_code == 403
    huge = client.post("/uploads", headers=H, content=b"{" + b" " * 70_000 + b"}")
    assert huge.status_code == 413 and huge.json()["error"] == "request.too_large"


def test_the_status_stream_yields_the_transitions_until_a_final_one(client) -> None:
    created, _ = send(client, LEGACY)
    with client.stream("GET", created["events_url"]) as events:
        lines = [ln for ln in events.iter_lines() if ln.startswith("data:")]
    statuses = [json.loads(ln[5:])["status"] for ln in lines]
    assert statuses == ["REJECTED"]  # already final: one event, then the stream ends
    listed = client.get("/uploads", params={"status": "REJECTED"}).json()
    assert [r["upload_id"] for r in listed] == [created["upload_id"]]
    assert client.get("/uploads", params={"status": "NOPE"}).status_code == 400


def test_the_pages_list_the_datasets_and_the_uploads(client) -> None:
    created, _ = send(client, GOOD)
    page = client.get("/").text
    assert '<option value="orders">' in page and "/static/console.js" in page
    listing = client.get("/ui/uploads", params={"dataset": "orders"}).text
    assert created["upload_id"] in listing and "ACCEPTED" in listing
    assert "http://" not in page and "https://" not in page  # nothing from a CDN
    assert client.get("/static/console.js").status_code == 200


def test_an_uploads_quarantined_rows_page_and_csv_match_the_zone(spark, processed_lake) -> None:
    import csv
    import io

    client = TestClient(create_app(processed_lake, fast_lane=False), base_url=BASE)
    record = next(r for r in open_ledger(processed_lake).find("orders") if r.quarantined)
    got = client.get(f"/uploads/{record.upload_id}/quarantine.csv")
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(got.text)))
    zone = spark.read.parquet(str(processed_lake / "quarantine" / "orders")).where(
        f"_upload_id = '{record.upload_id}'")
    expected = {(r["_source_record"], ";".join(r["_errors"]), r["order_id"] or "")
                for r in zone.collect()}
    assert len(table) == record.quarantined == zone.count()
    assert {(int(r["_source_record"]), r["_errors"], r["order_id"]) for r in table} == expected

    page = client.get(f"/ui/uploads/{record.upload_id}").text
    assert 'id="reasons"' in page and "may hold personal data" in page
    assert page.count("<tr>") >= 1 + record.quarantined  # header + every row (fewer than 50)
    assert f'href="/uploads/{record.upload_id}/quarantine.csv"' in page


def test_while_processing_the_stream_shows_the_runs_phase(lake) -> None:
    import logging

    from lib.ledger.records import PROCESSING

    with TestClient(create_app(lake, max_bytes=10_000, fast_lane=False), base_url=BASE) as client:  # lifespan
        created, _ = send(client, GOOD)
        ledger = open_ledger(lake)
        ledger.transition(created["upload_id"], PROCESSING, note="run r1")
        job_log = logging.getLogger("lake.orders_v2")
        job_log.setLevel(logging.INFO)
        job_log.info("writing the clean and the quarantined rows of 1 upload(s)")
        records = []
        with client.stream("GET", created["events_url"]) as events:
            for line in events.iter_lines():
                if not line.startswith("data:"):
                    continue
                records.append(json.loads(line[5:]))
                if len(records) == 1:  # the run moves on, then the upload fails
                    job_log.info("publishing 1 upload(s): 2 file(s) to move")
                    time.sleep(0.5)
                    ledger.transition(created["upload_id"], "FAILED", note="test",
                                      error_code="x", error="stopped")
    assert [(r["status"], r["phase"]) for r in records] == [
        ("PROCESSING", "writing the clean and the quarantined rows of 1 upload(s)"),
        ("PROCESSING", "publishing 1 upload(s): 2 file(s) to move"),
        ("FAILED", None)]
    assert not any(type(h).__name__ == "_PhaseHandler" for h in logging.getLogger("lake").handlers)


def test_a_datasets_page_lists_its_runs_with_the_trend_and_the_latest_report(
        spark, processed_lake) -> None:
    client = TestClient(create_app(processed_lake, fast_lane=False), base_url=BASE)
    reports = sorted((processed_lake / "_reports" / "orders").glob("*.json"))
    latest = json.loads(reports[-1].read_text())
    page = client.get("/ui/datasets/orders").text
    assert f'href="/reports/orders/{latest["run_id"]}"' in page and 'id="trend"' in page
    assert page.count('<rect class="bar-trend"') == len(reports)
    assert f'<iframe id="latest-report" src="/reports/orders/{latest["run_id"]}"' in page
    report = client.get(f"/reports/orders/{latest['run_id']}")
    assert report.status_code == 200 and 'data-count="rows_read"' in report.text
    assert client.get("/reports/orders/../../etc").status_code == 404
    assert client.get("/reports/orders/20260101T000000Z-abcdef").json()["error"] == \
        "report.unknown"
    assert client.get("/ui/datasets/invoices").status_code == 400
