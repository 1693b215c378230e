"""The ``detect:`` section of the service config: threat detection on the proxied traffic.

```yaml
detect:
  enabled: true                  # default true when the section is present; no section: off
  queue_size: 10000              # observations waiting for the detectors; beyond: dropped, counted
  trusted_ips: [10.0.0.0/8]      # never observed, never a finding, never a decision
  login_routes:
    - path: /login               # exact; "/auth/*" is a prefix
      method: POST               # default POST
      username_field: username   # form (urlencoded / multipart) or top-level JSON field
      failure:                   # any one of these means the login failed
        status: [401, 403]       # default [401, 403]
        marker: "Invalid password"   # text in the first 64 KiB of the response body
        location: /login?error       # a redirect whose Location starts with this
  detectors:                     # per-detector settings (wafproxy/detect/detectors/)
    path_probe: {threshold: 30}
  remediation:
    enabled: true
    block_set: wafproxy-detect-block     # dynamic IP sets (rules/wafproxy-detect.yaml)
    count_set: wafproxy-detect-count
    escalation: {factor: 2, max_ttl: 1d, remember: 100000, forget_after: 7d}
    policies:                            # replaces the defaults (remediation.py) when given
      - {type: "Recon:HTTP/*", min_severity: high, action: block, ttl: 15m}
```
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from wafproxy.config.source import Node
from wafproxy.findings.model import Severity

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
DEFAULT_QUEUE_SIZE = 10_000
MAX_QUEUE_SIZE = 10_000_000
MARKER_WINDOW = 64 * 1024
"""How much of a login response body the failure marker is looked for in."""
DEFAULT_FAILURE_STATUSES = frozenset({401, 403})
BLOCK_SET = "wafproxy-detect-block"
COUNT_SET = "wafproxy-detect-count"


class DecisionAction(enum.Enum):
    BLOCK = "block"
    COUNT = "count"


@dataclass(frozen=True)
class LoginFailure:
    statuses: frozenset[int] = DEFAULT_FAILURE_STATUSES
    marker: bytes | None = None
    location: str | None = None


@dataclass(frozen=True)
class LoginRoute:
    path: str
    """Exact path, or a prefix when ``prefix`` (written ``/auth/*`` in YAML)."""
    prefix: bool = False
    method: str = "POST"
    username_field: str = "username"
    failure: LoginFailure = LoginFailure()

    def matches(self, method: str, path: str) -> bool:
        if method != self.method:
            return False
        return path.startswith(self.path) if self.prefix else path == self.path


@dataclass(frozen=True)
class Policy:
    """Findings of ``type`` (``*`` globs) at ``min_severity`` or worse: ``action`` the subject IP
    for ``ttl`` seconds (before escalation)."""

    type: str
    min_severity: Severity
    action: DecisionAction
    ttl: float


@dataclass(frozen=True)
class Escalation:
    factor: float = 2.0
    """A repeat offender's TTL is ``ttl * factor ** n``, n = its earlier decisions."""
    max_ttl: float = 86400.0
    remember: int = 100_000
    """Addresses whose earlier decisions are remembered (LRU beyond)."""
    forget_after: float = 7 * 86400.0
    """An earlier decision older than this no longer counts."""


@dataclass(frozen=True)
class RemediationConfig:
    enabled: bool = True
    block_set: str = BLOCK_SET
    count_set: str = COUNT_SET
    escalation: Escalation = Escalation()
    policies: tuple[Policy, ...] | None = None
    """None: the defaults in wafproxy/detect/remediation.py."""

    def set_for(self, action: DecisionAction) -> str:
        return self.block_set if action is DecisionAction.BLOCK else self.count_set


@dataclass(frozen=True)
class DetectConfig:
    enabled: bool = True
    queue_size: int = DEFAULT_QUEUE_SIZE
    trusted_ips: tuple[Network, ...] = ()
    login_routes: tuple[LoginRoute, ...] = ()
    detectors: Mapping[str, object] = field(default_factory=dict)
    """Detector name -> its settings value, as the detectors' own parser returned it."""
    remediation: RemediationConfig = RemediationConfig()
    base: Path = Path(".")
    """The config file's directory: threat-list files in detector settings are relative to it."""


TOP_KEYS = ["enabled", "queue_size", "trusted_ips", "login_routes", "detectors", "remediation"]


def parse_detect(node: Node, base: Path) -> DetectConfig:
    if node.value is None:  # ``detect:`` alone: on, with every default
        return DetectConfig(base=base)
    opts = node.fields(optional=TOP_KEYS)
    d = DetectConfig()
    return DetectConfig(
        enabled=opts["enabled"].bool() if "enabled" in opts else d.enabled,
        queue_size=opts["queue_size"].int(1, MAX_QUEUE_SIZE)
        if "queue_size" in opts
        else d.queue_size,
        trusted_ips=tuple(parse_network(n) for n in _list(opts["trusted_ips"]))
        if "trusted_ips" in opts
        else (),
        login_routes=tuple(parse_login_route(n) for n in opts["login_routes"].seq())
        if "login_routes" in opts
        else (),
        detectors=parse_detectors(opts["detectors"]) if "detectors" in opts else {},
        remediation=parse_remediation(opts["remediation"])
        if "remediation" in opts
        else d.remediation,
        base=base,
    )


def _list(node: Node) -> list[Node]:
    return [node] if isinstance(node.value, str) else node.seq()


def parse_network(node: Node) -> Network:
    try:
        return ipaddress.ip_network(node.str().strip(), strict=False)
    except ValueError as exc:
        raise node.expected("an IP address or CIDR block") from exc


def parse_duration(node: Node) -> float:
    """Seconds: a number, or a number with s / m / h / d; > 0."""
    if isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        seconds = float(node.value)
    else:
        text = node.str().strip().lower()
        unit = UNITS.get(text[-1:])
        try:
            seconds = float(text[:-1] if unit else text) * (unit or 1.0)
        except ValueError as exc:
            raise node.expected("a duration like 90, 30s, 15m, 6h or 1d") from exc
    if not seconds > 0 or seconds == float("inf"):
        raise node.expected("a duration > 0")
    return seconds


# -- login routes ----------------------------------------------------------------------------------
def parse_login_route(node: Node) -> LoginRoute:
    opts = node.fields(["path"], ["method", "username_field", "failure"])
    path = opts["path"].str()
    prefix = path.endswith("*")
    path = path.rstrip("*") if prefix else path
    if not path.startswith("/"):
        raise opts["path"].expected("a path starting with / (a trailing * makes it a prefix)")
    d = LoginRoute(path)
    return LoginRoute(
        path=path,
        prefix=prefix,
        method=_method(opts["method"]) if "method" in opts else d.method,
        username_field=_field_name(opts["username_field"])
        if "username_field" in opts
        else d.username_field,
        failure=parse_failure(opts["failure"]) if "failure" in opts else d.failure,
    )


def _method(node: Node) -> str:
    text = node.str().strip().upper()
    if not text.isalpha():
        raise node.expected("an HTTP method such as POST")
    return text


def _field_name(node: Node) -> str:
    text = node.str().strip()
    if not text:
        raise node.expected("a field name")
    return text


def parse_failure(node: Node) -> LoginFailure:
    opts = node.fields(optional=["status", "marker", "location"])
    statuses = DEFAULT_FAILURE_STATUSES
    if "status" in opts:
        statuses = frozenset(n.int(100, 599) for n in _list_any(opts["status"]))
    marker = None
    if "marker" in opts:
        marker = opts["marker"].str().encode("utf-8")
        if not marker or len(marker) > MARKER_WINDOW:
            raise opts["marker"].expected(f"a text of 1 to {MARKER_WINDOW} bytes")
    location = None
    if "location" in opts:
        location = opts["location"].str()
        if not location:
            raise opts["location"].expected("a non-empty redirect target prefix")
    return LoginFailure(statuses=statuses, marker=marker, location=location)


def _list_any(node: Node) -> list[Node]:
    return node.seq() if node.is_seq else [node]


# -- detectors -------------------------------------------------------------------------------------
def parse_detectors(node: Node) -> dict[str, object]:
    """Each detector's settings, parsed by the detector registry (which knows their shapes and
    rejects unknown detector names with a "did you mean")."""
    from wafproxy.detect.detector import parse_detectors as parse_each

    return dict(parse_each(node))


# -- remediation -----------------------------------------------------------------------------------
REMEDIATION_KEYS = ["enabled", "block_set", "count_set", "escalation", "policies"]
SEVERITIES = [s.value for s in Severity]


def parse_remediation(node: Node) -> RemediationConfig:
    opts = node.fields(optional=REMEDIATION_KEYS)
    d = RemediationConfig()
    config = RemediationConfig(
        enabled=opts["enabled"].bool() if "enabled" in opts else d.enabled,
        block_set=_set_name(opts["block_set"]) if "block_set" in opts else d.block_set,
        count_set=_set_name(opts["count_set"]) if "count_set" in opts else d.count_set,
        escalation=parse_escalation(opts["escalation"]) if "escalation" in opts else d.escalation,
        policies=tuple(parse_policy(n) for n in opts["policies"].seq())
        if "policies" in opts
        else None,
    )
    if config.block_set == config.count_set:
        raise node.error("block_set and count_set must name different IP sets")
    return config


def _set_name(node: Node) -> str:
    text = node.str().strip()
    if not text:
        raise node.expected("an IP set name")
    return text


def parse_escalation(node: Node) -> Escalation:
    opts = node.fields(optional=["factor", "max_ttl", "remember", "forget_after"])
    d = Escalation()
    return Escalation(
        factor=opts["factor"].number(1.0, 100.0) if "factor" in opts else d.factor,
        max_ttl=parse_duration(opts["max_ttl"]) if "max_ttl" in opts else d.max_ttl,
        remember=opts["remember"].int(1, 10_000_000) if "remember" in opts else d.remember,
        forget_after=parse_duration(opts["forget_after"])
        if "forget_after" in opts
        else d.forget_after,
    )


def parse_policy(node: Node) -> Policy:
    opts = node.fields(["type", "action"], ["min_severity", "ttl"])
    type_ = opts["type"].str().strip()
    if not type_:
        raise opts["type"].expected("a finding type such as Recon:HTTP/PathProbe (or a * glob)")
    return Policy(
        type=type_,
        min_severity=Severity(opts["min_severity"].one_of(SEVERITIES))
        if "min_severity" in opts
        else Severity.HIGH,
        action=DecisionAction(opts["action"].one_of([a.value for a in DecisionAction])),
        ttl=parse_duration(opts["ttl"]) if "ttl" in opts else 900.0,
    )
