"""A contract's ``pattern`` has one meaning, whichever engine checks it.

The same regular-expression text means different things to Java (the Spark job's
``rlike``), RE2 (DuckDB's ``regexp_matches``) and Python (the contract parser): ``\\s``
holds the vertical tab in Java and not in RE2; ``.`` stops at ``\\r`` and ``\\u2028`` in
Java and only at ``\\n`` in RE2; ``(?i)`` folds ASCII letters only in Java and every
Unicode letter in RE2 and Python (``ſ`` matches ``s``); ``\\d`` is any Unicode digit in
Python; ``[a&&b]`` is an intersection in Java and three literals elsewhere; ``(?P<n>x)``
is a Java syntax error; RE2 has no backreferences or lookaround.

So a pattern is parsed once (Python's own regex parser, for the syntax) into a tree whose
meaning this module fixes, and that tree is written out for each engine with every class
spelled as explicit code-point ranges: :meth:`PortableRegex.java`,
:meth:`PortableRegex.re2` and :meth:`PortableRegex.python` match exactly the same strings
(a differential test runs all three on adversarial text). The meaning:

* ``.`` is any character but a line terminator (``\\n \\r \\u0085 \\u2028 \\u2029``),
  ``\\d`` is ``[0-9]``, ``\\w`` is ``[0-9A-Za-z_]``, ``\\s`` is ``[\\t\\n\\x0B\\f\\r ]``
  (Java's defaults);
* ``(?i)`` (at the start), or a column that maps case, folds ASCII letters only;
* ``^`` and ``\\A`` are the start of the value, ``$``, ``\\Z`` and ``\\z`` its end (values are
  trimmed of line terminators before any rule, so Java's "before a final line break" never
  applies); a match may be anywhere in the value unless anchored.

Refused at contract load (and by ``lake contract check``), with the construct and why:
backreferences, lookahead and lookbehind, atomic groups and possessive quantifiers, word
boundaries (``\\b``: Java's follows Unicode letters, RE2's ASCII), flags other than a
leading ``(?i)``, a ``[`` or ``&&`` inside a class (Java nests and intersects classes),
and a repetition count over 1000 (RE2's limit).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from re import _constants as C  # noqa: N812 - the parser's node kinds
from re import _parser as P  # noqa: N812

from lib.errors import LakeError

MAX_CODE_POINT = 0x10FFFF
MAX_REPEAT_COUNT = 1000  # RE2's limit on {m,n}
LINE_TERMINATORS = (0x0A, 0x0D, 0x85, 0x2028, 0x2029)
_SURROGATES = (0xD800, 0xDFFF)  # no UTF-8 text holds them: left out of every class

Ranges = tuple[tuple[int, int], ...]  # sorted, disjoint, inclusive code-point intervals

_CATEGORIES: dict[object, Ranges] = {
    C.CATEGORY_DIGIT: ((0x30, 0x39),),
    C.CATEGORY_WORD: ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)),
    C.CATEGORY_SPACE: ((0x09, 0x0D), (0x20, 0x20)),
}
_NEGATED = {C.CATEGORY_NOT_DIGIT: C.CATEGORY_DIGIT, C.CATEGORY_NOT_WORD: C.CATEGORY_WORD,
            C.CATEGORY_NOT_SPACE: C.CATEGORY_SPACE}


class PatternError(LakeError):
    """A pattern outside what every engine reads the same way; the message says which
    construct and why."""

    default_code = "contract.pattern"


def _normal(ranges: list[tuple[int, int]]) -> Ranges:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return tuple(out)


def _complement(ranges: Ranges) -> Ranges:
    out, start = [], 0
    for lo, hi in ranges:
        if lo > start:
            out.append((start, lo - 1))
        start = hi + 1
    if start <= MAX_CODE_POINT:
        out.append((start, MAX_CODE_POINT))
    return tuple(out)


def _fold_ascii(ranges: Ranges) -> Ranges:
    """``ranges`` with the other case of every ASCII letter they hold."""
    extra = []
    for lo, hi in ranges:
        for a, b, shift in ((0x41, 0x5A, 32), (0x61, 0x7A, -32)):
            x, y = max(lo, a), min(hi, b)
            if x <= y:
                extra.append((x + shift, y + shift))
    return _normal([*ranges, *extra])


def _without_surrogates(ranges: Ranges) -> Ranges:
    out = []
    for lo, hi in ranges:
        if hi < _SURROGATES[0] or lo > _SURROGATES[1]:
            out.append((lo, hi))
            continue
        if lo < _SURROGATES[0]:
            out.append((lo, _SURROGATES[0] - 1))
        if hi > _SURROGATES[1]:
            out.append((_SURROGATES[1] + 1, hi))
    return tuple(out)


# The tree this module works on: ("set", Ranges, optionally led by "negate": the set is
# folded under (?i) first, then complemented) | ("seq", [node]) | ("alt", [node])
# | ("repeat", (min, max | None, lazy, node)) | ("start",) | ("end",)
Node = tuple


@dataclass(frozen=True)
class PortableRegex:
    """A contract pattern with its one meaning (see the module docstring)."""

    source: str
    tree: Node
    ignore_case: bool  # the pattern starts with (?i)

    def java(self, ignore_case: bool = False) -> str:
        return _emit(self.tree, _JAVA, ignore_case or self.ignore_case)

    def re2(self, ignore_case: bool = False) -> str:
        return _emit(self.tree, _RE2, ignore_case or self.ignore_case)

    def python(self, ignore_case: bool = False) -> str:
        return _emit(self.tree, _PYTHON, ignore_case or self.ignore_case)

    def search(self, text: str, ignore_case: bool = False) -> bool:
        """Whether ``text`` holds a match (what every engine answers)."""
        return re.search(self.python(ignore_case), text) is not None


@functools.lru_cache(maxsize=256)
def portable(pattern: str) -> PortableRegex:
    """Parse ``pattern`` into its one meaning, or raise :class:`PatternError`."""
    _check_class_syntax(pattern)
    try:
        parsed = P.parse(pattern)
    except re.error as exc:
        raise PatternError(f"invalid regular expression: {exc}") from None
    other = parsed.state.flags & ~(C.SRE_FLAG_UNICODE | C.SRE_FLAG_IGNORECASE)
    if other or (parsed.state.flags & C.SRE_FLAG_IGNORECASE and not pattern.startswith("(?i)")):
        raise PatternError("flags other than a leading (?i) are not allowed: (?s), (?m), (?x) "
                           "and (?a) change '.', '^', '$' or spaces differently in Java and "
                           "RE2")
    return PortableRegex(pattern, _tree(parsed.data),
                         bool(parsed.state.flags & C.SRE_FLAG_IGNORECASE))


def _check_class_syntax(pattern: str) -> None:
    """Refuse what Java reads in a class and the others do not: a nested ``[`` and ``&&``."""
    i, in_class, first = 0, False, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            first = False
            continue
        if in_class:
            if ch == "]" and not first:
                in_class = False
            elif ch == "[":
                raise PatternError("a '[' inside a character class is a nested class in Java "
                                   "and a literal elsewhere: write it as '\\['")
            elif pattern.startswith("&&", i):
                raise PatternError("'&&' inside a character class is an intersection in Java "
                                   "and two literals elsewhere: write '\\&\\&' or list the "
                                   "characters")
            first = first and ch == "^"
        elif ch == "[":
            in_class, first = True, True
        i += 1


def _tree(items: list) -> Node:
    seq = [_node(op, av) for op, av in items]
    return seq[0] if len(seq) == 1 else ("seq", seq)


def _node(op: object, av: object) -> Node:  # noqa: C901, PLR0911, PLR0912 - one case per kind
    if op is C.LITERAL:
        return ("set", ((av, av),))
    if op is C.NOT_LITERAL:  # [^a]: folded (under (?i)) before the negation, as in Java
        return ("set", ("negate", (av, av)))
    if op is C.ANY:
        return ("set", _complement(tuple((c, c) for c in LINE_TERMINATORS)))
    if op is C.IN:
        return ("set", _class(av))
    if op is C.BRANCH:
        return ("alt", [_tree(branch) for branch in av[1]])
    if op is C.SUBPATTERN:
        _group, add, remove, body = av
        if add or remove:
            raise PatternError("inline flags on a group, such as (?i:...), are not allowed: "
                               "put (?i) at the start of the pattern")
        return _tree(body.data)
    if op in (C.MAX_REPEAT, C.MIN_REPEAT):
        lo, hi, body = av
        hi = None if hi is C.MAXREPEAT else hi
        if max(lo, hi or 0) > MAX_REPEAT_COUNT:
            raise PatternError(f"a repetition count over {MAX_REPEAT_COUNT} is not allowed "
                               "(RE2's limit)")
        return ("repeat", (lo, hi, op is C.MIN_REPEAT, _tree(body.data)))
    if op is C.AT:
        if av in (C.AT_BEGINNING, C.AT_BEGINNING_STRING):
            return ("start",)
        if av in (C.AT_END, C.AT_END_STRING):
            return ("end",)
        raise PatternError("word boundaries (\\b, \\B) are not allowed: Java's follow Unicode "
                           "letters and RE2's ASCII ones")
    why = {
        C.GROUPREF: "backreferences are not allowed: RE2 has none",
        C.GROUPREF_EXISTS: "conditional groups are not allowed: Java and RE2 have none",
        C.ASSERT: "lookahead and lookbehind are not allowed: RE2 has none",
        C.ASSERT_NOT: "lookahead and lookbehind are not allowed: RE2 has none",
        C.POSSESSIVE_REPEAT: "possessive quantifiers are not allowed: RE2 has none",
        C.ATOMIC_GROUP: "atomic groups are not allowed: RE2 has none",
    }.get(op, f"the construct {op} is not allowed")
    raise PatternError(why)


def _class(items: list) -> Ranges:
    negate = bool(items) and items[0][0] is C.NEGATE
    ranges: list[tuple[int, int]] = []
    for op, av in items[1:] if negate else items:
        if op is C.LITERAL:
            ranges.append((av, av))
        elif op is C.RANGE:
            ranges.append(av)
        elif op is C.CATEGORY and av in _CATEGORIES:
            ranges += _CATEGORIES[av]
        elif op is C.CATEGORY and av in _NEGATED:
            ranges += _complement(_CATEGORIES[_NEGATED[av]])
        else:  # pragma: no cover - Python's parser puts nothing else in a class
            raise PatternError(f"the class item {op} {av} is not allowed")
    # Marked: folding (under (?i)) applies before the negation, as in Java.
    return (("negate",) if negate else ()) + _normal(ranges)  # type: ignore[operator]


# -- writing a tree out for one engine -------------------------------------------------------

@dataclass(frozen=True)
class _Dialect:
    name: str
    start: str
    end: str

    def char(self, cp: int) -> str:
        if chr(cp).isascii() and chr(cp).isalnum():
            return chr(cp)
        if self.name == "python":
            return f"\\U{cp:08x}"
        return f"\\x{{{cp:x}}}"


_JAVA = _Dialect("java", r"\A", r"\z")
_RE2 = _Dialect("re2", r"\A", r"\z")
_PYTHON = _Dialect("python", r"\A", r"\Z")


def _set_text(node_ranges: tuple, dialect: _Dialect, ignore_case: bool) -> str:
    negate = bool(node_ranges) and node_ranges[0] == "negate"
    ranges: Ranges = tuple(node_ranges[1:] if negate else node_ranges)
    if ignore_case:
        ranges = _fold_ascii(ranges)
    if negate:
        ranges = _complement(ranges)
    ranges = _without_surrogates(ranges)
    if not ranges:
        return "[^\\x{0}-\\x{10ffff}]" if dialect.name != "python" else "(?!)"
    if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
        return dialect.char(ranges[0][0])
    parts = [dialect.char(lo) if lo == hi else f"{dialect.char(lo)}-{dialect.char(hi)}"
             for lo, hi in ranges]
    return "[" + "".join(parts) + "]"


def _emit(node: Node, dialect: _Dialect, ignore_case: bool) -> str:
    kind = node[0]
    if kind == "set":
        return _set_text(node[1], dialect, ignore_case)
    if kind == "seq":
        return "".join(_emit(n, dialect, ignore_case) for n in node[1])
    if kind == "alt":
        return "(?:" + "|".join(_emit(n, dialect, ignore_case) for n in node[1]) + ")"
    if kind == "repeat":
        lo, hi, lazy, body = node[1]
        count = ("*" if (lo, hi) == (0, None) else "+" if (lo, hi) == (1, None)
                 else "?" if (lo, hi) == (0, 1) else f"{{{lo},}}" if hi is None
                 else f"{{{lo}}}" if lo == hi else f"{{{lo},{hi}}}")
        return "(?:" + _emit(body, dialect, ignore_case) + ")" + count + ("?" if lazy else "")
    if kind == "start":
        return dialect.start
    if kind == "end":
        return dialect.end
    raise AssertionError(kind)  # pragma: no cover
