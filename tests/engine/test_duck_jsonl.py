"""The DuckDB engine's JSON Lines reader against Spark's (lib/engine/duck/jsonl_records.py,
lib/engine/duck/read_jsonl.py): the specification table Spark was observed to meet, numbers
as Java writes them, whole files of adversarial lines, and what is refused."""

from __future__ import annotations

import random
import struct
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pytest

from lib.contracts.contract import load_contract
from lib.contracts.header import HeaderPlan
from lib.engine.duck import engine as duck
from lib.engine.duck.csv_line import NotReproduced
from lib.engine.duck.enforce import fill
from lib.engine.duck.jsonl_records import compact, java_double, parse, records
from lib.engine.duck.read_jsonl import read_jsonl
from lib.tools.parity import compare_files, fuzz_jsonl
from tests.helpers import CUSTOMERS, spark_read_jsonl
from tests.sources.test_jsonl import LINES, TOKENS

NAMES = ["customer_id", "full_name"]


def _one(line: str) -> tuple[str | None, bool, bool]:
    rec = parse(line, NAMES)
    assert rec is not None
    return rec.values[0], rec.nested == "customer_id", rec.malformed is not None


# The rows of Spark's table (tests/sources/test_jsonl.py) this reader refuses instead:
# JDK 17 writes 1.0E23 in 16 digits, 5e-324 below the range checked; single quotes.
OUTSIDE = r"outside \[1e-300, 1e16\)"
REFUSED_TOKENS = {"1.0E23": OUTSIDE, "1e22": OUTSIDE, "5e-324": OUTSIDE, "'sq'": "single-quoted"}


@pytest.mark.parametrize(("value", "text", "nested", "malformed"), TOKENS)
def test_each_kind_of_json_value_reads_as_spark_reads_it(value, text, nested, malformed) -> None:
    line = f'{{"customer_id": {value}, "full_name": "A"}}'
    if value in REFUSED_TOKENS:
        with pytest.raises(NotReproduced, match=REFUSED_TOKENS[value]):
            parse(line, NAMES)
        return
    assert _one(line) == (text, nested, malformed)


@pytest.mark.parametrize(("line", "text", "malformed"), LINES)
def test_each_kind_of_line_reads_as_spark_reads_it(line, text, malformed) -> None:
    assert _one(line) == (text, False, malformed)


# More of what Spark 3.5.4 gave (observed on the same reader, line by line).
OBSERVED = [
    ("\t", (None, False, False)),  # spaces and tabs: a record of nulls, not malformed
    ("{}", (None, False, False)),
    ("\x01", (None, False, True)),
    ("\x0b{}", (None, False, True)),
    ("\ufeff{}", (None, False, True)),  # a BOM after the first line
    ('[{"customer_id": "x"}]', (None, False, True)),
    ('{"customer_id": "x"}{"full_name": "y"}', ("x", False, False)),
    ('{"customer_id": "x"} {', ("x", False, False)),
    ('{"customer_id": "x"', (None, False, True)),
    ('{"customer_id": "x", "customer\\u005fid": "y"}', (None, False, True)),
    ('{"customer\\u005fid": "esc"}', ("esc", False, False)),
    ('{"a": 1, "a": 2, "customer_id": "x"}', (None, False, True)),  # any key repeated
    ('{"customer_id": {"full_name": 1}, "full_name": 2}', ('{"full_name":1}', True, False)),
    ('{"customer_id": {"x": 1, "x": 2}}', ('{"x":1,"x":2}', True, False)),
    ('{"customer_id": "x", "o": NaN}', (None, False, True)),
    ('{"customer_id": "x", "o": [1,}', (None, False, True)),
    ('{"customer_id": "x", "o": 1e400}', ("x", False, False)),
    ('{"customer_id": "\\"NaN\\""}', ('"NaN"', True, False)),  # a string that reads as one
    ('{"customer_id": "\\u2028\\ud83d"}', ("\u2028?", False, False)),
    ('{"customer_id": ["\\u0001\\u001f\\b\\f\\t\\u007f\\u2028\\"\\\\/", "\\ud83d\\ude00"]}',
     ('["\\u0001\\u001F\\b\\f\\t\x7f\u2028\\"\\\\/","\\uD83D\\uDE00"]', True, False)),
    ('{"customer_id": ["\\ud800", "\U0001f600"]}', ('["\\uD800","\\uD83D\\uDE00"]', True, False)),
    ('{"customer_id": [1e400, -1e400, 1e-400, -0.0, 1E2, 12345678901234567890, -0]}',
     ('["Infinity","-Infinity",0.0,-0.0,100.0,12345678901234567890,0]', True, False)),
    ('{"customer_id": 1.0e7}', ("1.0E7", False, False)),
    ('{"customer_id": 9999999.999}', ("9999999.999", False, False)),
    ('{"customer_id": 9.99e-4}', ("9.99E-4", False, False)),
    ('{"customer_id": 123.456e-5}', ("0.00123456", False, False)),
    ('{"customer_id": -' + "1" * 1000 + "}", ("-" + "1" * 1000, False, False)),
    ('{"customer_id": ' + "1" * 1001 + "}", (None, False, True)),
    # A float's digits (integer, fraction, exponent) count together: at most 1000.
    ('{"customer_id": 1.' + "1" * 999 + "}", ("1.1111111111111112", False, False)),
    ('{"customer_id": 1.' + "1" * 1000 + "}", (None, False, True)),
    ('{"customer_id": ' + "1" * 999 + "e1}", ('"Infinity"', True, False)),
    ('{"customer_id": ' + "1" * 1000 + "e1}", (None, False, True)),
    ('{"customer_id": 1e' + "0" * 998 + "1}", ("10.0", False, False)),
    # Nesting: 1000 levels with the root object, not 1001.
    ('{"customer_id": ' + "[" * 999 + "]" * 999 + "}", ("[" * 999 + "]" * 999, True, False)),
    ('{"customer_id": ' + "[" * 1000 + "]" * 1000 + "}", (None, False, True)),
    ('{"o": ' + "[" * 1000 + "]" * 1000 + ', "customer_id": 1}', (None, False, True)),
    ('{"customer_id": "x"} ' + "[" * 2000, ("x", False, False)),  # after the object: ignored
]


@pytest.mark.parametrize(("line", "expected"), OBSERVED)
def test_more_lines_read_as_spark_reads_them(line: str, expected) -> None:
    assert _one(line) == expected


def test_a_line_of_spaces_holds_no_record_and_a_bom_is_removed_from_line_one_only() -> None:
    got = list(records(iter(["\ufeff{\"customer_id\": \"a\"}", "   ", "\ufeff{}", ""]), NAMES))
    assert [(n, r.values[0], r.malformed) for n, r in got] == [(1, "a", None),
                                                               (3, None, "\ufeff{}")]


def test_java_double_writes_what_jdk17_writes() -> None:
    assert [java_double(x) for x in (0.0, -0.0, 1.0, 1e7, 9999999.999, 1e-3, 9.99e-4, 0.1,
                                     1 / 3, 2e-3, 1e-7, 1e15, -12.5, float("inf"))] == [
        "0.0", "-0.0", "1.0", "1.0E7", "9999999.999", "0.001", "9.99E-4", "0.1",
        "0.3333333333333333", "0.002", "1.0E-7", "1.0E15", "-12.5", "Infinity"]
    for x in (1e16, 1e23, 5e-324, 1e-301):
        with pytest.raises(NotReproduced, match=r"outside \[1e-300, 1e16\)"):
            java_double(x)


def test_compact_writes_what_jacksons_generator_writes() -> None:
    rec = parse('{"customer_id": {"k\\n": [true, null, "\\u00e9/\\u0000"], "n": {}}}', NAMES)
    assert rec is not None and rec.values[0] == '{"k\\n":[true,null,"é/\\u0000"],"n":{}}'
    assert compact("\x1f\x7f") == '"\\u001F\x7f"'


def test_floats_read_as_spark_writes_them_on_thousands_of_doubles(spark, tmp_path: Path,
                                                                 contract) -> None:
    """Random doubles in the range the reader takes (random bits and decimal-shaped
    values), through Spark's reader and this one: the same text for every one."""
    rng = random.Random(5)
    values = []
    while len(values) < 4000:
        if rng.random() < 0.5:
            x = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
        else:
            k = rng.randint(1, 17)
            x = float(f"{rng.randint(10 ** (k - 1), 10 ** k - 1)}e{rng.randint(-40, 15) - k + 1}")
        text = rng.choice([repr(x), f"{x:.17e}", f"{x:.6g}"]) if x == x else "nan"
        if text != "nan" and 1e-300 <= abs(float(text)) < 1e16:
            values.append(text)
    path = tmp_path / "floats.jsonl"
    path.write_text("".join(f'{{"customer_id": {v}}}\n' for v in values), encoding="utf-8")
    spark_text = [r["customer_id"] for r in spark_read_jsonl(spark, path, contract)]
    duck_text = [r.values[0] for _, r in records(iter(path.read_text().splitlines()),
                                                 contract.column_names)]
    assert len(spark_text) == len(values)
    assert duck_text == spark_text


@pytest.fixture(scope="module")
def contract():
    return load_contract("customers", 1)


def test_both_samples_are_identical_on_both_engines(spark, contract) -> None:
    files = sorted(CUSTOMERS.glob("*.jsonl*"))
    assert len(files) == 2 and any(f.suffix == ".gz" for f in files)
    result = compare_files(spark, contract, files)
    assert result.differences == [], result.describe()
    assert result.rows["clean"] > 0 and result.rows["quarantine"] > 0
    assert result.not_reproduced == []


@pytest.mark.parametrize("seed", [41, 42])
def test_a_seeded_adversarial_json_lines_corpus_is_identical(spark, tmp_path: Path, contract,
                                                             seed: int) -> None:
    path = tmp_path / f"fuzz{seed}.jsonl"
    fuzz_jsonl(path, 1500, seed)
    result = compare_files(spark, contract, [path])
    assert result.differences == [], result.describe()
    assert result.rows["clean"] > 400 and result.rows["quarantine"] > 400
    # The corpus reaches every kind of outcome, so that identical means something.
    con = duck.connect()
    plan = HeaderPlan(source=str(path), header=contract.column_names,
                      read_names=contract.column_names, matched=contract.column_names,
                      missing_optional=(), extra=())
    outcome = duck.enforce(con, contract, [duck.Input("u", path, str(path), date(2026, 11, 1),
                                                      plan, None)],
                           datetime(2026, 11, 1, tzinfo=UTC))
    codes = {c for row in outcome.counts for c in row["_errors"]}
    assert {"row.malformed", "customer_id.type", "full_name.type", "email.format",
            "signup_date.format", "country.format", "loyalty_tier.enum",
            "full_name.required"} <= codes, codes
    conflicting, duplicates = outcome.repeated["u"]
    assert conflicting > 0 and duplicates > 0
    con.close()


@pytest.mark.parametrize(("line", "why"), [
    ("{'customer_id': 'x'}", "line 2: a single-quoted string or key, which Spark's JSON "
     "reader accepts"),
    ('{"customer_id": 1e16}', r"line 2: a float \(1e\+16\) outside \[1e-300, 1e16\)"),
])
def test_a_file_the_reader_does_not_reproduce_is_refused_naming_the_line(tmp_path, contract,
                                                                         line, why) -> None:
    path = tmp_path / "refused.jsonl"
    path.write_text('{"customer_id": "ok"}\n' + line + "\n", encoding="utf-8")
    con = duckdb.connect()
    with pytest.raises(NotReproduced, match=f"^x.jsonl: the DuckDB engine does not read this "
                                            f"file exactly as the Spark engine does: {why}"):
        read_jsonl(con, "t", 0, path, "x.jsonl", contract)
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 't_split'"
                       ).fetchone() == (0,)


def test_a_placeholder_inside_a_string_literal_is_left_alone() -> None:
    """A regular expression holding ``\\x{a}`` (a line feed) or a default value holding
    ``{v}`` is text, never the step's value or the ASCII flag."""
    step = "regexp_replace(coalesce({v}, '{v}'), '[\\x{a}'']', {a})"
    assert fill(step, v='"c"', a='"f"') == "regexp_replace(coalesce(\"c\", '{v}'), " \
                                           "'[\\x{a}'']', \"f\")"
