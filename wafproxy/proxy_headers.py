"""Header rewriting at the proxy, both ways: what the upstream is told, what the client gets."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from multidict import CIMultiDict

from wafproxy.config.model import HOST_PASS, HOST_UPSTREAM, ResponseHeaders, Target
from wafproxy.request import Header

HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade"}
)
"""Plus every ``Proxy-*`` header and the headers Connection names (RFC 9110 §7.6.1)."""
FORWARDED = frozenset(
    {"host", "expect", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"}
)
INSERTED_PREFIX = "x-wafproxy-"
"""Rules' inserted headers; a client cannot send its own (the upstream may trust them)."""


def decode_raw(raw: Iterable[tuple[bytes, bytes]]) -> list[Header]:
    return [
        (name.decode("utf-8", "surrogateescape"), value.decode("utf-8", "surrogateescape"))
        for name, value in raw
    ]


def without_hop_by_hop(headers: Sequence[Header]) -> list[Header]:
    """One pass, one ``lower()`` per header: it runs for every response."""
    out: list[Header] = []
    lows: list[str] = []
    named: set[str] = set()
    for name, value in headers:
        low = name.lower()
        if low in HOP_BY_HOP or low.startswith("proxy-"):
            if low == "connection":
                named.update(connection_tokens(value))
            continue
        out.append((name, value))
        lows.append(low)
    if named:
        return [h for h, low in zip(out, lows, strict=True) if low not in named]
    return out


def connection_tokens(value: str) -> list[str]:
    """The header names a Connection header lists (they are hop-by-hop too)."""
    return [token.strip().lower() for token in value.split(",")]


@dataclass(frozen=True)
class ForwardedFor:
    """What the upstream is told about the original request."""

    peer: str
    scheme: str
    host: str
    host_header: str
    request_id_header: str
    request_id: str
    insert_headers: tuple[Header, ...] = ()


def upstream_headers(headers: Sequence[Header], fwd: ForwardedFor) -> list[Header]:
    """Request headers for the upstream, without Host (set per target by ``host_for``).

    One pass with one ``lower()`` per header: this runs for every forwarded request."""
    dropped = _not_forwarded(fwd.request_id_header, fwd.insert_headers)
    out: list[Header] = []
    lows: list[str] = []
    prior_xff: list[str] = []
    named: set[str] = set()
    for name, value in headers:
        low = name.lower()
        if low in dropped or low.startswith(_DROPPED_PREFIXES):
            if low == "x-forwarded-for":
                prior_xff.append(value)
            elif low == "connection":
                named.update(connection_tokens(value))
            continue
        out.append((name, value))
        lows.append(low)
    if named:
        out = [h for h, low in zip(out, lows, strict=True) if low not in named]
    out.append(("X-Forwarded-For", ", ".join([*prior_xff, fwd.peer])))
    out.append(("X-Forwarded-Proto", fwd.scheme))
    if fwd.host:
        out.append(("X-Forwarded-Host", fwd.host))
    out.append((fwd.request_id_header, fwd.request_id))
    out.extend(fwd.insert_headers)
    return out


_NOT_FORWARDED = HOP_BY_HOP | FORWARDED
_DROPPED_PREFIXES = ("proxy-", INSERTED_PREFIX)


@lru_cache(maxsize=256)
def _not_forwarded(request_id_header: str, insert_headers: tuple[Header, ...]) -> frozenset[str]:
    """Per configuration, not per request: both come from the config and the rules."""
    names = {request_id_header, *(name for name, _ in insert_headers)}
    return _NOT_FORWARDED | {name.lower() for name in names}


def host_for(fwd: ForwardedFor, target: Target) -> str:
    if fwd.host_header == HOST_PASS:
        return fwd.host or target.authority
    if fwd.host_header == HOST_UPSTREAM:
        return target.authority
    return fwd.host_header


def harden(headers: CIMultiDict[str], policy: ResponseHeaders) -> None:
    """Remove the policy's headers, then add each of its headers the response lacks."""
    for name in policy.remove:
        headers.popall(name, None)
    for name, value in policy.add:
        if name not in headers:
            headers[name] = value
