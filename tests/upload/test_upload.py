"""Upload-time checks (no Spark): every reason code with its message, safe names, landing
in the raw / rejected zones, and concurrent uploaders."""

from __future__ import annotations

import gzip
import io
import json
import multiprocessing
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lib.contracts.contract import load_contract
from lib.lake.paths import LakePaths
from lib.ledger.sqlite import SqliteLedger
from lib.upload.checks import UploadRejected, inspect_file, safe_name
from lib.upload.landing import upload_file
from tests.helpers import SAMPLES

HEADER = "order_id,customer_id,product_sku,quantity,unit_price,currency,order_ts\n"
ROW = "O-1,C-1,SKU-1,1,2.00,USD,2026-11-01T00:00:00Z\n"
NOW = datetime(2026, 11, 22, 8, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def orders():
    return load_contract("orders", 1)


def write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    p = tmp_path / name
    p.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return p


def rejected(path: Path, contract, **kw) -> UploadRejected:
    with pytest.raises(UploadRejected) as exc:
        inspect_file(path, contract, **kw)
    return exc.value


def zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("orders.csv", HEADER + ROW)
    return buf.getvalue()


@pytest.mark.parametrize(("name", "data", "message"), [
    ("report.csv", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "report.csv: the file is a PDF "
     "document, not text; upload a CSV file, optionally gzip-compressed"),
    ("orders.csv", zip_bytes(), "orders.csv: the file is a ZIP archive (or an .xlsx/.docx file), "
     "not text; upload a CSV file, optionally gzip-compressed"),
    ("orders.csv.gz", gzip.compress(b"%PDF-1.4 inside"), "orders.csv.gz: the gzip content is a "
     "PDF document, not text; upload a CSV file, optionally gzip-compressed"),
    ("nested.csv.gz", gzip.compress(gzip.compress(HEADER.encode())),
     "nested.csv.gz: gzip inside gzip; compress the file once"),
    ("cut.csv.gz", gzip.compress((HEADER + ROW * 50).encode())[:-30],
     "cut.csv.gz: the gzip stream is truncated; upload the complete file"),
    ("bin.csv", HEADER.encode() + b"O-1,\x00\x01\x02", "bin.csv: binary content (a NUL byte at "
     "byte offset 75, line 2); upload a CSV file"),
    ("orders.csv", '{"order_id": "O-1"}\n', "orders.csv: the content is JSON, but dataset "
     "'orders' expects CSV with a header row"),
    ("quote.csv", HEADER + '"O-1,C-1,SKU-1,1,2.00,USD,2026-11-01\nO-2,C,S,1,1,USD,x\n',
     "quote.csv: a quoted field in the record starting at line 2 is never closed; every field "
     "that opens with a quote (\") must end with one (a quote inside it is written twice: \"\")"),
])
def test_content_that_is_not_csv_text_is_refused_as_file_format(tmp_path, orders, name, data,
                                                                  message) -> None:
    exc = rejected(write(tmp_path, name, data), orders)
    assert (exc.code, exc.message) == ("file.format", message)


def test_invalid_utf8_names_the_first_bad_byte(tmp_path, orders) -> None:
    data = (HEADER + ROW).encode() + "O-2,Café,SKU-2,1,2.00,USD,2026-11-01\n".encode("latin-1")
    exc = rejected(write(tmp_path, "latin1.csv", data), orders)
    assert exc.code == "file.encoding"
    assert exc.message == ("latin1.csv: not valid UTF-8: byte 0xe9 at byte offset 124 (line 3, "
                           "column 8; bytes e9 2c 53 4b); save the file as UTF-8 and upload again")
    assert data[124] == 0xE9


def test_invalid_utf8_inside_gzip_and_utf16_are_refused_as_file_encoding(tmp_path, orders) -> None:
    gz = write(tmp_path, "x.csv.gz", gzip.compress(HEADER.encode() + b"\xff\xfe\n"))
    assert rejected(gz, orders).message.startswith(
        "x.csv.gz: not valid UTF-8: byte 0xff at byte offset 71 (line 2, column 1;")
    utf16 = write(tmp_path, "w.csv", (HEADER + ROW).encode("utf-16"))
    exc = rejected(utf16, orders)
    assert (exc.code, exc.message) == ("file.encoding", "w.csv: the file is UTF-16 text "
                                       "(little-endian); save it as UTF-8 and upload again")


def test_a_bad_byte_split_across_read_chunks_is_found_at_its_offset(tmp_path, orders) -> None:
    body = HEADER + ROW * 30000  # > 1 MiB, the scanner's chunk size
    data = body.encode()[: (1 << 20) - 1] + "é".encode()[:1] + b"x" + body.encode()[1 << 20:]
    exc = rejected(write(tmp_path, "big.csv", data), orders)
    assert exc.code == "file.encoding"
    assert f"at byte offset {(1 << 20) - 1} " in exc.message


@pytest.mark.parametrize(("data", "code", "message"), [
    (b"", "file.empty", "e.csv: the file is empty (0 bytes); a header row naming the columns is "
     "required (order_id, customer_id, customer_email, product_sku, quantity, unit_price, "
     "currency, order_ts, country)"),
    (b"\n\r\n  \n", "file.empty", "e.csv: the file holds no text, only blank lines; a header row "
     "naming the columns is required (order_id, customer_id, customer_email, product_sku, "
     "quantity, unit_price, currency, order_ts, country)"),
    (HEADER.encode(), "file.no_rows", "e.csv: the file has a header but no data rows"),
    (("\ufeff" + HEADER + "\n\n").encode(), "file.no_rows",
     "e.csv: the file has a header but no data rows"),
])
def test_empty_and_header_only_files(tmp_path, orders, data, code, message) -> None:
    exc = rejected(write(tmp_path, "e.csv", data), orders)
    assert (exc.code, exc.message) == (code, message)


def test_files_over_the_size_limit_are_refused(tmp_path, orders) -> None:
    big = write(tmp_path, "big.csv", HEADER + ROW * 100)
    exc = rejected(big, orders, max_bytes=1024)
    assert (exc.code, exc.message) == ("file.too_large", "big.csv: 4.6 KiB is over the size "
                                       "limit of 1.0 KiB; split the file and upload the parts")
    bomb = write(tmp_path, "bomb.csv.gz", gzip.compress((HEADER + ROW * 1000).encode()))
    assert bomb.stat().st_size < 1024
    exc = rejected(bomb, orders, max_bytes=4096)
    assert (exc.code, exc.message) == ("file.too_large", "bomb.csv.gz: content is over the size "
                                       "limit of 4.0 KiB once decompressed")


def test_a_header_missing_required_columns_names_missing_and_present(tmp_path, orders) -> None:
    f = write(tmp_path, "m.csv", "Order ID,customer_id,product_sku,notes\nO-1,C-1,S-1,x\n")
    exc = rejected(f, orders)
    assert exc.code == "file.missing_columns"
    assert exc.message == (
        "m.csv: missing required column(s) ['quantity', 'unit_price', 'currency', 'order_ts'] "
        "for orders/1; present columns: ['Order ID', 'customer_id', 'product_sku', 'notes']; "
        "required: ['order_id', 'customer_id', 'product_sku', 'quantity', 'unit_price', "
        "'currency', 'order_ts']")


def test_a_header_naming_a_column_twice_is_refused(tmp_path, orders) -> None:
    f = write(tmp_path, "d.csv", HEADER.rstrip("\n") + ",Order-ID\n" + ROW.rstrip("\n") + ",O\n")
    exc = rejected(f, orders)
    assert (exc.code, exc.message) == (
        "file.duplicate_columns", "d.csv: ambiguous header: several columns map to the same "
        "contract column (order_id <- 'order_id', 'Order-ID')")


def test_extra_columns_and_long_rows_are_accepted_with_warnings(tmp_path, orders) -> None:
    f = write(tmp_path, "x.csv", HEADER.rstrip("\n") + ",notes\n" + ROW.rstrip("\n") + ",hi\n"
              + ROW.rstrip("\n") + ",a,b\n")
    check = inspect_file(f, orders)
    assert check.warnings == [
        "extra column(s) dropped: notes",
        "1 of the 2 rows have another number of fields than the header (8), the first at line "
        "3; they will be quarantined as row.malformed"]
    assert (check.records, check.compressed) == (2, False)


def test_the_bundled_samples_pass(orders) -> None:
    plain = inspect_file(SAMPLES / "orders_2026-11-01.csv", orders)
    assert plain.warnings == ["extra column(s) dropped: notes",
                              "1 of the 14 rows have another number of fields than the head"
                              "er (10), the first at line 12; they will be quarantined as row.malformed"]
    assert plain.sha256 == "894ce2bbb610e1e668243627b9da050fa217b472a1f9635aeeefc0504dc3146d"
    gz = inspect_file(SAMPLES / "orders_2026-11-02.csv.gz", orders)
    assert (gz.compressed, gz.warnings, gz.records) == (True, [], 6)


@pytest.mark.parametrize(("original", "gz", "expected"), [
    ("orders.csv", False, "orders.csv"),
    ("../../etc/passwd", False, "passwd.csv"),
    ("..\\..\\windows\\orders 2026 (1).CSV", False, "orders_2026_1.csv"),
    (".hidden.csv", False, "hidden.csv"),
    ("bad\x00name\x1b[31m.csv", False, "badname_31m.csv"),
    ("données été.csv", False, "donnees_ete.csv"),
    ("export.txt", True, "export.csv.gz"),  # gzip content, whatever the name says
    ("export.csv.gz", False, "export.csv"),
    ("...", False, "upload.csv"),
    ("a" * 300 + ".csv", False, "a" * 116 + ".csv"),
])
def test_safe_names(original, gz, expected) -> None:
    assert safe_name(original, "csv", gz) == expected
    assert len(safe_name(original, "csv", gz)) <= 120


def test_upload_lands_accepted_files_in_the_raw_zone(tmp_path, orders) -> None:
    ledger = SqliteLedger(tmp_path / "lake" / "_ledger" / "uploads.sqlite")
    zones = LakePaths.from_root(tmp_path / "lake")
    src = write(tmp_path, "orders.CSV", (SAMPLES / "orders_2026-11-02.csv.gz").read_bytes())
    r = upload_file(src, orders, ledger, zones, now=NOW, original_name="../orders.CSV")
    assert r.status == "ACCEPTED" and r.reason_code is None
    assert (r.original_name, r.stored_name, r.ingest_date) == ("../orders.CSV", "orders.csv.gz",
                                                                "2026-11-22")
    landed = tmp_path / "lake" / "raw" / "orders" / "ingest_date=2026-11-22" / r.upload_id / \
        "orders.csv.gz"
    assert landed.read_bytes() == src.read_bytes()
    assert r.location == f"file://{landed}"
    assert r.upload_id.startswith("u20261122-")
    assert [h.to_status for h in ledger.history(r.upload_id)] == ["RECEIVED", "ACCEPTED"]


def test_rejected_files_are_kept_beside_their_reason(tmp_path, orders) -> None:
    ledger = SqliteLedger(tmp_path / "lake" / "_ledger" / "uploads.sqlite")
    zones = LakePaths.from_root(tmp_path / "lake")
    src = write(tmp_path, "report.pdf.csv", b"%PDF-1.4 not a csv")
    r = upload_file(src, orders, ledger, zones, now=NOW)
    folder = tmp_path / "lake" / "rejected" / "orders" / "ingest_date=2026-11-22" / r.upload_id
    assert (r.status, r.reason_code) == ("REJECTED", "file.format")
    assert (folder / "report.pdf.csv").read_bytes() == src.read_bytes()
    reason = json.loads((folder / "report.pdf.csv.reason.json").read_text())
    assert reason["reason_code"] == "file.format"
    assert reason["reason"] == r.reason
    assert reason["original_name"] == "report.pdf.csv"
    assert not (tmp_path / "lake" / "raw").exists()


def test_same_content_as_an_accepted_upload_is_a_duplicate(tmp_path, orders) -> None:
    ledger = SqliteLedger(tmp_path / "lake" / "_ledger" / "uploads.sqlite")
    zones = LakePaths.from_root(tmp_path / "lake")
    first = upload_file(SAMPLES / "orders_2026-11-01.csv", orders, ledger, zones, now=NOW)
    copy = write(tmp_path, "renamed.csv", (SAMPLES / "orders_2026-11-01.csv").read_bytes())
    second = upload_file(copy, orders, ledger, zones, now=NOW)
    assert (second.status, second.reason_code) == ("REJECTED", "file.duplicate")
    assert second.reason == (
        f"renamed.csv: same content (SHA-256 894ce2bbb610...) as upload {first.upload_id} "
        f"('orders_2026-11-01.csv', received {first.received_at}, status ACCEPTED); to load it "
        f"again run: lake reprocess {first.upload_id}")
    assert second.sha256 == first.sha256


def _upload_many(lake: str, files: list[str], barrier, out) -> None:  # child process
    contract = load_contract("orders", 1)
    ledger = SqliteLedger(Path(lake) / "_ledger" / "uploads.sqlite")
    zones = LakePaths.from_root(Path(lake))
    barrier.wait()
    for f in files:
        r = upload_file(Path(f), contract, ledger, zones)
        out.put((Path(f).name, r.status, r.reason_code))


def test_two_concurrent_uploaders(tmp_path) -> None:
    """Both upload the same shared file and their own files at the same moment: every upload
    is recorded, the shared content is accepted exactly once."""
    lake = tmp_path / "lake"
    shared = write(tmp_path, "shared.csv", HEADER + ROW)
    own = {w: [str(write(tmp_path, f"w{w}_{i}.csv", HEADER + ROW.replace("O-1", f"O-{w}{i}")))
               for i in range(5)] for w in (1, 2)}
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_upload_many,
                         args=(str(lake), [str(shared), *own[w]], barrier, out)) for w in (1, 2)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in range(12)]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    shared_results = sorted((s, c) for name, s, c in results if name == "shared.csv")
    assert shared_results == [("ACCEPTED", None), ("REJECTED", "file.duplicate")]
    assert sorted(s for name, s, _ in results if name != "shared.csv") == ["ACCEPTED"] * 10
    ledger = SqliteLedger(lake / "_ledger" / "uploads.sqlite")
    assert len(ledger.find("orders")) == 12
    raw_files = sorted(p.name for p in (lake / "raw").rglob("*.csv"))
    assert raw_files.count("shared.csv") == 1 and len(raw_files) == 11
