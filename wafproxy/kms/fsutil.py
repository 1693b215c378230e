"""Files that hold secrets: private permissions checked on read, atomic durable writes."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from wafproxy.kms.errors import KeystoreError

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def check_private(path: Path) -> None:
    """Refuse a secret file (or directory) that other users can read or write, or that belongs
    to someone else -- the same rule ssh applies to its keys."""
    try:
        st = path.stat()
    except OSError as exc:
        raise KeystoreError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if st.st_uid != os.geteuid():
        raise KeystoreError(f"refusing to use {path}: owned by uid {st.st_uid}, not by us")
    if st.st_mode & 0o077:
        mode = stat.S_IMODE(st.st_mode)
        fix = "700" if stat.S_ISDIR(st.st_mode) else "600"
        raise KeystoreError(
            f"refusing to use {path}: mode {mode:04o} lets other users in; chmod {fix} {path}"
        )


def ensure_private_dir(path: Path) -> None:
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    check_private(path)


def atomic_write(path: Path, data: bytes, mode: int = PRIVATE_FILE) -> None:
    """Write a temporary file beside ``path``, fsync it, rename it over ``path``, fsync the
    directory: a crash at any point leaves either the old file or the new one, never a mix."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{os.urandom(4).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_temporaries(path: Path) -> None:
    """Temporaries left by a writer that died; call only while holding the write lock."""
    for tmp in path.parent.glob(f".{path.name}.tmp-*"):
        with contextlib.suppress(OSError):
            tmp.unlink()
