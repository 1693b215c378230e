"""The service config (listeners, routes, upstreams, limits, …) as frozen values, and the Runtime.

``load_service_config`` reads the YAML with positions and collects every error it can into one
ConfigErrors; ``build_runtime`` compiles the rule files and binds each route to its web ACL. The
proxy only ever sees a finished Runtime: a reload builds a new one and swaps one reference.
"""

from __future__ import annotations

import enum
import ipaddress
import posixpath
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from wafproxy.acl.compile import RuleSet, default_rule_files, load_rule_files
from wafproxy.acl.model import WebAcl
from wafproxy.config.source import Node, load_file, parse
from wafproxy.decisionlog import DecisionLogConfig
from wafproxy.detect.config import DetectConfig, parse_detect
from wafproxy.errors import ConfigError, ConfigErrors, Mark
from wafproxy.findings.config import FindingsConfig, parse_findings
from wafproxy.kms.config import KmsConfig, TlsConfig, parse_kms, parse_tls
from wafproxy.scan.config import ScanConfig, parse_scan
from wafproxy.state.config import StateConfig, parse_state_config

T = TypeVar("T")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

TOP_KEYS = [
    "listeners", "routes", "upstreams", "rules", "limits", "client_ip", "request_id", "admin",
    "decision_log", "kms", "state", "findings", "scan", "detect",
]  # fmt: skip
REQUIRED_KEYS = ["listeners", "routes", "upstreams"]
OPTIONAL_KEYS = [k for k in TOP_KEYS if k not in REQUIRED_KEYS]
HOST_PASS = "pass"
HOST_UPSTREAM = "upstream"
LOG_ACTIONS = ("ALLOW", "BLOCK", "COUNT")


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int

    @property
    def authority(self) -> str:
        """host[:port] as a Host header says it (default ports left out)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


@dataclass(frozen=True)
class Upstream:
    name: str
    targets: tuple[Target, ...]
    max_fails: int = 3
    fail_timeout: float = 10.0
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    total_timeout: float = 300.0
    pool_size: int = 100
    ca_file: Path | None = None
    """CA certificates (PEM) that https targets' certificates must chain to; None: the
    system's trust store."""
    tls_verify: bool = True
    """False skips certificate and host name checks of https targets (a lab upstream only)."""


@dataclass(frozen=True)
class ResponseHeaders:
    """Route option ``response_headers: {add: {Name: value}, remove: [Name]}``: headers added
    to upstream responses that lack them (the app's own value wins) and headers removed
    (version banners). Proposed by ``wafproxy scan`` for missing security headers."""

    add: tuple[tuple[str, str], ...] = ()
    remove: tuple[str, ...] = ()


@dataclass(frozen=True)
class Route:
    name: str
    """The ``route`` metric label: the configured name, else host + path_prefix."""
    upstream: str
    host: str = "*"
    """``*`` (any), ``*.example.com`` (any subdomain) or an exact host name, lower case."""
    path_prefix: str = "/"
    web_acl: str | None = None
    """None: the only web ACL loaded, or the one named ``default``."""
    host_header: str = HOST_PASS
    """``pass`` (the client's Host), ``upstream`` (the target's host:port) or a literal value."""
    response_headers: ResponseHeaders = ResponseHeaders()
    mark: Mark | None = field(default=None, compare=False)

    def matches(self, host: str, path: str) -> bool:
        return self.host_matches(host) and path.startswith(self.path_prefix)

    def host_matches(self, host: str) -> bool:
        if self.host == "*":
            return True
        if self.host.startswith("*."):
            return host.endswith(self.host[1:])
        return host == self.host


class IpPosition(enum.Enum):
    LAST_UNTRUSTED = "last_untrusted"
    FIRST = "first"


@dataclass(frozen=True)
class ClientIpConfig:
    header: str = "X-Forwarded-For"
    trusted_proxies: tuple[Network, ...] = ()
    position: IpPosition = IpPosition.LAST_UNTRUSTED


@dataclass(frozen=True)
class RequestIdConfig:
    header: str = "X-Request-Id"
    trust_incoming: bool = False
    """Keep a well-formed incoming id when the TCP peer is one of client_ip.trusted_proxies."""


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 10 * 1024 * 1024
    inspect_body_bytes: int = 16 * 1024
    max_header_bytes: int = 16 * 1024
    max_headers: int = 100
    header_read_timeout: float = 10.0
    keepalive_timeout: float = 75.0


@dataclass(frozen=True)
class AdminConfig:
    listen: Address | None = Address("127.0.0.1", 9901)
    """None disables the admin listener."""
    token: str | None = None
    """From ``token`` or read from ``token_file`` at load time."""
    token_file: Path | None = None


@dataclass(frozen=True)
class ServiceConfig:
    listeners: tuple[Address, ...]
    routes: tuple[Route, ...]
    upstreams: Mapping[str, Upstream]
    rules: tuple[Path, ...] = ()
    """Rule files (absolute or relative to the working directory); empty: the shipped default."""
    limits: Limits = Limits()
    client_ip: ClientIpConfig = ClientIpConfig()
    request_id: RequestIdConfig = RequestIdConfig()
    admin: AdminConfig = AdminConfig()
    decision_log: DecisionLogConfig = field(default_factory=DecisionLogConfig)
    kms: KmsConfig | None = None
    listener_tls: Mapping[Address, TlsConfig] = field(default_factory=dict)
    """The listeners with a ``tls:`` block (see wafproxy/kms/config.py)."""
    state: StateConfig = field(default_factory=StateConfig)
    """Rate-based counters and dynamic IP sets (see wafproxy/state/config.py)."""
    findings: FindingsConfig | None = None
    """Where findings are kept and sent (wafproxy/findings/config.py); None: not configured."""
    scan: ScanConfig = field(default_factory=ScanConfig)
    """Scheduled assessment of the upstreams (wafproxy/scan/config.py)."""
    detect: DetectConfig | None = None
    """Threat detection on the traffic (wafproxy/detect/config.py); None: off."""
    path: Path | None = None
    """The file it came from (None for ``wafproxy run --upstream``)."""

    @property
    def rule_files(self) -> tuple[Path, ...]:
        return self.rules or tuple(default_rule_files())

    def watched_files(self) -> tuple[Path, ...]:
        """What a file-change reload polls: the config file and the configured rule files."""
        head = (self.path,) if self.path is not None else ()
        return head + self.rules


@dataclass(frozen=True)
class BoundRoute:
    route: Route
    acl: WebAcl
    upstream: Upstream


@dataclass(frozen=True)
class Runtime:
    """A config with its rules compiled: everything a request needs, immutable."""

    config: ServiceConfig
    rule_set: RuleSet
    routes: tuple[BoundRoute, ...]

    def route_for(self, host: str, path: str) -> BoundRoute | None:
        """First match wins. ``host`` may carry a port; ``path`` is the decoded request path."""
        name = host_name(host)
        clean = routing_path(path)
        for bound in self.routes:
            if bound.route.matches(name, clean):
                return bound
        return None


def host_name(host: str) -> str:
    """The Host header without its port, lower case (``[::1]:80`` → ``[::1]``)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def routing_path(path: str) -> str:
    """Dot segments resolved and slashes collapsed, so ``/api/../admin`` cannot pick the /api
    route (and its ACL) for a request the upstream serves as /admin."""
    clean = posixpath.normpath("/" + path.lstrip("/"))
    clean = "/" + clean.lstrip("/")
    if path.endswith("/") and clean != "/":
        clean += "/"
    return clean


# -- loading ---------------------------------------------------------------------------------------
class _Errors:
    """Collects errors so one run reports every problem it can find, in file order."""

    def __init__(self) -> None:
        self.items: list[ConfigError] = []

    def attempt(self, fn: Callable[[], T], fallback: T) -> T:
        try:
            return fn()
        except ConfigErrors as exc:
            self.items.extend(exc.errors)
        except ConfigError as exc:
            self.items.append(exc)
        return fallback

    def field(
        self, opts: Mapping[str, Node], key: str, parse: Callable[[Node], T], default: T
    ) -> T:
        """``parse(opts[key])``, or ``default`` when the key is absent or its value is wrong."""
        if key not in opts:
            return default
        return self.attempt(lambda: parse(opts[key]), default)

    def each(self, nodes: Sequence[Node], parse: Callable[[Node], T]) -> list[T]:
        out: list[T] = []
        for node in nodes:
            failed = object()
            value = self.attempt(lambda: parse(node), failed)  # noqa: B023
            if value is not failed:
                out.append(value)  # type: ignore[arg-type]
        return out

    def raise_any(self) -> None:
        if self.items:
            raise ConfigErrors(sorted(self.items, key=_position))


def _position(error: ConfigError) -> tuple[str, int, int]:
    mark = error.mark
    return (mark.file, mark.line, mark.col) if mark else ("", 0, 0)


def load_service_config(path: Path) -> ServiceConfig:
    """Read and check a service config file. Raises ConfigErrors listing every problem found."""
    try:
        root = load_file(path)
    except ConfigError as exc:
        raise ConfigErrors([exc]) from exc
    return config_from_node(root, Path(path))


def parse_service_config(text: str, filename: str = "<string>") -> ServiceConfig:
    try:
        root = parse(text, filename)
    except ConfigError as exc:
        raise ConfigErrors([exc]) from exc
    return config_from_node(root, Path(filename))


def config_from_node(root: Node, path: Path) -> ServiceConfig:
    errors = _Errors()
    no_nodes: dict[str, Node] = {}
    opts = errors.attempt(lambda: root.fields(REQUIRED_KEYS, OPTIONAL_KEYS), no_nodes)
    errors.raise_any()
    section = _Sections(errors, path.parent)
    upstreams = _upstreams(opts["upstreams"], errors, path.parent)
    names = _declared(opts["upstreams"])
    config = ServiceConfig(
        listeners=tuple(errors.attempt(lambda: _listeners(opts["listeners"], errors), [])),
        routes=tuple(errors.attempt(lambda: _routes(opts["routes"], names, errors), [])),
        upstreams=upstreams,
        rules=errors.field(opts, "rules", section.rules, ()),
        limits=errors.field(opts, "limits", section.limits, Limits()),
        client_ip=errors.field(opts, "client_ip", section.client_ip, ClientIpConfig()),
        request_id=errors.field(opts, "request_id", section.request_id, RequestIdConfig()),
        admin=errors.field(opts, "admin", section.admin, AdminConfig()),
        decision_log=errors.field(opts, "decision_log", section.decision_log, DecisionLogConfig()),
        kms=errors.field(opts, "kms", lambda n: parse_kms(n, path.parent), None),
        listener_tls=errors.attempt(lambda: _listener_tls(opts, path.parent), {}),
        state=errors.field(opts, "state", section.state, StateConfig()),
        findings=errors.field(opts, "findings", lambda n: parse_findings(n, path.parent), None),
        scan=errors.field(opts, "scan", lambda n: parse_scan(n, path.parent), ScanConfig()),
        detect=errors.field(opts, "detect", lambda n: parse_detect(n, path.parent), None),
        path=path,
    )
    errors.raise_any()
    if config.findings is not None:  # a Redis findings store uses the state's connection
        config = replace(config, findings=config.findings.with_state(config.state))
    return config


class _Sections:
    """The optional top-level sections, each parsed with shared error collection."""

    def __init__(self, errors: _Errors, base: Path) -> None:
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


def _listeners(node: Node, errors: _Errors) -> list[Address]:
    items = node.seq()
    if not items:
        raise node.error("at least one listener is required")
    return errors.each(items, _listener)


def _listener(node: Node) -> Address:
    return parse_address(node if node.is_scalar else node.fields(["listen"], ["tls"])["listen"])


def _listener_tls(opts: Mapping[str, Node], base: Path) -> dict[Address, TlsConfig]:
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


def _upstreams(node: Node, errors: _Errors, base: Path) -> dict[str, Upstream]:
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


def _upstream(name: str, node: Node, errors: _Errors, base: Path) -> Upstream:
    keys = ["max_fails", "fail_timeout", "connect_timeout", "read_timeout", "total_timeout"]
    opts = node.fields(["targets"], [*keys, "pool_size", "ca_file", "tls_verify"])
    targets = opts["targets"].seq()
    if not targets:
        raise opts["targets"].error("at least one target is required")
    d = Upstream(name, ())
    return Upstream(
        name=name,
        targets=tuple(errors.each(targets, parse_target)),
        max_fails=errors.field(opts, "max_fails", _int_from(1), d.max_fails),
        fail_timeout=errors.field(opts, "fail_timeout", _seconds, d.fail_timeout),
        connect_timeout=errors.field(opts, "connect_timeout", _seconds, d.connect_timeout),
        read_timeout=errors.field(opts, "read_timeout", _seconds, d.read_timeout),
        total_timeout=errors.field(opts, "total_timeout", _seconds, d.total_timeout),
        pool_size=errors.field(opts, "pool_size", _int_from(1), d.pool_size),
        ca_file=errors.field(opts, "ca_file", lambda n: _existing_file(n, base), None),
        tls_verify=errors.field(opts, "tls_verify", lambda n: n.bool(), True),
    )


def _existing_file(node: Node, base: Path) -> Path:
    path = base / node.str()
    if not path.is_file():
        raise node.error(f"no such file: {path}")
    return path


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


def _declared(node: Node) -> frozenset[str]:
    """Upstream names, valid or not: a broken upstream must not also fail every route using it."""
    return frozenset(node.value) if isinstance(node.value, dict) else frozenset()


def _routes(node: Node, upstreams: frozenset[str], errors: _Errors) -> list[Route]:
    items = node.seq()
    if not items:
        raise node.error("at least one route is required")
    return errors.each(items, lambda item: _route(item, upstreams, errors))


def _route(node: Node, upstreams: frozenset[str], errors: _Errors) -> Route:
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
        add.append((_header_name(Node(name, value.mark, value.path)), _header_value(value)))
    remove = tuple(_header_name(n) for n in opts["remove"].seq()) if "remove" in opts else ()
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


def _limits(node: Node, errors: _Errors) -> Limits:
    d = Limits()
    opts = node.fields(optional=[f.name for f in fields(Limits)])
    return Limits(
        max_body_bytes=errors.field(opts, "max_body_bytes", _int_from(0), d.max_body_bytes),
        inspect_body_bytes=errors.field(
            opts, "inspect_body_bytes", _int_from(0), d.inspect_body_bytes
        ),
        max_header_bytes=errors.field(
            opts, "max_header_bytes", _int_from(1024), d.max_header_bytes
        ),
        max_headers=errors.field(opts, "max_headers", _int_from(1), d.max_headers),
        header_read_timeout=errors.field(
            opts, "header_read_timeout", _seconds, d.header_read_timeout
        ),
        keepalive_timeout=errors.field(opts, "keepalive_timeout", _seconds, d.keepalive_timeout),
    )


def _client_ip(node: Node, errors: _Errors) -> ClientIpConfig:
    opts = node.fields(optional=["header", "trusted_proxies", "position"])
    d = ClientIpConfig()
    return ClientIpConfig(
        header=errors.field(opts, "header", _header_name, d.header),
        trusted_proxies=errors.field(opts, "trusted_proxies", lambda n: _networks(n, errors), ()),
        position=errors.field(opts, "position", _ip_position, d.position),
    )


def _networks(node: Node, errors: _Errors) -> tuple[Network, ...]:
    return tuple(errors.each(node.seq(), _network))


def _network(node: Node) -> Network:
    try:
        return ipaddress.ip_network(node.str().strip(), strict=False)
    except ValueError as exc:
        raise node.expected("an IP address or CIDR block") from exc


def _ip_position(node: Node) -> IpPosition:
    return IpPosition(node.one_of([p.value for p in IpPosition]))


def _header_name(node: Node) -> str:
    name = node.str().strip()
    if not name or not all(c.isalnum() or c in "-_" for c in name):
        raise node.expected("a header name")
    return name


def _request_id(node: Node, errors: _Errors) -> RequestIdConfig:
    opts = node.fields(optional=["header", "trust_incoming"])
    d = RequestIdConfig()
    return RequestIdConfig(
        header=errors.field(opts, "header", _header_name, d.header),
        trust_incoming=errors.field(opts, "trust_incoming", Node.bool, d.trust_incoming),
    )


def _admin(node: Node, base: Path, errors: _Errors) -> AdminConfig:
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


def _decision_log(node: Node, base: Path, errors: _Errors) -> DecisionLogConfig:
    d = DecisionLogConfig()
    opts = node.fields(optional=[f.name for f in fields(DecisionLogConfig)])
    destination = errors.field(opts, "destination", Node.str, d.destination)
    if destination not in ("stdout", "off"):
        destination = str(base / destination)
    return DecisionLogConfig(
        destination=destination,
        max_bytes=errors.field(opts, "max_bytes", _int_from(0), d.max_bytes),
        backup_count=errors.field(opts, "backup_count", _int_from(0), d.backup_count),
        redact_headers=errors.field(opts, "redact_headers", _names, d.redact_headers),
        redact_cookies=errors.field(opts, "redact_cookies", _names, d.redact_cookies),
        redact_query_args=errors.field(opts, "redact_query_args", _names, d.redact_query_args),
        actions=errors.field(opts, "actions", lambda n: _log_actions(n, errors), d.actions),
        queue_size=errors.field(opts, "queue_size", _int_from(1), d.queue_size),
    )


def _log_actions(node: Node, errors: _Errors) -> frozenset[str]:
    return frozenset(errors.each(node.seq(), _log_action))


def _log_action(node: Node) -> str:
    if isinstance(node.value, str) and node.value.upper() in LOG_ACTIONS:
        return node.value.upper()
    raise node.expected(f"one of {', '.join(LOG_ACTIONS)}")


def _names(node: Node) -> tuple[str, ...]:
    return tuple(node.str_list())


def _int_from(low: int) -> Callable[[Node], int]:
    return lambda node: node.int(low=low)


def _seconds(node: Node) -> float:
    value = node.number(low=0)
    if value <= 0:
        raise node.expected("a number of seconds > 0")
    return value


# -- the no-config-file mode and the runtime -------------------------------------------------------
def config_from_args(
    upstream: str,
    listen: str = "127.0.0.1:8080",
    admin: str = "127.0.0.1:9901",
    rules: Sequence[Path] = (),
) -> ServiceConfig:
    """``wafproxy run --upstream URL``: one listener, one route to one target, defaults else."""
    errors = _Errors()
    target = errors.attempt(lambda: parse_target(_arg(upstream, "--upstream")), None)
    address = errors.attempt(lambda: parse_address(_arg(listen, "--listen")), None)
    admin_address = errors.attempt(lambda: parse_address(_arg(admin, "--admin")), None)
    if admin_address is not None and not admin_address.is_loopback:
        errors.items.append(ConfigError(None, "--admin", "a non-loopback admin needs a config file "
                                        "with admin.token"))  # fmt: skip
    errors.raise_any()
    assert target is not None and address is not None
    return ServiceConfig(
        listeners=(address,),
        routes=(Route(name="*/", upstream="app"),),
        upstreams={"app": Upstream("app", (target,))},
        rules=tuple(Path(p) for p in rules),
        admin=AdminConfig(listen=admin_address),
    )


def _arg(value: str, option: str) -> Node:
    return Node(value, Mark("<command line>", 1, 1), option)


def build_runtime(config: ServiceConfig) -> Runtime:
    """Compile the rule files and bind every route to its web ACL. Raises ConfigErrors."""
    rule_set = load_rule_files(list(config.rule_files))
    errors: list[ConfigError] = []
    bound: list[BoundRoute] = []
    for index, route in enumerate(config.routes):
        acl = _route_acl(route, rule_set, index, errors)
        if acl is not None:
            bound.append(BoundRoute(route, acl, config.upstreams[route.upstream]))
    if errors:
        raise ConfigErrors(errors)
    return Runtime(config=config, rule_set=rule_set, routes=tuple(bound))


def _route_acl(
    route: Route, rule_set: RuleSet, index: int, errors: list[ConfigError]
) -> WebAcl | None:
    acls = rule_set.acls
    known = ", ".join(sorted(acls)) or "none"
    path = f"routes[{index}].web_acl"
    if route.web_acl is None:
        if len(acls) == 1:
            return next(iter(acls.values()))
        if "default" in acls:
            return acls["default"]
        errors.append(ConfigError(route.mark, path, f"several web ACLs loaded ({known}); name one"))
        return None
    if route.web_acl not in acls:
        errors.append(ConfigError(route.mark, path, f"unknown web ACL {route.web_acl!r}; "
                                  f"loaded: {known}"))  # fmt: skip
        return None
    return acls[route.web_acl]
