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
    # no dataset is chosen for the user: the first option is the empty one, selected
    assert '<option value="" selected>Choose a dataset…</option>' in page
    assert '<option value="orders" data-format="csv"' in page and "/static/console.js" in page
    assert '<option value="customers" data-format="jsonl"' in page
    assert 'href="/datasets/orders/template"' in page and "JSON Lines" in page
    # the navigation comes from the contracts
    assert '<a href="/ui/datasets/orders">orders</a>' in page
    assert '<a href="/ui/datasets/customers">customers</a>' in page
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
    assert 'id="reason-list"' in page and "may hold personal data" in page
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
    missing = client.get("/reports/orders/20260101T000000Z-abcdef")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    assert '<code id="error-code">report.unknown</code>' in missing.text
    assert client.get("/ui/datasets/invoices").status_code == 400


def test_every_api_error_is_json_and_every_page_error_a_page(client) -> None:
    """Unknown routes, wrong methods and malformed bodies answer ``{error, message}`` on the
    API; a page (or a browser asking for one) gets an HTML page saying the same."""
    unknown = client.get("/nothing")
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "not_found" and "/nothing" in unknown.json()["message"]
    assert set(client.get("/uploads/u20260101-000000000000").json()) == {"error", "message"}
    wrong = client.delete("/uploads", headers=H)
    assert wrong.status_code == 405 and wrong.json()["error"] == "request.method"
    bad = client.post("/uploads", headers=H, json={"dataset": "orders", "file_name": "a.csv",
                                                     "size_bytes": "many"})
    assert bad.status_code == 422 and bad.json() == {
        "error": "request.invalid",
        "message": "the request is not valid: size_bytes: Input should be a valid integer, "
                   "unable to parse string as an integer; expected a JSON body {\"dataset\", "
                   "\"file_name\", \"size_bytes\"}"}
    missing = client.post("/uploads", headers=H, json={"dataset": "orders"})
    assert missing.status_code == 422 and "file_name: Field required" in missing.json()["message"]

    page = client.get("/ui/uploads/u20260101-000000000000")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "<h1>Not found</h1>" in page.text and "no upload &#39;u20260101-000000000000&#39;" \
        in page.text
    browsed = client.get("/nothing", headers={"Accept": "text/html,application/xhtml+xml"})
    assert browsed.status_code == 404 and '<code id="error-code">not_found</code>' in browsed.text
    assert client.get("/ui/datasets/nope").headers["content-type"].startswith("text/html")


def test_a_template_file_per_dataset_names_its_columns(client) -> None:
    from lib.contracts.contract import load_contract

    orders = client.get("/datasets/orders/template")
    assert orders.status_code == 200 and orders.headers["content-type"].startswith("text/csv")
    assert 'filename="orders_template.csv"' in orders.headers["content-disposition"]
    assert orders.text == ",".join(load_contract("orders").column_names) + "\n"
    customers = client.get("/datasets/customers/template")
    assert customers.headers["content-type"].startswith("application/x-ndjson")
    line = json.loads(customers.text)
    assert list(line) == list(load_contract("customers").column_names)
    assert line["signup_date"] == "2026-01-31"
    assert client.get("/datasets/nope/template").json()["error"] == "dataset.unknown"


def test_runs_nothing_to_process_and_what_cannot_be_reprocessed_are_refused(client) -> None:
    assert client.get("/datasets/orders/runs/current").json() == {
        "dataset": "orders", "running": False, "job": None, "outcome": None}
    nothing = client.post("/datasets/orders/runs", headers=H)
    assert nothing.status_code == 409 and nothing.json()["error"] == "run.nothing_to_process"
    created, sent = send(client, LEGACY)
    assert sent.json()["status"] == "REJECTED"
    again = client.post(f"/uploads/{created['upload_id']}/reprocess", headers=H)
    assert again.status_code == 409 and again.json()["error"] == "upload.not_reprocessable"
    assert "upload it again" in again.json()["message"]
    assert client.post("/uploads/u20260101-000000000000/reprocess", headers=H).status_code == 404


def test_a_refusal_says_what_it_means_and_a_duplicate_links_to_the_original(client) -> None:
    first, _ = send(client, GOOD)
    second, sent = send(client, GOOD)
    record = sent.json()
    assert record["reason_code"] == "file.duplicate"
    assert record["original_id"] == first["upload_id"]
    assert client.get(f"/uploads/{first['upload_id']}").json()["original_id"] is None
    assert record["explained"] == {
        "meaning": "the same bytes were accepted before",
        "action": "nothing to do if it is a resend; to load it again, reprocess the earlier "
                  "upload the message names"}
    page = client.get(f"/ui/uploads/{second['upload_id']}").text
    assert f'<a href="/ui/uploads/{first["upload_id"]}">{GOOD.name}</a>' in page
    assert "now ACCEPTED" in page and "reprocess" not in page.split('id="original"')[1].split(
        "</p>")[0].lower()  # an ACCEPTED upload has not been processed: nothing to reprocess

    legacy, refused = send(client, LEGACY)
    assert "closest names in the file: 'OrderNumber' for order_id, 'Customer' for " \
        "customer_id, 'Product' for product_sku, 'Qty' for quantity, 'Price' for unit_price" \
        in refused.json()["reason"]
    page = client.get(f"/ui/uploads/{legacy['upload_id']}").text
    assert "<b>The header lacks columns the contract requires.</b>" in page
    assert "<b>What to do:</b> add or rename the missing columns" in page


def test_a_datasets_page_leaves_out_runs_that_processed_nothing(lake) -> None:
    folder = lake / "_reports" / "orders"
    folder.mkdir(parents=True)
    runs = [("20261201T100000Z-aaaaaa", 1, 10, 2), ("20261202T100000Z-bbbbbb", 2, 20, 10),
            ("20261203T100000Z-cccccc", 0, 0, 0)]
    for run_id, uploads, read, quarantined in runs:
        day = run_id[6:8]
        (folder / f"{run_id}.json").write_text(json.dumps({
            "run_id": run_id, "status": "succeeded", "started_at": f"2026-12-{day}T10:00:00+00:00",
            "finished_at": f"2026-12-{day}T10:01:05+00:00",
            "totals": {"uploads": uploads, "rows_read": read, "quarantined": quarantined}}))
    page = TestClient(create_app(lake, fast_lane=False), base_url=BASE).get(
        "/ui/datasets/orders").text
    assert '<a id="latest" href="/reports/orders/20261202T100000Z-bbbbbb">' in page
    assert "cccccc" not in page
    assert '<p class="muted" id="idle">1 run found nothing to process and is not listed.</p>' \
        in page
    assert page.count('<rect class="bar-trend"') == 2
    assert ">2026-12-02 10:00:00 UTC</a>" in page and ">1 min 05 s</td>" in page
    assert 'data-value="20261202T100000Z-bbbbbb">50%</text>' in page  # the bar's value
    assert 'data-date="20261201T100000Z-aaaaaa">12-01 10:00</text>' in page


def test_an_uploads_quarantined_rows_are_shown_by_line_with_the_failing_cells_marked(
        spark, processed_lake) -> None:
    """The sample's O-1005 is its 5th record but starts on line 7 (O-1002 spans two lines):
    the page says line 7, reasons first, the failing quantity cell marked."""
    import re

    client = TestClient(create_app(processed_lake, fast_lane=False), base_url=BASE)
    record = next(r for r in open_ledger(processed_lake).find("orders")
                  if r.original_name == GOOD.name)
    page = client.get(f"/ui/uploads/{record.upload_id}").text
    table = page.split('<table id="quarantined">')[1].split("</table>")[0]
    head = re.findall(r"<th[^>]*>([^<]*)</th>", table)
    assert head[:3] == ["line", "why", "order_id"]
    assert "_upload_id" not in head and "_source_file" not in head and "_errors" not in head
    row = next(r for r in table.split("<tr>") if ">O-1005<" in r)
    assert '<td class="num">7</td>' in row
    assert '<span class="why-item" data-code="quantity.range">quantity is outside the allowed ' \
        'range</span>' in row
    assert '<td class="bad" data-failing="quantity.range">0<span class="visually-hidden"> ' \
        '(fails quantity.range)</span></td>' in row
    # v1 has no discount_pct; every shown row has the same contract version: said once
    assert "_contract_version" not in head


def wait_for_run(client: TestClient, dataset: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = client.get(f"/datasets/{dataset}/runs/current").json()
        if not state["running"]:
            return state
        time.sleep(0.5)
    raise AssertionError(f"the run of {dataset} did not end in {timeout} s")


def test_process_now_then_reprocess_say_how_each_run_ended(spark, client) -> None:
    created, sent = send(client, GOOD)
    uid = created["upload_id"]
    started = client.post("/datasets/orders/runs", headers=H)
    assert started.status_code == 202 and started.json()["job"] == "orders_v2"
    assert client.post("/datasets/orders/runs", headers=H).json()["error"] in (
        "run.busy", "run.nothing_to_process")  # one run at a time; its upload is taken
    first = wait_for_run(client, "orders")["outcome"]
    assert first["status"] == "succeeded" and first["totals"]["rows_read"] == 14
    assert first["report_url"] == f"/reports/orders/{first['run_id']}"
    assert client.get(f"/uploads/{uid}").json()["status"] == "ARCHIVED"

    again = client.post(f"/uploads/{uid}/reprocess", headers=H)
    assert again.status_code == 202
    assert client.post(f"/uploads/{uid}/reprocess", headers=H).json()["error"] == "run.busy"
    state = wait_for_run(client, "orders")
    second = state["outcome"]
    assert state["upload_ids"] == [uid] and second["status"] == "succeeded"
    assert second["run_id"] != first["run_id"] and second["totals"]["clean"] == 4
    record = client.get(f"/uploads/{uid}").json()
    assert record["status"] == "ARCHIVED" and record["run_id"] == second["run_id"]


def test_a_failure_inside_the_console_is_a_500_in_the_same_shape(lake, monkeypatch) -> None:
    def broken(_contract):  # noqa: ANN001, ANN202
        raise RuntimeError("disk gone")

    monkeypatch.setattr("lib.tools.console.views.template_file", broken)
    client = TestClient(create_app(lake, fast_lane=False), base_url=BASE,
                        raise_server_exceptions=False)
    failed = client.get("/datasets/orders/template")
    assert failed.status_code == 500 and failed.json() == {
        "error": "console.error",
        "message": "the console failed on this request (RuntimeError); the terminal running "
                   "lake serve has the details"}


def test_process_now_takes_a_failed_upload_due_for_a_retry_but_not_a_held_one(
        client, lake, monkeypatch) -> None:
    """"Process now" waits for what the batch run takes: a FAILED upload not held is retried,
    a held one is not (the job itself stands in: it records the argv it was given)."""
    from types import SimpleNamespace

    from lib.ledger.records import PROCESSING

    ledger = open_ledger(lake)

    def failed(path: Path, held: bool) -> str:
        uid = send(client, path)[0]["upload_id"]
        ledger.transition(uid, PROCESSING, note="run r1")
        ledger.transition(uid, "FAILED", note="test", error_code="run.interrupted",
                          error="died", held=held)
        return uid

    failed(GOOD, held=True)
    nothing = client.post("/datasets/orders/runs", headers=H)
    assert (nothing.status_code, nothing.json()["error"]) == (409, "run.nothing_to_process")

    failed(SAMPLES / "orders_2026-11-04_discounts.csv", held=False)
    calls: list[list[str]] = []
    job = SimpleNamespace(main=lambda argv: calls.append(argv) or 0)
    monkeypatch.setattr("lib.tools.console.app.resolve_job", lambda dataset, v: (2, job))
    started = client.post("/datasets/orders/runs", headers=H)
    assert started.status_code == 202
    state = wait_for_run(client, "orders")
    assert calls and calls[0][:2] == ["--JOB_NAME", "orders_v2"]
    assert state["outcome"]["status"] == "no report"  # the stand-in wrote none
