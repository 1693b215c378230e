"""The values every part of the importer shares: its error, its options and its result."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from wafproxy.errors import WafProxyError

Out = dict[str, object]


class AwsImportError(WafProxyError):
    """Names where (file, or file:line:col) and the JSON path of what cannot be imported."""

    def __init__(self, where: str, path: str, message: str) -> None:
        self.where = where
        self.path = path
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        return ": ".join([p for p in (self.where, self.path) if p] + [self.message])


class SearchStringEncoding(enum.Enum):
    AUTO = "auto"
    BASE64 = "base64"
    TEXT = "text"


@dataclass(frozen=True)
class ImportResult:
    data: Out
    warnings: tuple[str, ...]
