"""The record's ``httpRequest`` field: the request's client, line and headers, never its body.

Lines are size-bounded whatever the request: header values, the URI and the query string are cut
at ``MAX_VALUE_CHARS`` with a ``TRUNCATED`` marker, headers as a whole at ``MAX_HEADER_CHARS``.
Redaction happens before truncation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import chain
from urllib.parse import unquote_plus

from wafproxy.decisionlog.config import Redaction
from wafproxy.request import Header, WafRequest

Encode = Callable[[object], bytes]

REDACTED = "REDACTED"
TRUNCATED = "…(truncated)"
MAX_VALUE_CHARS = 8 * 1024
MAX_HEADER_CHARS = 32 * 1024
HEADER_JSON_ENTRIES = 4096


def http_request(req: WafRequest, redact: Redaction, country: str | None) -> dict[str, object]:
    return {**_without_headers(req, redact, country), "headers": _headers(req.headers, redact)}


def http_request_json(
    req: WafRequest, redact: Redaction, country: str | None, encode: Encode
) -> bytes:
    """``http_request`` encoded. Why: building a dict per header and encoding it was most of
    the line's cost, and most headers (User-Agent, Accept, …) repeat from request to request,
    so each header's JSON is kept (bounded; redacted headers are judged by name and never kept
    with their value)."""
    rest = encode(_without_headers(req, redact, country))
    return b'%s,"headers":%s}' % (rest[:-1], _headers_json(req.headers, redact, encode))


def _without_headers(req: WafRequest, redact: Redaction, country: str | None) -> dict[str, str]:
    return {
        "clientIp": req.client_ip,
        "country": country or "-",
        "uri": _truncate(req.uri_path),
        "args": _truncate(_redact_args(req.query_string, redact.args)),
        "httpVersion": req.http_version,
        "httpMethod": req.method,
        "requestId": req.request_id,
    }


def _headers_json(headers: Sequence[Header], redact: Redaction, encode: Encode) -> bytes:
    if not redact.cookies:
        known = redact.header_json
        parts = [known.get(header) or _header_json(header, redact, encode) for header in headers]
        joined = b",".join(parts)
        if all(parts) and len(joined) <= MAX_HEADER_CHARS:  # then the characters are, too
            return b"[%s]" % joined
    return encode(_headers(headers, redact))


def _header_json(header: Header, redact: Redaction, encode: Encode) -> bytes:
    """b"" when the header needs the bounded path (too long)."""
    name, value = header
    part = redact.redacted_json.get(name)
    if part is not None:
        return part
    if len(name) > MAX_VALUE_CHARS:
        return b""
    if name.lower() in redact.headers:
        redacted = redact.redacted_json
        if len(redacted) >= HEADER_JSON_ENTRIES:
            redacted.clear()
        part = redacted[name] = encode({"name": name, "value": REDACTED})
        return part
    if len(value) > MAX_VALUE_CHARS:
        return b""
    part = encode({"name": name, "value": value})
    known = redact.header_json
    if len(known) >= HEADER_JSON_ENTRIES:
        known.clear()
    known[header] = part
    return part


def _headers(headers: Sequence[Header], redact: Redaction) -> list[dict[str, str]]:
    """Redacted, each value and the whole list bounded."""
    if not redact.cookies and _plain(headers):  # the usual request: one list comprehension
        hidden = redact.headers
        return [
            {"name": name, "value": REDACTED if name.lower() in hidden else value}
            for name, value in headers
        ]
    return _bounded_headers(headers, redact)


def _plain(headers: Sequence[Header]) -> bool:
    """No name or value over MAX_VALUE_CHARS, and all of them within MAX_HEADER_CHARS."""
    if sum(map(len, chain.from_iterable(headers))) <= MAX_VALUE_CHARS:
        return True  # the usual request, counted without a Python loop
    total = 0
    for name, value in headers:
        size = len(value)
        if size > MAX_VALUE_CHARS or len(name) > MAX_VALUE_CHARS:
            return False
        total += len(name) + size
    return total <= MAX_HEADER_CHARS


def _bounded_headers(headers: Sequence[Header], redact: Redaction) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    budget = MAX_HEADER_CHARS
    hidden = redact.headers
    cookies = redact.cookies
    for index, (name, raw) in enumerate(headers):
        lower = name.lower()
        if lower in hidden:
            value = REDACTED
        elif cookies and lower == "cookie":
            value = _redact_pairs(raw, ";", cookies)
        else:
            value = raw
        if len(value) > MAX_VALUE_CHARS:
            value = value[:MAX_VALUE_CHARS] + TRUNCATED
        budget -= len(name) + len(value)
        if budget < 0:
            left = len(headers) - index
            out.append({"name": TRUNCATED, "value": f"{left} more headers not logged"})
            break
        out.append({"name": _truncate(name), "value": value})
    return out


def _redact_args(query: str, names: frozenset[str]) -> str:
    return _redact_pairs(query, "&", names) if names else query


def _redact_pairs(text: str, separator: str, names: frozenset[str]) -> str:
    """Replace the values of ``name=value`` parts whose (decoded, case-folded) name is listed."""
    parts = text.split(separator)
    for index, part in enumerate(parts):
        name, sep, _ = part.partition("=")
        if sep and unquote_plus(name.strip()).lower() in names:
            parts[index] = f"{name}={REDACTED}"
    return separator.join(parts)


def _truncate(value: str) -> str:
    if len(value) <= MAX_VALUE_CHARS:
        return value
    return value[:MAX_VALUE_CHARS] + TRUNCATED
