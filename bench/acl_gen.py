"""Synthetic web ACLs of N regex atoms, for the engine's cost-versus-size curve.

Patterns are random pronounceable words in a few realistic templates (literals, case-insensitive
word pairs, digit runs, anchors, alternations, character classes), all on ``all_query_arguments``
with ``url_decode``. Each comes with a sample string it matches, so the benchmark can prove that
the last of N patterns is really scanned.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

import yaml

SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
SET_NAME = "scale-set"


class Layout(enum.Enum):
    RULES = "rules"
    """N regex_match rules: N rule objects walked per request, one shared scan."""
    PATTERNS = "patterns"
    """One regex_pattern_set rule with N patterns: one rule, one scan."""


@dataclass(frozen=True)
class Pattern:
    regex: str
    sample: str
    """A query-argument value (after url_decode) that the regex matches."""


def word(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(3, 5)))


def pattern(rng: random.Random) -> Pattern:
    a, b = word(rng), word(rng)
    templates = [
        Pattern(a, f"x{a}x"),
        Pattern(rf"(?i){a}\s*{b}", f"{a.upper()} {b}"),
        Pattern(rf"{a}[0-9]{{2,4}}", f"{a}2024"),
        Pattern(rf"^{a}-[a-z]+$", f"{a}-tool"),
        Pattern(rf"{a}(?:_|-|\.){b}", f"{a}.{b}"),
        Pattern(rf"[a-z0-9.]+@{a}\.(?:com|net|org)", f"jo@{a}.net"),
        Pattern(rf"\b{a}\b.{{0,20}}\b{b}\b", f"{a} and {b}"),
    ]
    return rng.choice(templates)


def patterns(count: int, seed: int) -> list[Pattern]:
    rng = random.Random(seed)
    return [pattern(rng) for _ in range(count)]


def web_acl(items: list[Pattern], layout: Layout) -> str:
    """The YAML text of web ACL ``scale``: default allow, every pattern blocks."""
    acl: dict[str, object] = {"web_acl": "scale", "default_action": "allow"}
    if layout is Layout.RULES:
        acl["rules"] = [_regex_rule(index, item.regex) for index, item in enumerate(items)]
    else:
        acl["regex_pattern_sets"] = {SET_NAME: {"regular_expressions": [i.regex for i in items]}}
        statement = {"ref": SET_NAME, "field": "all_query_arguments", "transforms": ["url_decode"]}
        acl["rules"] = [
            {"name": SET_NAME, "priority": 1, "action": "block",
             "statement": {"regex_pattern_set": statement}},
        ]  # fmt: skip
    return yaml.safe_dump(acl, sort_keys=False)


def _regex_rule(index: int, regex: str) -> dict[str, object]:
    statement = {"field": "all_query_arguments", "regex": regex, "transforms": ["url_decode"]}
    return {
        "name": f"r{index:05d}",
        "priority": index + 1,
        "action": "block",
        "statement": {"regex_match": statement},
    }
