"""Request text as bytes and back, and the byte classes that the transformations share."""

from __future__ import annotations

import codecs
from collections.abc import Callable

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


def to_bytes(s: str) -> bytes:
    try:
        return s.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that did not come from a request byte
        return s.encode("utf-8", _LONE_SURROGATES)


def to_text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def bytes_op(s: str, op: Callable[[bytes], bytes]) -> str:
    """Apply ``op`` to the value's bytes (request bytes are what AWS transforms)."""
    return to_text(op(to_bytes(s)))


# -- shared character classes ----------------------------------------------------------------------
C_SPACE = " \t\n\v\f\r"  # isspace() in the C locale
C_SPACE_B = C_SPACE.encode()
HEX_B = b"0123456789abcdefABCDEF"
_HEX_SET = frozenset(HEX_B)
OCTAL_SET = frozenset(b"01234567")
HEX_PAIRS = {  # every two-hex-digit spelling ("4a", "4A", ...) to its byte
    bytes((hi, lo)): bytes([int(bytes((hi, lo)), 16)]) for hi in HEX_B for lo in HEX_B
}
ALL_BYTES = bytes(range(256))
HEX_MASK = bytes(1 if b in _HEX_SET else 0 for b in ALL_BYTES)
WHITESPACE_TO_SPACE = bytes.maketrans(b"\t\n\v\f\r", b"     ")


def delete_table(keep: bytes) -> bytes:
    return bytes(b for b in ALL_BYTES if b not in keep)


def squeeze_spaces(data: bytes) -> bytes:
    while data.find(b"  ") >= 0:  # not ``in``: see acl/attacks.py
        data = data.replace(b"  ", b" ")
    return data
