"""What a contract's derived expression may say, checked when the contract is loaded.

A derived column is a Spark SQL expression over the contract's columns. Spark would run any
function it knows, including ``reflect`` and ``java_method``, which call Java methods on the
cluster; so an expression is read token by token, without Spark, and refused unless:

* every function it calls is in :data:`ALLOWED_FUNCTIONS` (arithmetic, rounding, null
  handling, conditionals, strings, dates, hashes);
* every name it reads is a column of the contract, a derived column defined before it, a
  SQL keyword of :data:`KEYWORDS` or, after ``AS`` in a ``CAST``, a type name;
* its strings are closed and its parentheses balanced.

The full grammar is checked by a SQL parser where one is at hand: ``lake contract check``
(sqlglot) and the job before it claims any upload (Spark's own parser).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

ALLOWED_FUNCTIONS = frozenset({
    # arithmetic, rounding
    "abs", "bround", "ceil", "ceiling", "floor", "greatest", "least", "mod", "pmod", "pow",
    "power", "round", "sign", "signum", "sqrt",
    # casts, nulls, conditionals
    "cast", "try_cast", "coalesce", "if", "ifnull", "isnotnull", "isnull", "nullif", "nvl",
    "nvl2",
    # strings
    "concat", "concat_ws", "initcap", "left", "length", "lower", "lpad", "ltrim",
    "regexp_extract", "regexp_replace", "replace", "right", "rpad", "rtrim", "split_part",
    "substr", "substring", "translate", "trim", "upper",
    # dates and times
    "add_months", "date_add", "date_diff", "date_format", "date_sub", "date_trunc", "datediff",
    "day", "dayofmonth", "dayofweek", "dayofyear", "hour", "last_day", "make_date", "minute",
    "month", "months_between", "quarter", "second", "to_date", "to_timestamp", "trunc",
    "weekofyear", "year",
    # hashes
    "crc32", "md5", "sha1", "sha2",
})
KEYWORDS = frozenset({
    "and", "as", "between", "case", "else", "end", "false", "in", "is", "like", "not", "null",
    "or", "then", "true", "when", "distinct", "interval", "day", "days", "month", "months",
    "year", "years", "hour", "hours", "minute", "minutes", "second", "seconds",
})
TYPE_NAMES = frozenset({
    "bigint", "boolean", "byte", "date", "decimal", "double", "float", "int", "integer", "long",
    "numeric", "short", "smallint", "string", "timestamp", "tinyint", "varchar", "char",
})

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")
  | (?P<quoted>`(?:[^`]|``)*`)
  | (?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?[LlDdYySs]?|\.\d+)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<open>\()
  | (?P<close>\))
  | (?P<op><=>|<=|>=|<>|!=|==|\|\||[-+*/%<>=,&|^~!.])
""", re.VERBOSE)


def check_expression(expression: str, columns: Iterable[str]) -> str | None:
    """Why ``expression`` may not be a derived column over ``columns``, or None when it may."""
    names = {c.lower() for c in columns}
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(expression):
        m = _TOKEN.match(expression, pos)
        if m is None:
            rest = expression[pos:]
            if rest[0] in "'\"":
                return f"a string opened at character {pos + 1} is never closed"
            return f"unexpected character {rest[0]!r} at character {pos + 1}"
        if m.lastgroup != "space":
            tokens.append((m.lastgroup or "", m.group()))
        pos = m.end()
    depth = 0
    after_as_in_cast = False
    for i, (kind, text) in enumerate(tokens):
        if kind == "open":
            depth += 1
        elif kind == "close":
            depth -= 1
            if depth < 0:
                return "a parenthesis is closed that was never opened"
        elif kind in ("name", "quoted"):
            word = text.strip("`").lower()
            calls = i + 1 < len(tokens) and tokens[i + 1][0] == "open"
            if after_as_in_cast and kind == "name" and word in TYPE_NAMES:
                pass  # CAST(x AS decimal(18, 2))
            elif calls and kind == "name":
                if word not in ALLOWED_FUNCTIONS:
                    return (f"function {text!r} is not allowed in a derived column; allowed: "
                            f"{', '.join(sorted(ALLOWED_FUNCTIONS))}")
            elif word not in names and (kind == "quoted" or word not in KEYWORDS):
                return (f"unknown column {text!r}; a derived column may read the columns "
                        f"{', '.join(sorted(names))}")
            after_as_in_cast = word == "as"
    if depth:
        return "a parenthesis is opened that is never closed"
    if not tokens:
        return "the expression is empty"
    if tokens[-1][0] == "op":
        return f"the expression ends with {tokens[-1][1]!r}"
    return None
