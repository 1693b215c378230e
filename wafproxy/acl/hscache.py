"""A cache of compiled Hyperscan databases, in memory and on disk.

Hyperscan compiles complex pattern sets slowly (seconds for the shipped rules), while loading a
serialized database takes milliseconds. A database is keyed by the SHA-256 of everything that
went into it (library version, patterns, ids, flags), so a changed rule can never reuse a stale
database; a database that does not load (another CPU, a damaged file) is compiled again.
The disk cache lives in ``$WAFPROXY_CACHE_DIR`` (else ``$XDG_CACHE_HOME/wafproxy`` or
``~/.cache/wafproxy``), only if that directory is ours and private; set the variable to ``off``
to keep the cache in memory only.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger("wafproxy.hscache")
MAX_MEMORY_ENTRIES = 256
_memory: dict[str, Any] = {}
_REFUSED = object()
"""An empty cache file: Hyperscan refused this set (the bisection that finds the culprit
compiles many sub-sets; remembering refusals keeps later starts fast too)."""


def cache_key(
    version: str, patterns: Sequence[bytes], ids: Sequence[int], flags: Sequence[int]
) -> str:
    digest = hashlib.sha256(version.encode())
    for pattern, ident, flag in zip(patterns, ids, flags, strict=True):
        digest.update(len(pattern).to_bytes(4, "big") + pattern)
        digest.update(ident.to_bytes(4, "big") + flag.to_bytes(4, "big"))
    return digest.hexdigest()


def cached_database(
    key: str,
    compile_db: Callable[[], Any | None],
    dump: Callable[[Any], bytes],
    load: Callable[[bytes], Any],
) -> Any | None:
    """The database for ``key``: from memory, from disk, or compiled (and then stored)."""
    if key in _memory:
        return _memory[key]
    db = _load_from_disk(key, load)
    if db is _REFUSED:
        db = None
    elif db is None:
        db = compile_db()
        _store_on_disk(key, dump, db)
    if len(_memory) >= MAX_MEMORY_ENTRIES:
        _memory.clear()
    _memory[key] = db
    return db


def cache_dir() -> Path | None:
    configured = os.environ.get("WAFPROXY_CACHE_DIR")
    if configured == "off":
        return None
    if configured:
        path = Path(configured)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        path = Path(base) / "wafproxy"
    path = path / "hyperscan"
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.stat()
    except OSError:
        return None
    if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        log.debug("hyperscan cache %s is not private to this user: not used", path)
        return None
    return path


def _load_from_disk(key: str, load: Callable[[bytes], Any]) -> Any | None:
    directory = cache_dir()
    if directory is None:
        return None
    try:
        data = (directory / key).read_bytes()
        return _REFUSED if not data else load(data)
    except FileNotFoundError:
        return None
    except Exception:  # another CPU or a damaged file: compile again
        log.debug("hyperscan cache entry %s not usable", key, exc_info=True)
        return None


def _store_on_disk(key: str, dump: Callable[[Any], bytes], db: Any | None) -> None:
    directory = cache_dir()
    if directory is None:
        return
    try:
        data = b"" if db is None else dump(db)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, directory / key)
    except Exception:
        log.debug("could not store hyperscan cache entry %s", key, exc_info=True)
