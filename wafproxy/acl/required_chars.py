"""The characters one of which every match of a pattern contains, and whether they are rare.

Why: the words of ordinary text start the engines of many command, markup and SQL patterns in a
scan (bench/RESULTS.md, 2026-11-30: a 2 KB product form costs 3-13x what 2 KB of one letter
does), yet many of those patterns cannot match without a character ordinary text seldom holds
(``<`` for markup, a backquote or ``$`` for a shell, a parenthesis for a function call). A
matcher group also compiles a lean database without those patterns and scans a value holding
none of their characters with it alone (matchers.py ``_LeanMatcher``).

The pattern is read with Python's own regular-expression parser, at load time only (never on
request data). Where Python would read an RE2 construct differently (POSIX classes, ``\\p``,
``\\Q``) or not at all, the pattern counts as requiring nothing: it is then scanned on every
value, as before.
"""

from __future__ import annotations

import functools
import re._constants as _sre  # type: ignore[import-not-found,unused-ignore]
import re._parser as _parser  # type: ignore[import-not-found,unused-ignore]
import warnings
from collections.abc import Iterable
from typing import Any

RARE = "<>`$\\^{}|~[]'\"();*#%!"
"""Characters ordinary text seldom holds: markup, shell and code punctuation."""
NON_ASCII = "\x80"
"""In a required set: any byte from 0x80 up. Matching is byte-wise (matchers.py): ``\\xc0`` in a
pattern is that byte, ``é`` its UTF-8 bytes, and either needs a value that is not ASCII."""

_RARE_SET = frozenset(RARE) | {NON_ASCII}
_COMMON_COST = 1000
_MAX_CLASS = 64
_UNREAD = ("\\p", "\\P", "\\Q", "\\C", "\\x{")
"""RE2 syntax Python's parser reads differently or refuses. (``x{,n}`` is a repeat to Python
and text to RE2: read as a repeat it needs nothing, which is never too little.)"""
_IGNORECASE = _sre.SRE_FLAG_IGNORECASE


@functools.lru_cache(maxsize=4096)  # a web ACL repeats patterns across fields; reloads repeat all
def required_chars(regex: str, caseless: bool = False) -> frozenset[str] | None:
    """Characters one of which every match of ``regex`` (RE2 syntax) contains; None when no
    such set is certain (the pattern can match without any particular character)."""
    if any(token in regex for token in _UNREAD) or _posix_class(regex):
        return None
    try:
        with warnings.catch_warnings():  # "possible nested set": a note about Python's future
            warnings.simplefilter("ignore")
            parsed = _parser.parse(_python_syntax(regex))
    except Exception:  # whatever Python cannot read needs nothing: scanned always, as before
        return None
    fold = caseless or bool(parsed.state.flags & _IGNORECASE)
    return _sequence(list(parsed), fold)


def is_rare(chars: frozenset[str]) -> bool:
    return bool(chars) and chars <= _RARE_SET


def _posix_class(regex: str) -> bool:
    """``[[:alpha:]]`` may be there: Python would read a class of those letters and a ``]``."""
    start = regex.find("[:")
    return start != -1 and ":]" in regex[start:]


def _python_syntax(regex: str) -> str:
    """``\\z`` (end of text) is ``\\Z`` to Python; every other escape is read alike."""
    out: list[str] = []
    i = 0
    while i < len(regex):
        if regex[i] == "\\" and i + 1 < len(regex):
            pair = regex[i : i + 2]
            out.append("\\Z" if pair == "\\z" else pair)
            i += 2
        else:
            out.append(regex[i])
            i += 1
    return "".join(out)


def _cost(chars: frozenset[str]) -> int:
    """Fewer characters are better, rare ones far better (only those can spare a scan)."""
    return sum(1 if c in _RARE_SET else _COMMON_COST for c in chars)


def _sequence(items: Iterable[tuple[Any, Any]], fold: bool) -> frozenset[str] | None:
    """A concatenation needs what any one of its parts needs: the rarest such set."""
    best: frozenset[str] | None = None
    for op, arg in items:
        need = _item(op, arg, fold)
        if need is not None and (best is None or _cost(need) < _cost(best)):
            best = need
    return best


def _item(op: Any, arg: Any, fold: bool) -> frozenset[str] | None:
    if op is _sre.LITERAL:
        return _folded({_char(arg)}, fold)
    if op is _sre.IN:
        return _class(arg, fold)
    if op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT):
        low, _high, body = arg
        return _sequence(body, fold) if low >= 1 else None
    if op is _sre.SUBPATTERN:
        _group, add, remove, body = arg
        if add & _IGNORECASE:
            fold = True
        elif remove & _IGNORECASE:
            fold = False
        return _sequence(body, fold)
    if op is _sre.BRANCH:
        union: set[str] = set()
        for alternative in arg[1]:
            need = _sequence(alternative, fold)
            if need is None:
                return None
            union |= need
        return frozenset(union)
    return None  # anchors, any byte, negated literals, references: no character for sure


def _class(members: Iterable[tuple[Any, Any]], fold: bool) -> frozenset[str] | None:
    chars: set[str] = set()
    for op, arg in members:
        if op is _sre.LITERAL:
            chars.add(_char(arg))
        elif op is _sre.RANGE and min(arg[1], 0x7F) - arg[0] < _MAX_CLASS:
            chars.update(chr(code) for code in range(arg[0], min(arg[1], 0x7F) + 1))
            if arg[1] >= 0x80:
                chars.add(NON_ASCII)
        else:  # a negation, a category (\d, \w), a wide ASCII range
            return None
    return _folded(chars, fold)


def _char(code: int) -> str:
    return chr(code) if code < 0x80 else NON_ASCII


def _folded(chars: set[str], fold: bool) -> frozenset[str]:
    """Both cases of letters under (?i). Only rare characters gate a scan, and no letter is
    rare, so Unicode's further case partners (the Kelvin sign) need not be listed."""
    if fold:
        chars = chars | {c.swapcase() for c in chars}
    return frozenset(chars)
