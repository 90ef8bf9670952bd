"""The two engines on the same files, row for row: the differential harness.

:func:`compare_files` runs the contract on a list of files with the Spark transforms (one
read partition per file, so ordinals are exact without offsets) and with the DuckDB engine,
and returns the differences: the clean rows with every column, the quarantined rows with
their reason codes, and the counts. ``lake parity`` and ``make parity`` run it on the
corpora; the tests run it on the small ones.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb

from lib.contracts.contract import SOURCE_FILE, UPLOAD_ID, Contract
from lib.contracts.header import HeaderPlan, parse_header_line, plan_header
from lib.engine.duck import engine as duck
from lib.engine.duck.csv_line import NotReproduced, split_line
from lib.engine.duck.read import not_reproduced_reason, open_upload
from lib.engine.transforms import apply_contract, split
from lib.jobs.duck_rows import DuckRows
from lib.jobs.run import process_uploads
from lib.jobs.spark_rows import SparkRows, session_conf
from lib.lake.paths import LakePaths
from lib.ledger.sqlite import open_ledger
from lib.sources.base import Upload, union_all
from lib.sources.csv_reader import SESSION_CONF, read_upload
from lib.sources.jsonl_reader import SESSION_CONF as JSONL_CONF
from lib.sources.jsonl_reader import read_upload as read_jsonl_upload
from lib.upload.landing import upload_file
from lib.upload.structure import scan_csv

INGESTED_AT = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
INGEST_DATE = date(2026, 11, 21)


def _norm(value: object) -> object:
    """One Python value for both engines' results: aware timestamps in UTC, lists as tuples."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    if isinstance(value, list):
        return tuple(_norm(v) for v in value)
    if isinstance(value, Decimal):
        return value
    return value


def _key(row: tuple) -> tuple:
    return tuple((v is None, repr(v)) for v in row)


@dataclass
class Difference:
    what: str
    spark: tuple | None
    duckdb: tuple | None


@dataclass
class Result:
    columns: dict[str, list[str]] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    differences: list[Difference] = field(default_factory=list)
    not_reproduced: list[str] = field(default_factory=list)

    def describe(self) -> str:
        if not self.differences:
            return "identical: " + ", ".join(f"{n} {z} rows" for z, n in self.rows.items())
        d = self.differences[0]
        return (f"{len(self.differences)} difference(s); first in {d.what}:\n"
                f"  spark:  {d.spark}\n  duckdb: {d.duckdb}")


def _header_plan(path: Path, contract: Contract) -> HeaderPlan:
    with open_upload(path) as fh:
        first = fh.readline().decode("utf-8")
    return plan_header(parse_header_line(first), contract, str(path))


def _multiline(path: Path, contract: Contract) -> bool:
    """Whether a quoted field holds a line break, as the upload check records it."""
    with open_upload(path) as fh:
        return scan_csv(fh, contract, str(path)).multiline


def compare_files(spark, contract: Contract, files: Sequence[Path]) -> Result:  # noqa: ANN001
    """Both engines on ``files`` (each its own upload); the differences, if any."""
    uploads = [(f"u{i:03d}", Path(f).resolve()) for i, f in enumerate(files)]
    jsonl = contract.format == "jsonl"
    names = contract.column_names
    plans = {uid: HeaderPlan(source=str(p), header=names, read_names=names, matched=names,
                             missing_optional=(), extra=()) if jsonl
             else _header_plan(p, contract) for uid, p in uploads}
    result = Result()
    inputs = []
    for uid, p in uploads:
        multiline = None if jsonl else _multiline(p, contract)
        why = not_reproduced_reason(p, multiline)
        if why:
            result.not_reproduced.append(f"{p}: {why}")
            continue
        inputs.append(duck.Input(uid, p, p.as_uri(), INGEST_DATE, plans[uid], multiline))
    con = duck.connect()
    try:
        outcome = duck.enforce(con, contract, inputs, INGESTED_AT)
        duck_clean = con.execute(" UNION ALL ".join(
            f"SELECT * FROM ({duck.clean_query(contract, outcome, n)})"
            for n in range(len(inputs))))
        clean_cols = [d[0] for d in duck_clean.description]
        duck_rows = {"clean": duck_clean.fetchall()}
        q = con.execute(" UNION ALL ".join(
            f"SELECT * FROM ({duck.quarantine_query(contract, outcome, n, i.plan)})"
            for n, i in enumerate(inputs)))
        quarantine_cols = [d[0] for d in q.description]
        duck_rows["quarantine"] = q.fetchall()
    finally:
        con.close()
    conf = (JSONL_CONF if jsonl
            else {**SESSION_CONF, "spark.sql.files.maxPartitionBytes": str(1 << 50)})
    reader = read_jsonl_upload if jsonl else read_upload
    with session_conf(spark, conf):
        raw = union_all([
            reader(spark, Upload(i.upload_id, i.source_file, INGEST_DATE,
                                 multiline=i.multiline),
                   i.plan, contract, INGESTED_AT) for i in inputs])
        clean, quarantine = split(contract, raw.transform(apply_contract(contract)))
        spark_rows = {"clean": [tuple(r) for r in clean.collect()],
                      "quarantine": [tuple(r) for r in quarantine.collect()]}
        result.columns = {"clean": clean.columns, "quarantine": quarantine.columns}
    for zone, cols in (("clean", clean_cols), ("quarantine", quarantine_cols)):
        if cols != result.columns[zone]:
            result.differences.append(Difference(f"{zone} columns", tuple(result.columns[zone]),
                                                 tuple(cols)))
            continue
        a = sorted((tuple(_norm(v) for v in r) for r in spark_rows[zone]), key=_key)
        b = sorted((tuple(_norm(v) for v in r) for r in duck_rows[zone]), key=_key)
        result.rows[zone] = len(a)
        for x, y in zip(a, b, strict=False):
            if x != y:
                result.differences.append(Difference(f"{zone} rows", x, y))
                break
        if len(a) != len(b):
            result.differences.append(Difference(f"{zone} row count", (len(a),), (len(b),)))
    return result


# -- the seeded fuzz corpus ------------------------------------------------------------------

_SPACES = ["\u00a0", "\u2009", "\u3000", "\u200b", "\ufeff", "\u200e", "\u2028", "\u0085",
           "\t", "\x0b", "\x1c", " "]
_NUMBERS = ["0", "-0", "+1", "007", "1e3", "1E3", "1.", ".5", "-1.5", "2147483647",
            "2147483648", "-2147483648", "-2147483649", "9223372036854775807",
            "99999999999999999999", "0009999999999.99", "9999999999.99", "10000000000",
            "0.001", "1.999", "1,000", "$5", "١٢", "１２", "NaN", "Infinity", "", " 5 "]
_TIMES = ["2026-11-01T10:00:00Z", "2026-11-01 10:00:00", "2026-11-01T10:00:00.123456+05:30",
          "2026-11-01T10:00:00.1234567Z", "2026-11-01T24:00:00Z", "2026-11-01T23:59:60Z",
          "2026-02-29T10:00:00Z", "2024-02-29T10:00:00Z", "2026-13-01T10:00:00Z",
          "0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2026-11-01T10:00:00+18:00",
          "2026-11-01T10:00:00+18:30", "2026-11-01T10:00:00-05:60", "2026-11-01T10:00:00+0100",
          "2026-11-01", "2026-11-01T10:00Z", "1999-12-31T23:59:59Z", "2100-01-01T00:00:00Z",
          "2000-01-01T00:30:00+01:00", "yesterday", "2026-11-01t10:00:00z"]
_TEXTS = ["a@b.co", "Mixed@Case.COM", "ß@straße.de", "İstanbul@x.tr", "ΟΔΟΣ@x.gr", "ﬁ@x.io",
          "a b@c.de", "not-an-email", "sku-ııı", "ß-123", "sku-001", "ABC", "SKU_1", "Ǆ-12",
          "ǅ", "k", "\u212a", "x\u0301", "😀", "a,b", 'say "hi"', "=1+2", "@cmd", "usd", "Usd",
          "chf", "ΣΑΣ", "eur\u200b"]


def _field(rng, pool: list[str]) -> str:  # noqa: ANN001
    value = rng.choice(pool)
    if rng.random() < 0.3:
        value = rng.choice(_SPACES) + value
    if rng.random() < 0.3:
        value = value + rng.choice(_SPACES)
    return value


def _quote(rng, value: str) -> str:  # noqa: ANN001
    """The value as a CSV field: quoted when it must be (or at random), quotes doubled."""
    if any(ch in value for ch in ',"\r\n') or rng.random() < 0.1:
        return '"' + value.replace('"', '""') + '"'
    return value


def fuzz_csv(path: Path, rows: int, seed: int) -> None:
    """An adversarial orders file: the header in another order and case with an extra column,
    a BOM, CRLF and LF, blank lines, Unicode spaces and format characters around values,
    numbers at and beyond type limits, malformed dates and times with and without zones,
    repeated and conflicting keys, quotes and separators inside and outside quotes, records
    with too few and too many fields. Every line is one the DuckDB engine reproduces."""
    rng = random.Random(seed)
    header = ["Order ID", "customer_id", "Customer_Email", "PRODUCT_SKU", "quantity",
              "unit_price", "currency", "order_ts", "country", "discount_pct", "notes"]
    lines = ["\ufeff" + ",".join(header)]
    previous: list[str] | None = None
    for i in range(rows):
        r = rng.random()
        if previous is not None and r < 0.05:
            lines.append(",".join(previous))  # an exact repeat
            continue
        key = f"O-{i:06d}" if r > 0.1 or previous is None else previous[0]  # conflicts
        valid = [key, "C-1", "a@b.co", "sku-001", "3", "19.99", "usd", "2026-11-01T10:00:00Z",
                 "us", "5.5", "note"]
        pools = [[key], ["C-1", "", " ", "C-\u00a02"], _TEXTS, _TEXTS, _NUMBERS, _NUMBERS,
                 _TEXTS, _TIMES, ["us", "DE", "USA", "", "d\u00e9"], _NUMBERS, _TEXTS]
        fields = [_field(rng, [v]) if rng.random() < 0.2 else v for v in valid]
        for k in rng.sample(range(len(fields)), rng.choice([0, 0, 0, 1, 1, 2])):
            fields[k] = _field(rng, pools[k])
        fields = [_quote(rng, f) for f in fields]
        if r > 0.97:
            fields = fields[:rng.randint(1, 9)]  # too few fields
        elif r > 0.95:
            fields.append("extra")
        elif 0.9 < r < 0.92:  # quotes where a field does not start with one
            fields[rng.randrange(len(fields))] = rng.choice(['a"b', '"ab"cd', '"x,y"z', '""', 'x"'])
        line = ",".join(fields)
        try:
            split_line(line)
        except NotReproduced:
            continue
        lines.append(line)
        previous = fields
        if rng.random() < 0.02:
            lines.append(rng.choice(["", "  ", "\t"]))  # blank lines hold no record
    body = "".join(line + rng.choice(["\n", "\r\n"]) for line in lines)
    path.write_bytes(body.encode("utf-8"))


_BREAKS = ["one\ntwo", "a\r\nb", "x\ry", "\n", "end\n", "\r\n\r\n", "two\n\nlines",
           ' "q"\n', "a,\nb"]


def fuzz_multiline_csv(path: Path, rows: int, seed: int, separator: str | None = None) -> None:
    """An adversarial orders file that Spark reads in multi-line mode: quoted fields holding
    line breaks of every kind, a line separator of its own (``\\n`` or ``\\r\\n``), blank
    lines and lines of blanks, carriage returns in ``\\n`` files, repeated and
    conflicting keys, records with too few and too many fields, values of the line corpus.
    ``separator`` chooses the line separator instead of the seed."""
    rng = random.Random(seed)
    # Drawn either way, so that a seed gives the same rows whatever ``separator`` says (the
    # upload check refuses \r line ends).
    drawn = rng.choice(["\n", "\r\n"])
    sep = separator or drawn
    header = ["Order ID", "customer_id", "Customer_Email", "PRODUCT_SKU", "quantity",
              "unit_price", "currency", "order_ts", "country", "discount_pct", "notes"]
    parts = ["\ufeff" + ",".join(header), sep]
    previous: list[str] | None = None
    for i in range(rows):
        r = rng.random()
        key = f"O-{i:06d}" if r > 0.1 or previous is None else previous[0]
        fields = [key, "C-1", "a@b.co", "sku-001", "3", "19.99", "usd", "2026-11-01T10:00:00Z",
                  "us", "5.5", "note"]
        pools = [[key], ["C-1", "", " ", "C-\u00a02"], _TEXTS, _TEXTS, _NUMBERS, _NUMBERS,
                 _TEXTS, _TIMES, ["us", "DE", "", "d\u00e9"], _NUMBERS, _TEXTS]
        for k in rng.sample(range(len(fields)), rng.choice([0, 1, 1, 2])):
            fields[k] = _field(rng, pools[k])
        for k in rng.sample(range(len(fields)), rng.choice([0, 1, 1, 2])):
            fields[k] = rng.choice(_BREAKS) if rng.random() < 0.5 else fields[k] + "\n" + "x"
        quoted = [_quote(rng, f) for f in fields]
        if r > 0.97:
            quoted = quoted[:rng.randint(1, 9)]  # too few fields
        elif r > 0.95:
            quoted.append('"extra\nfield"')
        if previous is not None and 0.5 < r < 0.53:
            quoted = [_quote(rng, f) for f in previous]  # an exact repeat
        parts += [",".join(quoted), sep]
        previous = fields
        if rng.random() < 0.03:  # an empty line, a line of blanks (a \r in a \n file)
            parts += [rng.choice(["", "  ", "\t", *(["\r", " \r"] if sep == "\n" else [])]), sep]
    path.write_bytes("".join(parts).encode("utf-8"))


# Field values as text (written as JSON strings, escaped or not at random).
_JSON_TEXTS = [*_TEXTS, "O'Brien", "tab\tin", "new\nline", "back\\slash", "nul\x00", "\x7f",
               "\u2028", "\U0001f600", "\ud800", "\udc00\ud83d", "é", "  Ada   Lovelace ",
               '"Infinity"', '"NaN"', "a/b", "\x1f\x08\x0c\r"]
_JSON_NUMBERS = ["0", "-0", "12", "-12", "1.50", "1e3", "1E+2", "2e-3", "-0.0", "19.99",
                 "123456.789e2", "9999999.999", "1.0e7", "9223372036854775808",
                 "123456789012345678901234567890", "1e400", "-1e400", "1e-400", "0.1e1"]
# JSON texts as they stand in a line.
_JSON_NESTED = [r'{"a": 1, "b": [1, 2.5, "x"]}', "[]", "{}", r'[null, true, "\u00e9\/"]',
                r'{"k\n\u0001": {"x": 1, "x": 2}}', r'["\ud83d\ude00", "\u001f", 1e400, -0]',
                '[[[["deep"]]]]', r'{"customer_id": "nested key", "\ud800": "\udfff"}',
                '["\u00e9", "\U0001f600", "\x7f"]', "[1e-400, 12345678901234567890, 0.001]"]
_JSON_LINES = ['[{"customer_id": "in an array"}]', '"just a string"', "42", "null",
               '{"customer_id": "C-1", "full_name": NaN}', '{"customer_id": "C-1",}',
               '{"customer_id": "C-1", "customer_id": "C-2"}',
               r'{"customer_id": "C-1", "customer\u005fid": "C-1"}',
               '{"customer_id": 007}', '{"customer_id": .5}', '{"customer_id": +1}',
               '{"customer_id": "a\tb"}', '{"customer_id": "x", "z": [1,}',
               r'{"customer_id": "\q"}', "{customer_id: 1}", "\x0b{}", "\ufeff{}", "\x01",
               '{"customer_id": "x"', "{", "}", "{}", "  {}  ", "\t", "\t {} \t",
               '{"other": ' + "[" * 1000 + "]" * 1000 + "}",
               '{"other": ' + "[" * 998 + "]" * 998 + ', "customer_id": "deep ok"}',
               '{"customer_id": ' + "1" * 1001 + "}", '{"customer_id": ' + "1" * 1000 + "}",
               '{"customer_id": "x"} trailing junk {', '{"customer_id": "x"}{"full_name": "y"}']
_JSON_DATES = ["2026-11-01", "2026/11/01", "2026-02-30", "2026-13-01", "1999-12-31",
               "0001-01-01", "9999-12-31", "2026-1-01", " 2026-11-01 ", "20261101", ""]
_JSON_POOLS = {"date": _JSON_DATES, "country": ["us", "DE", "USA", "", " fr ", "d\u00e9"],
               "tier": ["gold", "GOLD", " silver", "bronze", "platinum", "", "Gold\u200b"]}


def _json_value(rng, kind: str) -> str:  # noqa: ANN001
    """One JSON value of a field's kind, or of another kind (wrong types, nulls, objects and
    arrays, numbers at the double's limits), as it stands in a line."""
    r = rng.random()
    if r < 0.08:
        return rng.choice(_JSON_NUMBERS)
    if r < 0.12:
        return rng.choice(_JSON_NESTED)
    if r < 0.15:
        return rng.choice(["null", "true", "false"])
    text = rng.choice(_JSON_POOLS.get(kind, _JSON_TEXTS))
    if rng.random() < 0.2:
        text = rng.choice([" ", "\u00a0", "\t", "\u3000"]) + text
    lone = any("\ud800" <= c <= "\udfff" for c in text)  # only escaped: not UTF-8
    return json.dumps(text, ensure_ascii=lone or rng.random() < 0.3)


def fuzz_jsonl(path: Path, rows: int, seed: int) -> None:
    """An adversarial customers file (JSON Lines): keys in any order, missing, repeated
    within a line and escaped, extra keys, every kind of JSON value in every field (numbers
    written back by Java, objects and arrays, non-finite numbers, nulls, wrong types),
    escapes of every kind, whitespace and junk around the object, broken JSON, too deep and
    too long, blank lines, lines of tabs, a BOM, ``\\n``, ``\\r\\n`` and ``\\r`` line ends,
    repeated and conflicting ids. No line holds a single-quoted string or a float outside
    what the DuckDB engine reproduces (those are refused whole: tested on their own)."""
    rng = random.Random(seed)
    keys = [("customer_id", "id"), ("full_name", "text"), ("email", "text"),
            ("signup_date", "date"), ("country", "country"), ("loyalty_tier", "tier")]
    lines = []
    previous: str | None = None
    for i in range(rows):
        r = rng.random()
        if previous is not None and r < 0.04:
            lines.append(previous)  # an exact repeat: a duplicate
            continue
        if r < 0.08:
            lines.append(rng.choice(_JSON_LINES))
            continue
        cid = f'"C-{i:05d}"' if r > 0.12 or previous is None else '"C-00000"'  # conflicts
        pairs = [("customer_id", cid if rng.random() < 0.9 else _json_value(rng, "id"))]
        pairs += [(k, _json_value(rng, kind)) for k, kind in keys[1:] if rng.random() < 0.93]
        valid = {"full_name": '"Ada Lovelace"', "email": '"ada@example.com"',
                 "signup_date": '"2026-11-01"', "country": '"GB"', "loyalty_tier": '"gold"'}
        if rng.random() < 0.5:  # mostly valid rows, so that many reach the clean zone
            pairs = [("customer_id", cid), *valid.items()]
            if rng.random() < 0.3:
                k = rng.randrange(1, len(pairs))
                pairs[k] = (pairs[k][0], _json_value(rng, dict(keys)[pairs[k][0]]))
        if rng.random() < 0.05:
            pairs.append(("extra", rng.choice(_JSON_NESTED + _JSON_NUMBERS)))
        rng.shuffle(pairs)
        sep = rng.choice([", ", ",", " , ", ",\t"])
        escaped = {"customer_id": r"customer\u005fid"} if rng.random() < 0.03 else {}
        body = sep.join(f'"{escaped.get(k, k)}"{rng.choice([": ", ":", " : "])}{v}'
                        for k, v in pairs)
        line = "{" + body + "}"
        if rng.random() < 0.05:
            line = rng.choice([" ", "\t", " \t "]) + line
        if rng.random() < 0.03:
            line += rng.choice([" ", " junk", "}", "\t{"])
        lines.append(line)
        previous = line
        if rng.random() < 0.03:
            lines.append(rng.choice(["", "   ", "\t", " \t "]))
    ends = ["\n", "\r\n", "\r"]
    body = "\ufeff" + "".join(line + rng.choice(ends) for line in lines)
    path.write_bytes(body.encode("utf-8"))


# -- whole runs: the job's steps around each engine ------------------------------------------

def _zone_query(con: duckdb.DuckDBPyConnection, zone: Path, names: dict[str, str],
                name: str, skipped: set[str]) -> list[str]:
    """A view ``name`` of every row of a zone folder (partition columns included), each
    upload id and source file replaced by the upload's file name (they differ between two
    lakes), without the uploads in ``skipped``; returns its columns (none: no file)."""
    files = sorted(str(f) for f in zone.rglob("[!.]*.parquet"))
    if not files:
        return []
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name}_names AS SELECT * FROM "
                f"(VALUES {', '.join(f'({_lit(k)}, {_lit(v)})' for k, v in names.items())}) "
                "t(upload_id, file)")
    listed = ", ".join(_lit(f) for f in files)
    con.execute(f"CREATE OR REPLACE TEMP VIEW {name}_raw AS SELECT * FROM read_parquet([{listed}], "
                "hive_partitioning = true, union_by_name = true)")
    cols = [r[0] for r in con.execute(f"DESCRIBE {name}_raw").fetchall()]
    exprs = []
    for c in cols:
        if c == UPLOAD_ID:
            exprs.append(f"n.file AS {c}")
        elif c == SOURCE_FILE:
            exprs.append(f"regexp_extract(r.{c}, '[^/]*$') AS {c}")
        else:
            exprs.append(f'r."{c}"')
    left_out = (f" WHERE n.file NOT IN ({', '.join(_lit(x) for x in sorted(skipped))})"
                if skipped else "")
    con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT {', '.join(exprs)} FROM "
                f"{name}_raw r JOIN {name}_names n ON r.{UPLOAD_ID} = n.upload_id{left_out}")
    return cols


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def compare_runs(spark, contract: Contract, files: Sequence[Path], work: Path) -> Result:  # noqa: ANN001
    """Both engines through the whole run (:func:`lib.jobs.run.process_uploads`): the files
    landed in two lakes with the upload checks, one run with each engine at the same time,
    then every row of both zones and every upload's counts compared. Uploads the DuckDB
    engine does not reproduce (``engine.not_reproduced``) are listed, not compared."""
    now = INGESTED_AT
    lakes = {"spark": work / "spark-lake", "duckdb": work / "duckdb-lake"}
    names: dict[str, dict[str, str]] = {}
    reports = {}
    for engine, lake in lakes.items():
        paths, ledger = LakePaths.from_root(lake), open_ledger(lake)
        names[engine] = {}
        for f in files:
            record = upload_file(Path(f), contract, ledger, paths, now=now)
            names[engine][record.upload_id] = Path(f).name
        rows = SparkRows(spark) if engine == "spark" else DuckRows(temp_dir=work / "spill")
        reports[engine] = process_uploads(rows, contract, paths, ledger, job_name="parity",
                                          job_version=contract.version, now=now)
    result = Result()
    skipped = set()
    for u in reports["duckdb"].uploads:
        if u.error_code == NotReproduced.default_code:
            name = names["duckdb"][u.upload_id]
            skipped.add(name)
            result.not_reproduced.append(f"{name}: {u.error}")
    counts = {}
    for engine, report in reports.items():
        counts[engine] = sorted(
            (names[engine][u.upload_id], u.status, u.error_code, u.rows_read, u.clean,
             u.quarantined, u.duplicates_removed, tuple(sorted(u.reasons.items())))
            for u in report.uploads if names[engine][u.upload_id] not in skipped)
    if counts["spark"] != counts["duckdb"]:
        for x, y in zip(counts["spark"], counts["duckdb"], strict=False):
            if x != y:
                result.differences.append(Difference("upload counts", x, y))
                break
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    try:
        for zone in ("clean", "quarantine"):
            a_cols = _zone_query(con, lakes["spark"] / zone / contract.dataset, names["spark"],
                                 "a", skipped)
            b_cols = _zone_query(con, lakes["duckdb"] / zone / contract.dataset,
                                 names["duckdb"], "b", skipped)
            result.columns[zone] = a_cols
            if sorted(a_cols) != sorted(b_cols):
                result.differences.append(Difference(f"{zone} columns", tuple(a_cols),
                                                     tuple(b_cols)))
                continue
            if not a_cols:
                result.rows[zone] = 0
                continue
            listed = ", ".join(f'"{c}"' for c in a_cols)
            result.rows[zone] = con.execute("SELECT count(*) FROM a").fetchone()[0]
            only = [con.execute(f"SELECT {listed} FROM {x} EXCEPT ALL SELECT {listed} FROM {y} "
                                f"ORDER BY ALL LIMIT 1").fetchall() for x, y in (("a", "b"), ("b", "a"))]
            if only[0] or only[1]:
                result.differences.append(Difference(
                    f"{zone} rows", tuple(only[0][0]) if only[0] else None,
                    tuple(only[1][0]) if only[1] else None))
    finally:
        con.close()
    return result
