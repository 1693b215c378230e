"""The error list a config load fills as it goes and raises once, sorted by file position."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from wafproxy.config.source import Node
from wafproxy.errors import ConfigError, ConfigErrors

T = TypeVar("T")


class ErrorCollector:
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
