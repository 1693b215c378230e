"""The ``state:`` section of the service config.

```yaml
state:
  backend: memory            # memory (default, in-process) | redis (shared by every worker/host)
  dir: /var/lib/wafproxy     # embedded store of dynamic IP set entries (default: ./wafproxy-state
                             # beside the config file)
  max_keys: 1000000          # rate-based keys kept in memory (memory backend), LRU beyond
  on_state_error: allow      # allow | block: what rate-based rules do while Redis is unreachable
  redis:
    url: redis://127.0.0.1:6379/0
    timeout: 0.1             # seconds per command
    connect_timeout: 1.0
    pool_size: 64
    key_prefix: "wafproxy:"
```
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from wafproxy.config.source import Node
from wafproxy.errors import ConfigError, ConfigErrors

T = TypeVar("T")
DEFAULT_DIR_NAME = "wafproxy-state"


class Backend(enum.Enum):
    MEMORY = "memory"
    REDIS = "redis"


class OnStateError(enum.Enum):
    ALLOW = "allow"
    """Fail open: rate-based rules do not match while the shared state is unreachable."""
    BLOCK = "block"
    """Fail closed: every rate-based rule a request reaches matches (its action applies)."""


@dataclass(frozen=True)
class RedisConfig:
    url: str = "redis://127.0.0.1:6379/0"
    timeout: float = 0.1
    connect_timeout: float = 1.0
    pool_size: int = 64
    key_prefix: str = "wafproxy:"


@dataclass(frozen=True)
class StateConfig:
    backend: Backend = Backend.MEMORY
    dir: Path | None = None
    """None: ``wafproxy-state`` beside the config file (or in the working directory)."""
    max_keys: int = 1_000_000
    on_state_error: OnStateError = OnStateError.ALLOW
    redis: RedisConfig = field(default_factory=RedisConfig)

    def state_dir(self, config_path: Path | None) -> Path:
        if self.dir is not None:
            return self.dir
        base = config_path.parent if config_path is not None else Path.cwd()
        return base / DEFAULT_DIR_NAME


STATE_KEYS = ["backend", "dir", "max_keys", "on_state_error", "redis"]
REDIS_KEYS = ["url", "timeout", "connect_timeout", "pool_size", "key_prefix"]


class _Collect:
    def __init__(self) -> None:
        self.errors: list[ConfigError] = []

    def get(self, opts: dict[str, Node], key: str, parse: Callable[[Node], T], default: T) -> T:
        if key not in opts:
            return default
        try:
            return parse(opts[key])
        except ConfigError as exc:
            self.errors.append(exc)
            return default


def parse_state_config(node: Node, base: Path) -> StateConfig:
    """Raises ConfigErrors listing every problem of the section."""
    opts = node.fields(optional=STATE_KEYS)
    c = _Collect()
    d = StateConfig()
    config = StateConfig(
        backend=c.get(opts, "backend", lambda n: Backend(n.one_of(_values(Backend))), d.backend),
        dir=c.get(opts, "dir", lambda n: base / n.str(), None),
        max_keys=c.get(opts, "max_keys", lambda n: n.int(1000), d.max_keys),
        on_state_error=c.get(
            opts,
            "on_state_error",
            lambda n: OnStateError(n.one_of(_values(OnStateError))),
            d.on_state_error,
        ),
        redis=c.get(opts, "redis", lambda n: _redis(n, c), d.redis),
    )
    if c.errors:
        raise ConfigErrors(c.errors)
    return config


def _redis(node: Node, c: _Collect) -> RedisConfig:
    opts = node.fields(optional=REDIS_KEYS)
    d = RedisConfig()
    return RedisConfig(
        url=c.get(opts, "url", _redis_url, d.url),
        timeout=c.get(opts, "timeout", _seconds, d.timeout),
        connect_timeout=c.get(opts, "connect_timeout", _seconds, d.connect_timeout),
        pool_size=c.get(opts, "pool_size", lambda n: n.int(1, 10_000), d.pool_size),
        key_prefix=c.get(opts, "key_prefix", Node.str, d.key_prefix),
    )


def _redis_url(node: Node) -> str:
    url = node.str().strip()
    scheme = urlsplit(url).scheme
    if scheme not in ("redis", "rediss", "unix"):
        raise node.expected("a redis://, rediss:// or unix:// URL")
    return url


def _seconds(node: Node) -> float:
    value = node.number(low=0)
    if value <= 0:
        raise node.expected("a number of seconds > 0")
    return value


def _values(kind: type[enum.Enum]) -> list[str]:
    return [str(member.value) for member in kind]
