"""What ``lake query`` lets through: one read-only statement, over catalogued tables only,
built from an allow-list of SQL constructs and functions (not a deny-list of names).

A statement is parsed (sqlglot, Athena/Trino SQL) and every node of its tree must be of an
allowed kind: query structure (SELECT, WITH, joins, set operations, UNNEST, window
specifications), operators, literals, casts, and functions that compute on the values of
the rows (aggregates, string, date, math, array functions). Everything else is refused
with a message that names it: functions that read files, URLs or settings or that reach
the host (table functions, file readers, JVM reflection such as ``reflect`` and
``java_method``), and any relation that is not a catalogued table (a quoted path on a
file-source prefix, ``"parquet"."/etc/passwd"``, is a relation name like any other, and
not a catalogued one).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from sqlglot import exp

from lib.errors import LakeError


class QueryError(LakeError):
    """A query that cannot run; the message says why and what exists."""

    default_code = "query.invalid"


class UnsafeQueryError(QueryError):
    """The query uses a construct ``lake query`` does not run, or a relation that is not a
    catalogued table."""

    default_code = "query.refused"


_STRUCTURE = (
    exp.Select, exp.From, exp.Join, exp.Where, exp.Group, exp.Having, exp.Order, exp.Ordered,
    exp.Limit, exp.Offset, exp.Fetch, exp.With, exp.CTE, exp.Union, exp.Intersect, exp.Except,
    exp.Subquery, exp.Table, exp.TableAlias, exp.Alias, exp.Column, exp.Identifier, exp.Star,
    exp.Dot, exp.Literal, exp.Boolean, exp.Null, exp.Placeholder, exp.Paren, exp.Distinct,
    exp.Tuple, exp.Array, exp.Bracket, exp.Window, exp.WindowSpec, exp.Case, exp.If,
    exp.Cast, exp.TryCast, exp.DataType, exp.DataTypeParam, exp.Interval, exp.Var,
    exp.Unnest, exp.Qualify, exp.Describe, exp.Exists, exp.Any, exp.All, exp.Lambda,
    exp.PropertyEQ, exp.Kwarg, exp.Slice,
)
_OPERATORS = (
    exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ,
    exp.And, exp.Or, exp.Not, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Mod,
    exp.Neg, exp.Is, exp.In, exp.Between, exp.Like, exp.ILike, exp.DPipe, exp.BitwiseAnd,
    exp.BitwiseOr, exp.BitwiseXor, exp.BitwiseNot, exp.RegexpLike,
)
_FUNCTIONS = (
    # aggregates
    exp.Count, exp.Sum, exp.Avg, exp.Min, exp.Max, exp.ApproxDistinct, exp.CountIf,
    exp.Stddev, exp.StddevPop, exp.StddevSamp, exp.Variance, exp.VariancePop,
    exp.ArrayAgg, exp.LogicalAnd, exp.LogicalOr, exp.AnyValue, exp.ApproxQuantile,
    exp.Quantile, exp.Corr, exp.CovarPop, exp.CovarSamp, exp.RowNumber, exp.First, exp.Last,
    exp.Lag, exp.Lead, exp.FirstValue, exp.LastValue, exp.NthValue,
    # conditional
    exp.Coalesce, exp.Nullif, exp.Greatest, exp.Least,
    # strings
    exp.Upper, exp.Lower, exp.Length, exp.Substring, exp.Trim, exp.Concat, exp.ConcatWs,
    exp.Replace, exp.RegexpExtract, exp.RegexpReplace, exp.Split, exp.SplitPart,
    exp.StrPosition, exp.Left, exp.Right, exp.Pad, exp.Reverse, exp.Initcap,
    exp.MD5, exp.SHA, exp.SHA2, exp.Levenshtein, exp.Repeat,
    # numbers
    exp.Abs, exp.Round, exp.Floor, exp.Ceil, exp.Pow, exp.Sqrt, exp.Ln, exp.Log, exp.Exp,
    exp.Sign,
    # dates and times
    exp.Date, exp.DateTrunc, exp.TimestampTrunc, exp.DateAdd, exp.DateSub, exp.DateDiff,
    exp.TimestampAdd, exp.TimestampDiff, exp.TimeToStr, exp.StrToTime, exp.StrToDate,
    exp.TsOrDsToDate, exp.CurrentDate, exp.CurrentTimestamp, exp.Extract, exp.Year,
    exp.Month, exp.Day, exp.DayOfWeek, exp.DayOfMonth, exp.DayOfYear, exp.WeekOfYear,
    exp.UnixToTime, exp.TimeToUnix, exp.AtTimeZone, exp.FromTimeZone, exp.FromISO8601Timestamp,
    # arrays and maps
    exp.ArrayContains, exp.ArrayToString, exp.ArraySize, exp.Explode,
    exp.Filter, exp.Transform, exp.ArraySort, exp.ArrayDistinct,
)
# Names DuckDB binds to a setting of its own when no column of the query has them, even
# quoted: as bare columns they would read the engine's state, not a row.
ENGINE_NAMES = frozenset({"current_schema"})
ALLOWED = tuple(c for c in (*_STRUCTURE, *_OPERATORS, *_FUNCTIONS) if isinstance(c, type))


def check_read_only(tree: exp.Expression, tables: Iterable[str] | None) -> None:
    """Refuse ``tree`` unless every node is an allowed construct and every relation it names
    is one of ``tables`` (``db.table``) or a name its own WITH defines (``tables`` None:
    the relations are not checked)."""
    known = None if tables is None else {t.lower() for t in tables}
    ctes = _cte_names(tree)
    for node in tree.walk():
        if isinstance(node, exp.Table):
            _check_relation(node, known, ctes)
        elif isinstance(node, exp.Column) and not node.table and node.name.lower() in \
                ENGINE_NAMES:
            raise UnsafeQueryError(
                f"{node.name} is not allowed in lake query: unqualified, the engine reads it "
                "as its own setting; a column of that name is read as <table alias>."
                f"{node.name}")
        elif not isinstance(node, ALLOWED):
            raise UnsafeQueryError(_refusal(node))


def _cte_names(tree: exp.Expression) -> set[str]:
    return {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}


def _relation_name(table: exp.Table) -> str:
    return ".".join(p for p in (table.catalog, table.db, table.name) if p)


def relations(tree: exp.Expression) -> set[str]:
    """The tables ``tree`` reads (``db.table``, lower case), its own WITH names aside."""
    ctes = _cte_names(tree)
    return {_relation_name(t).lower() for t in tree.find_all(exp.Table)
            if t.db or t.name.lower() not in ctes}


def _check_relation(table: exp.Table, known: set[str] | None, ctes: set[str]) -> None:
    if not isinstance(table.this, exp.Identifier):  # a table function: read_csv(...), TABLE(...)
        raise UnsafeQueryError(
            f"lake query reads catalogued tables only, not {table.this.sql('trino')}: "
            "table functions and file readers are not allowed")
    name = _relation_name(table)
    if known is None or (not table.db and name.lower() in ctes):
        return
    if name.lower() not in known:
        listed = ", ".join(sorted(known)) or "(none: run `lake crawl` first)"
        close = difflib.get_close_matches(name.lower(), sorted(known), n=1, cutoff=0.7)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise UnsafeQueryError(f"table {name} does not exist{hint} Tables: {listed}"
                               if hint else f"table {name} does not exist; tables: {listed}")


def _refusal(node: exp.Expression) -> str:
    if isinstance(node, exp.Anonymous):
        return (f"function {node.name}() is not allowed in lake query: it runs SQL functions "
                "that compute on the rows of catalogued tables (aggregates, string, date, "
                "math, array functions), never ones that read files or settings or reach the "
                "host")
    if isinstance(node, exp.Func):
        return (f"function {node.sql_name().lower()}() is not allowed in lake query: it runs "
                "SQL functions that compute on the rows of catalogued tables")
    return (f"{node.key.upper()} is not allowed in lake query: it runs one read-only "
            "statement (SELECT, WITH, set operations, DESCRIBE) on catalogued tables")
