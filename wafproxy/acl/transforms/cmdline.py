"""Command-line normalisation: ``cmd_line`` and its cmd.exe and POSIX shell variants."""

from __future__ import annotations

from wafproxy.acl.transforms._bytes import WHITESPACE_TO_SPACE, bytes_op, squeeze_spaces
from wafproxy.acl.transforms.registry import TRANSFORMS

_CMD_LINE_MAP = bytes.maketrans(b",;\t\r\n", b"     ")


def _cmd_tidy(data: bytes, table: bytes, delete: bytes) -> bytes:
    """Map separators to spaces, delete quoting characters, squeeze spaces, and drop a space
    before ``/`` and ``(`` (so ``cat /etc`` and ``cat/etc`` compare equal)."""
    data = squeeze_spaces(data.translate(table, delete))
    return data.replace(b" /", b"/").replace(b" (", b"(")


@TRANSFORMS.register("cmd_line")
def cmd_line(s: str) -> str:
    """Undo command-line obfuscation: delete ``\\ " ' ^``; turn ``, ;`` and tab/CR/newline into a
    space; squeeze spaces; delete a space before ``/`` or ``(``; lowercase A-Z.

    ``transforms: [url_decode, cmd_line]``
    """
    return bytes_op(s, lambda b: _cmd_tidy(b, _CMD_LINE_MAP, b"\\\"'^").lower())


_CMD_WIN_MAP = bytes.maketrans(b",;\t\r\n\v\f", b"       ")


@TRANSFORMS.register("cmd_line_win")
def cmd_line_win(s: str) -> str:
    """``cmd_line`` for cmd.exe: delete its escape and quote characters ``^ "``; turn ``, ;`` and
    whitespace into one space; delete a space before ``/`` or ``(``; lowercase A-Z (cmd.exe is
    case-insensitive). Backslashes (path separators) and ``'`` (not a cmd.exe quote) are kept.

    ``transforms: [url_decode, cmd_line_win]``
    """
    return bytes_op(s, lambda b: _cmd_tidy(b, _CMD_WIN_MAP, b'^"').lower())


def _unix_tidy(data: bytes) -> bytes:
    data = data.replace(b"${IFS}", b" ").replace(b"$@", b"").replace(b"$*", b"")
    return squeeze_spaces(data.translate(WHITESPACE_TO_SPACE, b"\\\"'"))


@TRANSFORMS.register("cmd_line_unix")
def cmd_line_unix(s: str) -> str:
    """``cmd_line`` for POSIX shells: delete the quoting a shell removes (``\\ " '``, so
    ``c'a'\\t`` is ``cat``) and the empty expansions ``$@`` and ``$*``; turn ``${IFS}`` and
    whitespace into one space. Case is kept, as Unix commands are case-sensitive.

    ``transforms: [url_decode, cmd_line_unix]``
    """
    return bytes_op(s, _unix_tidy)
