"""One CSV line split into fields exactly as the Spark job's reader splits it.

Spark reads CSV with the univocity parser (quote and escape ``"``, delimiter ``,``,
``unescapedQuoteHandling=STOP_AT_DELIMITER``). A line without a quote is split at every
comma, which the DuckDB engine does in SQL; a line holding a quote comes here. What the
parser does, field by field:

* a field that does not start with a quote is everything up to the next comma, quotes
  included (``a"b``, `` "y"``);
* a field that starts with a quote is read up to the closing quote, ``""`` standing for
  one quote; blanks between the closing quote and the comma are skipped (every character
  up to the space: tabs, vertical tabs, other control characters);
* a closing quote followed by anything else: the field is the quote, what was read, the
  quote, then everything up to the next comma (``"a""b"x`` -> ``"a"b"x``);
  the same after blanks is :class:`NotReproduced` (univocity then reads on in ways that
  depend on the quotes that follow);
* a quote that is never closed takes the rest of the line (``"abc,d`` -> ``abc,d``); a
  lone quote at the end of a line is itself (``"``).

An empty field, quoted or not, is null (Spark's ``nullValue`` is the empty string); the
caller turns ``""`` into null.
"""

from __future__ import annotations

from lib.errors import LakeError

# What univocity skips after a closing quote: every character from U+0001 to the space.
BLANKS = "".join(map(chr, range(1, 33)))


class NotReproduced(LakeError):
    """A line this module cannot split exactly as Spark does: the upload goes to the Spark
    engine."""

    default_code = "engine.not_reproduced"


def split_line(line: str) -> list[str]:
    """The fields of one line (see the module docstring)."""
    out: list[str] = []
    i, n = 0, len(line)
    while True:
        if i < n and line[i] == '"':
            value, i = _quoted(line, i + 1)
        else:
            end = line.find(",", i)
            end = n if end < 0 else end
            value, i = line[i:end], end
        out.append(value)
        if i >= n:
            return out
        i += 1  # the comma
        if i == n:
            out.append("")
            return out


def _quoted(line: str, i: int) -> tuple[str, int]:
    """A quoted field whose opening quote ends at ``i``: (value, index of the comma or the
    end of the line)."""
    n = len(line)
    if i == n:  # a lone quote ends the line
        return '"', n
    parts: list[str] = []
    while True:
        close = line.find('"', i)
        if close < 0:  # never closed: the rest of the line
            parts.append(line[i:])
            return "".join(parts), n
        parts.append(line[i:close])
        if close + 1 < n and line[close + 1] == '"':  # a doubled quote is one quote
            parts.append('"')
            i = close + 2
            continue
        j = close + 1
        while j < n and line[j] in BLANKS:
            j += 1
        if j == n or line[j] == ",":
            return "".join(parts), j
        end = line.find(",", close + 1)
        end = n if end < 0 else end
        if j > close + 1:
            raise NotReproduced("a quoted field whose closing quote is followed by blanks "
                                "and then more text")
        return '"' + "".join(parts) + '"' + line[close + 1:end], end
