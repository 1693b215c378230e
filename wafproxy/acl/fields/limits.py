"""Headers and cookies as far as AWS WAF's inspection limits reach, once per request."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain

from wafproxy.acl.memo import Memo
from wafproxy.request import Header, WafRequest

MAX_ITEMS = 200
MAX_BYTES = 8192
"""AWS WAF inspects at most the first 200 headers / cookies and 8 KB of their names and values."""


@dataclass(frozen=True)
class Visible:
    """Headers or cookies as far as AWS WAF's limits reach, and whether there were more."""

    pairs: tuple[Header, ...]
    oversize: bool


def limit_pairs(pairs: Sequence[Header]) -> Visible:
    if len(pairs) <= MAX_ITEMS and sum(map(len, chain.from_iterable(pairs))) <= MAX_BYTES:
        return Visible(tuple(pairs), False)
    kept: list[Header] = []
    used = 0
    for name, value in pairs[:MAX_ITEMS]:
        room = MAX_BYTES - used - len(name)
        if room <= 0:
            break
        kept.append((name, value[:room]))
        used += len(name) + len(value)
        if len(value) > room:
            break
    return Visible(tuple(kept), True)


def _visible_headers(req: WafRequest) -> Visible:
    return limit_pairs(req.headers)


_BY_COOKIE_HEADER: Memo[Visible] = Memo()
"""A client sends the same Cookie header with request after request (its session): the
visible cookies of a single Cookie header are remembered per header value."""


def _visible_cookies(req: WafRequest) -> Visible:
    sent = req.header_map.get("cookie", ())
    if len(sent) != 1:
        return limit_pairs(req.cookies)
    visible = _BY_COOKIE_HEADER.get(sent[0])
    if visible is None:
        visible = limit_pairs(req.cookies)
        _BY_COOKIE_HEADER.put(sent[0], visible)
    return visible


def visible_headers(req: WafRequest) -> Visible:
    # bodies.memo inlined: several fields and their oversize checks ask on every request
    cache = req.__dict__
    visible: Visible | None = cache.get("_wafproxy_headers_visible")
    if visible is None:
        visible = cache["_wafproxy_headers_visible"] = _visible_headers(req)
    return visible


def visible_cookies(req: WafRequest) -> Visible:
    cache = req.__dict__
    visible: Visible | None = cache.get("_wafproxy_cookies_visible")
    if visible is None:
        visible = cache["_wafproxy_cookies_visible"] = _visible_cookies(req)
    return visible
