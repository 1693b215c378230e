"""Character by character: case, NULs, trimming and whitespace."""

from __future__ import annotations

from wafproxy.acl.transforms._bytes import (
    C_SPACE,
    C_SPACE_B,
    WHITESPACE_TO_SPACE,
    bytes_op,
    squeeze_spaces,
)
from wafproxy.acl.transforms.registry import TRANSFORMS


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
    return s.lower() if s.isascii() else bytes_op(s, bytes.lower)


@TRANSFORMS.register("uppercase")
def uppercase(s: str) -> str:
    """Convert a-z to A-Z (ASCII only, the mirror of ``lowercase``).

    ``transforms: [url_decode, uppercase]``
    """
    return s.upper() if s.isascii() else bytes_op(s, bytes.upper)


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
    return s.strip(C_SPACE)


@TRANSFORMS.register("trim_left")
def trim_left(s: str) -> str:
    """Remove whitespace (space, tab, newline, vertical tab, form feed, CR) from the start.

    ``transforms: [trim_left]``
    """
    return s.lstrip(C_SPACE)


@TRANSFORMS.register("trim_right")
def trim_right(s: str) -> str:
    """Remove whitespace (space, tab, newline, vertical tab, form feed, CR) from the end.

    ``transforms: [trim_right]``
    """
    return s.rstrip(C_SPACE)


_NBSP = ("\xa0", "\udca0")  # U+00A0, and a lone 0xA0 byte that was not valid UTF-8


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
    return bytes_op(_without_nbsp(s, ""), lambda b: b.translate(None, C_SPACE_B))


@TRANSFORMS.register("compress_white_space")
def compress_white_space(s: str) -> str:
    """Turn tab, newline, vertical tab, form feed, CR and NBSP (160) into spaces, then runs of
    spaces into one space.

    ``transforms: [compress_white_space]``
    """
    return bytes_op(
        _without_nbsp(s, " "), lambda b: squeeze_spaces(b.translate(WHITESPACE_TO_SPACE))
    )
