from __future__ import annotations

import functools
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wafproxy.acl.matchers import (
    HYPERSCAN_AVAILABLE,
    Atom,
    Constraint,
    MatchGroup,
    build_group,
    literal_regex,
    validate_regex,
)

needs_hyperscan = pytest.mark.skipif(not HYPERSCAN_AVAILABLE, reason="hyperscan not installed")
ENGINES = [pytest.param("hyperscan", marks=needs_hyperscan), "re2"]


def group(patterns: Sequence[str | Atom], engine: str) -> MatchGroup:
    atoms = [p if isinstance(p, Atom) else Atom(i, p) for i, p in enumerate(patterns)]
    return build_group(1, "uri_path", ("none",), atoms, engine=engine)


def matches(regex: str, value: str, engine: str) -> bool:
    return group([regex], engine).scan([value]) == {0}


# ---------------------------------------------------------------- literal_regex

C = Constraint


@pytest.mark.parametrize(
    ("value", "constraint", "expected"),
    [
        ("abc", C.EXACTLY, r"\Aabc\z"),
        ("/admin", C.STARTS_WITH, r"\A\/admin"),
        (".php", C.ENDS_WITH, r"\.php\z"),
        ("a.b*c", C.CONTAINS, r"a\.b\*c"),
        ("select", C.CONTAINS_WORD, r"(?:\A|[^A-Za-z0-9_])select(?:[^A-Za-z0-9_]|\z)"),
        (r"^$()[]{}|?+\/", C.CONTAINS, r"\^\$\(\)\[\]\{\}\|\?\+\\\/"),
        ("a b\n", C.CONTAINS, r"a\x20b\x0a"),
        ("é", C.CONTAINS, r"\xc3\xa9"),
        ("\udcff", C.CONTAINS, r"\xff"),
        ("under_score", C.CONTAINS, "under_score"),
        ("", C.CONTAINS, "(?:)"),
    ],
)
def test_literal_regex_text(value: str, constraint: Constraint, expected: str) -> None:
    assert literal_regex(value, constraint) == expected
    assert validate_regex(expected) is None


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("value", "constraint", "text", "expected"),
    [
        ("abc", C.EXACTLY, "abc", True),
        ("abc", C.EXACTLY, "abcd", False),
        ("abc", C.EXACTLY, "xabc", False),
        ("abc", C.EXACTLY, "abc\n", False),
        ("abc", C.EXACTLY, "ABC", False),
        ("/admin", C.STARTS_WITH, "/admin/users", True),
        ("/admin", C.STARTS_WITH, "/x/admin", False),
        ("/admin", C.STARTS_WITH, "\n/admin", False),
        (".php", C.ENDS_WITH, "/index.php", True),
        (".php", C.ENDS_WITH, "/index.php\n", False),
        (".php", C.ENDS_WITH, "/indexXphp", False),
        ("a.b*c", C.CONTAINS, "xxa.b*cxx", True),
        ("a.b*c", C.CONTAINS, "aXbbbc", False),
        ("(x|y)", C.CONTAINS, "(x|y)", True),
        ("(x|y)", C.CONTAINS, "x", False),
        ("select", C.CONTAINS_WORD, "select", True),
        ("select", C.CONTAINS_WORD, "1 union select 2", True),
        ("select", C.CONTAINS_WORD, "1;select(", True),
        ("select", C.CONTAINS_WORD, "a\nselect\nb", True),
        ("select", C.CONTAINS_WORD, "selection", False),
        ("select", C.CONTAINS_WORD, "preselect", False),
        ("select", C.CONTAINS_WORD, "_select", False),
        ("select", C.CONTAINS_WORD, "select_", False),
        ("select", C.CONTAINS_WORD, "select9", False),
        ("select", C.CONTAINS_WORD, "SELECT", False),
        ("select", C.CONTAINS_WORD, "selectx select", True),
        ("é", C.CONTAINS_WORD, "café", False),
        ("é", C.CONTAINS_WORD, "caf é!", True),
        ("café", C.CONTAINS, "un café noir", True),
        ("café", C.CONTAINS, "un cafe noir", False),
        ("a\x00b", C.EXACTLY, "a\x00b", True),
        ("", C.CONTAINS, "anything", True),
    ],
)
def test_literal_regex_semantics(
    value: str, constraint: Constraint, text: str, expected: bool, engine: str
) -> None:
    assert matches(literal_regex(value, constraint), text, engine) is expected


# ---------------------------------------------------------------- validate_regex


@pytest.mark.parametrize(
    "regex",
    [
        "abc",
        "(?i)sqlmap|nikto",
        r"\A/admin\z",
        r"^\d{1,3}(\.\d{1,3}){3}$",
        "(?P<name>a+)b",
        "[[:alpha:]]+",
        "é+",
        r"\x{ff}",
        r"(?s)<!--.*-->",
    ],
)
def test_validate_regex_accepts(regex: str) -> None:
    assert validate_regex(regex) is None


@pytest.mark.parametrize(
    ("regex", "reason"),
    [
        (r"(a)\1", r"backreferences (\1) are not supported: they need backtracking"),
        (r"(?P<n>a)\k<n>", "backreferences"),
        (r"(?P<n>a)(?P=n)", "backreferences ((?P=name))"),
        ("(?>a+)b", "atomic groups"),
        ("foo(?=bar)", "lookaround ((?=, (?!, (?<=, (?<!) is not supported"),
        ("foo(?!bar)", "lookaround"),
        ("(?<=foo)bar", "lookaround"),
        ("(?<!foo)bar", "lookaround"),
        ("(abc", "invalid regex: missing ): (abc"),
        ("abc)", "invalid regex: unexpected ): abc)"),
        ("[abc", "invalid regex: missing ]"),
        ("", "empty pattern"),
        ("a{1001}", "invalid regex: invalid repetition size"),
        ("a++", "invalid regex: bad repetition operator"),
        (r"abc\Z", r"use \z"),
        (r"\x{100}", "invalid regex"),
    ],
)
def test_validate_regex_rejects(regex: str, reason: str) -> None:
    message = validate_regex(regex)
    assert message is not None
    assert reason in message


# ---------------------------------------------------------------- MatchGroup.scan

SCAN_TABLE: list[tuple[str, list[str | Atom], list[str], set[int]]] = [
    ("anchors", ["^abc", "abc$", r"\Aabc\z"], ["abc"], {0, 1, 2}),
    ("trailing newline", ["^abc", "abc$", r"\Aabc\z", r"abc\n$"], ["abc\n"], {0, 3}),
    ("leading newline", ["^abc", "abc$", r"\Aabc"], ["\nabc"], {1}),
    ("empty pattern match", ["^$", "a*", "a"], [""], {0, 1}),
    ("newline only", ["^$", r"^\n$", "$"], ["\n"], {1, 2}),
    ("anchor per value", ["^foo$", "^bar$", "foobar", "o$"], ["foo", "bar"], {0, 1, 3}),
    ("no values", ["a*", "^$"], [], set()),
    ("caseless flag", [Atom(0, "abc", caseless=True), Atom(1, "abc")], ["xABCx"], {0}),
    ("inline caseless", ["(?i)abc", "(?i:a)BC", "(?i:a)bc"], ["ABC"], {0, 1}),
    ("dot and newline", ["a.b", "(?s)a.b", "a[^x]b"], ["a\nb"], {1, 2}),
    ("vertical tab", [r"a\sb", r"a\vb", r"a[\s]b", r"a\Sb"], ["a\x0bb"], {1, 3}),
    ("whitespace", [r"a\sb", r"a[\s]b", r"a\Sb", r"a[^\s]b"], ["a b", "a\tb"], {0, 1}),
    ("dollar in class", ["[$]", r"\$", "a$"], ["$a"], {0, 1, 2}),
    ("multiline", [r"(?m)^b$", r"^b$", r"(?m:^a$)"], ["a\nb\nc"], {0, 2}),
    ("non-ASCII literal", ["é", "^café$", "É", "(?i)É", "cafe"], ["café"], {0, 1}),
    ("byte-wise dot", ["^.$", "^..$", r"^\C\C$"], ["é"], {1, 2}),
    ("non-ASCII in class", ["^[é]$", "^[é]+$"], ["é"], {1}),
    ("invalid UTF-8", [r"\xff", r"^.$", "é", r"\x{ff}"], ["\udcff"], {0, 1, 3}),
    ("raw UTF-8 bytes", ["é", r"^\xc3\xa9$"], ["\udcc3\udca9"], {0, 1}),
    (
        "ASCII-only folding",
        [Atom(0, "é", caseless=True), Atom(1, "ABC", caseless=True)],
        ["É"],
        set(),
    ),
    # é is two non-word bytes: "pré" ends on a word boundary
    ("word boundary", [r"\bselect\b", r"\Bselect", r"\bé"], ["a select b", "préselect"], {0, 2}),
    ("alternation", ["(?i)sqlmap|nikto", "^(?:GET|POST)$"], ["nikto/2.1", "POST"], {0, 1}),
    ("classes", [r"^\d{1,3}(\.\d{1,3}){3}$", "[[:alpha:]]+", r"\w"], ["10.0.0.1"], {0, 2}),
    ("NUL bytes", ["a\x00b", r"a\x00b", r"^a.b$"], ["a\x00b"], {0, 1, 2}),
    ("ungreedy flag", ["(?U)a+b", r"\Qa.b\E"], ["xaab", "a.b"], {0, 1}),
    # RE2 reads \12 as octal even after 12 groups; Hyperscan would read a backreference there
    (
        "octal escapes",
        [r"a\12b", r"\0", r"(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)(k)(l)\12"],
        ["a\nb", "\x00"],
        {0, 1},
    ),
    ("unicode class", [r"\p{Greek}", r"\pL"], ["\u03b1"], {1}),
]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("patterns", "values", "expected"),
    [pytest.param(p, v, e, id=name) for name, p, v, e in SCAN_TABLE],
)
def test_scan(
    patterns: list[str | Atom], values: list[str], expected: set[int], engine: str
) -> None:
    assert group(patterns, engine).scan(values) == expected


@needs_hyperscan
def test_hyperscan_group_keeps_what_it_can_and_falls_back_for_the_rest() -> None:
    patterns = ["abc$", r"\s+", "[$]", "(?i)x", "(?m)^b", "(?U)a+", r"\Qa\E", "a\x00b"]
    built = group(patterns, "hyperscan")
    assert built.engine == "hyperscan"
    assert built.fallback_ids == {4, 5, 6, 7}
    assert built.scan(["abc", "b", "a\x00b"]) == {0, 4, 5, 6, 7}


def test_re2_group_reports_its_engine() -> None:
    built = group(["abc"], "re2")
    assert (built.engine, built.fallback_ids, built.atom_ids) == ("re2", frozenset(), (0,))


@pytest.mark.parametrize("engine", ENGINES)
def test_scan_returns_atom_ids_not_positions(engine: str) -> None:
    atoms = [Atom(40, "foo"), Atom(-3, "bar"), Atom(7, "baz", caseless=True)]
    built = build_group(9, "query_string", ("url_decode", "lowercase"), atoms, engine=engine)
    assert built.scan(["foo", "BAZ"]) == {40, 7}
    assert (built.id, built.field_key, built.transforms) == (
        9,
        "query_string",
        ("url_decode", "lowercase"),
    )


@pytest.mark.parametrize("engine", ENGINES)
def test_scan_remembering_puts_only_new_values_through_the_chain(engine: str) -> None:
    from wafproxy.acl.transforms import TRANSFORMS

    chain = (TRANSFORMS["url_decode"], TRANSFORMS["lowercase"])
    atoms = [Atom(0, "select"), Atom(1, "^plain$")]
    built = build_group(1, "all_query_arguments", ("url_decode", "lowercase"), atoms, engine=engine)
    assert built.scan_remembering(["plain", "x"], chain) == {1}
    assert built.answers == {"plain": {1}, "x": frozenset()}
    # "plain" and "x" are answered from memory; only the new value is decoded and scanned
    assert built.scan_remembering(["x", "%53ELECT", "plain"], chain) == {0, 1}
    assert built.answers["%53ELECT"] == {0}
    # a caller that has the chain's output for every value passes it instead
    assert built.scan_remembering(["%73elect%20x"], chain, ["select x"]) == {0}


@pytest.mark.parametrize("engine", ENGINES)
def test_large_group(engine: str) -> None:
    atoms = [Atom(i, literal_regex(f"token{i}", Constraint.EXACTLY)) for i in range(300)]
    built = build_group(1, "f", (), atoms, engine=engine)
    assert built.scan(["token7", "token299", "token3000", "xtoken5"]) == {7, 299}


@pytest.mark.parametrize("engine", ENGINES)
def test_empty_group(engine: str) -> None:
    assert build_group(1, "f", (), [], engine=engine).scan(["x"]) == frozenset()


@needs_hyperscan
def test_hyperscan_group_is_safe_across_threads() -> None:
    built = group(["needle$", r"(?i)hay\s+stack"], "hyperscan")
    value = "x" * 200_000 + "HAY  stack needle"

    def work(_: int) -> frozenset[int]:
        return frozenset().union(*(built.scan([value]) for _ in range(20)))

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert set(pool.map(work, range(8))) == {frozenset({0, 1})}


def test_re2_per_atom_path_agrees_with_the_set() -> None:
    """The path taken when RE2::Set's DFA runs out of memory (too rare to provoke)."""
    built = group(["abc$", "^x", "(?i)Q+", r"\d"], "re2")
    (matcher,) = built._matchers
    for value in [b"abc", b"xabc\n", b"qq7", b""]:
        by_set: set[int] = set()
        one_by_one: set[int] = set()
        matcher.scan_into(value, by_set)
        matcher.search_each(value, one_by_one)  # type: ignore[attr-defined]
        assert by_set == one_by_one


@pytest.mark.parametrize(
    ("atoms", "engine", "message"),
    [
        ([Atom(1, "a"), Atom(1, "b")], "re2", "unique"),
        ([Atom(1, "(?=a)")], "re2", "atom 1 ('(?=a)'): lookaround"),
        ([Atom(1, "")], "re2", "empty pattern"),
        ([Atom(1, "a")], "pcre", "unknown matcher engine 'pcre'"),
    ],
)
def test_build_group_rejects(atoms: list[Atom], engine: str, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        build_group(1, "f", (), atoms, engine=engine)
    assert message in str(raised.value)


# ---------------------------------------------------------------- engine parity

PARITY_PATTERNS = [
    "^a",
    "a$",
    r"\Ab\z",
    "^$",
    r"a\sb",
    r"\S+\s*$",
    r"a[\s-]b",
    r"\v",
    "a.b",
    "(?s)a.b",
    "(?i)ab",
    r"\bab\b",
    r"\B_",
    r"[^a\n]+$",
    r"(?:ab|ba){2,}",
    r"[[:space:]]",
    r"[[:punct:]]$",
    r"\$",
    "a*$",
    "(?m)^b$",
    r"\w+\W+\w+",
    literal_regex("a-b", Constraint.CONTAINS_WORD),
    # patterns that need a rare character: scanned only over values holding one of them
    "<a",
    "(?i)b.*['\"]",
    r"\$\{?a",
    r"a\s*\(",
    "(?:;|`)b",
    "[<(]+$",
    r"\xc3[\x80-\xbf]",  # needs a byte from 0x80 up: "é" is C3 A9
]


@functools.cache
def parity_groups() -> tuple[MatchGroup, MatchGroup]:
    atoms = [Atom(i, p, caseless=i % 5 == 4) for i, p in enumerate(PARITY_PATTERNS)]
    return build_group(1, "f", (), atoms, engine="hyperscan"), build_group(
        1, "f", (), atoms, engine="re2"
    )


@needs_hyperscan
@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="aAbB_- \t\n\x0b\r$.é<('\";`{", max_size=12), max_size=3))
def test_engines_agree_on_random_values(values: list[str]) -> None:
    with_hyperscan, with_re2 = parity_groups()
    assert with_hyperscan.scan(values) == with_re2.scan(values)


@needs_hyperscan
def test_parity_covers_the_lean_scan() -> None:
    """The patterns that need a rare character make the Hyperscan group a lean one (values
    without those characters skip them), so the parity test above holds that path too."""
    with_hyperscan, _ = parity_groups()
    assert [type(m).__name__ for m in with_hyperscan._matchers] == ["_LeanMatcher", "_Re2Matcher"]


JOINT_FIRST = ["^a", "a$", r"\bab\b", "(?i)ab", r"a\s*\(", "<a", r"\xc3[\x80-\xbf]", "a.b"]
JOINT_SECOND = ["b$", r"(?:ab|ba){2,}", "(?:;|`)b", r"\$\{?a", r"\w+\W+\w+", "(?i)b.*['\"]"]


@needs_hyperscan
@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="aAbB_- \t\n$.é<('\";`{", max_size=24))
def test_a_joint_scan_finds_what_each_group_finds_alone(value: str) -> None:
    """Or declines (None) for a value holding a rare character: the groups' full databases."""
    from wafproxy.acl.matchers import build_joint_scan

    first = [Atom(10 + i, p, caseless=i % 3 == 0) for i, p in enumerate(JOINT_FIRST)]
    second = [Atom(i * 7, p) for i, p in enumerate(JOINT_SECOND)]
    joint = build_joint_scan(3, 8, first, second)
    assert joint is not None and (joint.gate, joint.non_ascii) == (b"\"$'(;<`", True)
    alone = (
        build_group(3, "body", ("url_decode",), first).scan_one(value),
        build_group(8, "body", ("url_decode", "replace_comments"), second).scan_one(value),
    )
    both = joint.scan(value)
    rare = any(c in value for c in "\"$'(;<`é")
    assert both == (None if rare else alone)


def test_groups_with_atoms_hyperscan_cannot_take_get_no_joint_scan() -> None:
    from wafproxy.acl.matchers import build_joint_scan

    assert build_joint_scan(0, 1, [Atom(0, "a")], [Atom(0, "(?m)^b$")]) is None


@pytest.mark.parametrize(
    ("regex", "form"),
    [
        ("^(?:[^&]*&){255}", (b"&", 255)),
        (r"^(?:[^\&]*\&){3}", (b"&", 3)),
        (r"^(?:[^\.]*\.){2}", (b".", 2)),
        ("^(?:[^.]*.){2}", None),  # "." outside the class is any character
        ("^(?:[^a]*a){3}", None),
        (r"^(?:[^\d]*\d){3}", None),
        ("^(?:[^&]*;){3}", None),
        ("^(?:[^&]*&){0}", None),
        ("^(?:[^&]*&){2,}", None),
        ("^(?:[^&]*&){255}x", None),
    ],
)
def test_count_form(regex: str, form: tuple[bytes, int] | None) -> None:
    from wafproxy.acl.matchers import count_form

    assert count_form(regex) == form


COUNTED = ["^(?:[^&]*&){3}", r"^(?:[^\;]*\;){2}", "x&"]


@pytest.mark.parametrize("engine", ENGINES)
@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="&;x=\n", max_size=10))
def test_counted_atoms_match_what_their_regex_matches(engine: str, value: str) -> None:
    import re2

    expected = {i for i, regex in enumerate(COUNTED) if re2.search(regex, value)}
    assert group(COUNTED, engine).scan([value]) == expected
