"""CSV cells that a spreadsheet opens as text, never as a formula.

Excel, LibreOffice and Google Sheets run a cell that starts with ``=``, ``+``, ``-`` or
``@`` as a formula (``=HYPERLINK(...)`` leaks data, ``=cmd|...`` ran programs in older
versions), and a leading tab or carriage return hides such a start from a naive check. Every
text cell that starts with one of them is written with a ``'`` before it, which spreadsheets
show as text and do not display; numbers (a negative amount) are written as they are. JSON
output is never changed: a program reading it gets the exact value.
"""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(text: str) -> str:
    """``text`` as a CSV cell a spreadsheet shows as text (``'`` before a formula start)."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text
