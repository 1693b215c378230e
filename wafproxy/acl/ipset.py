"""IP sets: IPv4 and IPv6 CIDRs merged into sorted ranges, looked up by bisection.

A bisection over 100 000 ranges touches ~17 integers scattered in memory, so on top of the
sorted ranges each set keeps a small index that narrows the search first: for IPv4 a table by
the address's top 16 bits (the range list of one /16 is a handful of entries), for IPv6 every
32nd range start. A lookup then costs about the same at 100 000 entries as at 10
(bench/rate_bench.py measures it).
"""

from __future__ import annotations

import ipaddress
import socket
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

INDEX_FROM = 1024
"""Sets with fewer ranges than this are bisected directly (an index would not pay)."""
V4_SHIFT = 16
"""IPv4 buckets are /16s: 65 536 of them."""
V6_SAMPLE = 32
KNOWN_ADDRESSES = 4096
LONGEST_ADDRESS = 64
"""Characters: longer than any address text (an IPv6 address with a zone id)."""


@dataclass(frozen=True)
class IpSet:
    name: str
    v4_starts: tuple[int, ...]
    v4_ends: tuple[int, ...]
    v6_starts: tuple[int, ...]
    v6_ends: tuple[int, ...]
    size: int
    v4_index: Sequence[int] | None = field(default=None, compare=False, repr=False)
    """For /16 number b: ``[2b]`` and ``[2b + 1]`` bound the bisection for its addresses."""
    v6_sample: tuple[int, ...] | None = field(default=None, compare=False, repr=False)
    """Every V6_SAMPLE-th IPv6 range start."""
    known: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)
    """Answers for recent client addresses (a client sends many requests; several rules
    ask about the same address); cleared when it holds KNOWN_ADDRESSES."""

    def __contains__(self, ip: str) -> bool:
        answer = self.known.get(ip)
        if answer is None:
            answer = self.contains(ip)
            if len(ip) <= LONGEST_ADDRESS:  # the text may come from a header: keep no long ones
                if len(self.known) >= KNOWN_ADDRESSES:
                    self.known.clear()
                self.known[ip] = answer
        return answer

    def contains(self, ip: str) -> bool:
        """The lookup itself, without the answers kept."""
        parsed = parse_ip(ip)
        if parsed is None:
            return False
        version, value = parsed
        if version == 4:
            starts, ends = self.v4_starts, self.v4_ends
            index = self.v4_index
            if index is None:
                i = bisect_right(starts, value) - 1
            else:
                at = (value >> V4_SHIFT) << 1
                i = bisect_right(starts, value, index[at], index[at + 1]) - 1
        else:
            starts, ends = self.v6_starts, self.v6_ends
            sample = self.v6_sample
            if sample is None:
                i = bisect_right(starts, value) - 1
            else:
                j = bisect_right(sample, value)
                low = max(0, (j - 1) * V6_SAMPLE)
                i = bisect_right(starts, value, low, min(len(starts), j * V6_SAMPLE + 1)) - 1
        return i >= 0 and value <= ends[i]


def _v4_index(starts: tuple[int, ...]) -> Sequence[int] | None:
    """An address v of /16 number b has bisect_right(starts, v) between the starts up to b's
    first address and the starts before the next /16: those two counts, per /16."""
    if len(starts) < INDEX_FROM:
        return None
    index = array("I")
    for bucket in range(1 << (32 - V4_SHIFT)):
        first = bucket << V4_SHIFT
        index.append(bisect_right(starts, first))
        index.append(bisect_left(starts, first + (1 << V4_SHIFT)))
    return index


def _v6_sample(starts: tuple[int, ...]) -> tuple[int, ...] | None:
    return starts[::V6_SAMPLE] if len(starts) >= INDEX_FROM else None


_V4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_MAPPED_HEAD = 0xFFFF
Span = tuple[int, int, int]
"""(version, first, last) as integers."""


def build_ip_set(name: str, cidrs: Iterable[str]) -> IpSet:
    """Raises ValueError naming the first bad entry."""
    v4: list[tuple[int, int]] = []
    v6: list[tuple[int, int]] = []
    count = 0
    for text in cidrs:
        version, start, end = parse_cidr(text)
        count += 1
        (v4 if version == 4 else v6).append((start, end))
    s4, e4 = _merge(v4)
    s6, e6 = _merge(v6)
    return IpSet(name, s4, e4, s6, e6, count, _v4_index(s4), _v6_sample(s6))


def parse_cidr(text: str) -> Span:
    """An address or CIDR as (version, first, last); host bits are ignored and IPv4-mapped
    IPv6 counts as IPv4. Raises ValueError. Plain ``inet_pton`` first (100 000 entries load in
    a fraction of a second); ``ipaddress`` for anything it refuses, so the accepted syntax
    and the error messages are ipaddress's."""
    text = text.strip()
    span = _fast_cidr(text)
    return span if span is not None else _slow_cidr(text)


def _fast_cidr(text: str) -> Span | None:
    addr, sep, length = text.partition("/")
    v6 = ":" in addr
    bits = 128 if v6 else 32
    try:
        packed = socket.inet_pton(socket.AF_INET6 if v6 else socket.AF_INET, addr)
    except (OSError, ValueError):
        return None
    if sep and not (length.isascii() and length.isdigit() and int(length) <= bits):
        return None
    prefix = int(length) if sep else bits
    host = (1 << (bits - prefix)) - 1
    start = int.from_bytes(packed, "big") & ~host
    if v6 and prefix >= 96 and start >> 32 == _MAPPED_HEAD:
        start &= 0xFFFFFFFF
        return 4, start, start | (host & 0xFFFFFFFF)
    return (6 if v6 else 4), start, start | host


def _slow_cidr(text: str) -> Span:
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise ValueError(f"not an IP address or CIDR: {text!r}") from exc
    if isinstance(net, ipaddress.IPv6Network) and net.subnet_of(_V4_MAPPED):
        net = ipaddress.ip_network(f"{net.network_address.ipv4_mapped}/{net.prefixlen - 96}")
    return net.version, int(net.network_address), int(net.broadcast_address)


def _merge(spans: list[tuple[int, int]]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    spans.sort()
    starts: list[int] = []
    ends: list[int] = []
    for start, end in spans:
        if ends and start <= ends[-1] + 1:
            ends[-1] = max(ends[-1], end)
        else:
            starts.append(start)
            ends.append(end)
    return tuple(starts), tuple(ends)


def parse_ip(text: str) -> tuple[int, int] | None:
    """(version, integer) or None; IPv4-mapped IPv6 addresses count as IPv4."""
    if len(text) > LONGEST_ADDRESS:  # longer than any address: hostile, don't cache it
        return None
    return _parse_ip(text)


@lru_cache(maxsize=4096)
def _parse_ip(text: str) -> tuple[int, int] | None:
    text = text.strip()
    v6 = ":" in text
    try:
        value = int.from_bytes(
            socket.inet_pton(socket.AF_INET6 if v6 else socket.AF_INET, text), "big"
        )
    except (OSError, ValueError):
        return _parse_ip_slow(text)
    if v6 and value >> 32 == _MAPPED_HEAD:
        return 4, value & 0xFFFFFFFF
    return (6 if v6 else 4), value


def _parse_ip_slow(text: str) -> tuple[int, int] | None:
    """What inet_pton refuses but ipaddress reads (an IPv6 zone id, ``fe80::1%eth0``)."""
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return 4, int(addr.ipv4_mapped)
    return addr.version, int(addr)


def read_ip_list(text: str) -> list[str]:
    """One address or CIDR per line; '#' starts a comment; blank lines ignored."""
    out: list[str] = []
    for line in text.splitlines():
        entry = line.split("#", 1)[0].strip()
        if entry:
            out.append(entry)
    return out
