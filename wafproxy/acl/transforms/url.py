"""URL encodings: ``%XX``, Microsoft's ``%uXXXX``, and UTF-8 written as ``%uHHHH``."""

from __future__ import annotations

from _codecs import escape_decode

from wafproxy.acl.transforms._bytes import HEX_PAIRS, to_bytes, to_text
from wafproxy.acl.transforms.registry import TRANSFORMS


def _percent_decode(data: bytes, unicode: bool) -> bytes:
    """Decode ``%XX`` (and with ``unicode`` also ``%uXXXX``); invalid escapes stay as they are.

    Why ``escape_decode``: a value whose every escape is ``%XX`` (nearly all) is decoded by C
    code as ``\\xXX`` escapes, with its own backslashes escaped first; a Python step per escape
    cost ~0.5 µs (a 2 KB form body with 20 escapes: 14 µs, against 3.6 µs). Any other ``%``
    makes it raise, and the loop below decodes the value."""
    escaped = data.replace(b"\\", b"\\\\") if data.find(b"\\") >= 0 else data  # find: see attacks
    try:
        decoded: bytes = escape_decode(escaped.replace(b"%", b"\\x"))[0]
    except ValueError:  # %uXXXX, %zz, a cut-off escape
        return _percent_decode_each(data, unicode)
    return decoded


def _percent_decode_each(data: bytes, unicode: bool) -> bytes:
    parts = data.split(b"%")
    out = [parts[0]]
    pair = HEX_PAIRS.get
    for part in parts[1:]:
        if unicode and part[:1] in (b"u", b"U"):
            high, low = pair(part[1:3]), pair(part[3:5])
            if high is not None and low is not None:
                out += (fullwidth_byte(high[0], low[0]), part[5:])
                continue
        byte = pair(part[:2])
        out += (b"%", part) if byte is None else (byte, part[2:])
    return b"".join(out)


def fullwidth_byte(high: int, low: int) -> bytes:
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
    return to_text(_percent_decode(to_bytes(s).replace(b"+", b" "), unicode=False))


@TRANSFORMS.register("url_decode_uni")
def url_decode_uni(s: str) -> str:
    """``url_decode`` plus Microsoft ``%uXXXX``: a full-width ASCII code (``%uFF01``-``%uFF5E``)
    becomes its ASCII character, any other code its low byte (``%u0041`` is ``A``).

    ``transforms: [url_decode_uni, lowercase]``
    """
    if "%" not in s:
        return s.replace("+", " ") if "+" in s else s
    return to_text(_percent_decode(to_bytes(s).replace(b"+", b" "), unicode=True))


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
