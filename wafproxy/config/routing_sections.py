"""The required sections, which say where traffic comes in and goes: listeners (with their TLS
blocks), upstreams and routes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from wafproxy.config.collect import ErrorCollector
from wafproxy.config.model import HOST_PASS, Address, ResponseHeaders, Route, Upstream
from wafproxy.config.scalars import (
    int_from,
    parse_address,
    parse_header_name,
    parse_seconds,
    parse_target,
)
from wafproxy.config.source import Node
from wafproxy.errors import ConfigError
from wafproxy.kms.config import TlsConfig, parse_tls


def parse_listeners(node: Node, errors: ErrorCollector) -> list[Address]:
    items = node.seq()
    if not items:
        raise node.error("at least one listener is required")
    return errors.each(items, _listener)


def _listener(node: Node) -> Address:
    return parse_address(node if node.is_scalar else node.fields(["listen"], ["tls"])["listen"])


def parse_listener_tls(opts: Mapping[str, Node], base: Path) -> dict[Address, TlsConfig]:
    """TLS blocks by listen address (a listener whose address is wrong is reported already)."""
    out: dict[Address, TlsConfig] = {}
    for item in opts["listeners"].seq():
        if not item.is_map or "tls" not in item.map():
            continue
        try:
            address = parse_address(item.map()["listen"])
        except (ConfigError, KeyError):
            continue
        tls = item.map()["tls"]
        if "kms" not in opts:
            raise tls.error("a TLS listener needs a kms: section (its key is encrypted)")
        out[address] = parse_tls(tls, base, item.map()["listen"].str().strip())
    return out


def parse_upstreams(node: Node, errors: ErrorCollector, base: Path) -> dict[str, Upstream]:
    no_items: dict[str, Node] = {}
    items = errors.attempt(node.map, no_items)
    if not items and node.is_map:
        errors.items.append(node.error("at least one upstream is required"))
    out: dict[str, Upstream] = {}
    for name, child in items.items():
        upstream = errors.attempt(lambda: _upstream(name, child, errors, base), None)  # noqa: B023
        if upstream is not None:
            out[name] = upstream
    return out


def _upstream(name: str, node: Node, errors: ErrorCollector, base: Path) -> Upstream:
    keys = ["max_fails", "fail_timeout", "connect_timeout", "read_timeout", "total_timeout"]
    opts = node.fields(["targets"], [*keys, "pool_size", "ca_file", "tls_verify"])
    targets = opts["targets"].seq()
    if not targets:
        raise opts["targets"].error("at least one target is required")
    d = Upstream(name, ())
    return Upstream(
        name=name,
        targets=tuple(errors.each(targets, parse_target)),
        max_fails=errors.field(opts, "max_fails", int_from(1), d.max_fails),
        fail_timeout=errors.field(opts, "fail_timeout", parse_seconds, d.fail_timeout),
        connect_timeout=errors.field(opts, "connect_timeout", parse_seconds, d.connect_timeout),
        read_timeout=errors.field(opts, "read_timeout", parse_seconds, d.read_timeout),
        total_timeout=errors.field(opts, "total_timeout", parse_seconds, d.total_timeout),
        pool_size=errors.field(opts, "pool_size", int_from(1), d.pool_size),
        ca_file=errors.field(opts, "ca_file", lambda n: _existing_file(n, base), None),
        tls_verify=errors.field(opts, "tls_verify", lambda n: n.bool(), True),
    )


def _existing_file(node: Node, base: Path) -> Path:
    path = base / node.str()
    if not path.is_file():
        raise node.error(f"no such file: {path}")
    return path


def declared_upstreams(node: Node) -> frozenset[str]:
    """Upstream names, valid or not: a broken upstream must not also fail every route using it."""
    return frozenset(node.value) if isinstance(node.value, dict) else frozenset()


def parse_routes(node: Node, upstreams: frozenset[str], errors: ErrorCollector) -> list[Route]:
    items = node.seq()
    if not items:
        raise node.error("at least one route is required")
    return errors.each(items, lambda item: _route(item, upstreams, errors))


def _route(node: Node, upstreams: frozenset[str], errors: ErrorCollector) -> Route:
    keys = ["host", "path_prefix", "web_acl", "host_header", "name", "response_headers"]
    opts = node.fields(["upstream"], keys)
    upstream = errors.field(opts, "upstream", lambda n: _upstream_ref(n, upstreams), "")
    host = errors.field(opts, "host", _route_host, "*")
    prefix = errors.field(opts, "path_prefix", _path_prefix, "/")
    return Route(
        name=errors.field(opts, "name", Node.str, f"{host}{prefix}"),
        upstream=upstream,
        host=host,
        path_prefix=prefix,
        web_acl=errors.field(opts, "web_acl", Node.str, None),
        host_header=errors.field(opts, "host_header", _host_header, HOST_PASS),
        response_headers=errors.field(
            opts, "response_headers", _response_headers, ResponseHeaders()
        ),
        mark=opts["web_acl"].mark if "web_acl" in opts else node.mark,
    )


def _upstream_ref(node: Node, upstreams: frozenset[str]) -> str:
    name = node.str()
    if upstreams and name not in upstreams:
        known = ", ".join(sorted(upstreams))
        raise node.error(f"unknown upstream {name!r}; defined: {known}")
    return name


def _route_host(node: Node) -> str:
    host = node.str().strip().lower()
    if host == "*" or (host.startswith("[") and host.endswith("]")):
        return host
    name = host[2:] if host.startswith("*.") else host
    if not name or any(c in name for c in "*:/ \t"):
        raise node.expected("'*', '*.example.com' or a host name without port")
    return host


def _response_headers(node: Node) -> ResponseHeaders:
    opts = node.fields(optional=["add", "remove"])
    add: list[tuple[str, str]] = []
    for name, value in opts["add"].map().items() if "add" in opts else ():
        add.append((parse_header_name(Node(name, value.mark, value.path)), _header_value(value)))
    remove = tuple(parse_header_name(n) for n in opts["remove"].seq()) if "remove" in opts else ()
    return ResponseHeaders(add=tuple(add), remove=remove)


def _header_value(node: Node) -> str:
    value = node.str()
    if any(c in value for c in "\r\n\x00"):
        raise node.expected("a header value without line breaks")
    return value


def _path_prefix(node: Node) -> str:
    prefix = node.str()
    if not prefix.startswith("/"):
        raise node.expected("a path starting with '/'")
    return prefix


def _host_header(node: Node) -> str:
    value = node.str().strip()
    if not value or any(c in value for c in " \t\r\n,/"):
        raise node.expected("pass, upstream or a host name")
    return value
