"""Parsers for the single values several config sections share: addresses, target URLs, header
names, counts and durations."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from urllib.parse import urlsplit

from wafproxy.config.model import Address, Target
from wafproxy.config.source import Node


def parse_address(node: Node) -> Address:
    text = node.str().strip()
    host, sep, port_text = text.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    if bracketed:
        host = host[1:-1]
    ipv6 = _is_ip(host, version=6)
    if not sep or not host or bracketed != ipv6 or (":" in host and not bracketed):
        raise node.expected("host:port or [IPv6]:port")
    if not port_text.isdigit() or int(port_text) > 65535:
        raise node.expected("a port from 0 to 65535 after the ':'")
    return Address(host, int(port_text))


def _is_ip(text: str, version: int) -> bool:
    try:
        return ipaddress.ip_address(text).version == version
    except ValueError:
        return False


def parse_target(node: Node) -> Target:
    text = node.str().strip()
    try:
        url = urlsplit(text)
        port = url.port
    except ValueError as exc:
        raise node.expected("a URL like http://127.0.0.1:9000") from exc
    if url.scheme not in ("http", "https") or not url.hostname:
        raise node.expected("a URL like http://127.0.0.1:9000")
    if url.path not in ("", "/") or url.query or url.fragment or url.username:
        raise node.error("a target is scheme://host[:port] only (no path, query or user)")
    default = 443 if url.scheme == "https" else 80
    return Target(url.scheme, url.hostname, port if port is not None else default)


def parse_header_name(node: Node) -> str:
    name = node.str().strip()
    if not name or not all(c.isalnum() or c in "-_" for c in name):
        raise node.expected("a header name")
    return name


def int_from(low: int) -> Callable[[Node], int]:
    return lambda node: node.int(low=low)


def parse_seconds(node: Node) -> float:
    value = node.number(low=0)
    if value <= 0:
        raise node.expected("a number of seconds > 0")
    return value
