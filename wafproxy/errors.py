"""The exception tree.

WafProxyError
  ConfigError          a config or rule file is wrong; carries file:line:col and a path
    ConfigErrors       several ConfigError at once (``wafproxy check`` prints them all)
  EvaluationError      a statement failed at request time (``on_error`` decides)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Mark:
    """Where a YAML node starts: 1-based line and column."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class WafProxyError(Exception):
    pass


class ConfigError(WafProxyError):
    def __init__(self, mark: Mark | None, path: str, message: str) -> None:
        self.mark = mark
        self.path = path
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.mark}: " if self.mark else ""
        what = f"{self.path}: " if self.path else ""
        return f"{where}{what}{self.message}"


class ConfigErrors(WafProxyError):
    def __init__(self, errors: Iterable[ConfigError]) -> None:
        self.errors = tuple(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


class EvaluationError(WafProxyError):
    pass
