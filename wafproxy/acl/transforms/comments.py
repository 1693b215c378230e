"""Comments: C-style ``/* */`` replaced by a space, or every comment marker removed."""

from __future__ import annotations

from wafproxy.acl.transforms._bytes import ALL_BYTES, to_bytes, to_text
from wafproxy.acl.transforms.registry import TRANSFORMS


@TRANSFORMS.register("replace_comments")
def replace_comments(s: str) -> str:
    """Replace each C-style comment ``/* ... */`` with one space; an unterminated comment also
    becomes a space; a lone ``*/`` is kept. Consecutive comments give consecutive spaces.

    ``transforms: [url_decode, replace_comments]``
    """
    if "*" not in s:  # a one-character search is memchr; "/*" is searched a character at a time
        return s
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


_MASKS = {c: bytes(1 if b == c[0] else 0 for b in ALL_BYTES) for c in (b"/", b"*", b"-", b"#")}
_MASKS[b"<"] = bytes(1 if b == ord("<") else 0 for b in ALL_BYTES)
_MASKS[b"!"] = bytes(1 if b == ord("!") else 0 for b in ALL_BYTES)


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
    data = to_bytes(s)
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
    return to_text(b"".join(out))
