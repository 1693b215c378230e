"""The request shapes (R1: browser GET, R2: 2 KB form POST) and where to find them.

The shapes live in bench/shapes/ (copied from the shared reference folder, so the project does not
need it at run time); ``--shape-dir`` points elsewhere. A shape is NAME.req (request line and
headers, as req.lua reads them) plus an optional NAME.body.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_SHAPE_DIR = BENCH_DIR / "shapes"
SHARED_SHAPE_DIR = BENCH_DIR.parent.parent / "shared" / "bench"
SHAPE_NAMES = ("R1", "R2")
SHAPE_FILES = ("R1.req", "R2.req", "R2.body", "req.lua")


@dataclass(frozen=True)
class Shape:
    name: str
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def raw(self) -> bytes:
        """The request as HTTP/1.1 bytes, with the Content-Length wrk would add."""
        lines = [f"{self.method} {self.target} HTTP/1.1"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        if self.body:
            lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


def read_shape(directory: Path, name: str) -> Shape:
    spec = (directory / f"{name}.req").read_text(encoding="latin-1").splitlines()
    method, target = spec[0].split()
    headers = []
    for line in spec[1:]:
        key, sep, value = line.partition(":")
        if sep:
            headers.append((key.strip(), value.strip()))
    body_path = directory / f"{name}.body"
    body = body_path.read_bytes() if body_path.exists() else b""
    return Shape(name, method, target, tuple(headers), body)


def check_shape_dir(directory: Path) -> Path:
    """Exit with a message if a file is missing; warn if the shared copy has drifted from ours."""
    missing = [f for f in SHAPE_FILES if not (directory / f).is_file()]
    if missing:
        sys.exit(f"shape directory {directory} lacks {', '.join(missing)}")
    if directory == DEFAULT_SHAPE_DIR and SHARED_SHAPE_DIR.is_dir():
        drifted = [f for f in SHAPE_FILES if _differs(directory / f, SHARED_SHAPE_DIR / f)]
        if drifted:
            print(
                f"warning: {', '.join(drifted)} differ from {SHARED_SHAPE_DIR}; "
                "pass --shape-dir to use those",
                file=sys.stderr,
            )
    return directory


def _differs(ours: Path, theirs: Path) -> bool:
    return theirs.is_file() and ours.read_bytes() != theirs.read_bytes()
