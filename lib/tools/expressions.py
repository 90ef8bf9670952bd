"""The grammar of a contract's derived expressions, checked with a SQL parser (sqlglot, in
Spark's dialect) by ``lake contract check``: the contract parser only knows which functions
and names an expression may use (:mod:`lib.contracts.expressions`)."""

from __future__ import annotations

import sqlglot
from sqlglot.errors import ParseError

from lib.contracts.contract import Contract


def expression_problems(contract: Contract) -> list[str]:
    """One line per derived expression that does not parse, naming the file and the field."""
    out = []
    for i, d in enumerate(contract.derived):
        try:
            sqlglot.parse_one(d.expression, read="spark")
        except ParseError as exc:
            detail = exc.errors[0]["description"] if exc.errors else str(exc)
            out.append(f"{contract.source}: derived[{i}].expression: {d.expression!r} does not "
                       f"parse: {detail}")
    return out
