"""``*`` and ``?`` wildcards, as IAM matches actions and StringLike conditions (no regex)."""

from __future__ import annotations


def glob_match(pattern: str, text: str) -> bool:
    """Linear-time wildcard match (the classic two-pointer walk with backtracking to the last
    ``*``): no other character is special."""
    if pattern == "*":
        return True
    if "*" not in pattern and "?" not in pattern:
        return pattern == text
    p = t = 0
    star = -1
    mark = 0
    while t < len(text):
        if p < len(pattern) and pattern[p] in ("?", text[t]):
            p += 1
            t += 1
        elif p < len(pattern) and pattern[p] == "*":
            star, mark = p, t
            p += 1
        elif star >= 0:
            p = star + 1
            mark += 1
            t = mark
        else:
            return False
    while p < len(pattern) and pattern[p] == "*":
        p += 1
    return p == len(pattern)
