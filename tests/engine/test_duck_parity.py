"""The DuckDB engine against the Spark transforms, row for row (the small part of the
differential harness, lib/tools/parity.py; `make parity` runs the large one)."""

from __future__ import annotations

import random
import sys
import unicodedata
from pathlib import Path

import duckdb
import pytest
import yaml
from pyspark.sql import types as T

from lib.contracts.contract import load_contract, parse_contract
from lib.engine.duck import rules as duck_rules
from lib.engine.duck.csv_line import NotReproduced, split_line
from lib.engine.duck.csv_records import records
from lib.engine.duck.derived import derived_sql, not_proven
from lib.engine.duck.read import block_lines, blocks, scan_lines
from lib.engine.rules import clean_string
from lib.sources.csv_reader import LINE_OPTIONS, SESSION_CONF
from lib.tools.parity import compare_files, fuzz_csv, fuzz_multiline_csv
from tests.helpers import REPO, SAMPLES


@pytest.mark.parametrize("version", [1, 2])
def test_every_sample_is_identical_the_multiline_one_included(spark, version) -> None:
    files = [p for p in sorted(SAMPLES.glob("*.csv*")) if "legacy" not in p.name]
    assert (SAMPLES / "orders_2026-11-01.csv") in files  # its quoted fields hold line breaks
    result = compare_files(spark, load_contract("orders", version), files)
    assert result.differences == [], result.describe()
    assert result.rows["clean"] > 0 and result.rows["quarantine"] > 0
    assert result.not_reproduced == []


@pytest.mark.parametrize(("seed", "separator"), [(31, b"\n"), (34, b"\r\n")])
def test_a_seeded_multiline_corpus_is_identical(spark, tmp_path: Path, seed: int,
                                                separator: bytes) -> None:
    """Quoted line breaks of every kind, lines of blanks, stray \\r; a \\n and a \\r\\n file."""
    path = tmp_path / f"multi{seed}.csv"
    fuzz_multiline_csv(path, 400, seed)
    header = path.read_bytes().split(b"\n", 1)[0] + b"\n"
    assert header.endswith(separator) and (separator == b"\r\n") == header.endswith(b"\r\n")
    for version in (1, 2):
        result = compare_files(spark, load_contract("orders", version), [path])
        assert result.differences == [], result.describe()
        assert result.not_reproduced == []
        assert result.rows["clean"] > 50 and result.rows["quarantine"] > 200


# What Spark's multi-line read gave for each text (run on Spark 3.5.4; see csv_records).
MULTILINE = [
    ('h\n1,"x\ny",3\n4,5,6\n', [("1,\"x\ny\",3", "1,\"x\ny\",3"), ("4,5,6", "4,5,6")]),
    ('h\r\n1,"x\r\ny",3,4\r\n', [("1,\"x\ny\",3,4", "1,\"x\r\ny\",3,4")]),
    ('h\r\n1,"x\ny",3\r\n', [("1,\"x\ny\",3", "1,\"x\ny\",3")]),  # a lone \n quoted
    ('h\n1,"x\r\ny",3\n', [("1,\"x\r\ny\",3", "1,\"x\r\ny\",3")]),  # \r is a character
    ("h\n\n1,2\n  \n\r\n", [("1,2", "1,2"), ("  ", "  "), ("\r", "")]),  # stripLineEnd
    ('h\n1,"a\nb"c,3\n', [("1,\"a\nb\"c,3", "1,\"a\nb\"c,3")]),  # runs on to the comma
    ("h\r1,2\r", [("1,2", "1,2\r")]),  # a \r separator stays on the raw text
    ("h\n1,2\x0c", [("1,2\x0c", "1,2")]),
]


@pytest.mark.parametrize(("text", "expected"), MULTILINE)
def test_multiline_records_are_cut_as_spark_cuts_them(text: str, expected) -> None:
    assert list(records(text))[1:] == expected


@pytest.mark.parametrize(("text", "why"), [
    ('h\n1,"never closed\n', "a quoted field is never closed"),
    ('h\n1,"x" y,2\n', "closing quote is followed by blanks and then more text"),
    ("h\r\n1,2\n3\r\n", "a line-break character outside quotes"),
    ("h\r\n1,2\r3\r\n", "a line-break character outside quotes"),
])
def test_multiline_records_spark_reads_by_its_buffer_are_refused(text: str, why: str) -> None:
    with pytest.raises(NotReproduced, match=why):
        list(records(text))


@pytest.mark.parametrize("seed", [11, 12])
def test_a_seeded_adversarial_corpus_is_identical(spark, tmp_path: Path, seed: int) -> None:
    path = tmp_path / f"fuzz{seed}.csv"
    fuzz_csv(path, 1500, seed)
    for version in (1, 2):
        result = compare_files(spark, load_contract("orders", version), [path])
        assert result.differences == [], result.describe()
        assert result.rows["clean"] > 500 and result.rows["quarantine"] > 300


def test_the_harness_reports_the_first_differing_row(spark, tmp_path: Path, monkeypatch) -> None:
    """Not a vacuous comparison: the DuckDB engine without the long lower-case mapping
    differs from Spark on 'İ' (its e-mail hashes differently) and says where."""
    path = tmp_path / "dotted.csv"
    path.write_text("order_id,customer_id,customer_email,product_sku,quantity,unit_price,currency,"
                    "order_ts\nO-1,C-1,İ@x.io,sku-1,1,1.00,usd,2026-11-01T10:00:00Z\n",
                    encoding="utf-8")
    monkeypatch.setattr(duck_rules, "LOWER_SPECIAL", {})
    result = compare_files(spark, load_contract("orders", 1), [path])
    assert [d.what for d in result.differences] == ["clean rows"]
    described = result.describe()
    assert described.startswith("1 difference(s); first in clean rows:\n  spark:  ('O-1', 'C-1', '")
    spark_hash, duck_hash = (d[2] for d in (result.differences[0].spark,
                                            result.differences[0].duckdb))
    assert spark_hash != duck_hash and spark_hash in described and duck_hash in described


def test_line_splitting_matches_spark_on_random_quote_soup(spark, tmp_path: Path) -> None:
    rng = random.Random(7)
    alphabet = ['"', '"', ",", "a", " ", "b", "\t", '""', "\x0b", "\x1f"]
    lines = []
    while len(lines) < 3000:
        line = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 9)))
        if line.strip("".join(map(chr, range(1, 33)))):  # a blank line holds no record
            lines.append(line)
    path = tmp_path / "soup.csv"
    path.write_text("a,b,c\n" + "\n".join(lines) + "\n", encoding="utf-8")
    schema = T.StructType([T.StructField(n, T.StringType()) for n in ["a", "b", "c", "_raw"]])
    for k, v in SESSION_CONF.items():
        spark.conf.set(k, v)
    rows = spark.read.schema(schema).options(**{**LINE_OPTIONS, "columnNameOfCorruptRecord": "_raw"}) \
        .csv(str(path)).collect()
    assert len(rows) == len(lines)
    compared = refused = 0
    for line, row in zip(lines, rows, strict=True):
        try:
            fields = [f if f != "" else None for f in split_line(line)]
        except NotReproduced:
            refused += 1
            continue
        compared += 1
        mine = (*(fields + [None] * 3)[:3], line if len(fields) != 3 else None)
        assert mine == tuple(row), line
    assert compared > 2500 and refused > 0


def test_a_line_whose_closing_quote_is_followed_by_blanks_and_text_is_not_guessed() -> None:
    with pytest.raises(NotReproduced, match="closing quote is followed by blanks"):
        split_line('x,"a" b,c')
    assert split_line('x,"a"   ,c') == ["x", "a", "c"]
    assert split_line('"a""b"x,c') == ['"a"b"x', "c"]
    assert split_line('"abc,d') == ["abc,d"]
    assert split_line('x,y,"') == ["x", "y", '"']


def test_case_mapping_matches_java_on_every_character_with_a_case(spark) -> None:
    chars = [chr(c) for c in range(sys.maxunicode + 1)
             if not 0xD800 <= c <= 0xDFFF and unicodedata.category(chr(c)) != "Cn"
             and (chr(c).upper() != chr(c) or chr(c).lower() != chr(c))]
    values = [f"{c}x{c}" for c in chars]  # a non-ASCII value, the character at both ends
    df = spark.createDataFrame([(v,) for v in values], "v string")
    java = df.select(clean_string(df.v, ("upper",)).alias("u"),
                     clean_string(df.v, ("lower",)).alias("l")).collect()
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT * FROM (SELECT unnest($1) AS v0)", [values])
    for norm, column in (("upper", "u"), ("lower", "l")):
        steps = duck_rules.clean_steps((norm,))
        query, prev = "SELECT * FROM t", "v0"
        for i, step in enumerate(steps):
            step = step.replace("{a}", duck_rules.ascii_flag("v0"))
            query = f"SELECT *, {step.replace('{v}', prev)} AS v{i + 1} FROM ({query})"
            prev = f"v{i + 1}"
        got = [r[0] for r in con.execute(f"SELECT {prev} FROM ({query})").fetchall()]
        want = [r[column] for r in java]
        diff = [(hex(ord(c)), w, g) for c, w, g in zip(chars, want, got, strict=True) if w != g]
        assert diff == [], f"{norm}: {len(diff)} differ, first {diff[:5]}"


def test_duckdb_maps_the_case_of_no_character_python_leaves_alone() -> None:
    """The test above compares the characters Python's Unicode gives a case; DuckDB's may be
    newer: it must give no other character one."""
    chars = [chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]
    con = duckdb.connect()
    got = con.execute("SELECT c FROM (SELECT unnest($1) AS c) "
                      "WHERE upper(c) <> c OR lower(c) <> c", [chars]).fetchall()
    extra = [hex(ord(c)) for (c,) in got
             if c.upper() == c and c.lower() == c and c not in duck_rules.JAVA_UNCASED]
    assert extra == []


def test_blocks_end_where_lines_end() -> None:
    import io
    text = b"h\r\na\rb\n\nc\r\n"
    for size in range(1, len(text) + 1):
        got = "\n".join(blocks(io.BytesIO(text), size)).replace("\r\n", "\n").replace("\r", "\n")
        assert got.split("\n") == ["h", "a", "b", "", "c"], size


@pytest.mark.parametrize(("content", "scanned"), [
    (b"h\na,b\nc,d\n", True),
    (b"h\na,b\nc,d", True),  # no final line end
    (b"\xef\xbb\xbfh\na\n", True),  # the BOM the scanner drops is counted
    (b"\xef\xbb\xbf\nh\na\n", False),  # a BOM on a line of its own is Hadoop's header
    (b"h\n\na\n \t\nb\n\n", True),  # blank lines take no ordinal
    (b"\n\n  \nh\na\n", True),  # the first line that is not blank is the header
    (b"h\n\x00a\n!x\n\x1fy\n", True),  # lines starting below '!' that are not blank
    (b'h\n"a,b\n"c"\n"unterminated\n#x\n', True),  # no quoting, no comments
    (b"h\r\na\r\nb\r\n", False),  # Hadoop's line ends are not the scanner's
    (b"h\na\rb\nc\n", False),
    (b"h\na\x01b\nc\n", False),  # the scanner's delimiter: it would split the line
])
def test_the_scanned_lines_are_the_block_reader_lines(tmp_path: Path, content: bytes,
                                                      scanned: bool) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(content)
    con = duckdb.connect()
    by_scan = scan_lines(con, "s", path)
    assert (by_scan is not None) == scanned
    expected = con.execute(f"SELECT ordinal, line FROM ({block_lines(con, 'b', path)}) "
                           "ORDER BY ordinal").fetchall()
    assert [line for _, line in expected] == [
        ln for ln in content.decode().replace("\r\n", "\n").replace("\r", "\n").split("\n")
        if ln.strip("".join(map(chr, range(1, 33))))]
    if by_scan is not None:  # the same lines but the header's BOM, which holds no record
        assert con.execute(f"SELECT ordinal, line FROM ({by_scan}) ORDER BY ordinal").fetchall() == [
            (n, line.removeprefix("\ufeff") if n == 0 else line) for n, line in expected]


def test_a_big_file_is_scanned_in_file_order(tmp_path: Path) -> None:
    """The scanner reads a file of many buffers in parallel: the ordinals are still the
    lines' places in the file."""
    path = tmp_path / "big.csv"
    path.write_text("h\n" + "".join(f"{i},{'x' * (i % 50)}\n" for i in range(1, 1_500_000)))
    con = duckdb.connect(config={"threads": 4})
    query = scan_lines(con, "s", path)
    assert query is not None
    assert con.execute(f"SELECT count(*), count(*) FILTER (WHERE ordinal > 0 AND "
                       f"split_part(line, ',', 1) <> CAST(ordinal AS VARCHAR)) "
                       f"FROM ({query})").fetchone() == (1_500_000, 0)


def test_derived_division_is_exact_decimal_arithmetic() -> None:
    sql = derived_sql(load_contract("orders", 2))["total_amount"][0]
    assert "* 0.01" in sql and "/" not in sql
    assert 'CAST("unit_price" AS DECIMAL(38, 2))' in sql


@pytest.mark.parametrize(("expression", "why"), [
    ("date_format(order_ts, 'yyyy-MM')", "date_format is proven in the DuckDB engine only on "
     "a date column of the contract, not on 'order_ts'"),
    ("upper(currency)", "function 'upper' is not proven to give the same result in the "
     "DuckDB engine (proven: coalesce, round, to_date, date_format on a date)"),
    ("quantity / 3", "a division by '3': DuckDB divides decimals in floating point"),
    ("quantity / (quantity + 1)", "a division by an expression in parentheses"),
])
def test_a_derived_expression_not_proven_on_both_engines_is_refused(expression, why) -> None:
    data = yaml.safe_load((REPO / "lib" / "contracts" / "orders" / "v1.yaml").read_text())
    data["derived"] = [{"name": "d", "type": "string", "expression": expression},
                       *[d for d in data["derived"] if d["name"] == "order_date"]]
    contract = parse_contract(data, "x.yaml")
    with pytest.raises(NotReproduced) as exc:
        derived_sql(contract)
    assert str(exc.value).startswith(f"x.yaml: derived[0].expression {expression!r}: {why}")
    assert str(exc.value).endswith("; run it with --engine spark")
    assert not_proven("round(quantity * unit_price * (100 - coalesce(discount_pct, 0)) / 100, 2)") \
        is None


def test_the_longer_case_mappings_are_every_character_that_has_one() -> None:
    """The block search of duck_rules finds exactly what mapping each character alone
    finds (it relies on a case mapping never shortening a character)."""
    every = range(sys.maxunicode + 1)
    upper = {chr(c): chr(c).upper() for c in every
             if not 0xD800 <= c <= 0xDFFF and len(chr(c).upper()) > 1}
    lower = {chr(c): chr(c).lower() for c in every
             if not 0xD800 <= c <= 0xDFFF and len(chr(c).lower()) > 1}
    assert (upper, lower) == (duck_rules.UPPER_SPECIAL, duck_rules.LOWER_SPECIAL)
    assert duck_rules.UPPER_SPECIAL["ß"] == "SS" and duck_rules.LOWER_SPECIAL == {"İ": "i̇"}
