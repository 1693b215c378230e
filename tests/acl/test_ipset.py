"""IP sets: merging, IPv4 / IPv6 / IPv4-mapped lookups, bad entries, list files, and 100 000
random CIDRs checked against a brute-force scan."""

from __future__ import annotations

import ipaddress
import random
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from wafproxy.acl.engine import evaluate
from wafproxy.acl.ipset import build_ip_set, parse_ip, read_ip_list
from wafproxy.acl.model import WebAcl
from wafproxy.rawhttp import build_request

CompileAcl = Callable[[str], WebAcl]
CompileErrors = Callable[[str], list[str]]


def v4(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def test_adjacent_and_overlapping_cidrs_merge() -> None:
    s = build_ip_set(
        "s",
        [
            "10.0.0.0/25",
            "10.0.0.128/25",
            "10.0.1.0/24",
            "10.0.0.7",
            "172.16.0.0/12",
            "172.20.0.0/16",
            "192.0.2.0/24",
        ],
    )
    assert list(zip(s.v4_starts, s.v4_ends, strict=True)) == [
        (v4("10.0.0.0"), v4("10.0.1.255")),
        (v4("172.16.0.0"), v4("172.31.255.255")),
        (v4("192.0.2.0"), v4("192.0.2.255")),
    ]
    assert s.size == 7
    assert (s.v6_starts, s.v6_ends) == ((), ())


def test_non_adjacent_ranges_stay_apart() -> None:
    s = build_ip_set("s", ["10.0.0.0/24", "10.0.2.0/24"])
    assert len(s.v4_starts) == 2
    assert "10.0.1.1" not in s
    assert "10.0.0.255" in s and "10.0.2.0" in s


def test_host_bits_are_ignored() -> None:
    assert "10.1.2.200" in build_ip_set("s", ["10.1.2.3/24"])


@pytest.mark.parametrize(
    ("address", "inside"),
    [
        ("192.0.2.0", True), ("192.0.2.255", True), ("192.0.3.0", False), ("192.0.1.255", False),
        ("10.20.30.40", True), ("2001:db8::", True), ("2001:db8:ffff:ffff::1", True),
        ("2001:db9::", False), ("::ffff:192.0.2.1", True), ("::ffff:192.0.3.1", False),
        ("::ffff:10.0.0.1", True), ("::192.0.2.1", False), ("fe80::1", False),
        ("2001:DB8::1", True), (" 192.0.2.1 ", True),
        ("", False), ("not an ip", False), ("192.0.2.256", False), ("192.0.2", False),
        ("1" * 100, False), ("2001:db8::1%eth0", True),
    ],
)  # fmt: skip
def test_membership(address: str, inside: bool) -> None:
    s = build_ip_set("s", ["192.0.2.0/24", "10.0.0.0/8", "2001:db8::/32"])
    assert (address in s) is inside


def test_parse_ip_folds_ipv4_mapped_addresses() -> None:
    assert parse_ip("::ffff:192.0.2.1") == (4, v4("192.0.2.1"))
    assert parse_ip("192.0.2.1") == (4, v4("192.0.2.1"))
    assert parse_ip("2001:db8::1") == (6, int(ipaddress.IPv6Address("2001:db8::1")))
    assert parse_ip("nope") is None


def test_ipv4_mapped_entries_in_the_set_match_their_ipv4_clients() -> None:
    """Clients written ::ffff:a.b.c.d are looked up as IPv4, so an entry written that way must be
    stored as IPv4 too; otherwise it can never match anything."""
    s = build_ip_set("s", ["::ffff:192.0.2.0/120", "::ffff:198.51.100.7"])
    assert "192.0.2.1" in s
    assert "::ffff:192.0.2.1" in s
    assert "198.51.100.7" in s
    assert "192.0.3.1" not in s


@pytest.mark.parametrize(
    "entry", ["10.0.0.300", "10.0.0.0/33", "2001:db8::/129", "office", "10.0.0.0/8/8", ""]
)
def test_invalid_entries_are_errors(entry: str) -> None:
    with pytest.raises(ValueError) as info:
        build_ip_set("s", ["10.0.0.0/8", entry])
    assert str(info.value) == f"not an IP address or CIDR: {entry!r}"


def test_invalid_entries_in_a_rule_file(compile_errors: CompileErrors) -> None:
    errors = compile_errors(
        "web_acl: a\ndefault_action: allow\nip_sets:\n"
        "  good: {addresses: [10.0.0.0/8]}\n"
        "  bad: {addresses: [10.0.0.0/8, 300.1.1.1]}\n"
        "  empty: {description: nothing}\n"
    )
    assert errors == [
        "rules.yaml:5:8: ip_sets.bad: not an IP address or CIDR: '300.1.1.1'",
        "rules.yaml:6:10: ip_sets.empty: an IP set needs addresses or file (or dynamic: true)",
    ]


def test_read_ip_list_skips_comments_and_blank_lines() -> None:
    text = "# office\n10.0.0.0/8\n\n  192.0.2.1  # the VPN\n2001:db8::/32\n   \n#10.9.9.9\n"
    assert read_ip_list(text) == ["10.0.0.0/8", "192.0.2.1", "2001:db8::/32"]


def test_file_based_set_with_comments(compile_acl: CompileAcl, tmp_path: Path) -> None:
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "blocked.txt").write_text(
        "# scanners seen last week\n198.51.100.0/24\n\n203.0.113.7 # one host\n2001:db8:bad::/48\n"
    )
    acl = compile_acl(
        "web_acl: a\ndefault_action: allow\nip_sets:\n"
        "  blocked: {file: lists/blocked.txt, addresses: [192.0.2.1]}\nrules:\n"
        "  - {name: deny, priority: 1, action: block, statement: {ip_set: {ref: blocked}}}\n"
    )
    for ip, blocked in [
        ("198.51.100.20", True),
        ("203.0.113.7", True),
        ("203.0.113.8", False),
        ("2001:db8:bad:1::1", True),
        ("2001:db8:bae::1", False),
        ("192.0.2.1", True),
    ]:
        assert evaluate(acl, build_request("GET", "/", client_ip=ip)).blocked is blocked, ip


def test_a_missing_or_bad_list_file(compile_errors: CompileErrors, tmp_path: Path) -> None:
    (tmp_path / "bad.txt").write_text("10.0.0.0/8\nnot-an-address\n")
    errors = compile_errors(
        "web_acl: a\ndefault_action: allow\nip_sets:\n"
        "  gone: {file: missing.txt}\n  bad: {file: bad.txt}\n"
    )
    assert len(errors) == 2
    assert errors[0].startswith("rules.yaml:4:16: ip_sets.gone.file: cannot read IP list ")
    assert errors[1] == "rules.yaml:5:8: ip_sets.bad: not an IP address or CIDR: 'not-an-address'"


# -- 100 000 random CIDRs -------------------------------------------------------------------------
Span = tuple[int, int]


def random_cidrs(rng: random.Random, count: int) -> tuple[list[str], list[Span], list[Span]]:
    """CIDR texts, and their (start, end) integer spans for IPv4 and IPv6."""
    texts: list[str] = []
    spans4: list[Span] = []
    spans6: list[Span] = []
    for _ in range(count):
        if rng.random() < 0.8:
            host_bits = 32 - rng.randint(12, 32)
            start = rng.getrandbits(32) >> host_bits << host_bits
            spans4.append((start, start + (1 << host_bits) - 1))
            texts.append(f"{socket.inet_ntoa(start.to_bytes(4, 'big'))}/{32 - host_bits}")
        else:
            net = ipaddress.ip_network((rng.getrandbits(128), rng.randint(24, 128)), strict=False)
            spans6.append((int(net.network_address), int(net.broadcast_address)))
            texts.append(str(net))
    return texts, spans4, spans6


def probes(rng: random.Random, spans4: list[Span], spans6: list[Span], n: int) -> list[str]:
    """Addresses inside, at the edges of, just outside, and far from the random networks."""
    out: list[str] = []
    for _ in range(n):
        version, spans, bits = rng.choice([(4, spans4, 32), (6, spans6, 128)])
        start, end = rng.choice(spans)
        value = rng.choice(
            [start, end, start - 1, end + 1, rng.randint(start, end), rng.getrandbits(bits)]
        )
        value %= 1 << bits
        out.append(
            str(ipaddress.ip_address(value) if version == 6 else ipaddress.IPv4Address(value))
        )
    return out


def brute_force(address: str, spans4: list[Span], spans6: list[Span]) -> bool:
    parsed = ipaddress.ip_address(address)
    value = int(parsed)
    spans = spans4 if parsed.version == 4 else spans6
    return any(start <= value <= end for start, end in spans)


def test_100k_random_cidrs_agree_with_brute_force() -> None:
    rng = random.Random(20240601)
    texts, spans4, spans6 = random_cidrs(rng, 100_000)
    ip_set = build_ip_set("big", texts)
    assert ip_set.size == 100_000
    sample = probes(rng, spans4, spans6, 200)
    expected = [brute_force(a, spans4, spans6) for a in sample]
    assert [a in ip_set for a in sample] == expected
    assert 0 < sum(expected) < len(expected)  # the sample has both answers
    # mapped addresses answer like their IPv4 address
    v4_sample = [a for a in sample if ":" not in a][:50]
    assert [f"::ffff:{a}" in ip_set for a in v4_sample] == [a in ip_set for a in v4_sample]


def test_merged_ranges_are_sorted_and_disjoint() -> None:
    rng = random.Random(7)
    texts, _, _ = random_cidrs(rng, 5_000)
    ip_set = build_ip_set("s", texts)
    for starts, ends in ((ip_set.v4_starts, ip_set.v4_ends), (ip_set.v6_starts, ip_set.v6_ends)):
        assert all(s <= e for s, e in zip(starts, ends, strict=True))
        assert all(ends[i] + 1 < starts[i + 1] for i in range(len(starts) - 1))


def test_remembered_answers_agree_with_the_lookup_and_stay_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("wafproxy.acl.ipset.KNOWN_ADDRESSES", 8)
    rng = random.Random(11)
    texts, spans4, spans6 = random_cidrs(rng, 500)
    ip_set = build_ip_set("s", texts)
    sample = probes(rng, spans4, spans6, 40)
    for _ in range(2):  # the second pass answers from what the first one kept (where it fits)
        assert [a in ip_set for a in sample] == [brute_force(a, spans4, spans6) for a in sample]
        assert len(ip_set.known) <= 8
    assert [a in ip_set for a in sample] == [ip_set.contains(a) for a in sample]


def test_long_address_texts_are_answered_but_not_kept() -> None:
    ip_set = build_ip_set("s", ["10.0.0.0/8"])
    hostile = "10.0.0.1" + " " * 100  # forwarded addresses come from headers
    assert hostile not in ip_set
    assert "10.0.0.1" in ip_set
    assert list(ip_set.known) == ["10.0.0.1"]
