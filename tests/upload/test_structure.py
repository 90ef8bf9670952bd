"""The whole-file structure check at upload: every record is read, not a sample; memory
stays bounded whatever the file's size; what it announces is what the job will do."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from lib.contracts.contract import load_contract
from lib.lake.paths import LakePaths
from lib.ledger.sqlite import open_ledger
from lib.tools.cli import main
from lib.upload.checks import UploadRejected, inspect_file
from lib.upload.landing import upload_file
from tests.helpers import REPO

HEADER = "order_id,customer_id,product_sku,quantity,unit_price,currency,order_ts\n"


def row(i: int) -> str:
    return f"O-{i},C-{i},SKU-{i % 100:03d},1,2.00,USD,2026-11-01T00:00:00Z\n"


@pytest.fixture(scope="module")
def orders():
    return load_contract("orders", 1)


@pytest.fixture(scope="module")
def customers():
    return load_contract("customers", 1)


def rejected(path: Path, contract) -> UploadRejected:
    with pytest.raises(UploadRejected) as exc:
        inspect_file(path, contract)
    return exc.value


def test_a_quote_never_closed_deep_in_a_large_file_is_refused_with_its_line(tmp_path,
                                                                          orders) -> None:
    """The quote opens at row 150,001 and the 49,999 rows after it would be one field."""
    rows = [row(i) for i in range(1, 200_001)]
    rows[150_000] = rows[150_000].replace(",C-150001,", ',"C-150001,')
    f = tmp_path / "big.csv"
    f.write_text(HEADER + "".join(rows))
    exc = rejected(f, orders)
    assert (exc.code, exc.message) == (
        "file.format", "big.csv: a quoted field in the record starting at line 150002 is never "
        "closed; every field that opens with a quote (\") must end with one (a quote inside it "
        "is written twice: \"\")")


def test_a_quote_never_closed_in_the_last_rows_is_refused(tmp_path, orders) -> None:
    f = tmp_path / "tail.csv"
    f.write_text(HEADER + row(1) + 'O-2,"C-2,SKU-002,1,2.00,USD,2026-11-01T00:00:00Z\n' + row(3))
    exc = rejected(f, orders)
    assert (exc.code, exc.message) == (
        "file.format", "tail.csv: a quoted field in the record starting at line 3 is never "
        "closed; every field that opens with a quote (\") must end with one (a quote inside it "
        "is written twice: \"\")")


@pytest.mark.parametrize("body", [
    HEADER.replace("\n", "\r") + row(1).replace("\n", "\r"),  # classic Mac line ends
    HEADER + "O-1,C-1,SKU\r1,1,2.00,USD,2026-11-01T00:00:00Z\n",  # a lone \r in a value
])
def test_a_carriage_return_outside_quotes_not_ending_a_line_is_refused_in_words(
        tmp_path, orders, body) -> None:
    """Not a crash of the check (Python's csv reader raised through it): a reason."""
    f = tmp_path / "mac.csv"
    f.write_bytes(body.encode())
    exc = rejected(f, orders)
    assert exc.code == "file.format"
    assert exc.message.startswith("mac.csv: the record starting at line ")
    assert "holds a carriage return (\\r) that does not end a line with \\n" in exc.message
    assert main(["--lake-root", str(tmp_path / "lk"), "upload", "--dataset", "orders",
                 str(f)]) == 1
    assert [(r.status, r.reason_code) for r in open_ledger(tmp_path / "lk").find("orders")] \
        == [("REJECTED", "file.format")]


def test_a_lone_carriage_return_line_is_a_record_where_spark_reads_the_file_whole(
        tmp_path, orders) -> None:
    """In a file whose lines end with \\n, a line holding only \\r is a (malformed) record for
    Spark's multi-line read, and no record for its line reader (nor in a \\r\\n file)."""
    quoted = 'O-1,C-1,SKU-1,1,2.00,USD,"2026-11-01\nT00:00:00Z"\n'
    cases = [(HEADER + quoted + "\r\n" + row(2), True, 3),
             (HEADER + row(1) + "\r\n" + row(2), False, 2),
             ((HEADER + quoted + "\n" + row(2)).replace("\n", "\r\n"), True, 2)]
    for i, (body, multiline, records) in enumerate(cases):
        f = tmp_path / f"cr{i}.csv"
        f.write_bytes(body.encode())
        check = inspect_file(f, orders)
        assert (check.multiline, check.records) == (multiline, records), i


def test_quotes_inside_an_unquoted_field_are_data_as_spark_reads_them(tmp_path, orders) -> None:
    f = tmp_path / "inch.csv"
    f.write_text(HEADER + 'O-1,C-1,"SKU ""1""",1,2.00,USD,2026-11-01T00:00:00Z\n'
                 + 'O-2,C-2 5" screen,SKU-2,1,2.00,USD,2026-11-01T00:00:00Z\n')
    check = inspect_file(f, orders)
    assert (check.records, check.multiline, check.warnings) == (2, False, [])


def test_every_record_is_counted_and_the_longest_and_multiline_ones_are_known(tmp_path,
                                                                             orders) -> None:
    f = tmp_path / "m.csv"
    f.write_text("\ufeff" + HEADER + row(1) + "\n" + 'O-2,"C-2\nsecond line",SKU-2,1,2.00,USD,'
                 "2026-11-01T00:00:00Z\r\n" + "  \n" + "O-4,C-4\n")
    check = inspect_file(f, orders)
    assert (check.records, check.longest_record_bytes, check.longest_record_line,
            check.multiline) == (4, 61, 4, True)
    assert check.warnings == [
        "2 of the 4 rows have another number of fields than the header (7), the first at line "
        "6; they will be quarantined as row.malformed"]


def test_the_ledger_keeps_the_structure_for_the_job(tmp_path, orders) -> None:
    lake = tmp_path / "lake"
    f = tmp_path / "o.csv"
    f.write_text(HEADER + row(1) + 'O-2,"C\n2",SKU-2,1,2.00,USD,2026-11-01T00:00:00Z\n')
    r = upload_file(f, orders, open_ledger(lake), LakePaths.from_root(lake))
    got = open_ledger(lake).get(r.upload_id)
    assert (got.status, got.record_count, got.longest_record_bytes, got.multiline) == \
        ("ACCEPTED", 2, 48, True)


def test_a_record_over_the_contracts_limit_is_refused_with_its_line(tmp_path, orders) -> None:
    f = tmp_path / "long.csv"
    f.write_text(HEADER + row(1) + "O-2,C-2," + "x" * (1 << 20) + ",1,2.00,USD,2026-11-01T00:00:00Z\n")
    exc = rejected(f, orders)
    assert (exc.code, exc.message) == (
        "file.record_too_large", "long.csv: the record starting at line 3 is longer than "
        "orders/1's limit of 1048576 bytes per record (max_record_bytes); split the value or "
        "raise the contract's max_record_bytes")


def test_a_long_multiline_record_whose_quote_closes_is_too_large_not_unclosed(tmp_path,
                                                                            orders) -> None:
    f = tmp_path / "long.csv"
    value = "\n".join(["y" * 1000] * 1100)  # 1.1 MB across 1,100 lines, quoted and closed
    f.write_text(HEADER + f'O-1,"{value}",SKU-1,1,2.00,USD,2026-11-01T00:00:00Z\n' + row(2))
    assert rejected(f, orders).code == "file.record_too_large"


def test_a_json_line_over_the_limit_is_refused(tmp_path, customers) -> None:
    f = tmp_path / "c.jsonl"
    f.write_text('{"customer_id": "C-1"}\n{"customer_id": "' + "z" * (1 << 20) + '"}\n')
    exc = rejected(f, customers)
    assert (exc.code, exc.message) == (
        "file.record_too_large", "c.jsonl: the record starting at line 2 is longer than "
        "customers/1's limit of 1048576 bytes per record (max_record_bytes); split the value "
        "or raise the contract's max_record_bytes")


GOOD = {"customer_id": "C-1", "full_name": "A", "email": "a@b.co", "country": "US"}


def test_json_lines_the_job_quarantines_are_counted_never_a_crash(tmp_path, customers) -> None:
    deep = "[" * 5000 + "]" * 5000
    lines = [json.dumps(GOOD), '{"customer_id": ' + deep + ', "full_name": "A"}',
             '{"customer_id": NaN, "full_name": "A"}', '{"customer_id": "C-4", "full_name": "A", '
             '"customer_id": "C-5", "email": "e@b.co", "country": "US"}',
             '{"customer_id": 1e400, "full_name": "B", "email": "b@b.co", "country": "US"}',
             "\ufeff" + json.dumps(GOOD), "   ", "[1, 2]"]
    f = tmp_path / "c.jsonl"
    f.write_text("\n".join(lines) + "\n")
    check = inspect_file(f, customers)
    assert check.records == 7  # the blank line holds no record
    assert check.warnings == [
        "5 of the 7 lines are not one JSON object with unique keys (line 2 is nested deeper "
        "than 1000 levels); they will be quarantined as row.malformed",
        "1 of the 7 lines hold a number beyond the range of a double in a contract field "
        "(line 5, key 'customer_id'); they will be quarantined as <field>.type"]


@pytest.mark.parametrize(("line", "why"), [
    ('{"customer_id": Infinity}', "is not valid JSON (Infinity is not a JSON value)"),
    ('{"a": 1, "a": 2}', "repeats the key 'a'"),
    ('{"a": 1', "is not valid JSON (Expecting ',' delimiter at column 8)"),
])
def test_each_kind_of_bad_json_line_is_named(tmp_path, customers, line, why) -> None:
    f = tmp_path / "c.jsonl"
    f.write_text(json.dumps(GOOD) + "\n" + line + "\n")
    assert inspect_file(f, customers).warnings == [
        f"1 of the 2 lines are not one JSON object with unique keys (line 2 {why}); they will "
        "be quarantined as row.malformed"]


def test_an_executable_is_binary_content_not_an_encoding_problem(tmp_path, orders) -> None:
    f = tmp_path / "tool.csv"
    f.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4)
    exc = rejected(f, orders)
    assert (exc.code, exc.message) == (
        "file.format", "tool.csv: the file is an executable (ELF), not text; upload a CSV file, "
        "optionally gzip-compressed")
    g = tmp_path / "blob.csv"
    g.write_bytes(HEADER.encode() + b"\xff\xfe\x00\x00 text")
    exc = rejected(g, orders)
    assert (exc.code, exc.message) == (
        "file.format", "blob.csv: binary content (a NUL byte at byte offset 73, line 2); upload "
        "a CSV file")


def test_thousands_of_extra_columns_give_a_short_warning(tmp_path, orders) -> None:
    extra = [f"x{i}" for i in range(5000)]
    f = tmp_path / "wide.csv"
    f.write_text(HEADER.rstrip("\n") + "," + ",".join(extra) + "\n"
                 + row(1).rstrip("\n") + "," * 5000 + "\n")
    [warning] = inspect_file(f, orders).warnings
    assert warning == ("extra column(s) dropped: x0, x1, x2, x3, x4, x5, x6, x7, x8, x9 ... and "
                       "4,990 more")


def test_uploading_a_folder_names_it(tmp_path, capsys) -> None:
    """Refused before anything is recorded (a folder is the user's slip, not an upload);
    lib.upload.landing still rejects one that reaches it, as file.not_found."""
    assert main(["--lake-root", str(tmp_path / "lake"), "upload", "--dataset", "orders",
                 str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"lake: error: not a file: {tmp_path} (a folder); nothing was uploaded or recorded "
        "(give the paths of the files to upload)\n")


def test_a_file_name_with_a_line_break_keeps_the_status_table_one_line_per_upload(
        tmp_path, capsys, orders) -> None:
    f = tmp_path / "two\nlines.csv"
    f.write_text(HEADER + row(1))
    lake = tmp_path / "lake"
    assert main(["--lake-root", str(lake), "upload", "--dataset", "orders", str(f)]) == 0
    assert "two\\nlines.csv" in capsys.readouterr().out
    assert main(["--lake-root", str(lake), "status"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert len(table) == 2 and "two\\nlines.csv" in table[1]


def test_the_check_of_a_gigabyte_class_file_streams_in_bounded_memory(tmp_path) -> None:
    """900 MB of CSV (gzip): the checking process's peak RSS stays far below the file."""
    f = tmp_path / "huge.csv.gz"
    block = "".join(row(i) for i in range(20_000)).encode()
    deflate = zlib.compressobj(1, zlib.DEFLATED, 31)
    size = 0
    with f.open("wb") as out:
        out.write(deflate.compress(HEADER.encode()))
        while size < 900_000_000:
            out.write(deflate.compress(block))
            size += len(block)
        out.write(deflate.flush())
    # VmHWM: the process's peak resident memory since exec (ru_maxrss keeps the forking
    # parent's peak across exec on Linux)
    code = ("import sys\nfrom pathlib import Path\n"
            "from lib.contracts.contract import load_contract\n"
            "from lib.upload.checks import inspect_file\n"
            "c = inspect_file(Path(sys.argv[1]), load_contract('orders', 1))\n"
            "peak = next(ln.split()[1] for ln in open('/proc/self/status') "
            "if ln.startswith('VmHWM:'))\n"
            "print(c.records, c.compressed, peak)\n")
    out = subprocess.run([sys.executable, "-c", code, str(f)], cwd=REPO, capture_output=True,
                         text=True, timeout=600, check=True)
    records, compressed, peak_kib = out.stdout.split()
    assert (int(records), compressed) == (size // len(block) * 20_000, "True")
    assert int(peak_kib) < 100 * 1024, f"peak RSS {int(peak_kib) // 1024} MiB for a 900 MB file"
    with gzip.open(f) as fh:
        assert fh.read(len(HEADER)).decode() == HEADER
