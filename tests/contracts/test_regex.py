"""A contract pattern has one meaning on every engine: the constructs without a common meaning
are refused with what and why, and what is kept is written out for Java (Spark's rlike),
RE2 (DuckDB) and Python so that all three answer the same on adversarial text (a
differential test: every pattern against every text, first difference printed)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
import yaml
from pyspark.sql import functions as F

from lib.contracts.contract import ContractError, load_contract, parse_contract
from lib.contracts.regex import PatternError, portable

REFUSED = [
    (r"(a)\1", "backreferences are not allowed: RE2 has none"),
    (r"(?P<n>a)(?P=n)", "backreferences are not allowed: RE2 has none"),
    (r"a(?=b)", "lookahead and lookbehind are not allowed: RE2 has none"),
    (r"(?<!a)b", "lookahead and lookbehind are not allowed: RE2 has none"),
    (r"a++", "possessive quantifiers are not allowed: RE2 has none"),
    (r"(?>ab)", "atomic groups are not allowed: RE2 has none"),
    (r"\bword\b", "word boundaries (\\b, \\B) are not allowed: Java's follow Unicode letters "
                  "and RE2's ASCII ones"),
    (r"[a-z&&[^e]]", "'&&' inside a character class is an intersection in Java and two "
                     "literals elsewhere: write '\\&\\&' or list the characters"),
    (r"[a-z&&b]", "'&&' inside a character class is an intersection in Java and two literals "
                  "elsewhere: write '\\&\\&' or list the characters"),
    (r"[[:alpha:]]", "a '[' inside a character class is a nested class in Java and a literal "
                     "elsewhere: write it as '\\['"),
    (r"(?s)a.b", "flags other than a leading (?i) are not allowed: (?s), (?m), (?x) and (?a) "
                 "change '.', '^', '$' or spaces differently in Java and RE2"),
    (r"(?m)^a$", "flags other than a leading (?i) are not allowed: (?s), (?m), (?x) and (?a) "
                 "change '.', '^', '$' or spaces differently in Java and RE2"),
    (r"(?i:a)b", "inline flags on a group, such as (?i:...), are not allowed: put (?i) at the "
                 "start of the pattern"),
    (r"x{1001}", "a repetition count over 1000 is not allowed (RE2's limit)"),
    (r"\p{L}+", "invalid regular expression: bad escape \\p at position 0"),
]


@pytest.mark.parametrize(("pattern", "message"), REFUSED)
def test_a_pattern_without_one_meaning_is_refused_saying_why(pattern, message) -> None:
    with pytest.raises(PatternError) as err:
        portable(pattern)
    assert str(err.value) == message


def test_a_contract_with_such_a_pattern_is_refused_at_load() -> None:
    text = """
dataset: x
version: 1
format: csv
columns:
  - name: code
    type: string
    rules:
      - pattern: '^(a)\\1$'
"""
    with pytest.raises(ContractError) as err:
        parse_contract(yaml.safe_load(text), "x.yaml")
    assert str(err.value) == ("x.yaml: columns[0].rules[0].pattern: backreferences are not "
                              "allowed: RE2 has none")


def test_classes_are_written_out_as_explicit_ranges() -> None:
    assert portable(r"^[A-Z]{2}$").java() == r"\A(?:[A-Z]){2}\z"
    assert portable(r"^[A-Z]{2}$").re2(ignore_case=True) == r"\A(?:[A-Za-z]){2}\z"
    assert portable(r"^\d+$").python() == r"\A(?:[0-9])+\Z"
    assert portable(r"(?i)^sku-\d$").java() == r"\A[Ss][Kk][Uu]\x{2d}[0-9]\z"


# -- the differential test -------------------------------------------------------------------

PATTERNS = [
    *(r.params["regex"] for d, v in (("orders", 2), ("customers", 1))
      for c in load_contract(d, v).columns for r in c.rules if r.kind == "pattern"),
    r".", r"^.$", r"^a.c$", r"\s", r"^\s$", r"\S", r"\d", r"^\d+$", r"\D", r"\w", r"^\w+$",
    r"\W", r"(?i)^sku$", r"(?i)s", r"(?i)k", r"(?i)[a-z]+$", r"(?i)[^a-z]", r"[^a]", r"(?i)[^a]",
    r"^(?:ab|cd)*$", r"a{2,3}?b", r"^ß$", r"(?i)^ß$", r"é", r"^[à-ÿ]+$", r"\u00e9|e\u0301",
    r"^$", r"^x?$", r"[\]\\-]", r"\.", r"^\t", r"[\x00-\x1f]", r"[^\n]+", r"\Aa\Z", r"^🦆",
    r"^[^@\s]+@[^@\s]+\.[^@\s]+$", r"[-a]", r"^[0-9]{3}-[0-9]{2}$",
]
TEXTS = [
    "", "a", "A", "abc", "aXc", "a\nc", "a\rc", "a\x0bc", "a\x0cc", "a\u0085c", "a\u2028c",
    "a\u2029c", "a\x00c", " ", "\t", "\x0b", "\u00a0", "\u3000", "\u200b", "sku", "SKU", "ſku",
    "K", "k", "\u212a", "ß", "ẞ", "SS", "é", "e\u0301", "É", "àÿ", "٣", "１２３", "123", "12a",
    "Ａ", "x@y.z", "x@y", "x y@z.w", "x\x0by@z.w", "ab", "abab", "cdab", "abc", "aab", "aaab",
    "🦆", "🦆x", "]", "\\", "-", ".", "123-45", "Ｏ-1", "_", "a_b", "\u0130", "\u0131",
]


def _java_answers(spark, ignore_case: bool) -> list[list[bool]]:
    df = spark.createDataFrame([(t,) for t in TEXTS], "text string")
    cols = [F.col("text").rlike(portable(p).java(ignore_case)).alias(f"p{i}")
            for i, p in enumerate(PATTERNS)]
    rows = {r["text"]: r for r in df.select("text", *cols).collect()}
    return [[bool(rows[t][f"p{i}"]) for t in TEXTS] for i in range(len(PATTERNS))]


def _re2_answers(ignore_case: bool) -> list[list[bool]]:
    con = duckdb.connect()
    con.execute("CREATE TABLE t (i INTEGER, text VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(TEXTS)))
    out = []
    for p in PATTERNS:
        got = dict(con.execute("SELECT i, regexp_matches(text, ?) FROM t",
                               [portable(p).re2(ignore_case)]).fetchall())
        out.append([bool(got[i]) for i in range(len(TEXTS))])
    return out


@pytest.mark.parametrize("ignore_case", [False, True])
def test_java_re2_and_python_answer_the_same_on_every_text(spark, ignore_case) -> None:
    java = _java_answers(spark, ignore_case)
    re2 = _re2_answers(ignore_case)
    for i, p in enumerate(PATTERNS):
        python = [portable(p).search(t, ignore_case) for t in TEXTS]
        for j, text in enumerate(TEXTS):
            answers = {"java": java[i][j], "re2": re2[i][j], "python": python[j]}
            assert len(set(answers.values())) == 1, (
                f"pattern {p!r} (ignore_case={ignore_case}) on {text!r}: {answers}")


@pytest.mark.parametrize(("pattern", "text", "matches"), [
    (r"^a.c$", "a\rc", False),          # '.' stops at every line terminator, as in Java
    (r"^a.c$", "a\u2028c", False),
    (r"^a.c$", "a\x0bc", True),
    (r"^\s$", "\x0b", True),             # \s holds the vertical tab, as in Java
    (r"^\s$", "\u00a0", False),          # and no Unicode space
    (r"^\d+$", "٣", False),              # \d is [0-9], not Python's Unicode digits
    (r"(?i)^sku$", "ſku", False),        # (?i) folds ASCII letters only, as in Java
    (r"(?i)k", "\u212a", False),
    (r"(?i)^sku$", "SkU", True),
    (r"(?i)^ß$", "ẞ", False),
    (r"(?i)[^a]", "A", False),           # folded before it is negated, as in Java
])
def test_the_meaning_is_javas_defaults_for_every_engine(pattern, text, matches) -> None:
    assert portable(pattern).search(text) is matches


def test_lake_contract_check_names_a_refused_pattern(tmp_path, capsys) -> None:
    from lib.tools import cli

    v3 = (Path(__file__).resolve().parents[2] / "lib" / "contracts" / "orders" / "v2.yaml") \
        .read_text(encoding="utf-8").replace("version: 2", "version: 3") \
        .replace("'^[A-Z]{2}$'", "'^(?!XX)[A-Z]{2}$'")
    candidate = tmp_path / "v3.yaml"
    candidate.write_text(v3, encoding="utf-8")
    assert cli.main(["contract", "check", "--file", str(candidate)]) == 2
    err = capsys.readouterr().err
    assert "columns[8].rules[0].pattern: lookahead and lookbehind are not allowed: RE2 has " \
        "none" in err
