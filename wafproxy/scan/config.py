"""The ``scan:`` section of the service config.

```yaml
scan:
  enabled: true
  interval: 6h              # seconds, or a number with s / m / h / d
  jitter: 30m               # each wait is interval +- a random part of this
  initial_delay: 1m         # first scan after start-up (plus jitter)
  budget: 500               # requests per scan of one upstream target
  rate: 10                  # requests per second
  timeout: 10               # per request
  through_proxy: true       # also scan each upstream through the proxy's listener
  ports: [22, 3306, 6379, {port: 8081, service: admin console, severity: 7.0}]
  checks: {tls: true, open_ports: false}   # turn single checks off (all on by default)
  tls_ca_file: internal-ca.pem             # trust a private CA for the tls check
  advisory_db: osv/                        # local OSV database (wafproxy scan update-db)
```
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from wafproxy.config.source import Node
from wafproxy.scan.ports import RISKY_PORTS, PortSpec, port_spec

UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
CHECK_NAMES = (
    "security_headers", "cookie_flags", "cors", "http_methods", "version_banners",
    "error_pages", "directory_listing", "sensitive_paths", "open_ports", "waf_canaries", "tls",
    "known_vulnerabilities",
)  # fmt: skip
"""The registered checks' names (a test keeps this equal to CHECKS): the config is checked
without importing the checks and their HTTP client."""


@dataclass(frozen=True)
class ScanConfig:
    enabled: bool = False
    interval: float = 6 * 3600.0
    jitter: float = 1800.0
    initial_delay: float = 60.0
    budget: int = 500
    rate: float = 10.0
    timeout: float = 10.0
    through_proxy: bool = True
    ports: tuple[PortSpec, ...] = RISKY_PORTS
    checks: Mapping[str, bool] = field(default_factory=dict)
    tls_ca_file: Path | None = None
    advisory_db: Path | None = None

    def enabled_checks(self) -> frozenset[str]:
        return frozenset(n for n in CHECK_NAMES if self.checks.get(n, True))


def parse_duration(node: Node) -> float:
    if isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        seconds = float(node.value)
    else:
        text = node.str().strip().lower()
        unit = UNITS.get(text[-1:])
        number = text[:-1] if unit else text
        try:
            seconds = float(number) * (unit or 1.0)
        except ValueError as exc:
            raise node.expected("a duration like 90, 30s, 15m, 6h or 1d") from exc
    if seconds < 0:
        raise node.expected("a duration >= 0")
    return seconds


def _port(node: Node) -> PortSpec:
    if node.is_scalar:
        return port_spec(node.int(low=1, high=65535))
    opts = node.fields(["port"], ["service", "category", "severity"])
    base = port_spec(opts["port"].int(low=1, high=65535))
    return PortSpec(
        base.port,
        opts["service"].str() if "service" in opts else base.service,
        opts["category"].str() if "category" in opts else base.category,
        opts["severity"].number(low=1.0, high=10.0) if "severity" in opts else base.severity,
    )


def _checks(node: Node) -> dict[str, bool]:
    out: dict[str, bool] = {}
    for name, value in node.map().items():
        if name not in CHECK_NAMES:
            close = difflib.get_close_matches(name, CHECK_NAMES, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise value.error(f"unknown check {name!r}{hint}")
        out[name] = value.bool()
    return out


def parse_scan(node: Node, base: Path) -> ScanConfig:
    keys = ["enabled", "interval", "jitter", "initial_delay", "budget", "rate", "timeout",
            "through_proxy", "ports", "checks", "tls_ca_file", "advisory_db"]  # fmt: skip
    opts = node.fields(optional=keys)
    d = ScanConfig()
    interval = parse_duration(opts["interval"]) if "interval" in opts else d.interval
    if interval < 60:
        raise opts["interval"].expected("an interval of at least 60 seconds")
    return ScanConfig(
        enabled=opts["enabled"].bool() if "enabled" in opts else d.enabled,
        interval=interval,
        jitter=parse_duration(opts["jitter"]) if "jitter" in opts else d.jitter,
        initial_delay=parse_duration(opts["initial_delay"])
        if "initial_delay" in opts
        else d.initial_delay,
        budget=opts["budget"].int(low=1) if "budget" in opts else d.budget,
        rate=opts["rate"].number(low=0.1) if "rate" in opts else d.rate,
        timeout=opts["timeout"].number(low=0.1) if "timeout" in opts else d.timeout,
        through_proxy=opts["through_proxy"].bool() if "through_proxy" in opts else True,
        ports=tuple(_port(n) for n in opts["ports"].seq()) if "ports" in opts else d.ports,
        checks=_checks(opts["checks"]) if "checks" in opts else {},
        tls_ca_file=base / opts["tls_ca_file"].str() if "tls_ca_file" in opts else None,
        advisory_db=base / opts["advisory_db"].str() if "advisory_db" in opts else None,
    )
