"""The service config (listeners, routes, upstreams, limits, …) as frozen values.

Reading one from YAML is wafproxy/config/load.py; binding it to compiled rules is runtime.py.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from wafproxy.acl.compile import default_rule_files
from wafproxy.decisionlog.config import DecisionLogConfig
from wafproxy.detect.config import DetectConfig
from wafproxy.errors import Mark
from wafproxy.findings.config import FindingsConfig
from wafproxy.kms.config import KmsConfig, TlsConfig
from wafproxy.scan.config import ScanConfig
from wafproxy.state.config import StateConfig

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

HOST_PASS = "pass"
HOST_UPSTREAM = "upstream"


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
    body_read_timeout: float = 60.0
    """Seconds the proxy waits for the next bytes of a request body it is reading (408)."""


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
