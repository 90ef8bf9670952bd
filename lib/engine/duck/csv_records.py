"""A whole CSV file cut into records exactly as the Spark job's multi-line reader cuts it.

A file whose quoted fields hold line breaks is read by Spark in multi-line mode: the
univocity parser over the whole file (one task), not Hadoop's line reader. What it does
(each point checked against Spark on small files, then on seeded corpora by the
differential harness):

* the file's line separator is its first line ending (``\\r\\n``, ``\\r`` or ``\\n``); only it
  ends a record, and inside quotes it is read as ``\\n``;
* an empty line holds no record; a line of blanks is a record of one field;
* fields are split as :func:`lib.engine.duck.csv_line.split_line` splits a line, quoted
  fields running over line ends; a quote right after a closing quote's text makes the field
  run to the next comma or line end;
* a malformed record's raw text (``_raw_record``) is its text as it is in the file with its
  line end, through :func:`strip_line_end`: a ``\\r`` separator stays on it, and a record
  ending in ``\\r`` in a ``\\n`` file loses that ``\\r``.

The first record is the header. What this module does not follow is
:class:`~lib.engine.duck.csv_line.NotReproduced`: outside quotes, a line-break character
that is not the separator (a lone ``\\n`` or ``\\r`` in a ``\\r\\n`` file, a ``\\n`` in a
``\\r`` file: univocity's answer then depends on where its read buffer ends; inside quotes
they are kept as they are), a quoted field never closed, a closing quote followed by blanks
and then text.
"""

from __future__ import annotations

from collections.abc import Iterator

from lib.engine.duck.csv_line import BLANKS, NotReproduced

_AFTER_QUOTE = BLANKS.replace("\n", "")  # skipped between a closing quote and the comma
_END = "\x00"  # a line separator other than \n, while a file is cut


def line_separator(text: str) -> str:
    """The file's line separator: its first line ending (``\\n`` when it has none)."""
    for i, ch in enumerate(text):
        if ch == "\n":
            return "\n"
        if ch == "\r":
            return "\r\n" if text.startswith("\n", i + 1) else "\r"
    return "\n"


def records(text: str) -> Iterator[tuple[str, str]]:
    """Each record of a whole file, in file order, the header first: (its text with the
    separator read as ``\\n``, which its fields are split from; its raw text, see the module
    docstring)."""
    sep = line_separator(text)
    # The separator becomes one character no file holds (the upload check refuses NUL), so
    # that other line-break characters stay what they are.
    end_mark = "\n" if sep == "\n" else _END
    if sep != "\n":
        text = text.replace(sep, _END)
    i, n = 0, len(text)
    while i < n:
        if text[i] == end_mark:  # an empty line
            i += 1
            continue
        end = _record_end(text, i, end_mark, strict=sep != "\n")
        record = text[i:end]
        raw = record if sep == "\n" else record.replace(_END, sep)
        yield (record if sep == "\n" else record.replace(_END, "\n"),
               strip_line_end(raw + sep if end < n else raw))
        i = end + 1


def strip_line_end(text: str) -> str:
    """Scala's ``stripLineEnd`` (2.12), which Spark applies to a malformed record's text as
    read with its line end: one trailing ``\\n`` (with a ``\\r`` before it) or ``\\f``."""
    if text.endswith("\r\n"):
        return text[:-2]
    return text[:-1] if text.endswith(("\n", "\f")) else text


def _record_end(text: str, i: int, end_mark: str, strict: bool) -> int:
    """The index of the ``end_mark`` (or the end of the text) that ends the record at ``i``;
    ``strict``: a ``\\n`` or ``\\r`` outside quotes is refused."""
    n = len(text)
    while True:
        start = i
        if text.startswith('"', i):
            j = i + 1
            while True:
                close = text.find('"', j)
                if close < 0:
                    raise NotReproduced("a quoted field is never closed")
                if text.startswith('"', close + 1):  # a doubled quote is one quote
                    j = close + 2
                    continue
                break
            k = close + 1
            while k < n and text[k] in _AFTER_QUOTE:
                k += 1
            start = close + 1
            if k < n and text[k] != "," and text[k] != end_mark:
                if k > close + 1:
                    raise NotReproduced("a quoted field whose closing quote is followed by "
                                        "blanks and then more text")
                k = _unquoted_end(text, k, end_mark)  # the field runs on, quotes and all
            i = k
        else:
            i = _unquoted_end(text, i, end_mark)
        if strict and ("\n" in text[start:i] or "\r" in text[start:i]):
            raise NotReproduced("a line-break character outside quotes that is not the "
                                "file's line separator")
        if i >= n or text[i] == end_mark:
            return i
        i += 1  # the comma


def _unquoted_end(text: str, i: int, end_mark: str) -> int:
    """The index of the comma or ``end_mark`` (or the end) after an unquoted field at ``i``."""
    comma, end = text.find(",", i), text.find(end_mark, i)
    if end < 0:
        end = len(text)
    return comma if 0 <= comma < end else end
