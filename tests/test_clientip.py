"""The client address behind trusted proxies: X-Forwarded-For is believed only from them."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

import aiohttp
import pytest

from wafproxy.clientip import ClientIpResolver, parse_ip
from wafproxy.config.model import ClientIpConfig, IpPosition

if TYPE_CHECKING:
    from conftest import StartProxy


def resolver(*trusted: str, position: IpPosition = IpPosition.LAST_UNTRUSTED) -> ClientIpResolver:
    nets = tuple(ipaddress.ip_network(n) for n in trusted)
    return ClientIpResolver(ClientIpConfig(trusted_proxies=nets, position=position))


@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        ("203.0.113.5", ["1.2.3.4"], "203.0.113.5"),  # untrusted peer: header ignored
        ("10.0.0.1", [], "10.0.0.1"),
        ("10.0.0.1", ["1.2.3.4"], "1.2.3.4"),
        ("10.0.0.1", ["6.6.6.6, 1.2.3.4"], "1.2.3.4"),  # the spoofed left entry is not used
        ("10.0.0.1", ["6.6.6.6, 1.2.3.4, 10.0.0.7"], "1.2.3.4"),  # trusted hops skipped
        ("10.0.0.1", ["6.6.6.6", "1.2.3.4, 10.0.0.7"], "1.2.3.4"),  # several header lines
        ("10.0.0.1", ["10.0.0.8, 10.0.0.7"], "10.0.0.8"),  # all trusted: the leftmost
        ("10.0.0.1", ["1.2.3.4, garbage"], "10.0.0.1"),  # malformed: stop at what we trust
        ("10.0.0.1", ["1.2.3.4, 10.0.0.9, junk"], "10.0.0.1"),
        ("10.0.0.1", ["6.6.6.6, junk, 10.0.0.9"], "10.0.0.9"),
        ("10.0.0.1", ["[2001:db8::1]:443"], "2001:db8::1"),
        ("10.0.0.1", ["1.2.3.4:5678"], "1.2.3.4"),
        ("::ffff:10.0.0.1", ["1.2.3.4"], "1.2.3.4"),  # v4-mapped peer counts as v4
        ("fd00::1", ["1.2.3.4"], "1.2.3.4"),
    ],
)
def test_last_untrusted(peer: str, xff: list[str], expected: str) -> None:
    assert resolver("10.0.0.0/8", "fd00::/8").resolve(peer, xff) == expected


def test_first_position_takes_the_leftmost_from_a_trusted_peer() -> None:
    first = resolver("10.0.0.0/8", position=IpPosition.FIRST)
    assert first.resolve("10.0.0.1", ["6.6.6.6, 1.2.3.4"]) == "6.6.6.6"
    assert first.resolve("10.0.0.1", ["nonsense"]) == "10.0.0.1"
    assert first.resolve("203.0.113.5", ["6.6.6.6"]) == "203.0.113.5"


def test_no_trusted_proxies_means_the_peer() -> None:
    assert resolver().resolve("127.0.0.1", ["1.2.3.4"]) == "127.0.0.1"


def test_parse_ip_forms() -> None:
    assert str(parse_ip(" 1.2.3.4 ")) == "1.2.3.4"
    assert str(parse_ip("fe80::1%eth0")) == "fe80::1"
    assert parse_ip("unknown") is None
    assert parse_ip("") is None


async def client_ip_logged(start_proxy: StartProxy, client_ip: dict[str, object]) -> str:
    proxy = await start_proxy({"client_ip": client_ip})
    async with (
        aiohttp.ClientSession() as client,
        client.get(proxy.url + "/blocked", headers={"X-Forwarded-For": "6.6.6.6, 1.2.3.4"}),
    ):
        pass
    [line] = await proxy.wait_decisions(1)
    return str(line["httpRequest"]["clientIp"])


async def test_xff_from_an_untrusted_peer_is_refused_end_to_end(start_proxy: StartProxy) -> None:
    assert await client_ip_logged(start_proxy, {"trusted_proxies": ["10.0.0.0/8"]}) == "127.0.0.1"


async def test_xff_from_a_trusted_peer_is_believed_end_to_end(start_proxy: StartProxy) -> None:
    trusted = {"trusted_proxies": ["127.0.0.1/32"]}
    assert await client_ip_logged(start_proxy, trusted) == "1.2.3.4"


async def test_a_custom_header_name(start_proxy: StartProxy) -> None:
    proxy = await start_proxy(
        {"client_ip": {"trusted_proxies": ["127.0.0.0/8"], "header": "X-Real-Client"}}
    )
    headers = {"X-Real-Client": "198.51.100.7", "X-Forwarded-For": "6.6.6.6"}
    async with aiohttp.ClientSession() as client, client.get(proxy.url + "/x", headers=headers):
        pass
    [line] = await proxy.wait_decisions(1)
    assert line["httpRequest"]["clientIp"] == "198.51.100.7"
