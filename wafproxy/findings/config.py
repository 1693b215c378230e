"""The ``findings:`` section of the service config: where findings are kept and sent.

```yaml
findings:
  backend: sqlite                 # sqlite (default: the `store` file, one host) | redis (the
                                  # state section's Redis: shared by every worker and host)
  store: findings.db              # SQLite file, relative to the config file (":memory:": none)
  key_prefix: "wafproxy:findings:"  # redis only; default: state.redis.key_prefix + "findings:"
  retention: {max_findings: 10000, max_age_days: 90}
  file: findings.jsonl            # JSON lines sink (optional)
  webhook:                        # optional
    url: https://hooks.example.com/wafproxy
    headers: {Authorization: Bearer abc}
    timeout: 5
    retries: 3
    backoff: 0.5
    min_severity: medium
  suppressions:
    - name: staging-banners
      reason: staging shows versions on purpose
      type: INFORMATION_DISCLOSURE
      resource: "http://staging*"
      max_severity: low
      until: "2030-01-01T00:00:00Z"
```
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from pathlib import Path

from wafproxy.config.source import Node
from wafproxy.findings.model import Severity, parse_time
from wafproxy.findings.store import MEMORY, Retention
from wafproxy.findings.suppress import SuppressionRule
from wafproxy.state.config import RedisConfig, StateConfig

DEFAULT_STORE = "findings.db"
SEVERITIES = [s.value for s in Severity]


@dataclass(frozen=True)
class WebhookConfig:
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    timeout: float = 5.0
    retries: int = 3
    backoff: float = 0.5
    min_severity: Severity = Severity.MEDIUM


class StoreBackend(enum.Enum):
    SQLITE = "sqlite"
    REDIS = "redis"


@dataclass(frozen=True)
class FindingsConfig:
    store: str = DEFAULT_STORE
    """A path (made absolute against the config file's directory at load) or ``:memory:``."""
    retention: Retention = field(default_factory=Retention)
    file: Path | None = None
    file_min_severity: Severity = Severity.INFORMATIONAL
    webhook: WebhookConfig | None = None
    suppressions: tuple[SuppressionRule, ...] = ()
    backend: StoreBackend = StoreBackend.SQLITE
    key_prefix: str | None = None
    """Redis only; None: the state section's ``key_prefix`` + ``findings:``."""
    redis: RedisConfig = field(default_factory=RedisConfig)
    """The connection (the state section's ``redis:``, set by ``with_state``)."""

    def with_state(self, state: StateConfig) -> FindingsConfig:
        """This section using the state section's Redis connection options."""
        return replace(self, redis=state.redis)


def parse_findings(node: Node, base: Path) -> FindingsConfig:
    keys = ["backend", "store", "key_prefix", "retention", "file", "file_min_severity"]
    opts = node.fields(optional=[*keys, "webhook", "suppressions"])
    d = FindingsConfig(store=str(base / DEFAULT_STORE))
    store = opts["store"].str() if "store" in opts else d.store
    backend = _backend(opts)
    return FindingsConfig(
        backend=backend,
        key_prefix=opts["key_prefix"].str() if "key_prefix" in opts else None,
        store=store if store == MEMORY else str(base / store),
        retention=_retention(opts["retention"]) if "retention" in opts else d.retention,
        file=base / opts["file"].str() if "file" in opts else None,
        file_min_severity=_severity(opts["file_min_severity"])
        if "file_min_severity" in opts
        else d.file_min_severity,
        webhook=_webhook(opts["webhook"]) if "webhook" in opts else None,
        suppressions=tuple(_suppression(n) for n in opts["suppressions"].seq())
        if "suppressions" in opts
        else (),
    )


def _backend(opts: dict[str, Node]) -> StoreBackend:
    backend = StoreBackend.SQLITE
    if "backend" in opts:
        backend = StoreBackend(opts["backend"].one_of([b.value for b in StoreBackend]))
    if backend is StoreBackend.REDIS and "store" in opts:
        raise opts["store"].error("is the SQLite file: backend redis keeps findings in Redis")
    if backend is StoreBackend.SQLITE and "key_prefix" in opts:
        raise opts["key_prefix"].error("is only for backend: redis")
    return backend


def _retention(node: Node) -> Retention:
    opts = node.fields(optional=["max_findings", "max_age_days"])
    d = Retention()
    return Retention(
        max_findings=opts["max_findings"].int(low=1) if "max_findings" in opts else d.max_findings,
        max_age_days=opts["max_age_days"].number(low=0.01)
        if "max_age_days" in opts
        else d.max_age_days,
    )


def _severity(node: Node) -> Severity:
    return Severity(node.one_of(SEVERITIES))


def _webhook(node: Node) -> WebhookConfig:
    opts = node.fields(["url"], ["headers", "timeout", "retries", "backoff", "min_severity"])
    url = opts["url"].str()
    if not url.startswith(("http://", "https://")):
        raise opts["url"].expected("an http:// or https:// URL")
    d = WebhookConfig(url)
    headers: tuple[tuple[str, str], ...] = ()
    if "headers" in opts:
        headers = tuple((k, v.str()) for k, v in opts["headers"].map().items())
    return WebhookConfig(
        url=url,
        headers=headers,
        timeout=opts["timeout"].number(low=0.1) if "timeout" in opts else d.timeout,
        retries=opts["retries"].int(low=0, high=10) if "retries" in opts else d.retries,
        backoff=opts["backoff"].number(low=0) if "backoff" in opts else d.backoff,
        min_severity=_severity(opts["min_severity"]) if "min_severity" in opts else d.min_severity,
    )


def _suppression(node: Node) -> SuppressionRule:
    keys = ["reason", "type", "resource", "subject", "check", "max_severity", "until"]
    opts = node.fields(["name"], keys)
    until = None
    if "until" in opts:
        try:
            until = parse_time(opts["until"].str())
        except ValueError as exc:
            raise opts["until"].expected("a time like 2030-01-01T00:00:00Z") from exc

    def text(key: str, default: str = "*") -> str:
        return opts[key].str() if key in opts else default

    return SuppressionRule(
        name=opts["name"].str(),
        reason=text("reason", ""),
        type=text("type"),
        resource=text("resource"),
        subject=text("subject"),
        check=text("check"),
        max_severity=_severity(opts["max_severity"]) if "max_severity" in opts else None,
        until=until,
    )
