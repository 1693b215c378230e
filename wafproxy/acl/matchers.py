"""The multi-pattern matcher of the scan plan (DESIGN.md §4).

Every byte_match / regex_match / regex_pattern_set pattern of a (field, transformation chain)
is an ``Atom``; ``build_group`` compiles all atoms of one such key into one ``MatchGroup`` that
scans each value once and returns the ids of the atoms that matched. A sqli_match / xss_match
on the same key is an atom too (a libinjection ``Detection`` instead of a regex), so its answer
is remembered and triggers rules the same way.

Semantics, identical on both engines (the tests hold them to it):

- Matching is byte-wise. Values are encoded UTF-8 with ``surrogateescape`` (so invalid UTF-8
  from the wire survives), patterns UTF-8. Hyperscan runs without HS_FLAG_UTF8 and RE2 runs in
  Latin-1 mode, so on both ``.`` and ``[...]`` match one *byte*, a non-ASCII literal such as
  ``é`` matches its UTF-8 byte sequence, and case-insensitivity folds ASCII letters only.
  This is also what PCRE without UTF mode (AWS WAF's regex engine) does.
- ``^``/``\\A`` are the start and ``$``/``\\z`` the end of each value; ``$`` does not match before
  a trailing newline (RE2 semantics; Hyperscan's PCRE-style ``$`` is rewritten to ``\\z``).
  ``.`` does not match ``\\n`` unless ``(?s)``. ``\\s`` is ``[\\t\\n\\f\\r ]`` and ``\\v`` is
  the vertical tab, as in RE2.
- The accepted language is RE2's (``validate_regex``). Atoms Hyperscan cannot take with these
  semantics (``(?m)``, ``(?U)``, ``\\Q…\\E``, NUL bytes, anything it refuses to compile) are
  matched by an RE2 set inside the same group.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import re2

from wafproxy.acl.attacks import Detection, found_each
from wafproxy.acl.hscache import cache_key, cached_database
from wafproxy.acl.memo import Memo
from wafproxy.acl.required_chars import NON_ASCII, is_rare, required_chars
from wafproxy.acl.transforms._bytes import to_bytes
from wafproxy.acl.transforms.registry import apply_chain

try:
    import hyperscan as _hs
except ImportError:  # pragma: no cover - platforms without a Hyperscan wheel
    _hs = None  # type: ignore[assignment]

HYPERSCAN_AVAILABLE: bool = _hs is not None


@dataclass(frozen=True)
class Atom:
    id: int
    """Unique within the group."""
    regex: str
    """RE2 syntax (ignored for a detection)."""
    caseless: bool = False
    detection: Detection | None = None
    """Set for a libinjection atom: it matches a value libinjection reports."""


class Constraint(enum.Enum):
    EXACTLY = "exactly"
    STARTS_WITH = "starts_with"
    ENDS_WITH = "ends_with"
    CONTAINS = "contains"
    CONTAINS_WORD = "contains_word"


# ---------------------------------------------------------------- literals and validation

_WORD = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_PUNCT = frozenset(b"!\"#$%&'()*+,-./:;<=>?@[\\]^`{|}~")
_NOT_WORD = "[^A-Za-z0-9_]"


def _escape(value: str) -> str:
    """An ASCII-only pattern matching exactly the UTF-8 bytes of ``value``."""
    out = []
    for byte in value.encode("utf-8", "surrogateescape"):
        if byte in _WORD:
            out.append(chr(byte))
        elif byte in _PUNCT:
            out.append("\\" + chr(byte))
        else:
            out.append(f"\\x{byte:02x}")
    return "".join(out)


def literal_regex(value: str, constraint: Constraint) -> str:
    """byte_match with AWS WAF semantics (case-sensitive; transforms do the folding)."""
    body = _escape(value)
    if constraint is Constraint.EXACTLY:
        return rf"\A{body}\z"
    if constraint is Constraint.STARTS_WITH:
        return rf"\A{body}"
    if constraint is Constraint.ENDS_WITH:
        return rf"{body}\z"
    if constraint is Constraint.CONTAINS_WORD:
        return rf"(?:\A|{_NOT_WORD}){body}(?:{_NOT_WORD}|\z)"
    return body or "(?:)"


def _re2_options(max_mem: int = 8 << 20) -> Any:
    options = re2.Options()
    options.encoding = re2.Options.Encoding.LATIN1
    options.log_errors = False
    options.max_mem = max_mem
    return options


_OPTIONS = _re2_options()

_BACKREF = "backreferences ({}) are not supported: they need backtracking"
_LOOKAROUND = (
    "lookaround ((?=, (?!, (?<=, (?<!) is not supported: it needs backtracking; "
    "match the surrounding text instead"
)
_HINTS = (
    ("invalid escape sequence: \\k", _BACKREF.format("\\k<name>")),
    ("invalid escape sequence: \\g", _BACKREF.format("\\g")),
    ("invalid escape sequence: \\Z", "\\Z is not supported: use \\z for the end of the value"),
    ("invalid perl operator: (?=", _LOOKAROUND),
    ("invalid perl operator: (?!", _LOOKAROUND),
    ("invalid perl operator: (?<", _LOOKAROUND),
    ("invalid perl operator: (?>", "atomic groups ((?>) are not supported: they need backtracking"),
)


def _explain(regex: str, re2_message: str) -> str:
    """RE2's message, or a clearer one for the constructs people bring from PCRE."""
    if "(?P=" in regex:
        return _BACKREF.format("(?P=name)")
    for prefix, reason in _HINTS:
        if re2_message.startswith(prefix):
            return reason
    escape = "invalid escape sequence: \\"
    if re2_message.startswith(escape) and re2_message[len(escape) :][:1].isdigit():
        return _BACKREF.format(re2_message[len(escape) - 1 :])
    return f"invalid regex: {re2_message}"


def _pattern_bytes(regex: str, caseless: bool = False) -> bytes:
    return (b"(?i)" if caseless else b"") + regex.encode("utf-8", "surrogateescape")


def validate_regex(regex: str) -> str | None:
    """None if RE2 (our reference engine, Latin-1 mode) accepts ``regex``; else why not."""
    if not regex:
        return "empty pattern: it would match every value"
    try:
        re2.compile(_pattern_bytes(regex), _OPTIONS)
    except UnicodeEncodeError:
        return "the pattern is not valid Unicode text"
    except re2.error as exc:
        raw = exc.args[0] if exc.args else ""
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        return _explain(regex, text)
    return None


# ---------------------------------------------------------------- Hyperscan dialect

_FLAG_CHARS = frozenset("imsU-")
_CLASS_SPACE = "\\t\\n\\f\\r\\x20"


def _flag_group(regex: str, i: int) -> str | None:
    """The flags of ``(?flags)``/``(?flags:`` starting at ``regex[i] == "("``, else None."""
    j = i + 2
    while j < len(regex) and regex[j] in _FLAG_CHARS:
        j += 1
    if regex.startswith("(?", i) and j < len(regex) and regex[j] in ":)":
        return regex[i + 2 : j]
    return None


def _class_end(regex: str, i: int, out: list[str]) -> int | None:
    """Translate the class starting at ``regex[i] == "["``; the index after it, or None."""
    out.append("[")
    i += 1
    if regex.startswith("^", i):
        out.append("^")
        i += 1
    if regex.startswith("]", i):
        out.append("\\]")
        i += 1
    while i < len(regex) and regex[i] != "]":
        if regex.startswith("[:", i) and (end := regex.find(":]", i + 2)) >= 0:
            out.append(regex[i : end + 2])
            i = end + 2
        elif regex[i] == "\\":
            esc = regex[i + 1]
            if esc == "S" or (esc == "s" and regex.startswith("-", i + 2)) or esc == "Q":
                return None
            out.append(_CLASS_SPACE if esc == "s" else "\\x0b" if esc == "v" else regex[i : i + 2])
            i += 2
        else:
            out.append(regex[i])
            i += 1
    out.append("]")
    return i + 1


_OUTSIDE_ESCAPES = {"s": f"[{_CLASS_SPACE}]", "S": f"[^{_CLASS_SPACE}]", "v": "\\x0b"}


def _hyperscan_dialect(regex: str) -> bytes | None:
    """``regex`` (RE2 syntax, already validated) rewritten so that Hyperscan matches it exactly
    as RE2 does; None when that cannot be guaranteed (the atom then goes to RE2)."""
    if "\x00" in regex:
        return None  # the binding passes patterns as C strings
    out: list[str] = []
    i = 0
    while i < len(regex):
        c = regex[i]
        if c == "\\":
            esc = regex[i + 1]
            if esc == "Q":
                return None
            out.append(_OUTSIDE_ESCAPES.get(esc, regex[i : i + 2]))
            i += 2
        elif c == "[":
            end = _class_end(regex, i, out)
            if end is None:
                return None
            i = end
        elif c == "(" and (flags := _flag_group(regex, i)) is not None:
            if "m" in flags or "U" in flags:
                return None
            out.append(c)
            i += 1
        else:
            out.append("\\z" if c == "$" else c)
            i += 1
    return "".join(out).encode("utf-8", "surrogateescape")


# ---------------------------------------------------------------- engines


class _Matcher(Protocol):
    def scan_into(self, data: bytes, found: set[int]) -> None:
        """Add the group indices of the atoms that match ``data`` to ``found``."""


def _collect(index: int, _start: int, _end: int, _flags: int, found: set[int]) -> None:
    found.add(index)


class _HyperscanMatcher:
    """One block-mode Hyperscan database.

    A scan needs a scratch space that no other scan uses at the same time, and the binding
    releases the GIL while scanning, so each thread gets its own scratch, made on its first
    scan. With one event loop per process that is one scratch per group."""

    __slots__ = ("_db", "_local")

    def __init__(self, db: Any) -> None:
        self._db = db
        self._local = threading.local()

    def scan_into(self, data: bytes, found: set[int]) -> None:
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            assert _hs is not None
            scratch = self._local.scratch = _hs.Scratch(self._db)
        # positional: the binding's keyword parsing costs twice the scan of a short value
        self._db.scan(data, _collect, 0, found, scratch)


class _LeanMatcher:
    """The group's databases twice: with every pattern, and without the patterns that need a
    rare character (required_chars.py). A value holding none of those characters is scanned by
    the lean databases only; nothing they left out could have matched it."""

    __slots__ = ("_full", "_gate", "_lean", "_non_ascii")

    def __init__(
        self, gate: bytes, non_ascii: bool, lean: Sequence[_Matcher], full: Sequence[_Matcher]
    ) -> None:
        self._gate = gate
        self._non_ascii = non_ascii
        self._lean = tuple(lean)
        self._full = tuple(full)

    def scan_into(self, data: bytes, found: set[int]) -> None:
        rare = holds_rare(data, self._gate, self._non_ascii)
        for matcher in self._full if rare else self._lean:
            matcher.scan_into(data, found)


def holds_rare(data: bytes, gate: bytes, non_ascii: bool) -> bool:
    """Whether ``data`` holds a byte of ``gate`` (or, with ``non_ascii``, any byte from 0x80):
    one memchr each, far cheaper than the patterns a lean database spares."""
    if non_ascii and not data.isascii():
        return True
    for byte in gate:  # noqa: SIM110 - any() over a generator costs twice this loop
        if byte in data:
            return True
    return False


@dataclass(frozen=True)
class _HsItem:
    index: int
    pattern: bytes
    flags: int


def _hs_flags(caseless: bool) -> int:
    assert _hs is not None
    flags = _hs.HS_FLAG_SINGLEMATCH | _hs.HS_FLAG_ALLOWEMPTY
    return flags | _hs.HS_FLAG_CASELESS if caseless else flags


def _hs_database(items: Sequence[_HsItem]) -> Any | None:
    """A compiled database, or None when Hyperscan refuses the set (cached: see hscache)."""
    hs = _hs
    assert hs is not None
    expressions = [item.pattern for item in items]
    ids = [item.index for item in items]
    flags = [item.flags for item in items]

    def compile_db() -> Any | None:
        db = hs.Database(mode=hs.HS_MODE_BLOCK)
        try:
            db.compile(expressions=expressions, ids=ids, elements=len(items), flags=flags)
        except hs.error:
            return None
        return db

    key = cache_key(str(getattr(hs, "__version__", "")), expressions, ids, flags)
    return cached_database(key, compile_db, hs.dumpb, lambda data: hs.loadb(data, hs.HS_MODE_BLOCK))


def _hs_partition(items: Sequence[_HsItem]) -> tuple[list[_HsItem], list[_HsItem]]:
    """Split items that fail to compile together into (accepted, refused) by bisection: the
    binding does not say which expression failed, and one compile per atom is slow."""
    if len(items) == 1:
        return [], list(items)
    accepted: list[_HsItem] = []
    refused: list[_HsItem] = []
    mid = len(items) // 2
    for half in (items[:mid], items[mid:]):
        if _hs_database(half) is not None:
            accepted += half
        else:
            ok, bad = _hs_partition(half)
            accepted += ok
            refused += bad
    return accepted, refused


def _compile_hyperscan(items: Sequence[_HsItem]) -> tuple[Any | None, list[_HsItem]]:
    """One database for as many items as possible, and the items left to RE2."""
    if not items:
        return None, []
    db = _hs_database(items)
    if db is not None:
        return db, []
    accepted, refused = _hs_partition(items)
    db = _hs_database(accepted) if accepted else None
    return (db, refused) if db is not None else (None, list(items))


_MAX_SET_MEM = 2 << 30


def _compile_set(patterns: Sequence[bytes]) -> Any:
    """An RE2::Set of ``patterns`` plus an always-matching sentinel at index len(patterns)."""
    budget = max(8 << 20, len(patterns) * (16 << 10))
    while True:
        regex_set = re2.Set.SearchSet(_re2_options(budget))
        for pattern in patterns:
            regex_set.Add(pattern)
        regex_set.Add(b"")
        try:
            regex_set.Compile()
        except re2.error:
            if budget >= _MAX_SET_MEM:
                raise ValueError("patterns too large for one RE2 set") from None
            budget *= 2
        else:
            return regex_set


class _Re2Matcher:
    """An RE2::Set over some atoms of a group.

    RE2::Set has no NFA fallback: if its DFA runs out of memory Match() finds nothing, which the
    binding does not tell apart from "no match". The sentinel does: when it is missing, the
    value is searched with one RE2 per atom, compiled on first need (the only state this
    class mutates after construction)."""

    __slots__ = ("_indices", "_patterns", "_sentinel", "_set", "_singles")

    def __init__(self, items: Sequence[tuple[int, bytes]]) -> None:
        self._indices = tuple(index for index, _ in items)
        self._patterns = tuple(pattern for _, pattern in items)
        self._set = _compile_set(self._patterns)
        self._sentinel = len(items)
        self._singles: tuple[Any, ...] | None = None

    def scan_into(self, data: bytes, found: set[int]) -> None:
        hits = self._set.Match(data)
        if hits is None or self._sentinel not in hits:
            self.search_each(data, found)
            return
        indices, sentinel = self._indices, self._sentinel
        found.update([indices[hit] for hit in hits if hit != sentinel])

    def search_each(self, data: bytes, found: set[int]) -> None:
        if self._singles is None:
            self._singles = tuple(re2.compile(p, _OPTIONS) for p in self._patterns)
        for index, regex in zip(self._indices, self._singles, strict=True):
            if regex.search(data) is not None:
                found.add(index)


class _DetectionMatcher:
    __slots__ = ("_detections", "_indices")

    def __init__(self, items: Sequence[tuple[int, Detection]]) -> None:
        self._indices = tuple(index for index, _ in items)
        self._detections = tuple(detection for _, detection in items)

    def scan_into(self, data: bytes, found: set[int]) -> None:
        for index, hit in zip(self._indices, found_each(self._detections, data), strict=True):
            if hit:
                found.add(index)


# ---------------------------------------------------------------- groups


@dataclass(frozen=True, eq=False)
class MatchGroup:
    """One compiled multi-pattern matcher for a (field, transformation chain).

    Immutable after construction and safe to share across requests."""

    id: int
    field_key: str
    transforms: tuple[str, ...]
    engine: str
    """"hyperscan" when a Hyperscan database scans (most of) the patterns, "re2" when RE2 scans
    them all, "libinjection" when the group has detections only."""
    atom_ids: tuple[int, ...]
    """The ids of the atoms, in the order given to ``build_group``."""
    fallback_ids: frozenset[int]
    """Atoms Hyperscan was asked to take but RE2 matches instead."""
    _matchers: tuple[_Matcher, ...] = field(repr=False)
    _memo: Memo[frozenset[int]] = field(default_factory=Memo, repr=False)
    """Atoms matched, by raw (untransformed) field value: see wafproxy/acl/memo.py."""

    def remembered(self, raw: Sequence[str]) -> frozenset[int] | None:
        """The atoms matching these raw values if every one of them is remembered."""
        get = self._memo.table.get
        if len(raw) == 1:
            return get(raw[0])
        found: set[int] = set()
        for value in raw:
            hit = get(value)
            if hit is None:
                return None
            if hit:
                found |= hit
        return frozenset(found) if found else _NONE_FOUND

    def scan_remembering(
        self,
        raw: Sequence[str],
        fns: Sequence[Callable[[str], str]],
        values: Sequence[str] | None = None,
    ) -> frozenset[int]:
        """``scan`` of the raw values through the chain ``fns``, remembering each value's atoms
        under its raw form. ``values``: the chain's output for every raw value, when the caller
        has it; else only the values not remembered go through the chain."""
        get = self._memo.table.get
        found: set[int] = set()
        new_keys: list[str] = []
        new_hits: list[frozenset[int]] = []
        for i, original in enumerate(raw):
            hit = get(original)
            if hit is None:
                value = apply_chain(original, fns) if values is None else values[i]
                hit = self.scan_one(value)
                new_keys.append(original)
                new_hits.append(hit)
            if hit:
                found |= hit
        if new_keys:
            self._memo.put_all(new_keys, new_hits)
        return frozenset(found) if found else _NONE_FOUND

    def scan(self, values: Sequence[str]) -> frozenset[int]:
        """The ids of the atoms that match at least one of ``values``."""
        found: set[int] = set()
        total = len(self.atom_ids)
        for value in values:
            if len(found) == total:
                break
            found |= self.scan_one(value)
        return frozenset(found)

    def scan_one(self, value: str) -> frozenset[int]:
        """``scan((value,))``, for the per-value loops."""
        found: set[int] = set()
        data = to_bytes(value)
        for matcher in self._matchers:
            matcher.scan_into(data, found)
        if not found:
            return _NONE_FOUND
        ids = self.atom_ids
        return frozenset([ids[index] for index in found])

    @property
    def answers(self) -> Mapping[str, frozenset[int]]:
        """The remembered atoms by raw value (read-only: ``scan_remembering`` writes)."""
        return self._memo.table


_NONE_FOUND: frozenset[int] = frozenset()


@dataclass(frozen=True, eq=False)
class JointScan:
    """Two groups of one field whose chains differ by a last step that usually changes nothing
    (``replace_comments`` after URL decoding): when the two inputs are the same text and hold
    none of either group's rare characters, one pass of both lean databases as one answers both.

    Why: a form body's two decoded scans cost about 11 % fewer instructions as one database,
    and in the proxy, where other requests' work evicts the databases between evaluations,
    fewer cache misses (bench/RESULTS.md, 2026-11-30 14:30). A value that needs the full
    databases is rare (an attack, mostly) and is scanned by each group alone."""

    first: int
    """The slot of the shorter chain."""
    second: int
    gate: bytes
    non_ascii: bool
    lean: _Matcher
    """``first``'s lean atoms, then ``second``'s, numbered by position in ``*_ids``."""
    first_ids: tuple[int, ...]
    second_ids: tuple[int, ...]

    def partner(self, slot: int) -> int:
        """The other slot of the two."""
        return self.second if slot == self.first else self.first

    def scan(self, value: str) -> tuple[frozenset[int], frozenset[int]] | None:
        """The atoms of ``first`` and of ``second`` that match ``value``; None when the value
        holds a rare character (each group must scan it with its full database)."""
        data = to_bytes(value)
        if holds_rare(data, self.gate, self.non_ascii):
            return None
        found: set[int] = set()
        self.lean.scan_into(data, found)
        if not found:
            return _NONE_FOUND, _NONE_FOUND
        split = len(self.first_ids)
        first = [self.first_ids[i] for i in found if i < split]
        second = [self.second_ids[i - split] for i in found if i >= split]
        return frozenset(first) or _NONE_FOUND, frozenset(second) or _NONE_FOUND


JOINT_MAX_BYTES = 32 * 1024
"""Pattern text of a joint lean database: more would be split in two (HS_CHUNK_BYTES) and the
single pass would be lost."""


def build_joint_scan(
    first: int, second: int, first_atoms: Sequence[Atom], second_atoms: Sequence[Atom]
) -> JointScan | None:
    """None unless every atom of both groups goes to Hyperscan and the lean databases fit in
    one (groups with RE2 or libinjection atoms keep their own scans)."""
    if not _use_hyperscan("auto"):
        return None
    atoms = [*first_atoms, *second_atoms]
    items: list[_HsItem] = []
    for index, atom in enumerate(atoms):
        dialect = None if atom.detection is not None else _hyperscan_dialect(atom.regex)
        if dialect is None:
            return None
        items.append(_HsItem(index, dialect, _hs_flags(atom.caseless)))
    lean, gate = _lean_items(items, atoms)
    if not lean or sum(len(item.pattern) for item in lean) > JOINT_MAX_BYTES:
        return None
    db, refused = _compile_hyperscan(lean)
    if db is None or refused:
        return None
    searched, non_ascii = _gate(gate)
    return JointScan(
        first=first,
        second=second,
        gate=searched,
        non_ascii=non_ascii,
        lean=_HyperscanMatcher(db),
        first_ids=tuple(atom.id for atom in first_atoms),
        second_ids=tuple(atom.id for atom in second_atoms),
    )


def _use_hyperscan(engine: str) -> bool:
    if engine == "auto":
        return HYPERSCAN_AVAILABLE
    if engine == "hyperscan" and not HYPERSCAN_AVAILABLE:
        raise ValueError("engine 'hyperscan' requested but the hyperscan module is missing")
    if engine not in ("hyperscan", "re2"):
        raise ValueError(f"unknown matcher engine {engine!r}: expected auto, hyperscan or re2")
    return engine == "hyperscan"


def _check_atoms(atoms: Sequence[Atom]) -> None:
    if len({atom.id for atom in atoms}) != len(atoms):
        raise ValueError("atom ids must be unique within a group")
    for atom in atoms:
        if atom.detection is None and (reason := validate_regex(atom.regex)) is not None:
            raise ValueError(f"atom {atom.id} ({atom.regex!r}): {reason}")


HS_CHUNK_BYTES = 24 * 1024
"""Pattern text per Hyperscan database. Compiling grows faster than linearly with a set of
complex patterns (the shipped body group: 40 KB of patterns, ~6 s as one database, ~2 s in
two), while each extra database is one more scan of every value; 24 KB keeps a thousand
simple patterns in one database and splits only the big complex sets."""


def _chunks(items: Sequence[_HsItem]) -> list[list[_HsItem]]:
    out: list[list[_HsItem]] = [[]]
    size = 0
    for item in items:
        if out[-1] and size + len(item.pattern) > HS_CHUNK_BYTES:
            out.append([])
            size = 0
        out[-1].append(item)
        size += len(item.pattern)
    return out if out[0] else []


def _compiled(items: Sequence[_HsItem]) -> tuple[list[_Matcher], list[int]]:
    """One matcher per chunk of the items, and the indices Hyperscan refused."""
    matchers: list[_Matcher] = []
    refused: list[int] = []
    for chunk in _chunks(items):
        db, left = _compile_hyperscan(chunk)
        refused += [item.index for item in left]
        if db is not None:
            matchers.append(_HyperscanMatcher(db))
    return matchers, refused


def _hyperscan_matchers(
    items: Sequence[_HsItem], atoms: Sequence[Atom]
) -> tuple[list[_Matcher], list[int]]:
    """The Hyperscan matchers of a group, and the indices of the items left to RE2."""
    full, refused = _compiled(items)
    lean, gate = _lean_items(items, atoms, frozenset(refused))
    if not gate or not full:
        return full, refused
    lean_matchers, lean_refused = _compiled(lean)
    if lean_refused:  # refused in a smaller set but not in the full one: never seen
        return full, refused
    return [_LeanMatcher(*_gate(gate), lean_matchers, full)], refused


def _gate(chars: set[str]) -> tuple[bytes, bool]:
    """The rare characters as the bytes a gate looks for, and whether any byte from 0x80 up
    counts too (``holds_rare``'s arguments)."""
    return "".join(sorted(chars - {NON_ASCII})).encode(), NON_ASCII in chars


def _lean_items(
    items: Sequence[_HsItem], atoms: Sequence[Atom], refused: frozenset[int] = frozenset()
) -> tuple[list[_HsItem], set[str]]:
    """The items a value without any rare character needs, and those characters (the gate)."""
    lean: list[_HsItem] = []
    gate: set[str] = set()
    for item in items:
        atom = atoms[item.index]
        chars = required_chars(atom.regex, atom.caseless)
        if chars is not None and is_rare(chars):
            gate |= chars
        elif item.index not in refused:
            lean.append(item)
    return lean, gate


class _CountMatcher:
    """Atoms of the form ``^(?:[^c]*c){n}`` (a form with n ``&`` or more: too many arguments),
    answered by counting c. Why: Hyperscan runs a counting automaton over every byte for such
    a pattern: in the raw scan of a 2 KB form body it was 20k of 37k instructions."""

    __slots__ = ("_counts",)

    def __init__(self, counts: Sequence[tuple[int, bytes, int]]) -> None:
        self._counts = tuple(counts)

    def scan_into(self, data: bytes, found: set[int]) -> None:
        for index, char, least in self._counts:
            # what replace() deletes, it finds with memchr: 2 KB in ~6k instructions, where
            # count() compares byte by byte (~10k)
            if len(data) >= least and len(data) - len(data.replace(char, b"")) >= least:
                found.add(index)


_COUNT_HEAD = "^(?:[^"


def count_form(regex: str) -> tuple[bytes, int] | None:
    """(c, n) when ``regex`` is ``^(?:[^c]*c){n}`` with c one ASCII punctuation character
    (as it is, or escaped): it matches exactly the values holding n c's or more."""
    if not (regex.startswith(_COUNT_HEAD) and regex.endswith("}")):
        return None
    char, sep, rest = regex[len(_COUNT_HEAD) :].partition("]*")
    again, sep2, least = rest[:-1].partition("){")
    if not (sep and sep2 and again == char and least.isdigit() and int(least) > 0):
        return None
    if char in _SAME_IN_A_CLASS:
        return char.encode(), int(least)
    if len(char) == 2 and char[0] == "\\" and char[1] in _ESCAPED_PUNCTUATION:
        return char[1].encode(), int(least)
    return None


_SAME_IN_A_CLASS = frozenset("!\"#%&',-/:;<=>@_`~")
"""Characters that mean themselves unescaped both in a class and outside one."""
_ESCAPED_PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[]^_`{|}~")


def _engine_name(hyperscan: bool, re2: bool, detections: bool) -> str:
    if hyperscan:
        return "hyperscan"
    return "libinjection" if detections and not re2 else "re2"


def build_group(
    id: int,
    field_key: str,
    transforms: tuple[str, ...],
    atoms: Sequence[Atom],
    *,
    engine: str = "auto",
) -> MatchGroup:
    """Compile ``atoms`` (validated with ``validate_regex``; ValueError otherwise) into one
    matcher. engine: "auto" (Hyperscan when importable), "hyperscan" or "re2"."""
    _check_atoms(atoms)
    use_hyperscan = _use_hyperscan(engine)
    hs_items: list[_HsItem] = []
    re2_indices: list[int] = []
    detections: list[tuple[int, Detection]] = []
    counts: list[tuple[int, bytes, int]] = []
    for index, atom in enumerate(atoms):
        if atom.detection is not None:
            detections.append((index, atom.detection))
            continue
        if (form := count_form(atom.regex)) is not None:
            counts.append((index, *form))
            continue
        dialect = _hyperscan_dialect(atom.regex) if use_hyperscan else None
        if dialect is None:
            re2_indices.append(index)
        else:
            hs_items.append(_HsItem(index, dialect, _hs_flags(atom.caseless)))
    matchers, refused = _hyperscan_matchers(hs_items, atoms)
    re2_indices += refused
    re2_indices.sort()
    db = matchers[0] if matchers else None
    if re2_indices:
        items = [(i, _pattern_bytes(atoms[i].regex, atoms[i].caseless)) for i in re2_indices]
        matchers.append(_Re2Matcher(items))
    if detections:
        matchers.append(_DetectionMatcher(detections))
    if counts:
        matchers.append(_CountMatcher(counts))
    return MatchGroup(
        id=id,
        field_key=field_key,
        transforms=transforms,
        engine=_engine_name(db is not None, bool(re2_indices), bool(detections)),
        atom_ids=tuple(atom.id for atom in atoms),
        fallback_ids=frozenset(atoms[i].id for i in re2_indices) if use_hyperscan else frozenset(),
        _matchers=tuple(matchers),
    )
