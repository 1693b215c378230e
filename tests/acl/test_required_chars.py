"""required_chars: the characters one of which every match of a pattern contains.

A matcher scans a value holding none of a group's rare required characters with a lean
database that leaves those patterns out (matchers._LeanMatcher), so a set that is too small
would let an attack through. The table pins the analysis; the property tests generate matches
of patterns (the shipped rules' included) and check that each holds a character of the set."""

from __future__ import annotations

import functools

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from wafproxy.acl.compile import default_rule_files, load_rule_files
from wafproxy.acl.matchers import Atom, build_group
from wafproxy.acl.required_chars import NON_ASCII, _python_syntax, is_rare, required_chars

TABLE: list[tuple[str, bool, frozenset[str] | None]] = [
    ("<script", False, frozenset("<")),
    ("x+", False, frozenset("x")),
    ("x*", False, None),
    ("x?<", False, frozenset("<")),
    ("(?i)x", False, frozenset("xX")),
    ("x", True, frozenset("xX")),
    ("(?i)(?-i:x)", False, frozenset("x")),
    ("(?i:x)", False, frozenset("xX")),
    ("[<>]", False, frozenset("<>")),
    ("[<-<]", False, frozenset("<")),
    ("[^<]", False, None),
    ("[\\s<]", False, None),
    ("\\d", False, None),
    (".", False, None),
    ("^$", False, None),
    ("\\b", False, None),
    ("(?:\\$\\(|`)", False, frozenset("$`")),
    ("(?:<|)", False, None),
    ("(?:<){2,3}", False, frozenset("<")),
    ("<+?", False, frozenset("<")),
    ("a(?:b|c)", False, frozenset("a")),  # the cheaper part: one character, not two
    ("(?:bb|cc)<", False, frozenset("<")),  # rare beats common
    ("\\\\z", False, frozenset("\\")),  # an escaped backslash, then z; not the anchor
    ("a\\z", False, frozenset("a")),
    ("\\x60", False, frozenset("`")),
    # matching is byte-wise: a byte from 0x80 up, or a non-ASCII character (its UTF-8 bytes),
    # needs a value that is not ASCII
    ("[\\xc0\\xc1][\\x80-\\xbf]", False, frozenset({NON_ASCII})),
    ("é", True, frozenset({NON_ASCII})),
    ("[\\x70-\\x90]", False, frozenset("pqrstuvwxyz{|}~\x7f") | {NON_ASCII}),
    ("[\\x00-\\xff]", False, None),
    ("[^\\x80-\\xbf]", False, None),
    # RE2 syntax Python reads differently or not at all: nothing is certain
    ("[[:alpha:]]<", False, None),
    ("[a[:digit:]]", False, None),  # Python would read "[a[:digit:]" and then a "]"
    ("[:;]<", False, frozenset("<")),  # a colon in a class is no POSIX class
    ("x{,2}<", False, frozenset("<")),  # a repeat to Python, text to RE2: either needs "<"
    ("\\pL<", False, None),
    ("\\Q<\\E", False, None),
    ("<{,2}", False, None),
    ("a(?i)<", False, None),
    ("(", False, None),
]


@pytest.mark.parametrize(("regex", "caseless", "expected"), TABLE)
def test_required_chars(regex: str, caseless: bool, expected: frozenset[str] | None) -> None:
    assert required_chars(regex, caseless) == expected


@pytest.mark.parametrize(
    ("chars", "rare"),
    [
        (frozenset("<"), True),
        (frozenset("<('"), True),
        (frozenset("<a"), False),
        (frozenset(), False),
    ],
)
def test_is_rare(chars: frozenset[str], rare: bool) -> None:
    assert is_rare(chars) is rare


@functools.cache
def gated_patterns() -> tuple[str, ...]:
    """Every pattern of the shipped rules whose matches need a rare character, and the
    table's own."""
    acl = load_rule_files(default_rule_files()).acls["default"]
    shipped = {p for inp in acl.scan_inputs for p in inp.patterns if isinstance(p, str)}
    table = {regex for regex, caseless, _ in TABLE if not caseless}
    gated = sorted(p for p in shipped | table if _gated(p))
    assert len(gated) > 100  # the shipped rules have hundreds: the analysis reads them
    return tuple(gated)


def _gated(regex: str) -> bool:
    chars = required_chars(regex)
    return chars is not None and is_rare(chars)


def _re2_matches(regex: str, value: str) -> bool:
    """Whether the product's RE2 path (the engine Hyperscan is held to) finds the pattern."""
    return build_group(0, "f", (), [Atom(0, regex)], engine="re2").scan([value]) == {0}


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_every_match_holds_a_required_character(data: st.DataObject) -> None:
    regex = data.draw(st.sampled_from(gated_patterns()))
    value = data.draw(
        st.from_regex(_python_syntax(regex), alphabet=st.characters(max_codepoint=255))
    )
    assume(_re2_matches(regex, value))
    chars = required_chars(regex)
    assert chars is not None
    assert any(c in value for c in chars) or (NON_ASCII in chars and not value.isascii()), (
        regex,
        value,
        chars,
    )
