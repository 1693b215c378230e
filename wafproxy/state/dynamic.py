"""Dynamic IP set entries and the immutable snapshot the engine reads.

Both backends keep every entry here; ``snapshot(now)`` hands the engine a name -> IpSet mapping
that is rebuilt only when an entry was added or removed, or when the soonest TTL has passed,
so an expired entry stops matching at its expiry time whatever the backend.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from wafproxy.acl.ipset import IpSet, build_ip_set

MAX_REASON = 512


@dataclass(frozen=True)
class IpEntry:
    set_name: str
    address: str
    """Canonical CIDR (``192.0.2.7/32``, ``2001:db8::/32``)."""
    expires: float | None
    """Unix time, or None for an entry that stays until removed."""
    reason: str = ""
    added: float = 0.0

    def alive(self, now: float) -> bool:
        return self.expires is None or self.expires > now

    def as_json(self) -> dict[str, object]:
        return {
            "address": self.address,
            "expires": self.expires,
            "reason": self.reason,
            "added": self.added,
        }


def canonical_cidr(text: str) -> str:
    """``192.0.2.7`` -> ``192.0.2.7/32``; host bits are cleared; IPv4-mapped IPv6 is IPv4.
    Raises ValueError for anything that is not an address or CIDR."""
    try:
        net = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError as exc:
        raise ValueError(f"not an IP address or CIDR: {text!r}") from exc
    if isinstance(net, ipaddress.IPv6Network) and net.prefixlen >= 96:
        mapped = net.network_address.ipv4_mapped
        if mapped is not None:
            return f"{mapped}/{net.prefixlen - 96}"
    return str(net)


def new_entry(set_name: str, address: str, ttl: float | None, reason: str, now: float) -> IpEntry:
    """Raises ValueError for a bad address or TTL."""
    if ttl is not None and (not math.isfinite(ttl) or ttl <= 0):
        raise ValueError("ttl must be a number of seconds > 0 (or null for no expiry)")
    return IpEntry(
        set_name=set_name,
        address=canonical_cidr(address),
        expires=None if ttl is None else now + ttl,
        reason=reason[:MAX_REASON],
        added=now,
    )


class DynamicSets:
    """Every entry by set and address, and the engine's snapshot of the live ones."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, IpEntry]] = {}
        self._snapshot: Mapping[str, IpSet] = MappingProxyType({})
        self._valid_until = -math.inf
        self._dirty = True

    def replace(self, entries: Iterable[IpEntry]) -> None:
        table: dict[str, dict[str, IpEntry]] = {}
        for entry in entries:
            table.setdefault(entry.set_name, {})[entry.address] = entry
        self._entries = table
        self._dirty = True

    def put(self, entry: IpEntry) -> None:
        self._entries.setdefault(entry.set_name, {})[entry.address] = entry
        self._dirty = True

    def remove(self, set_name: str, address: str) -> bool:
        found = self._entries.get(set_name, {}).pop(address, None) is not None
        self._dirty = self._dirty or found
        return found

    def entries(self, set_name: str, now: float) -> list[IpEntry]:
        live = [e for e in self._entries.get(set_name, {}).values() if e.alive(now)]
        return sorted(live, key=lambda e: e.address)

    def counts(self, now: float) -> dict[str, int]:
        return {name: len(self.entries(name, now)) for name in self._entries}

    def snapshot(self, now: float) -> Mapping[str, IpSet]:
        if self._dirty or now >= self._valid_until:
            self._rebuild(now)
        return self._snapshot

    def _rebuild(self, now: float) -> None:
        sets: dict[str, IpSet] = {}
        soonest = math.inf
        for name, table in self._entries.items():
            expired = [a for a, e in table.items() if not e.alive(now)]
            for address in expired:
                del table[address]
            sets[name] = build_ip_set(name, table)
            for entry in table.values():
                if entry.expires is not None:
                    soonest = min(soonest, entry.expires)
        self._snapshot = MappingProxyType(sets)
        self._valid_until = soonest
        self._dirty = False
