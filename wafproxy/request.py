"""WafRequest: the frozen snapshot of one request that the engine inspects.

Built once per request at the edge (``wafproxy.proxy``) or from a raw HTTP file (``explain``,
rule tests). Everything derived (header map, cookies, query arguments, parsed bodies) is computed
lazily on first use and cached on the instance, so a rule set that never looks at cookies never
pays for parsing them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from wafproxy.lazy import lazy

Header = tuple[str, str]


@dataclass(frozen=True, eq=False)
class WafRequest:
    method: str
    uri_path: str
    """The path as sent, still percent-encoded."""
    query_string: str = ""
    """The raw query string without the leading '?'."""
    headers: tuple[Header, ...] = ()
    """Header names as sent (case kept), in the order sent, duplicates kept."""
    body: bytes = b""
    """The first ``inspect_body_bytes`` of the body."""
    body_size: int = 0
    """The whole body's size where known (Content-Length), else len(body)."""
    body_oversize: bool = False
    """True when the body is longer than what was read for inspection."""
    client_ip: str = "127.0.0.1"
    """The client address after the trusted-proxy rules (what ip_set matches by default)."""
    source_ip: str = "127.0.0.1"
    """The TCP peer address."""
    http_version: str = "HTTP/1.1"
    scheme: str = "http"
    request_id: str = ""
    host: str = ""
    tls: dict[str, str] = field(default_factory=dict)

    @lazy
    def folded_names(self) -> tuple[str, ...]:
        """The header names lower-cased, in order."""
        return tuple([name.lower() for name, _ in self.headers])

    @lazy
    def header_map(self) -> dict[str, tuple[str, ...]]:
        """Lower-cased header name -> values in order."""
        out: dict[str, tuple[str, ...]] = {}
        seen = out.get
        for key, (_, value) in zip(self.folded_names, self.headers, strict=True):
            before = seen(key)
            out[key] = (value,) if before is None else (*before, value)
        return out

    def header(self, name: str) -> str | None:
        """The first value of a header (name case-insensitive), or None."""
        values = self.header_map.get(name.lower())
        return values[0] if values else None

    @lazy
    def content_type(self) -> str:
        value = self.header("content-type") or ""
        return value.split(";", 1)[0].strip().lower()

    @lazy
    def query_args(self) -> tuple[Header, ...]:
        """Query arguments as (name, value), raw (not URL-decoded), in order."""
        return split_args(self.query_string)

    @lazy
    def cookies(self) -> tuple[Header, ...]:
        """Cookies from every Cookie header as (name, value), in order."""
        out: list[Header] = []
        for value in self.header_map.get("cookie", ()):
            for part in value.split(";"):
                name, sep, val = part.strip().partition("=")
                if name or sep:
                    out.append((name, val))
        return tuple(out)

    @lazy
    def body_text(self) -> str:
        """The inspected body as text; undecodable bytes survive as surrogates."""
        return self.body.decode("utf-8", "surrogateescape")


def split_arg_parts(raw: str) -> list[str]:
    """The ``name=value`` parts of a query string or form body, raw, in order (empty ones left
    out): ``split_args`` makes one argument of each."""
    parts = raw.split("&")
    return [part for part in parts if part] if "" in parts else parts


def arg_values(parts: Sequence[str]) -> list[str]:
    """The value of each ``split_arg_parts`` part, as ``split_args`` pairs it with its name
    (a remembered answer per part relies on the two agreeing)."""
    return [part.partition("=")[2] for part in parts]


def split_args(raw: str) -> tuple[Header, ...]:
    out: list[Header] = []
    for part in split_arg_parts(raw):
        name, _, value = part.partition("=")
        out.append((name, value))
    return tuple(out)
