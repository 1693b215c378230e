"""TRANSFORMS registry: AWS WAF's text transformations (``transforms: [url_decode, lowercase]``).

Every transformation is a pure ``str -> str`` function that never raises. Request bytes reach the
engine decoded as UTF-8 with ``surrogateescape``, so an undecodable byte 0xNN is the character
U+DCNN. Transformations that work on bytes (the decoders and the hashes) encode the same way and
decode their result the same way: a decoded ``%C3%A9`` is ``é``, a decoded ``%E9`` is ``\\udce9``.

Semantics follow the AWS WAF Developer Guide; where it is silent they follow ModSecurity, from
which AWS took most of these (``t:cmdLine``, ``t:cssDecode``, ...). Where both are silent (the
later types that the API reference lists only by name: ``cmd_line_win``, ``cmd_line_unix``,
``js_decode_ext``) the docstring says what wafproxy does. ``md5`` and ``sha256`` give the raw
digest bytes, as AWS does, not hex.

Nothing here uses the stdlib ``re`` module (these run on attacker-controlled data), and every
loop steps from marker to marker (``%``, ``\\``, ``&``, ...) with ``split``/``find``/``translate``
doing the scanning in C, so the cost is linear in the input.
"""

from __future__ import annotations

import binascii
import codecs
import hashlib
from collections.abc import Callable, Sequence

from wafproxy.acl.model import Transform
from wafproxy.registry import Registry

TRANSFORMS: Registry[Transform] = Registry("text transformation")

# -- text <-> bytes ------------------------------------------------------------------------------
_LONE_SURROGATES = "wafproxy-surrogates"


def _encode_surrogates(err: UnicodeError) -> tuple[bytes, int]:
    """U+DC80..U+DCFF back to their byte; any other lone surrogate as its 3-byte form."""
    if not isinstance(err, UnicodeEncodeError):
        raise err
    out = bytearray()
    for ch in err.object[err.start : err.end]:
        code = ord(ch)
        out += (
            bytes([code - 0xDC00])
            if 0xDC80 <= code <= 0xDCFF
            else ch.encode("utf-8", "surrogatepass")
        )
    return bytes(out), err.end


codecs.register_error(_LONE_SURROGATES, _encode_surrogates)


def _to_bytes(s: str) -> bytes:
    try:
        return s.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that did not come from a request byte
        return s.encode("utf-8", _LONE_SURROGATES)


def _to_text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _bytes_op(s: str, op: Callable[[bytes], bytes]) -> str:
    """Apply ``op`` to the value's bytes (request bytes are what AWS transforms)."""
    return _to_text(op(_to_bytes(s)))


# -- shared character classes ----------------------------------------------------------------------
_C_SPACE = " \t\n\v\f\r"  # isspace() in the C locale
_C_SPACE_B = _C_SPACE.encode()
_NBSP = ("\xa0", "\udca0")  # U+00A0, and a lone 0xA0 byte that was not valid UTF-8
_HEX_B = b"0123456789abcdefABCDEF"
_HEX_SET = frozenset(_HEX_B)
_OCTAL_SET = frozenset(b"01234567")
_HEX_PAIRS = {  # every two-hex-digit spelling ("4a", "4A", ...) to its byte
    bytes((hi, lo)): bytes([int(bytes((hi, lo)), 16)]) for hi in _HEX_B for lo in _HEX_B
}
_ALL_BYTES = bytes(range(256))
_HEX_MASK = bytes(1 if b in _HEX_SET else 0 for b in _ALL_BYTES)


def _delete_table(keep: bytes) -> bytes:
    return bytes(b for b in _ALL_BYTES if b not in keep)


def _squeeze_spaces(data: bytes) -> bytes:
    while b"  " in data:
        data = data.replace(b"  ", b" ")
    return data


# -- simple ----------------------------------------------------------------------------------------
@TRANSFORMS.register("none")
def none(s: str) -> str:
    """Inspect the value as received.

    ``transforms: [none]``
    """
    return s


@TRANSFORMS.register("lowercase")
def lowercase(s: str) -> str:
    """Convert A-Z to a-z (ASCII only, as AWS documents; other letters are left alone).

    ``transforms: [url_decode, lowercase]``
    """
    return s.lower() if s.isascii() else _bytes_op(s, bytes.lower)


@TRANSFORMS.register("uppercase")
def uppercase(s: str) -> str:
    """Convert a-z to A-Z (ASCII only, the mirror of ``lowercase``).

    ``transforms: [url_decode, uppercase]``
    """
    return s.upper() if s.isascii() else _bytes_op(s, bytes.upper)


@TRANSFORMS.register("remove_nulls")
def remove_nulls(s: str) -> str:
    """Remove every NUL (0x00) character.

    ``transforms: [url_decode, remove_nulls]``
    """
    return s.replace("\x00", "") if "\x00" in s else s


@TRANSFORMS.register("replace_nulls")
def replace_nulls(s: str) -> str:
    """Replace every NUL (0x00) character with a space (0x20).

    ``transforms: [url_decode, replace_nulls]``
    """
    return s.replace("\x00", " ") if "\x00" in s else s


@TRANSFORMS.register("trim")
def trim(s: str) -> str:
    """Remove whitespace (space, tab, newline, vertical tab, form feed, CR) from both ends.

    ``transforms: [trim]``
    """
    return s.strip(_C_SPACE)


@TRANSFORMS.register("trim_left")
def trim_left(s: str) -> str:
    """Remove whitespace (space, tab, newline, vertical tab, form feed, CR) from the start.

    ``transforms: [trim_left]``
    """
    return s.lstrip(_C_SPACE)


@TRANSFORMS.register("trim_right")
def trim_right(s: str) -> str:
    """Remove whitespace (space, tab, newline, vertical tab, form feed, CR) from the end.

    ``transforms: [trim_right]``
    """
    return s.rstrip(_C_SPACE)


def _without_nbsp(s: str, replacement: str) -> str:
    for nbsp in _NBSP:
        if nbsp in s:
            s = s.replace(nbsp, replacement)
    return s


@TRANSFORMS.register("remove_whitespace")
def remove_whitespace(s: str) -> str:
    """Remove all whitespace: space, tab, newline, vertical tab, form feed, CR and NBSP (160).

    ``transforms: [url_decode, remove_whitespace]``
    """
    return _bytes_op(_without_nbsp(s, ""), lambda b: b.translate(None, _C_SPACE_B))


_WHITESPACE_TO_SPACE = bytes.maketrans(b"\t\n\v\f\r", b"     ")


@TRANSFORMS.register("compress_white_space")
def compress_white_space(s: str) -> str:
    """Turn tab, newline, vertical tab, form feed, CR and NBSP (160) into spaces, then runs of
    spaces into one space.

    ``transforms: [compress_white_space]``
    """
    return _bytes_op(
        _without_nbsp(s, " "), lambda b: _squeeze_spaces(b.translate(_WHITESPACE_TO_SPACE))
    )


# -- command lines ---------------------------------------------------------------------------------
_CMD_LINE_MAP = bytes.maketrans(b",;\t\r\n", b"     ")


def _cmd_tidy(data: bytes, table: bytes, delete: bytes) -> bytes:
    """Map separators to spaces, delete quoting characters, squeeze spaces, and drop a space
    before ``/`` and ``(`` (so ``cat /etc`` and ``cat/etc`` compare equal)."""
    data = _squeeze_spaces(data.translate(table, delete))
    return data.replace(b" /", b"/").replace(b" (", b"(")


@TRANSFORMS.register("cmd_line")
def cmd_line(s: str) -> str:
    """Undo command-line obfuscation: delete ``\\ " ' ^``; turn ``, ;`` and tab/CR/newline into a
    space; squeeze spaces; delete a space before ``/`` or ``(``; lowercase A-Z.

    ``transforms: [url_decode, cmd_line]``
    """
    return _bytes_op(s, lambda b: _cmd_tidy(b, _CMD_LINE_MAP, b"\\\"'^").lower())


_CMD_WIN_MAP = bytes.maketrans(b",;\t\r\n\v\f", b"       ")


@TRANSFORMS.register("cmd_line_win")
def cmd_line_win(s: str) -> str:
    """``cmd_line`` for cmd.exe: delete its escape and quote characters ``^ "``; turn ``, ;`` and
    whitespace into one space; delete a space before ``/`` or ``(``; lowercase A-Z (cmd.exe is
    case-insensitive). Backslashes (path separators) and ``'`` (not a cmd.exe quote) are kept.

    ``transforms: [url_decode, cmd_line_win]``
    """
    return _bytes_op(s, lambda b: _cmd_tidy(b, _CMD_WIN_MAP, b'^"').lower())


def _unix_tidy(data: bytes) -> bytes:
    data = data.replace(b"${IFS}", b" ").replace(b"$@", b"").replace(b"$*", b"")
    return _squeeze_spaces(data.translate(_WHITESPACE_TO_SPACE, b"\\\"'"))


@TRANSFORMS.register("cmd_line_unix")
def cmd_line_unix(s: str) -> str:
    """``cmd_line`` for POSIX shells: delete the quoting a shell removes (``\\ " '``, so
    ``c'a'\\t`` is ``cat``) and the empty expansions ``$@`` and ``$*``; turn ``${IFS}`` and
    whitespace into one space. Case is kept, as Unix commands are case-sensitive.

    ``transforms: [url_decode, cmd_line_unix]``
    """
    return _bytes_op(s, _unix_tidy)


# -- URL encodings -------------------------------------------------------------------------------
def _percent_decode(data: bytes, unicode: bool) -> bytes:
    """Decode ``%XX`` (and with ``unicode`` also ``%uXXXX``); invalid escapes stay as they are."""
    parts = data.split(b"%")
    out = [parts[0]]
    pair = _HEX_PAIRS.get
    for part in parts[1:]:
        if unicode and part[:1] in (b"u", b"U"):
            high, low = pair(part[1:3]), pair(part[3:5])
            if high is not None and low is not None:
                out += (_fullwidth_byte(high[0], low[0]), part[5:])
                continue
        byte = pair(part[:2])
        out += (b"%", part) if byte is None else (byte, part[2:])
    return b"".join(out)


def _fullwidth_byte(high: int, low: int) -> bytes:
    """AWS/IIS: full-width ASCII U+FF01..U+FF5E maps to its ASCII twin, else the low byte."""
    return bytes([low + 0x20 if high == 0xFF and 0 < low < 0x5F else low])


@TRANSFORMS.register("url_decode")
def url_decode(s: str) -> str:
    """Decode ``%XX`` escapes and ``+`` (as a space). An invalid escape (``%zz``, ``%4``) stays as
    it is; ``%uXXXX`` is not decoded (see ``url_decode_uni``).

    ``transforms: [url_decode]``
    """
    if "%" not in s:
        return s.replace("+", " ") if "+" in s else s
    return _to_text(_percent_decode(_to_bytes(s).replace(b"+", b" "), unicode=False))


@TRANSFORMS.register("url_decode_uni")
def url_decode_uni(s: str) -> str:
    """``url_decode`` plus Microsoft ``%uXXXX``: a full-width ASCII code (``%uFF01``-``%uFF5E``)
    becomes its ASCII character, any other code its low byte (``%u0041`` is ``A``).

    ``transforms: [url_decode_uni, lowercase]``
    """
    if "%" not in s:
        return s.replace("+", " ") if "+" in s else s
    return _to_text(_percent_decode(_to_bytes(s).replace(b"+", b" "), unicode=True))


class _PercentU(dict[int, int | str]):
    """str.translate table: non-ASCII characters to ``%uHHHH``; ASCII and raw bytes unchanged."""

    def __missing__(self, code: int) -> str:
        return f"%u{code:04x}"


_UTF8_TO_UNICODE = _PercentU(
    {c: c for c in (*range(0x80), *range(0xDC80, 0xDD00))}
    | {c: f"%u{c:04x}" for c in range(0x80, 0x800)}  # the two-byte range, precomputed
)


@TRANSFORMS.register("utf8_to_unicode")
def utf8_to_unicode(s: str) -> str:
    """Write every UTF-8 encoded character as ``%uHHHH`` (``é`` -> ``%u00e9``), as ModSecurity's
    t:utf8toUnicode does; ASCII and bytes that are not valid UTF-8 are left alone.

    ``transforms: [utf8_to_unicode]``
    """
    return s if s.isascii() else s.translate(_UTF8_TO_UNICODE)


# -- Base64 and hex ------------------------------------------------------------------------------
_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_URL_SAFE = bytes.maketrans(b"-_", b"+/")
_NOT_B64 = _delete_table(_B64_ALPHABET + b"-_")


def _b64decode(chars: bytes) -> bytes:
    """Decode alphabet-only input; a final group of 2-3 characters yields its whole bytes."""
    if len(chars) % 4 == 1:
        chars = chars[:-1]
    return binascii.a2b_base64(chars + b"=" * (-len(chars) % 4))


@TRANSFORMS.register("base64_decode")
def base64_decode(s: str) -> str:
    """Decode Base64. Decoding stops at the first character outside the alphabet (padding ``=``
    included), as in ModSecurity; input without a valid leading run decodes to nothing.

    ``transforms: [base64_decode]``
    """
    data = _to_bytes(s)
    valid = len(data) - len(data.lstrip(_B64_ALPHABET))
    return _to_text(_b64decode(data[:valid]))


@TRANSFORMS.register("base64_decode_ext")
def base64_decode_ext(s: str) -> str:
    """Forgiving Base64: characters outside the alphabet are ignored wherever they are, and the
    URL-safe ``-`` and ``_`` count as ``+`` and ``/``.

    ``transforms: [base64_decode_ext]``
    """
    return _to_text(_b64decode(_to_bytes(s).translate(_B64_URL_SAFE, _NOT_B64)))


@TRANSFORMS.register("hex_decode")
def hex_decode(s: str) -> str:
    """Decode pairs of hex digits into bytes (``414243`` -> ``ABC``). A pair that is not two hex
    digits is kept as it is; an odd final character is dropped, as in ModSecurity.

    ``transforms: [hex_decode]``
    """
    data = _to_bytes(s)
    data = data[: len(data) - len(data) % 2]
    if not data.strip(_HEX_B):
        return _to_text(bytes.fromhex(data.decode("ascii")))
    valid = _hex_pair_mask(data)
    if valid.count(b"\x01\x00") * 8 > len(valid):  # many short runs: go pair by pair
        pairs = [data[i : i + 2] for i in range(0, len(data), 2)]
        return _to_text(b"".join(map(_HEX_PAIRS.get, pairs, pairs)))
    out: list[bytes] = []
    pair = 0
    while pair < len(valid):
        hexadecimal = valid[pair]
        end = valid.find(0 if hexadecimal else 1, pair)
        end = len(valid) if end < 0 else end
        chunk = data[2 * pair : 2 * end]
        out.append(bytes.fromhex(chunk.decode("ascii")) if hexadecimal else chunk)
        pair = end
    return _to_text(b"".join(out))


def _hex_pair_mask(data: bytes) -> bytes:
    """One byte per pair of ``data`` (even length): 1 where both characters are hex digits."""
    high = int.from_bytes(data[0::2].translate(_HEX_MASK), "big")
    low = int.from_bytes(data[1::2].translate(_HEX_MASK), "big")
    return (high & low).to_bytes(len(data) // 2, "big")


@TRANSFORMS.register("sql_hex_decode")
def sql_hex_decode(s: str) -> str:
    """Decode SQL hex literals in place: ``0x414243`` -> ``ABC``. ``0x`` without a hex pair after
    it, and a final odd digit, are kept.

    ``transforms: [sql_hex_decode, lowercase]``
    """
    if "0x" not in s and "0X" not in s:
        return s
    data = _to_bytes(s)
    folded = data.lower()
    not_hex = data.translate(_HEX_MASK)  # 0 at every byte that is not a hex digit
    out: list[bytes] = []
    pos = 0
    at = folded.find(b"0x")
    while at >= 0:
        end = not_hex.find(0, at + 2)
        end = len(data) if end < 0 else end
        end -= (end - at) % 2  # complete pairs only
        if end > at + 2:
            out += (data[pos:at], bytes.fromhex(data[at + 2 : end].decode("ascii")))
            pos = end
        at = folded.find(b"0x", max(end, at + 2))
    out.append(data[pos:])
    return _to_text(b"".join(out))


# -- hashes --------------------------------------------------------------------------------------
@TRANSFORMS.register("md5")
def md5(s: str) -> str:
    """The MD5 digest of the value, as AWS does: the raw 16 digest bytes (not hex), as text in
    which bytes that are not valid UTF-8 are U+DC80..U+DCFF (like any other request bytes).

    ``transforms: [md5]``
    """
    return _to_text(hashlib.md5(_to_bytes(s), usedforsecurity=False).digest())


@TRANSFORMS.register("sha256")
def sha256(s: str) -> str:
    """The SHA-256 digest of the value: the raw 32 digest bytes (not hex), like ``md5``.

    ``transforms: [sha256]``
    """
    return _to_text(hashlib.sha256(_to_bytes(s)).digest())


# -- comments ------------------------------------------------------------------------------------
@TRANSFORMS.register("replace_comments")
def replace_comments(s: str) -> str:
    """Replace each C-style comment ``/* ... */`` with one space; an unterminated comment also
    becomes a space; a lone ``*/`` is kept. Consecutive comments give consecutive spaces.

    ``transforms: [url_decode, replace_comments]``
    """
    start = s.find("/*")
    if start < 0:
        return s
    out: list[str] = []
    pos = 0
    while start >= 0:
        out += (s[pos:start], " ")
        end = s.find("*/", start + 2)
        if end < 0:
            return "".join(out)
        pos = end + 2
        start = s.find("/*", pos)
    out.append(s[pos:])
    return "".join(out)


def _byte_mask(data: bytes, char: bytes) -> int:
    """``data`` as a big integer with byte value 1 where ``data`` has ``char``, else 0."""
    return int.from_bytes(data.translate(_MASKS[char]), "big")


_MASKS = {c: bytes(1 if b == c[0] else 0 for b in _ALL_BYTES) for c in (b"/", b"*", b"-", b"#")}
_MASKS[b"<"] = bytes(1 if b == ord("<") else 0 for b in _ALL_BYTES)
_MASKS[b"!"] = bytes(1 if b == ord("!") else 0 for b in _ALL_BYTES)


def _comment_marker_starts(data: bytes) -> bytes:
    """1 at every index of ``data`` where a comment marker starts (overlaps included)."""
    slash, star, dash = (_byte_mask(data, c) for c in (b"/", b"*", b"-"))
    starts = _byte_mask(data, b"#")
    starts |= slash & (star << 8) | star & (slash << 8) | dash & (dash << 8)
    starts |= _byte_mask(data, b"<") & (_byte_mask(data, b"!") << 8) & (dash << 16) & (dash << 24)
    return starts.to_bytes(len(data), "big")


def _dash_run_end(data: bytes, start: int) -> int:
    """End of the run of ``-`` that starts at ``start``."""
    window = 64
    while True:
        chunk = data[start : start + window]
        rest = chunk.lstrip(b"-")
        if rest or len(chunk) < window:
            return start + len(chunk) - len(rest)
        window *= 4


def _comment_token(data: bytes, at: int) -> int:
    """Where scanning goes on after the comment marker at ``at`` (``at`` if there is none).

    In a run of dashes pairs go, an odd dash left over stays, and a final ``-->`` takes its ``>``.
    """
    two = data[at : at + 2]
    if two in (b"/*", b"*/"):
        return at + 2
    if two == b"--":
        end = _dash_run_end(data, at)
        if (end - at) % 2:
            return end - 1
        return end + 1 if data[end : end + 1] == b">" else end
    if data[at : at + 1] == b"#":
        return at + 1
    return at + 4 if data[at : at + 4] == b"<!--" else at


@TRANSFORMS.register("remove_comments_char")
def remove_comments_char(s: str) -> str:
    """Remove the comment markers ``/*``, ``*/``, ``<!--``, ``-->``, ``--`` and ``#`` (the
    markers only; the text between them stays), scanning left to right as ModSecurity does.

    ``transforms: [url_decode, remove_comments_char]``
    """
    if "#" not in s and "--" not in s and "/*" not in s and "*/" not in s:
        return s
    data = _to_bytes(s)
    starts = _comment_marker_starts(data)
    out: list[bytes] = []
    pos = 0
    at = starts.find(1)
    while at >= 0:
        after = _comment_token(data, at)
        if after > at:
            out.append(data[pos:at])
            pos = after
        at = starts.find(1, max(after, at + 1))
    out.append(data[pos:])
    return _to_text(b"".join(out))


# -- backslash escapes ---------------------------------------------------------------------------
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
    parts = _to_bytes(s).split(b"\\")
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
    return _to_text(b"".join(out))


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
        byte = _HEX_PAIRS.get(part[1:3])
        if byte is not None:
            return byte + part[3:]
    elif first in _OCTAL_SET:
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
        high, low = _HEX_PAIRS.get(part[1:3]), _HEX_PAIRS.get(part[3:5])
        if high is not None and low is not None:
            return _fullwidth_byte(high[0], low[0]) + part[5:]
    elif first == ord("x"):
        byte = _HEX_PAIRS.get(part[1:3])
        if byte is not None:
            return byte + part[3:]
    elif first in _OCTAL_SET:
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
    if close < 3 or part[2:close].strip(_HEX_B):
        return None
    encoded = _code_point_utf8(int(part[2:close], 16))
    return None if encoded is None else encoded + part[close + 1 :]


def _js_full_head(part: bytes) -> bytes | None:
    """``uHHHH`` at the start of ``part`` as UTF-8 plus the rest (None for a lone surrogate)."""
    if len(part) < 5 or part[1:5].strip(_HEX_B):
        return None
    encoded = _code_point_utf8(int(part[1:5], 16))
    return None if encoded is None else encoded + part[5:]


def _js_ext_head(part: bytes) -> bytes:
    if part[:1] == b"u":
        decoded = _js_braced(part) if part[1:2] == b"{" else _js_full_head(part)
        if decoded is not None:
            return decoded
        if len(part) >= 5 and not part[1:5].strip(_HEX_B):
            return b"\\" + part  # a lone surrogate: kept as written
    return _js_head(part)


def _surrogate(part: bytes, base: int) -> int | None:
    """The code of ``uHHHH`` at the start of ``part`` if it lies in base..base+0x3FF."""
    if part[:1] != b"u" or len(part) < 5 or part[1:5].strip(_HEX_B):
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


_C_SPACES = frozenset(bytes([b]) for b in _C_SPACE_B)


def _css_head(part: bytes) -> bytes:
    digits = part[:6].translate(_HEX_MASK).find(0)
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


# -- HTML entities -------------------------------------------------------------------------------
# ModSecurity's five, which also decode without the ";", and the ASCII punctuation that the AWS
# Developer Guide lists; names are matched case-insensitively, as AWS documents.
_LOOSE_ENTITIES = {"quot": '"', "amp": "&", "lt": "<", "gt": ">", "nbsp": "\xa0"}
_ENTITIES = {
    **_LOOSE_ENTITIES,
    "nonbreakingspace": "\xa0",
    "newline": "\n",
    "tab": "\t",
    "apos": "'",
    "excl": "!",
    "num": "#",
    "dollar": "$",
    "percnt": "%",
    "lpar": "(",
    "rpar": ")",
    "ast": "*",
    "midast": "*",
    "plus": "+",
    "comma": ",",
    "period": ".",
    "sol": "/",
    "colon": ":",
    "semi": ";",
    "equals": "=",
    "quest": "?",
    "commat": "@",
    "lsqb": "[",
    "lbrack": "[",
    "bsol": "\\",
    "rsqb": "]",
    "rbrack": "]",
    "hat": "^",
    "lowbar": "_",
    "underbar": "_",
    "grave": "`",
    "diacriticalgrave": "`",
    "lcub": "{",
    "lbrace": "{",
    "verbar": "|",
    "vert": "|",
    "verticalline": "|",
    "rcub": "}",
    "rbrace": "}",
}
_LONGEST_ENTITY = max(map(len, _ENTITIES))
_DIGITS = "0123456789"
_HEX_DIGITS = "0123456789abcdefABCDEF"


def _numeric_entity(part: str) -> str | None:
    """``#NNN...`` / ``#xHHH...`` (``;`` optional) at the start of ``part``, decoded."""
    hexadecimal = part[1:2] in ("x", "X")
    body = part[2:] if hexadecimal else part[1:]
    significant = body.lstrip("0")
    rest = significant.lstrip(_HEX_DIGITS if hexadecimal else _DIGITS)
    number = significant[: len(significant) - len(rest)]
    if len(rest) == len(body) or len(number) > 7:
        return None  # no digits at all, or far beyond U+10FFFF
    code = int(number or "0", 16 if hexadecimal else 10)
    if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return None
    return chr(code) + (rest[1:] if rest[:1] == ";" else rest)


def _named_entity(part: str) -> str | None:
    """``name;`` (or one of the loose five without ``;``) at the start of ``part``, decoded."""
    semicolon = part.find(";", 1, _LONGEST_ENTITY + 1)
    if semicolon > 0:
        value = _ENTITIES.get(part[:semicolon].lower())
        if value is not None:
            return value + part[semicolon + 1 :]
    folded = part[:4].lower()
    for size in (4, 3, 2):  # the lengths of the loose names
        value = _LOOSE_ENTITIES.get(folded[:size]) if size <= len(part) else None
        if value is not None:
            following = part[size : size + 1]
            if following.isascii() and following.isalnum():
                return None  # a longer name: "&ltx" is not "&lt" + "x"
            return value + part[size:]
    return None


@TRANSFORMS.register("html_entity_decode")
def html_entity_decode(s: str) -> str:
    """Decode HTML character references: ``&#xhhhh;`` and ``&#nnnn;`` (the ``;`` is optional) to
    the character they name, and named ones such as ``&lt;`` ``&quot;`` ``&nbsp;`` ``&lpar;``
    (case-insensitive; ``&quot &amp &lt &gt &nbsp`` also without ``;``). Anything else stays.

    ``transforms: [url_decode, html_entity_decode]``
    """
    if "&" not in s:
        return s
    parts = s.split("&")
    out = [parts[0]]
    for part in parts[1:]:
        first = part[:1]
        if first == "#":
            decoded = _numeric_entity(part)
        elif first.isascii() and first.isalnum():
            decoded = _named_entity(part)
        else:
            decoded = None
        out.append("&" + part if decoded is None else decoded)
    return "".join(out)


# -- paths ---------------------------------------------------------------------------------------
def _normalize(path: str) -> str:
    absolute = path.startswith("/")
    kept: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment != "..":
            kept.append(segment)
        elif kept and kept[-1] != "..":
            kept.pop()
        elif not absolute:
            kept.append("..")  # a relative path keeps the back-references it cannot resolve
    joined = "/".join(kept)
    if kept and path.endswith("/"):
        joined += "/"
    return "/" + joined if absolute else joined


@TRANSFORMS.register("normalize_path")
def normalize_path(s: str) -> str:
    """Remove repeated slashes, ``./`` self-references and ``dir/../`` back-references
    (``/a/./b/../c`` -> ``/a/c``). An absolute path never climbs above ``/``; a relative path
    keeps leading ``..`` segments it cannot resolve. A trailing slash is kept.

    ``transforms: [url_decode, normalize_path, lowercase]``
    """
    if "//" not in s and "/." not in s and not s.startswith("."):
        return s
    return _normalize(s)


@TRANSFORMS.register("normalize_path_win")
def normalize_path_win(s: str) -> str:
    """``normalize_path`` after turning every backslash into a forward slash
    (``C:\\a\\..\\b`` -> ``C:/b``).

    ``transforms: [url_decode, normalize_path_win, lowercase]``
    """
    return normalize_path(s.replace("\\", "/") if "\\" in s else s)


def chain(names: Sequence[str]) -> tuple[Transform, ...]:
    """The transformations called ``names``, in order; KeyError (with a hint) for an unknown one."""
    fns: list[Transform] = []
    for name in names:
        if name not in TRANSFORMS:
            raise KeyError(TRANSFORMS.unknown(name))
        fns.append(TRANSFORMS[name])
    return tuple(fns)
