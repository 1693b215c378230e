"""sqli_match and xss_match: libinjection, kept apart because it wraps a C library.

A detection is an atom of its (field, transformation chain) MatchGroup like a pattern is, so its
answer is remembered per value by the group's memo and a rule using it gets a prefilter trigger
(a request in which no value looks like SQL skips the rule). It reads the encoded value, as the
group's other matchers do.

Speed: libinjection-python builds a dict of tokens for every call (several microseconds), so
when the extension exports the C functions we call them through ctypes instead. The XSS
detection skips values without '<', '=' or ':' — libinjection's HTML5 tokenizer needs one of
them to find a tag, an event-handler attribute or a script URL (tests/acl/test_attacks.py checks
this claim).
"""

from __future__ import annotations

import ctypes
import enum
from collections.abc import Callable, Sequence

import libinjection

MAX_INSPECT = 64 * 1024
"""Bytes of one value that libinjection reads."""


_FINGERPRINT = ctypes.create_string_buffer(8)
"""Where libinjection_sqli writes its fingerprint (module-level: it must outlive every call)."""


def _c_functions() -> tuple[Callable[[bytes], bool], Callable[[bytes], bool]] | None:
    try:
        lib = ctypes.CDLL(libinjection.__file__)
        sqli_fn = lib.libinjection_sqli
        xss_fn = lib.libinjection_xss
    except (OSError, AttributeError, TypeError):
        return None
    # the fingerprint buffer goes as its address: ctypes converts an int for c_void_p faster
    # than it converts a buffer for c_char_p (~0.4 µs of each call)
    sqli_fn.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p]
    sqli_fn.restype = ctypes.c_int
    xss_fn.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    xss_fn.restype = ctypes.c_int
    fingerprint_at = ctypes.addressof(_FINGERPRINT)

    def sqli(data: bytes) -> bool:
        return bool(sqli_fn(data, len(data), fingerprint_at))

    def xss(data: bytes) -> bool:
        return bool(xss_fn(data, len(data)))

    return sqli, xss


def _binding_sqli(data: bytes) -> bool:
    return bool(libinjection.is_sql_injection(data.decode("utf-8", "replace"))["is_sqli"])


def _binding_xss(data: bytes) -> bool:
    return bool(libinjection.is_xss(data.decode("utf-8", "replace"))["is_xss"])


_native = _c_functions()
raw_sqli, raw_xss = _native if _native is not None else (_binding_sqli, _binding_xss)


def _plain_sqli(data: bytes) -> bool:
    return bool(data) and raw_sqli(data[:MAX_INSPECT])


# ``bytes.find`` rather than ``in``: CPython 3.11 tries ``in``'s operand as an int first and
# raises (and clears) a TypeError inside every such test; these run for every new value.
def _sqli_through_comments(data: bytes) -> bool:
    if data.find(b"/*") < 0:
        return False
    stripped = _strip_sql_comments(data)
    return stripped != data and raw_sqli(stripped[:MAX_INSPECT])


def xss_in(data: bytes) -> bool:
    if not data or (data.find(b"<") < 0 and data.find(b"=") < 0 and data.find(b":") < 0):
        return False
    return raw_xss(data[:MAX_INSPECT])


class Detection(enum.Enum):
    """What a detection atom looks for; the value is how ``explain`` shows it."""

    SQLI = "sqli_match"
    SQLI_HIGH = "sqli_match (sensitivity_level: high)"
    XSS = "xss_match"

    def found_in(self, data: bytes) -> bool:
        return found_each((self,), data)[0]


def found_each(detections: Sequence[Detection], data: bytes) -> list[bool]:
    """Each detection's answer for ``data``, asking libinjection's SQL check once: a group
    often holds both sensitivities of sqli_match (low's answer is high's first step)."""
    plain: bool | None = None
    answers: list[bool] = []
    for detection in detections:
        if detection is _XSS:
            answers.append(xss_in(data))
            continue
        if plain is None:
            plain = _plain_sqli(data)
        high = detection is _SQLI_HIGH
        answers.append(plain or (high and _sqli_through_comments(data)))
    return answers


_XSS, _SQLI_HIGH = Detection.XSS, Detection.SQLI_HIGH
"""Read per value: on CPython 3.11 reading an Enum member through its class costs about four
plain attribute reads (the metaclass defines ``__getattr__``)."""


def _strip_sql_comments(text: bytes) -> bytes:
    """``UN/**/ION SEL/*x*/ECT`` -> ``UNION SELECT``: high sensitivity looks through comments."""
    out: list[bytes] = []
    i = 0
    while i < len(text):
        start = text.find(b"/*", i)
        if start < 0:
            out.append(text[i:])
            break
        out.append(text[i:start])
        end = text.find(b"*/", start + 2)
        if end < 0:
            break
        i = end + 2
    return b"".join(out)
