"""Bytes written as text (Base64, hex, SQL hex literals), and the digests."""

from __future__ import annotations

import binascii
import hashlib

from wafproxy.acl.transforms._bytes import (
    HEX_B,
    HEX_MASK,
    HEX_PAIRS,
    delete_table,
    to_bytes,
    to_text,
)
from wafproxy.acl.transforms.registry import TRANSFORMS

# -- Base64 and hex ------------------------------------------------------------------------------
_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_URL_SAFE = bytes.maketrans(b"-_", b"+/")
_NOT_B64 = delete_table(_B64_ALPHABET + b"-_")


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
    data = to_bytes(s)
    valid = len(data) - len(data.lstrip(_B64_ALPHABET))
    return to_text(_b64decode(data[:valid]))


@TRANSFORMS.register("base64_decode_ext")
def base64_decode_ext(s: str) -> str:
    """Forgiving Base64: characters outside the alphabet are ignored wherever they are, and the
    URL-safe ``-`` and ``_`` count as ``+`` and ``/``.

    ``transforms: [base64_decode_ext]``
    """
    return to_text(_b64decode(to_bytes(s).translate(_B64_URL_SAFE, _NOT_B64)))


@TRANSFORMS.register("hex_decode")
def hex_decode(s: str) -> str:
    """Decode pairs of hex digits into bytes (``414243`` -> ``ABC``). A pair that is not two hex
    digits is kept as it is; an odd final character is dropped, as in ModSecurity.

    ``transforms: [hex_decode]``
    """
    data = to_bytes(s)
    data = data[: len(data) - len(data) % 2]
    if not data.strip(HEX_B):
        return to_text(bytes.fromhex(data.decode("ascii")))
    valid = _hex_pair_mask(data)
    if valid.count(b"\x01\x00") * 8 > len(valid):  # many short runs: go pair by pair
        pairs = [data[i : i + 2] for i in range(0, len(data), 2)]
        return to_text(b"".join(map(HEX_PAIRS.get, pairs, pairs)))
    out: list[bytes] = []
    pair = 0
    while pair < len(valid):
        hexadecimal = valid[pair]
        end = valid.find(0 if hexadecimal else 1, pair)
        end = len(valid) if end < 0 else end
        chunk = data[2 * pair : 2 * end]
        out.append(bytes.fromhex(chunk.decode("ascii")) if hexadecimal else chunk)
        pair = end
    return to_text(b"".join(out))


def _hex_pair_mask(data: bytes) -> bytes:
    """One byte per pair of ``data`` (even length): 1 where both characters are hex digits."""
    high = int.from_bytes(data[0::2].translate(HEX_MASK), "big")
    low = int.from_bytes(data[1::2].translate(HEX_MASK), "big")
    return (high & low).to_bytes(len(data) // 2, "big")


@TRANSFORMS.register("sql_hex_decode")
def sql_hex_decode(s: str) -> str:
    """Decode SQL hex literals in place: ``0x414243`` -> ``ABC``. ``0x`` without a hex pair after
    it, and a final odd digit, are kept.

    ``transforms: [sql_hex_decode, lowercase]``
    """
    if "0x" not in s and "0X" not in s:
        return s
    data = to_bytes(s)
    folded = data.lower()
    not_hex = data.translate(HEX_MASK)  # 0 at every byte that is not a hex digit
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
    return to_text(b"".join(out))


# -- hashes --------------------------------------------------------------------------------------
@TRANSFORMS.register("md5")
def md5(s: str) -> str:
    """The MD5 digest of the value, as AWS does: the raw 16 digest bytes (not hex), as text in
    which bytes that are not valid UTF-8 are U+DC80..U+DCFF (like any other request bytes).

    ``transforms: [md5]``
    """
    return to_text(hashlib.md5(to_bytes(s), usedforsecurity=False).digest())


@TRANSFORMS.register("sha256")
def sha256(s: str) -> str:
    """The SHA-256 digest of the value: the raw 32 digest bytes (not hex), like ``md5``.

    ``transforms: [sha256]``
    """
    return to_text(hashlib.sha256(to_bytes(s)).digest())
