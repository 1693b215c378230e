"""The client address behind trusted proxies.

A forwarding header is believed only when the TCP peer is a trusted proxy, so a client talking to
us directly cannot choose its address with ``X-Forwarded-For``. ``last_untrusted`` walks the
header from the right (the hops nearest to us) past trusted proxies; the first address not in a
trusted network is the client. ``first`` takes the leftmost entry (only right when every hop in
front rewrites the header).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from functools import lru_cache

from wafproxy.config.model import ClientIpConfig, IpPosition

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class ClientIpResolver:
    def __init__(self, config: ClientIpConfig) -> None:
        self.header = config.header
        self._position = config.position
        self._v4 = tuple(n for n in config.trusted_proxies if n.version == 4)
        self._v6 = tuple(n for n in config.trusted_proxies if n.version == 6)

    def is_trusted(self, address: Address) -> bool:
        networks = self._v4 if address.version == 4 else self._v6
        return any(address in net for net in networks)

    def peer_trusted(self, peer: str) -> bool:
        address = parse_ip(peer)
        return address is not None and self.is_trusted(address)

    def resolve(self, peer: str, header_values: Sequence[str]) -> str:
        """The client address for a TCP ``peer`` and the forwarding header's values in order."""
        peer_address = parse_ip(peer)
        if peer_address is None:
            return peer
        if not header_values or not self.is_trusted(peer_address):
            return address_text(peer)
        hops = [part.strip() for value in header_values for part in value.split(",")]
        if self._position is IpPosition.FIRST:
            first = parse_ip(hops[0])
            return str(first) if first is not None else str(peer_address)
        return str(self._last_untrusted(hops, peer_address))

    def _last_untrusted(self, hops: Sequence[str], peer: Address) -> Address:
        """Walk right to left; a malformed entry ends the walk at the last hop we trust."""
        current = peer
        for hop in reversed(hops):
            address = parse_ip(hop)
            if address is None:
                return current
            if not self.is_trusted(address):
                return address
            current = address
        return current


def parse_ip(text: str) -> Address | None:
    """An address from a peer or a header entry: ``1.2.3.4``, ``1.2.3.4:80``, ``[::1]:80``,
    ``::ffff:1.2.3.4`` (as 1.2.3.4); None when it is not one."""
    if len(text) > MAX_ADDRESS_TEXT:  # longer than any address: hostile, and never cached
        return None
    return _parse_ip(text)


MAX_ADDRESS_TEXT = 64


@lru_cache(maxsize=8192)
def address_text(text: str) -> str:
    """``str(parse_ip(text))`` for an address ``parse_ip`` takes, remembered by its text (the
    peer of nearly every request: ipaddress's ``str`` runs Python code for each call)."""
    return str(parse_ip(text))


@lru_cache(maxsize=8192)
def _parse_ip(text: str) -> Address | None:
    """Cached: the same peers and proxies come back request after request."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    text = text.partition("%")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
