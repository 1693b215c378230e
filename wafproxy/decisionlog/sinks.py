"""Where the writer puts lines: stdout, or a file rotated by size."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Protocol

from wafproxy.decisionlog.config import DecisionLogConfig


class Sink(Protocol):
    def write_lines(self, lines: Sequence[bytes]) -> None: ...

    def close(self) -> None: ...


class _StreamSink:
    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write_lines(self, lines: Sequence[bytes]) -> None:
        data = b"".join(lines)
        buffer = getattr(self._stream, "buffer", None)
        if buffer is not None:
            self._stream.flush()
            buffer.write(data)
            buffer.flush()
        else:  # a text-only stream (tests replacing stdout)
            self._stream.write(data.decode("utf-8", "surrogateescape"))
            self._stream.flush()

    def close(self) -> None:
        """stdout is not ours to close."""


class _RotatingFileSink:
    """Appends lines; renames path → path.1 → … → path.N before a line would pass max_bytes."""

    def __init__(self, path: Path, max_bytes: int, backup_count: int) -> None:
        self._path = path
        self._max_bytes = max_bytes
        self._backup_count = backup_count
        self._file: IO[bytes] | None = None
        self._size = 0

    def write_lines(self, lines: Sequence[bytes]) -> None:
        for data in lines:
            if self._must_rotate(len(data)):
                self._rotate()
            out = self._open()
            out.write(data)
            self._size += len(data)
        if self._file is not None:
            self._file.flush()

    def _must_rotate(self, incoming: int) -> bool:
        self._open()
        return 0 < self._max_bytes < self._size + incoming and self._size > 0

    def _open(self) -> IO[bytes]:
        if self._file is None:
            self._file = self._path.open("ab")
            self._size = self._file.tell()
        return self._file

    def _rotate(self) -> None:
        self.close()
        if self._backup_count <= 0:
            self._path.open("wb").close()
            return
        for n in range(self._backup_count - 1, 0, -1):
            older = self._path.with_name(f"{self._path.name}.{n}")
            if older.exists():
                older.replace(self._path.with_name(f"{self._path.name}.{n + 1}"))
        self._path.replace(self._path.with_name(f"{self._path.name}.1"))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def make_sink(config: DecisionLogConfig) -> Sink:
    if config.destination == "stdout":
        return _StreamSink(sys.stdout)
    if config.destination == "off":
        return _StreamSink(sys.stdout)  # never written to: no thread runs
    return _RotatingFileSink(Path(config.destination), config.max_bytes, config.backup_count)
