"""Backslash escapes: ANSI C, JavaScript (AWS's and the lossless one) and CSS."""

from __future__ import annotations

from collections.abc import Callable

from wafproxy.acl.transforms._bytes import (
    C_SPACE_B,
    HEX_B,
    HEX_MASK,
    HEX_PAIRS,
    OCTAL_SET,
    to_bytes,
    to_text,
)
from wafproxy.acl.transforms.registry import TRANSFORMS
from wafproxy.acl.transforms.url import fullwidth_byte

_Join = Callable[[bytes, bytes], bytes | None]


def _backslash_decode(
    s: str, head: Callable[[bytes], bytes], trailing: bytes, join: _Join | None = None
) -> str:
    """Decode the backslash escapes of ``s``: ``head(part)`` gives what ``\\`` + ``part`` (the
    text up to the next backslash, not empty) becomes; ``\\\\`` is a backslash in every
    dialect; ``trailing`` is what a final lone backslash becomes. ``join(part, next)``, when it
    returns bytes, decodes two escapes at once (a UTF-16 surrogate pair)."""
    if "\\" not in s:
        return s
    parts = to_bytes(s).split(b"\\")
    out = [parts[0]]
    last = len(parts) - 1
    i = 1
    while i <= last:
        part = parts[i]
        if not part:
            if i == last:
                out.append(trailing)
                break
            out += (b"\\", parts[i + 1])  # an escaped backslash; what follows it is plain text
            i += 2
            continue
        joined = join(part, parts[i + 1]) if join is not None and i < last else None
        if joined is None:
            out.append(head(part))
            i += 1
        else:
            out.append(joined)
            i += 2
    return to_text(b"".join(out))


_C_ESCAPES = {
    ord("a"): b"\a",
    ord("b"): b"\b",
    ord("f"): b"\f",
    ord("n"): b"\n",
    ord("r"): b"\r",
    ord("t"): b"\t",
    ord("v"): b"\v",
}
_ANSI_C_ESCAPES = {**_C_ESCAPES, ord("?"): b"?", ord("'"): b"'", ord('"'): b'"'}


_OCTAL_DIGITS = frozenset(bytes([b]) for b in b"01234567")


def _octal_length(part: bytes) -> int:
    """How many of the first three bytes of ``part`` are octal digits, counting from the start."""
    count = 0
    while count < 3 and part[count : count + 1] in _OCTAL_DIGITS:
        count += 1
    return count


def _ansi_c_head(part: bytes) -> bytes:
    first = part[0]
    simple = _ANSI_C_ESCAPES.get(first)
    if simple is not None:
        return simple + part[1:]
    if first in b"xX":
        byte = HEX_PAIRS.get(part[1:3])
        if byte is not None:
            return byte + part[3:]
    elif first in OCTAL_SET:
        count = _octal_length(part)
        return bytes([int(part[:count], 8) & 0xFF]) + part[count:]
    return b"\\" + part


@TRANSFORMS.register("escape_seq_decode")
def escape_seq_decode(s: str) -> str:
    """Decode ANSI C escapes: ``\\a \\b \\f \\n \\r \\t \\v \\\\ \\? \\' \\"``, ``\\xHH`` and
    octal ``\\OOO`` (1-3 digits). Sequences that are not valid (``\\q``, ``\\xZZ``) stay as they
    are, backslash included, as AWS documents.

    ``transforms: [escape_seq_decode]``
    """
    return _backslash_decode(s, _ansi_c_head, b"\\")


def _js_head(part: bytes) -> bytes:
    first = part[0]
    if first == ord("u"):
        high, low = HEX_PAIRS.get(part[1:3]), HEX_PAIRS.get(part[3:5])
        if high is not None and low is not None:
            return fullwidth_byte(high[0], low[0]) + part[5:]
    elif first == ord("x"):
        byte = HEX_PAIRS.get(part[1:3])
        if byte is not None:
            return byte + part[3:]
    elif first in OCTAL_SET:
        count = _octal_length(part)
        if count == 3 and first > ord("3"):
            count = 2  # \OOO never goes above \377
        return bytes([int(part[:count], 8)]) + part[count:]
    return _C_ESCAPES.get(first, part[:1]) + part[1:]


@TRANSFORMS.register("js_decode")
def js_decode(s: str) -> str:
    """Decode JavaScript escapes: ``\\uHHHH`` (full-width ASCII U+FF01..U+FF5E to ASCII, any
    other code to its low byte, as AWS documents), ``\\xHH``, octal ``\\OOO`` up to ``\\377``, and
    ``\\a \\b \\f \\n \\r \\t \\v``; any other ``\\C`` is ``C``. A final lone backslash stays.

    ``transforms: [js_decode, lowercase]``
    """
    return _backslash_decode(s, _js_head, b"\\")


def _code_point_utf8(code: int) -> bytes | None:
    if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return None
    return chr(code).encode("utf-8")


def _js_braced(part: bytes) -> bytes | None:
    """``u{H...}`` (1-6 hex digits) at the start of ``part``, as UTF-8 plus the rest."""
    close = part.find(b"}", 2, 9)
    if close < 3 or part[2:close].strip(HEX_B):
        return None
    encoded = _code_point_utf8(int(part[2:close], 16))
    return None if encoded is None else encoded + part[close + 1 :]


def _js_full_head(part: bytes) -> bytes | None:
    """``uHHHH`` at the start of ``part`` as UTF-8 plus the rest (None for a lone surrogate)."""
    if len(part) < 5 or part[1:5].strip(HEX_B):
        return None
    encoded = _code_point_utf8(int(part[1:5], 16))
    return None if encoded is None else encoded + part[5:]


def _js_ext_head(part: bytes) -> bytes:
    if part[:1] == b"u":
        decoded = _js_braced(part) if part[1:2] == b"{" else _js_full_head(part)
        if decoded is not None:
            return decoded
        if len(part) >= 5 and not part[1:5].strip(HEX_B):
            return b"\\" + part  # a lone surrogate: kept as written
    return _js_head(part)


def _surrogate(part: bytes, base: int) -> int | None:
    """The code of ``uHHHH`` at the start of ``part`` if it lies in base..base+0x3FF."""
    if part[:1] != b"u" or len(part) < 5 or part[1:5].strip(HEX_B):
        return None
    code = int(part[1:5], 16)
    return code if base <= code <= base + 0x3FF else None


def _js_surrogate_pair(part: bytes, following: bytes) -> bytes | None:
    """``uD83D`` + ``uDE00...`` (two adjacent escapes) as the UTF-8 of the character."""
    if len(part) != 5:
        return None
    high, low = _surrogate(part, 0xD800), _surrogate(following, 0xDC00)
    if high is None or low is None:
        return None
    code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
    return chr(code).encode("utf-8") + following[5:]


@TRANSFORMS.register("js_decode_ext")
def js_decode_ext(s: str) -> str:
    """``js_decode`` without its loss of information: ``\\uHHHH`` decodes to the full character
    (``\\u4e2d`` is ``中``, a surrogate pair ``\\ud83d\\ude00`` is one character) and ES2015
    ``\\u{1F600}`` escapes are decoded too. A lone surrogate escape is kept as written.

    ``transforms: [js_decode_ext, lowercase]``
    """
    return _backslash_decode(s, _js_ext_head, b"\\", _js_surrogate_pair)


_C_SPACES = frozenset(bytes([b]) for b in C_SPACE_B)


def _css_head(part: bytes) -> bytes:
    digits = part[:6].translate(HEX_MASK).find(0)
    digits = min(len(part), 6) if digits < 0 else digits
    if digits:
        rest = part[digits:]
        if rest[:1] in _C_SPACES:
            rest = rest[1:]  # one whitespace character after a hex escape belongs to it
        return bytes([_css_byte(part[:digits])]) + rest
    return part[1:] if part[:1] == b"\n" else part


def _css_byte(digits: bytes) -> int:
    """ModSecurity's reading of 1-6 hex digits: the last two, full-width ASCII adjusted."""
    if len(digits) == 1:
        return int(digits, 16)
    value = int(digits[-2:], 16)
    wide = {4: True, 5: digits[:1] == b"0", 6: digits[:2] == b"00"}.get(len(digits), False)
    if wide and 0 < value < 0x5F and digits[-4:-2].lower() == b"ff":
        value += 0x20
    return value


@TRANSFORMS.register("css_decode")
def css_decode(s: str) -> str:
    """Decode CSS 2.x escapes: ``\\`` + 1-6 hex digits (using the last two, with full-width
    ASCII mapped to ASCII) and one optional whitespace after them; ``\\`` + newline is removed;
    ``\\`` + any other character is that character (``ja\\vascript`` -> ``javascript``).

    ``transforms: [css_decode, lowercase]``
    """
    return _backslash_decode(s, _css_head, b"")
