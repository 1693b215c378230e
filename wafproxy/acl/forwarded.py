"""forwarded_ip_config: take the address to inspect from a header instead of the client address.

As in AWS WAF: when the header is missing the statement does not match; an invalid address
applies ``fallback_behavior``; position ``any`` inspects at most the last 10 addresses.
"""

from __future__ import annotations

from dataclasses import dataclass

from wafproxy.acl.ipset import parse_ip
from wafproxy.config.source import Node
from wafproxy.request import WafRequest

MAX_ANY = 10


@dataclass(frozen=True)
class ForwardedIp:
    header_name: str
    fallback_match: bool
    position: str = "first"


def compile_forwarded_ip(node: Node | None, *, with_position: bool) -> ForwardedIp | None:
    if node is None:
        return None
    keys = ["header_name", "fallback_behavior"]
    opts = node.fields(required=keys, optional=["position"] if with_position else [])
    fallback = opts["fallback_behavior"].one_of(["match", "no_match"])
    position = opts["position"].one_of(["first", "last", "any"]) if "position" in opts else "first"
    header = opts["header_name"].str()
    if not header or len(header) > 255:
        raise opts["header_name"].expected("a header name")
    return ForwardedIp(header.lower(), fallback == "match", position)


def request_ips(req: WafRequest, fwd: ForwardedIp | None) -> tuple[str, ...] | None:
    """The addresses to inspect (none when the header is missing); None means "apply the
    fallback" (the header holds something that is not an address)."""
    if fwd is None:
        return (req.client_ip,)
    value = req.header(fwd.header_name)
    if value is None:
        return ()
    parts = [p.strip() for p in value.split(",")]
    if fwd.position == "first":
        parts = parts[:1]
    elif fwd.position == "last":
        parts = parts[-1:]
    else:
        parts = parts[-MAX_ANY:]
    if not parts or any(parse_ip(p) is None for p in parts):
        return None
    return tuple(parts)
