"""sqli_match and xss_match detectors: libinjection, kept apart because they wrap a C library.

Speed: libinjection-python builds a dict of tokens for every call (several microseconds), so
when the extension exports the C functions we call them through ctypes instead, and results are
memoised per distinct value in a bounded table (forms repeat the same values request after
request; a hostile stream of unique values only costs the uncached call). The XSS detector skips
values without '<', '=' or ':' — libinjection's HTML5 tokenizer needs one of them to find a
tag, an event-handler attribute or a script URL (tests/acl/test_attacks.py checks this claim).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

import libinjection

from wafproxy.acl.memo import also_clear

MAX_INSPECT = 64 * 1024
CACHE_SIZE = 100_000
MAX_CACHED_LEN = 512


def _c_functions() -> tuple[Callable[[bytes], bool], Callable[[bytes], bool]] | None:
    try:
        lib = ctypes.CDLL(libinjection.__file__)
        sqli_fn = lib.libinjection_sqli
        xss_fn = lib.libinjection_xss
    except (OSError, AttributeError, TypeError):
        return None
    sqli_fn.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p]
    sqli_fn.restype = ctypes.c_int
    xss_fn.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    xss_fn.restype = ctypes.c_int
    fingerprint = ctypes.create_string_buffer(8)

    def sqli(data: bytes) -> bool:
        return bool(sqli_fn(data, len(data), fingerprint))

    def xss(data: bytes) -> bool:
        return bool(xss_fn(data, len(data)))

    return sqli, xss


def _binding_sqli(data: bytes) -> bool:
    return bool(libinjection.is_sql_injection(data.decode("utf-8", "replace"))["is_sqli"])


def _binding_xss(data: bytes) -> bool:
    return bool(libinjection.is_xss(data.decode("utf-8", "replace"))["is_xss"])


_native = _c_functions()
raw_sqli, raw_xss = _native if _native is not None else (_binding_sqli, _binding_xss)
_sqli_cache: dict[str, bool] = {}
_xss_cache: dict[str, bool] = {}
also_clear(_sqli_cache.clear)
also_clear(_xss_cache.clear)


def is_sqli(value: str, *, high: bool = False) -> bool:
    if not value:
        return False
    if _cached(_sqli_cache, value, raw_sqli):
        return True
    if high and "/*" in value:
        stripped = _strip_sql_comments(value)
        return stripped != value and _cached(_sqli_cache, stripped, raw_sqli)
    return False


def is_xss(value: str) -> bool:
    if not value or ("<" not in value and "=" not in value and ":" not in value):
        return False
    return _cached(_xss_cache, value, raw_xss)


def _cached(cache: dict[str, bool], value: str, detect: Callable[[bytes], bool]) -> bool:
    hit = cache.get(value)
    if hit is not None:
        return hit
    result = detect(value[:MAX_INSPECT].encode("utf-8", "surrogateescape"))
    if len(value) <= MAX_CACHED_LEN:
        if len(cache) >= CACHE_SIZE:
            cache.clear()  # bounded; hostile churn only costs the uncached call
        cache[value] = result
    return result


def _strip_sql_comments(text: str) -> str:
    """``UN/**/ION SEL/*x*/ECT`` -> ``UNION SELECT``: high sensitivity looks through comments."""
    out: list[str] = []
    i = 0
    while i < len(text):
        start = text.find("/*", i)
        if start < 0:
            out.append(text[i:])
            break
        out.append(text[i:start])
        end = text.find("*/", start + 2)
        if end < 0:
            break
        i = end + 2
    return "".join(out)
