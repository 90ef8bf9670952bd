"""Header matching against a contract. Pure Python: used by the Spark reader and, without
Spark, by upload-time checks.

Header names are matched case-insensitively after trimming; runs of spaces, dashes and
other punctuation count as one underscore (``"Order ID"`` matches ``order_id``). Column
order is free. Extra columns are dropped with a warning; a missing required column fails
the whole file; a missing optional column is read as all null.
"""

from __future__ import annotations

import csv
import difflib
import os
import re
from collections.abc import Iterable
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


def closest_names(missing: Iterable[str], found: Iterable[str]) -> str:
    """``'OrderNumber' for order_id, 'Qty' for quantity`` (or ``""``): for each missing
    column, the most similar name of ``found`` (a header's extra columns, a file's keys),
    compared as :func:`normalise_name` makes them and without underscores; an abbreviation
    (its letters in order, the same first letter) and a shared stem count as similar. Each found name is
    suggested once."""
    pool = {normalise_name(f).replace("_", ""): f for f in found if f.strip()}
    out = []
    for name in missing:
        want = name.replace("_", "")
        scored = [(max(difflib.SequenceMatcher(None, want, key).ratio(),
                       0.7 if _abbreviates(key, want) else 0.0,
                       0.65 if _shares_stem(key, want) else 0.0), key) for key in pool]
        best = max(scored, default=(0.0, ""))
        if best[0] >= 0.6:
            out.append(f"{pool.pop(best[1]).strip()!r} for {name}")
    return ", ".join(out)


def _shares_stem(key: str, word: str) -> bool:
    """``ordernumber`` and ``orderid`` share ``order``: four letters or more, and half the
    word."""
    stem = len(os.path.commonprefix([key, word]))
    return stem >= 4 and stem * 2 >= len(word)


def _abbreviates(short: str, word: str) -> bool:
    """``qty`` abbreviates ``quantity``: three letters or more, the same first letter, and
    every letter in order in the word."""
    if len(short) < 3 or len(short) >= len(word) or short[0] != word[0]:
        return False
    letters = iter(word)
    return all(ch in letters for ch in short)


def suggestion(missing: Iterable[str], found: Iterable[str]) -> str:
    """``; closest names in the file: ... (rename them to the contract's names)``, or ``""``."""
    close = closest_names(missing, found)
    return (f"; closest names in the file: {close} (rename them to the contract's names)"
            if close else "")


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
            f"columns: {[h.strip() for h in header]}; required: {list(contract.required_columns)}"
            f"{suggestion(missing_required, extra)}",
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
