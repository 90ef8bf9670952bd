"""A contract's derived expressions (Spark SQL) as DuckDB SQL, translated by sqlglot.

The allow-list of :mod:`lib.contracts.expressions` holds only functions whose meaning both
engines share (the parity tests evaluate each on both); what differs in the arithmetic is
written out here:

* decimal and integer columns are read as ``DECIMAL(38, scale)``: Spark widens a product's
  precision, DuckDB keeps 18 digits and stops with an overflow;
* a division, which the allow-list admits only by a power of ten, is a multiplication by
  its exact inverse (DuckDB divides decimals in floating point; Spark in decimal, exactly at
  these scales);
* the result is cast to the derived column's type with ``TRY_CAST``: a value that does not
  fit is null, as in Spark.

Only the functions in :data:`PROVEN` have been shown to mean the same in both engines (by
the parity tests, on the bundled contracts), and ``date_format`` of a date column with a
pattern of ``yyyy``, ``MM``, ``dd``, ``-`` and ``/`` (sqlglot writes ``strftime`` with
``%Y``, ``%m``, ``%d``; both engines write a contract date's year, 0000-9999, in four
digits); an expression calling another one, or dividing by anything but a power of ten, is
refused here (:class:`NotReproduced`, before a DuckDB
run claims any upload), never translated on trust.
"""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from lib.contracts.contract import Contract, ContractError
from lib.engine.duck.csv_line import NotReproduced
from lib.engine.duck.rules import duck_type

_POWER_OF_TEN = re.compile(r"^10*$")
PROVEN = frozenset({"round", "coalesce", "to_date"})
# date_format is proven only on a date column of the contract, with a literal pattern of
# four-digit years, months and days (the years a contract date holds: 0000-9999, which
# both engines write in four digits) and separators.
_DATE_FORMAT_CALL = re.compile(
    r"date_format\s*\(\s*`?([A-Za-z_][A-Za-z0-9_]*)`?\s*,\s*'([^'\\]*)'\s*\)", re.I)
_DATE_PATTERN = re.compile(r"^(?:yyyy|MM|dd|[-/])+$")
_CALL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(")
_STRING = re.compile(r"'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.|\"\")*\"")
_DIVISION = re.compile(r"/\s*(\(|[A-Za-z0-9_.`]+)")


def _date_format_not_proven(expression: str, dates: frozenset[str]) -> str | None:
    calls = len(re.findall(r"date_format\s*\(", _STRING.sub("''", expression), re.I))
    shaped = _DATE_FORMAT_CALL.findall(expression)
    for column, pattern in shaped:
        if column.lower() not in dates:
            return (f"date_format is proven in the DuckDB engine only on a date column of the "
                    f"contract, not on {column!r}")
        if not _DATE_PATTERN.match(pattern):
            return (f"date_format pattern {pattern!r} is not proven in the DuckDB engine "
                    "(proven: yyyy, MM, dd and the separators - and /)")
    if calls != len(shaped):
        return ("date_format is proven in the DuckDB engine only as date_format(<date column>, "
                "'<pattern>')")
    return None


def not_proven(expression: str, dates: frozenset[str] = frozenset()) -> str | None:
    """Why the DuckDB engine does not run ``expression`` (a function outside :data:`PROVEN`,
    ``date_format`` other than on one of the ``dates`` columns with a proven pattern, a
    division by anything but a power of ten), or None."""
    code = _STRING.sub("''", expression)
    for name in _CALL.findall(code):
        if name.lower() == "date_format":
            why = _date_format_not_proven(expression, dates)
            if why is not None:
                return why
            continue
        if name.lower() not in PROVEN:
            return (f"function {name!r} is not proven to give the same result in the DuckDB "
                    f"engine (proven: {', '.join(sorted(PROVEN))}, date_format on a date)")
    for divisor in _DIVISION.findall(code):
        if not _POWER_OF_TEN.match(divisor):
            what = "an expression in parentheses" if divisor == "(" else repr(divisor)
            return (f"a division by {what}: DuckDB divides decimals in floating point; "
                    "only a division by a power of ten (10, 100, ...) is exact in both engines")
    return None


def _rewrite(types: dict[str, object], earlier: dict[str, exp.Expression]):  # noqa: ANN202
    def transform(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and not node.table and node.name.lower() in earlier:
            return exp.Paren(this=earlier[node.name.lower()].copy())
        if isinstance(node, exp.Column) and not node.table:
            t = types.get(node.name.lower())
            if t is not None and getattr(t, "name", "") in ("int", "bigint", "decimal"):
                scale = getattr(t, "scale", 0) if t.name == "decimal" else 0  # type: ignore[attr-defined]
                return exp.cast(node.copy(), exp.DataType.build(f"DECIMAL(38, {scale})"))
        return node
    return transform


def _exact_division(node: exp.Expression) -> exp.Expression:
    """``x / 100`` -> ``x * 0.01`` (a division by anything else is refused at load)."""
    if isinstance(node, exp.Div):
        divisor = node.expression
        if isinstance(divisor, exp.Literal) and _POWER_OF_TEN.match(divisor.this or ""):
            digits = len(divisor.this) - 1
            inverse = "1" if digits == 0 else "0." + "0" * (digits - 1) + "1"
            return exp.Mul(this=node.this, expression=exp.Literal.number(inverse))
    return node


def unproven_derived(contract: Contract) -> str | None:
    """The first derived expression of ``contract`` the DuckDB engine does not run, and why."""
    dates = frozenset(c.name.lower() for c in contract.columns if c.type.name == "date")
    for i, d in enumerate(contract.derived):
        why = not_proven(d.expression, dates)
        if why is not None:
            return f"derived[{i}].expression {d.expression!r}: {why}"
    return None


def derived_sql(contract: Contract) -> dict[str, tuple[str, object]]:
    """Each derived column -> (DuckDB expression, its contract type). An expression that does
    not parse is a :class:`~lib.contracts.contract.ContractError` naming the file and field."""
    types: dict[str, object] = {c.name: c.type for c in contract.columns}
    earlier: dict[str, exp.Expression] = {}
    out: dict[str, tuple[str, object]] = {}
    why = unproven_derived(contract)
    if why is not None:
        raise NotReproduced(f"{why}; run it with --engine spark", source=contract.source)
    for i, d in enumerate(contract.derived):
        try:
            tree = sqlglot.parse_one(d.expression, read="spark")
        except ParseError as exc:
            detail = exc.errors[0]["description"] if exc.errors else str(exc)
            raise ContractError(contract.source, f"derived[{i}].expression",
                                f"{d.expression!r} does not parse: {detail}") from None
        # A derived column may read an earlier one: its expression is inlined.
        tree = exp.TryCast(this=tree.transform(_exact_division).transform(_rewrite(types, earlier)),
                           to=exp.DataType.build(duck_type(d.type), dialect="duckdb"))
        earlier[d.name.lower()] = tree
        out[d.name] = (tree.sql(dialect="duckdb", identify=True), d.type)
    return out
