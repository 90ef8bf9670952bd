"""Header matching against a contract. Pure Python: used by the Spark reader and, without
Spark, by upload-time checks.

Header names are matched case-insensitively after trimming; runs of spaces, dashes and
other punctuation count as one underscore (``"Order ID"`` matches ``order_id``). Column
order is free. Extra columns are dropped with a warning; a missing required column fails
the whole file; a missing optional column is read as all null.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass

from lib.contracts.contract import Contract
from lib.errors import FileError

_NON_WORD = re.compile(r"[^0-9a-z]+")
BOM = "\ufeff"


def listed(names: list[str] | tuple[str, ...], most: int = 10) -> str:
    """``a, b, c ... and 4,990 more``: a list in a message stays readable however long."""
    shown = ", ".join(names[:most])
    return shown + (f" ... and {len(names) - most:,} more" if len(names) > most else "")


def printable(text: str) -> str:
    """``text`` with control characters escaped (``\\n``), for one-line messages and tables."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def normalise_name(name: str) -> str:
    """``"  Order ID "`` -> ``"order_id"``."""
    return _NON_WORD.sub("_", name.strip().lower()).strip("_")


def parse_header_line(line: str | None) -> list[str] | None:
    """Split a raw CSV header line (RFC 4180 quoting, leading BOM ignored) into names."""
    if line is None:
        return None
    line = line.removeprefix(BOM).rstrip("\r\n")
    if not line.strip():
        return None
    return next(csv.reader([line]))


@dataclass(frozen=True)
class HeaderPlan:
    """How one file's columns map onto the contract.

    ``read_names`` names every physical column of the file, in file order (contract name
    for matched columns, a placeholder for extras) so a reader can apply them positionally.
    """

    source: str
    header: tuple[str, ...]
    read_names: tuple[str, ...]
    matched: tuple[str, ...]
    missing_optional: tuple[str, ...]
    extra: tuple[str, ...]

    @property
    def warnings(self) -> tuple[str, ...]:
        if not self.extra:
            return ()
        return (f"{self.source}: extra column(s) dropped: {listed(self.extra)}",)


def plan_header(header: list[str] | None, contract: Contract, source: str) -> HeaderPlan:
    """Match a file header to the contract, or raise :class:`~lib.errors.FileError` naming
    what is missing and what is present."""
    if header is None:
        raise FileError("file is empty: a header row naming the columns is required "
                        f"(expected: {', '.join(contract.column_names)})", "file.empty", source)
    wanted = set(contract.column_names)
    read_names: list[str] = []
    positions: dict[str, list[str]] = {}
    extra: list[str] = []
    for i, raw in enumerate(header):
        norm = normalise_name(raw)
        if norm in wanted:
            positions.setdefault(norm, []).append(raw)
            read_names.append(norm)
        else:
            extra.append(raw.strip() or f"<unnamed column {i + 1}>")
            read_names.append(f"_extra_{i}")
    dupes = {k: v for k, v in positions.items() if len(v) > 1}
    if dupes:
        detail = "; ".join(f"{k} <- {', '.join(repr(x) for x in v)}" for k, v in dupes.items())
        raise FileError(f"ambiguous header: several columns map to the same contract "
                        f"column ({detail})", "file.duplicate_columns", source)
    missing_required = [c for c in contract.required_columns if c not in positions]
    if missing_required:
        raise FileError(
            f"missing required column(s) {missing_required} for {contract.ref}; present "
            f"columns: {[h.strip() for h in header]}; required: {list(contract.required_columns)}",
            "file.missing_columns",
            source,
        )
    return HeaderPlan(
        source=source,
        header=tuple(header),
        read_names=tuple(read_names),
        matched=tuple(c for c in contract.column_names if c in positions),
        missing_optional=tuple(c for c in contract.column_names if c not in positions),
        extra=tuple(extra),
    )
