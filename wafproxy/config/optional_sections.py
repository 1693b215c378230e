"""The optional top-level sections: rules, limits, client_ip, request_id, admin, decision_log
and state (the other optional sections are parsed by their own packages)."""

from __future__ import annotations

import ipaddress
from dataclasses import fields
from pathlib import Path

from wafproxy.config.collect import ErrorCollector
from wafproxy.config.model import (
    Address,
    AdminConfig,
    ClientIpConfig,
    IpPosition,
    Limits,
    Network,
    RequestIdConfig,
)
from wafproxy.config.scalars import int_from, parse_address, parse_header_name, parse_seconds
from wafproxy.config.source import Node
from wafproxy.decisionlog.config import DecisionLogConfig
from wafproxy.state.config import StateConfig, parse_state_config

LOG_ACTIONS = ("ALLOW", "BLOCK", "COUNT")


class Sections:
    """The optional top-level sections, each parsed with shared error collection."""

    def __init__(self, errors: ErrorCollector, base: Path) -> None:
        self.errors = errors
        self.base = base

    def rules(self, node: Node) -> tuple[Path, ...]:
        return tuple(self.base / p for p in node.str_list())

    def limits(self, node: Node) -> Limits:
        return _limits(node, self.errors)

    def client_ip(self, node: Node) -> ClientIpConfig:
        return _client_ip(node, self.errors)

    def request_id(self, node: Node) -> RequestIdConfig:
        return _request_id(node, self.errors)

    def admin(self, node: Node) -> AdminConfig:
        return _admin(node, self.base, self.errors)

    def decision_log(self, node: Node) -> DecisionLogConfig:
        return _decision_log(node, self.base, self.errors)

    def state(self, node: Node) -> StateConfig:
        return parse_state_config(node, self.base)


def _limits(node: Node, errors: ErrorCollector) -> Limits:
    d = Limits()
    opts = node.fields(optional=[f.name for f in fields(Limits)])
    return Limits(
        max_body_bytes=errors.field(opts, "max_body_bytes", int_from(0), d.max_body_bytes),
        inspect_body_bytes=errors.field(
            opts, "inspect_body_bytes", int_from(0), d.inspect_body_bytes
        ),
        max_header_bytes=errors.field(opts, "max_header_bytes", int_from(1024), d.max_header_bytes),
        max_headers=errors.field(opts, "max_headers", int_from(1), d.max_headers),
        header_read_timeout=errors.field(
            opts, "header_read_timeout", parse_seconds, d.header_read_timeout
        ),
        keepalive_timeout=errors.field(
            opts, "keepalive_timeout", parse_seconds, d.keepalive_timeout
        ),
        body_read_timeout=errors.field(
            opts, "body_read_timeout", parse_seconds, d.body_read_timeout
        ),
    )


def _client_ip(node: Node, errors: ErrorCollector) -> ClientIpConfig:
    opts = node.fields(optional=["header", "trusted_proxies", "position"])
    d = ClientIpConfig()
    return ClientIpConfig(
        header=errors.field(opts, "header", parse_header_name, d.header),
        trusted_proxies=errors.field(opts, "trusted_proxies", lambda n: _networks(n, errors), ()),
        position=errors.field(opts, "position", _ip_position, d.position),
    )


def _networks(node: Node, errors: ErrorCollector) -> tuple[Network, ...]:
    return tuple(errors.each(node.seq(), _network))


def _network(node: Node) -> Network:
    try:
        return ipaddress.ip_network(node.str().strip(), strict=False)
    except ValueError as exc:
        raise node.expected("an IP address or CIDR block") from exc


def _ip_position(node: Node) -> IpPosition:
    return IpPosition(node.one_of([p.value for p in IpPosition]))


def _request_id(node: Node, errors: ErrorCollector) -> RequestIdConfig:
    opts = node.fields(optional=["header", "trust_incoming"])
    d = RequestIdConfig()
    return RequestIdConfig(
        header=errors.field(opts, "header", parse_header_name, d.header),
        trust_incoming=errors.field(opts, "trust_incoming", Node.bool, d.trust_incoming),
    )


def _admin(node: Node, base: Path, errors: ErrorCollector) -> AdminConfig:
    opts = node.fields(optional=["listen", "token", "token_file"])
    listen = errors.field(opts, "listen", _optional_address, AdminConfig().listen)
    if "token" in opts and "token_file" in opts:
        raise opts["token_file"].error("set token or token_file, not both")
    token = errors.field(opts, "token", _optional_str, None)
    token_file = base / opts["token_file"].str() if "token_file" in opts else None
    if token_file is not None:
        token = errors.field(opts, "token_file", lambda n: _read_token(n, token_file), None)
    elif listen is not None and not listen.is_loopback and not token:
        where = opts.get("listen", node)
        raise where.error(f"admin listens on {listen}, not loopback: set token or token_file")
    return AdminConfig(listen=listen, token=token or None, token_file=token_file)


def _optional_address(node: Node) -> Address | None:
    return None if node.value is None else parse_address(node)


def _optional_str(node: Node) -> str | None:
    return None if node.value is None else node.str()


def _read_token(node: Node, path: Path) -> str:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise node.error(f"cannot read token file {path}: {exc}") from exc
    if not token:
        raise node.error(f"token file {path} is empty")
    return token


def _decision_log(node: Node, base: Path, errors: ErrorCollector) -> DecisionLogConfig:
    d = DecisionLogConfig()
    opts = node.fields(optional=[f.name for f in fields(DecisionLogConfig)])
    destination = errors.field(opts, "destination", Node.str, d.destination)
    if destination not in ("stdout", "off"):
        destination = str(base / destination)
    return DecisionLogConfig(
        destination=destination,
        max_bytes=errors.field(opts, "max_bytes", int_from(0), d.max_bytes),
        backup_count=errors.field(opts, "backup_count", int_from(0), d.backup_count),
        redact_headers=errors.field(opts, "redact_headers", _names, d.redact_headers),
        redact_cookies=errors.field(opts, "redact_cookies", _names, d.redact_cookies),
        redact_query_args=errors.field(opts, "redact_query_args", _names, d.redact_query_args),
        actions=errors.field(opts, "actions", lambda n: _log_actions(n, errors), d.actions),
        queue_size=errors.field(opts, "queue_size", int_from(1), d.queue_size),
    )


def _log_actions(node: Node, errors: ErrorCollector) -> frozenset[str]:
    return frozenset(errors.each(node.seq(), _log_action))


def _log_action(node: Node) -> str:
    if isinstance(node.value, str) and node.value.upper() in LOG_ACTIONS:
        return node.value.upper()
    raise node.expected(f"one of {', '.join(LOG_ACTIONS)}")


def _names(node: Node) -> tuple[str, ...]:
    return tuple(node.str_list())
