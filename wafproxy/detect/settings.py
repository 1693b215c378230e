"""Detector settings: frozen dataclasses with defaults, read from a YAML node.

The dataclass is the schema. A field's type says how to read it (bool, int, float, str, a tuple
of str or int), its metadata the bounds (``low`` / ``high``) and whether a number is a duration
(``unit: seconds``, written ``90``, ``30s``, ``5m``, ``2h`` or ``1d``). Unknown keys are errors
with file:line:col, as everywhere in the config.

```yaml
path_probe: {threshold: 40, window: 10m}
scanner_user_agent: false          # shorthand for {enabled: false}
```
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from wafproxy.config.source import Node

UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
SECONDS = "seconds"


def score(default: float) -> Any:
    """A severity score field (1.0-10.0)."""
    return field(default=default, metadata={"low": 1.0, "high": 10.0})


def seconds(default: float, low: float = 1.0) -> Any:
    return field(default=default, metadata={"unit": SECONDS, "low": low})


def number(default: float, low: float | None = None, high: float | None = None) -> Any:
    return field(default=default, metadata={"low": low, "high": high})


def count(default: int, low: int = 1, high: int | None = None) -> Any:
    return field(default=default, metadata={"low": low, "high": high})


def texts(default: tuple[str, ...] = ()) -> Any:
    return field(default=default)


@dataclass(frozen=True)
class DetectorSettings:
    """What every detector has. Subclasses redeclare ``severity`` with their own default."""

    enabled: bool = True
    severity: float = score(5.0)
    max_keys: int = count(100_000)
    """Entries per per-key table; the least recently seen key is forgotten beyond it."""

    def active(self) -> bool:
        """Whether building the detector is worth it (enabled, and able to fire)."""
        return self.enabled


S = TypeVar("S", bound=DetectorSettings)


def parse_settings(cls: type[S], node: Node | None) -> S:
    """``cls`` filled from ``node`` (a mapping, a bare true/false for ``enabled``, or nothing
    for the defaults)."""
    if node is None or node.value is None:
        return cls()
    if isinstance(node.value, bool):
        return cls(enabled=node.value)
    known = [f.name for f in dataclasses.fields(cls)]
    given = node.fields(optional=known)
    hints = _hints(cls)
    meta = {f.name: f.metadata for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {
        name: read_value(hints[name], meta[name], child) for name, child in given.items()
    }
    return cls(**values)


_HINTS: dict[type[Any], dict[str, Any]] = {}


def _hints(cls: type[Any]) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    return hints


def read_value(hint: Any, meta: Mapping[str, Any], node: Node) -> object:
    low, high = meta.get("low"), meta.get("high")
    if hint is bool:
        return node.bool()
    if hint is int:
        return node.int(low, high)
    if hint is float:
        if meta.get("unit") == SECONDS:
            return _bounded(node, parse_duration(node), low, high)
        return node.number(low, high)
    if hint is str:
        return node.str()
    if hint == tuple[str, ...]:
        return tuple(node.str_list())
    if hint == tuple[int, ...]:
        items = node.seq() if node.is_seq else [node]
        return tuple(item.int(low, high) for item in items)
    raise TypeError(f"settings field type {hint!r} is not supported")


def parse_duration(node: Node) -> float:
    if isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value)
    text = node.str().strip().lower()
    unit = UNITS.get(text[-1:])
    try:
        return float(text[:-1] if unit else text) * (unit or 1.0)
    except ValueError as exc:
        raise node.expected("a duration like 90, 30s, 15m, 6h or 1d") from exc


def _bounded(node: Node, value: float, low: float | None, high: float | None) -> float:
    if (low is not None and value < low) or (high is not None and value > high):
        parts = [f">= {low:g}" if low is not None else "", f"<= {high:g}" if high else ""]
        raise node.expected(f"a duration {' and '.join(p for p in parts if p)} seconds")
    return value
