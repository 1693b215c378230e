"""The keystore directory: one file, read lock-free and written under a file lock.

``DIR/keystore.json`` is replaced atomically (write, fsync, rename, fsync the directory), so a
reader always sees a whole version and a crash mid-write leaves the previous one. Writers --
threads of this process and other processes (``kms serve``, the CLI, proxy workers) -- take
``DIR/keystore.lock`` with ``flock``, re-read the file if another writer changed it, apply their
change and write it back. Readers notice a newer file by its inode and reload.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from wafproxy.kms import storefile
from wafproxy.kms.errors import KeystoreError
from wafproxy.kms.fsutil import (
    PRIVATE_FILE,
    atomic_write,
    check_private,
    ensure_private_dir,
    remove_stale_temporaries,
)
from wafproxy.kms.model import DEFAULT_ACCOUNT, DEFAULT_REGION
from wafproxy.kms.rootkey import RootKeySource, ScryptParams
from wafproxy.kms.storefile import StoreData

STORE_FILE = "keystore.json"
LOCK_FILE = "keystore.lock"
AUDIT_FILE = "audit.jsonl"


@dataclass(frozen=True)
class FileId:
    inode: int
    mtime_ns: int
    size: int


class KeyStore:
    """Open with ``KeyStore.open(dir, root)``; create with ``KeyStore.create``."""

    def __init__(self, directory: Path, root: bytes, data: StoreData, seen: FileId) -> None:
        self.directory = directory
        self.path = directory / STORE_FILE
        self._path_text = str(self.path)
        self.account = data.account
        self.region = data.region
        self._root = root
        self._data = data
        self._seen = seen
        self._mutex = threading.RLock()

    # -- opening -------------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        directory: Path,
        source: RootKeySource,
        *,
        account: str = DEFAULT_ACCOUNT,
        region: str = DEFAULT_REGION,
    ) -> KeyStore:
        ensure_private_dir(directory)
        path = directory / STORE_FILE
        with _locked(directory):
            if path.exists():
                raise KeystoreError(f"a keystore already exists in {directory}")
            scrypt = ScryptParams.fresh() if source.kind.is_passphrase else None
            root = source.key(scrypt)
            data = StoreData(account=account, region=region, scrypt=scrypt)
            atomic_write(path, storefile.dumps(data, root))
        return cls.open(directory, source)

    @classmethod
    def open(cls, directory: Path, source: RootKeySource) -> KeyStore:
        path = directory / STORE_FILE
        if not path.exists():
            raise KeystoreError(
                f"no keystore in {directory} (create one with `wafproxy kms init --store DIR`)"
            )
        check_private(directory)
        check_private(path)
        raw, seen = _read(path)
        root = source.key(storefile.read_kdf(raw))
        return cls(directory, root, storefile.loads(raw, root), seen)

    @property
    def audit_path(self) -> Path:
        return self.directory / AUDIT_FILE

    # -- reading and writing -------------------------------------------------------------------
    def data(self) -> StoreData:
        """The current contents (reloaded when another process wrote). Do not mutate."""
        with self._mutex:
            self._refresh()
            return self._data

    @contextmanager
    def transaction(self) -> Iterator[StoreData]:
        """A private copy to change; written back when the block ends without an exception."""
        with self._mutex, _locked(self.directory):
            self._refresh()
            draft = self._data.copy()
            yield draft
            if draft == self._data:
                return
            draft.generation = self._data.generation + 1
            remove_stale_temporaries(self.path)
            atomic_write(self.path, storefile.dumps(draft, self._root))
            self._data = draft
            self._seen = _file_id(self._path_text)

    def rewrap(self, source: RootKeySource) -> None:
        """Re-seal everything under a new root key (root key rotation)."""
        with self._mutex, _locked(self.directory):
            self._refresh()
            scrypt = ScryptParams.fresh() if source.kind.is_passphrase else None
            root = source.key(scrypt)
            data = self._data.copy()
            data.scrypt = scrypt
            data.generation += 1
            remove_stale_temporaries(self.path)
            atomic_write(self.path, storefile.dumps(data, root))
            self._root, self._data, self._seen = root, data, _file_id(self._path_text)

    def _refresh(self) -> None:
        current = _file_id(self._path_text)
        if current == self._seen:
            return
        raw, seen = _read(self.path)
        self._data = storefile.loads(raw, self._root)
        self._seen = seen


def _read(path: Path) -> tuple[bytes, FileId]:
    fd = os.open(path, os.O_RDONLY)
    try:
        st = os.fstat(fd)
        with os.fdopen(os.dup(fd), "rb") as f:
            raw = f.read()
    finally:
        os.close(fd)
    return raw, FileId(st.st_ino, st.st_mtime_ns, st.st_size)


def _file_id(path: str) -> FileId:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise KeystoreError(f"keystore file {path} is gone: {exc.strerror or exc}") from exc
    return FileId(st.st_ino, st.st_mtime_ns, st.st_size)


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock (also when the process dies)
