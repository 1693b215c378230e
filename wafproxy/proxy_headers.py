"""Header rewriting at the proxy, both ways: what the upstream is told, what the client gets."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from wafproxy.config.model import HOST_PASS, HOST_UPSTREAM, ResponseHeaders, Target
from wafproxy.http1 import date_header
from wafproxy.request import Header

HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade"}
)
"""Plus every ``Proxy-*`` header and the headers Connection names (RFC 9110 §7.6.1)."""
FORWARDED = frozenset(
    {"host", "expect", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"}
)
SERVER_NAME = "wafproxy"
"""What our answers say in ``Server`` (an app's own banner passes through unless removed)."""
INSERTED_PREFIX = "x-wafproxy-"
"""Rules' inserted headers; a client cannot send its own (the upstream may trust them)."""


NAMES_KEPT = 1024
LONGEST_NAME_KEPT = 64
"""Header names remembered per table below, and the longest one (names come from the
network: the tables are bounded and start afresh when full)."""


class Kind(enum.Enum):
    KEEP = enum.auto()
    DROP = enum.auto()
    CONNECTION = enum.auto()
    """Dropped, and the names it lists are dropped too."""
    FORWARDED_FOR = enum.auto()
    """Dropped; its value goes before the peer in the new X-Forwarded-For."""


class NameKinds:
    """What to do with a header, by its name as sent. Why: a proxy sees the same few dozen
    names on every request; looking one up costs a fraction of lower-casing and testing it."""

    def __init__(self, dropped: frozenset[str], dropped_prefixes: tuple[str, ...]) -> None:
        self._dropped = dropped
        self._prefixes = dropped_prefixes
        self.known: dict[str, Kind] = {}
        """Callers look here first (a dict lookup, no Python call), then ask ``learn``."""

    def learn(self, name: str) -> Kind:
        kind = self._judge(name.lower())
        if len(name) <= LONGEST_NAME_KEPT:
            if len(self.known) >= NAMES_KEPT:
                self.known.clear()
            self.known[name] = kind
        return kind

    def _judge(self, low: str) -> Kind:
        if low == "connection":
            return Kind.CONNECTION
        if low == "x-forwarded-for" and low in self._dropped:
            return Kind.FORWARDED_FOR
        if low in self._dropped or low.startswith(self._prefixes):
            return Kind.DROP
        return Kind.KEEP


_decoded_names: dict[bytes, str] = {}


def decode_raw(raw: Iterable[tuple[bytes, bytes]]) -> list[Header]:
    """Names decoded once and shared between requests (their hashes are then computed once)."""
    names = _decoded_names
    if len(names) >= NAMES_KEPT:
        names.clear()
    return [
        (names.get(name) or _decode_name(name), value.decode("utf-8", "surrogateescape"))
        for name, value in raw
    ]


def _decode_name(name: bytes) -> str:
    text = name.decode("utf-8", "surrogateescape")
    if len(name) <= LONGEST_NAME_KEPT:
        _decoded_names[name] = text
    return text


_RESPONSE_KINDS = NameKinds(HOP_BY_HOP, ("proxy-",))


def without_hop_by_hop(headers: Sequence[Header]) -> list[Header]:
    return _sorted_out(headers, _RESPONSE_KINDS)[0]


def _sorted_out(headers: Sequence[Header], kinds: NameKinds) -> tuple[list[Header], list[str]]:
    """The headers to keep (without those a Connection header lists) and the X-Forwarded-For
    values, in one pass with one table lookup per header: it runs for every request and
    response."""
    known, learn, keep = kinds.known, kinds.learn, Kind.KEEP
    out: list[Header] = []
    prior_xff: list[str] = []
    named: list[str] = []
    for header in headers:
        kind = known.get(header[0]) or learn(header[0])
        if kind is keep:
            out.append(header)
        elif kind is Kind.FORWARDED_FOR:
            prior_xff.append(header[1])
        elif kind is Kind.CONNECTION:
            named += connection_tokens(header[1])
    return (_without_named(out, named) if named else out), prior_xff


def _without_named(headers: list[Header], named: list[str]) -> list[Header]:
    listed = frozenset(named)
    return [h for h in headers if h[0].lower() not in listed]


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
    """Request headers for the upstream, without Host (set per target by ``host_for``)."""
    out, prior_xff = _sorted_out(headers, _request_kinds(fwd.request_id_header, fwd.insert_headers))
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
def _request_kinds(request_id_header: str, insert_headers: tuple[Header, ...]) -> NameKinds:
    """Per configuration, not per request: both come from the config and the rules."""
    names = {request_id_header, *(name for name, _ in insert_headers)}
    return NameKinds(_NOT_FORWARDED | {name.lower() for name in names}, _DROPPED_PREFIXES)


def host_for(fwd: ForwardedFor, target: Target) -> str:
    if fwd.host_header == HOST_PASS:
        return fwd.host or target.authority
    if fwd.host_header == HOST_UPSTREAM:
        return target.authority
    return fwd.host_header


def header_values(headers: Iterable[Header], name: str) -> list[str]:
    """Every value of the header ``name`` (lower case), in order."""
    return [value for key, value in headers if key.lower() == name]


def header_value(headers: Iterable[Header], name: str) -> str:
    """The first value of the header ``name`` (lower case); "" when absent."""
    for key, value in headers:
        if key.lower() == name:
            return value
    return ""


@dataclass(frozen=True)
class ResponseHead:
    headers: list[Header]
    length: int | None
    """The Content-Length the upstream declared (framing is the reply's: taken out of
    ``headers``); None for a chunked or connection-delimited body."""
    location: str | None


def client_headers(
    raw: Iterable[tuple[bytes, bytes]], policy: ResponseHeaders, extra: Sequence[Header]
) -> ResponseHead:
    """The upstream response's headers as the client gets them: hop-by-hop ones and the route
    policy's ``remove`` dropped, ``extra`` set (replacing the app's), the policy's ``add``
    where the app sent none, and our Server and Date where the app sent none."""
    dropped = {name.lower() for name, _ in extra}
    dropped.update(name.lower() for name in policy.remove)
    out: list[Header] = []
    present: set[str] = set()
    length = location = None
    for name, value in without_hop_by_hop(decode_raw(raw)):
        low = name.lower()
        if low == "content-length":
            length = int(value)  # llhttp has checked it is one decimal number
        elif low not in dropped:
            if low == "location":
                location = value
            present.add(low)
            out.append((name, value))
    out.extend(extra)
    out.extend((name, value) for name, value in policy.add if name.lower() not in present)
    if "server" not in present:
        out.append(("Server", SERVER_NAME))
    if "date" not in present:
        out.append(("Date", date_header()))
    return ResponseHead(out, length, location)
