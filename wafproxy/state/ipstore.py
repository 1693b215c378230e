"""The embedded store of dynamic IP set entries: one SQLite file under the state dir.

Every worker process opens the same file (WAL mode: readers never wait for the writer); a
worker notices another's change through ``PRAGMA data_version``, which moves whenever another
connection commits. Calls block on disk: the memory backend runs them in a thread.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from wafproxy.state.dynamic import IpEntry

FILE_NAME = "ip-sets.sqlite3"
SCHEMA = """
CREATE TABLE IF NOT EXISTS ip_set_entries (
    set_name TEXT NOT NULL,
    address TEXT NOT NULL,
    expires REAL,
    reason TEXT NOT NULL DEFAULT '',
    added REAL NOT NULL,
    PRIMARY KEY (set_name, address)
)
"""


class SqliteIpStore:
    def __init__(self, directory: Path) -> None:
        self.path = directory / FILE_NAME
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        return self._db is not None

    def exists(self) -> bool:
        return self.path.exists()

    def open(self) -> None:
        """Creates the directory and the file when missing. Raises OSError / sqlite3.Error."""
        with self._lock:
            if self._db is not None:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=5.0, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(SCHEMA)
            db.commit()
            self._db = db

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise sqlite3.OperationalError("the IP set store is not open")
        return self._db

    def data_version(self) -> int:
        with self._lock:
            row = self._conn().execute("PRAGMA data_version").fetchone()
            return int(row[0])

    def load(self, now: float) -> list[IpEntry]:
        """Every live entry; expired ones are deleted on the way."""
        with self._lock:
            db = self._conn()
            with db:
                db.execute(
                    "DELETE FROM ip_set_entries WHERE expires IS NOT NULL AND expires <= ?", (now,)
                )
            rows = db.execute(
                "SELECT set_name, address, expires, reason, added FROM ip_set_entries"
            ).fetchall()
        return [IpEntry(str(s), str(a), e, str(r), float(t)) for s, a, e, r, t in rows]

    def put(self, entry: IpEntry) -> None:
        with self._lock:
            db = self._conn()
            with db:
                db.execute(
                    "INSERT OR REPLACE INTO ip_set_entries VALUES (?, ?, ?, ?, ?)",
                    (entry.set_name, entry.address, entry.expires, entry.reason, entry.added),
                )

    def delete(self, set_name: str, address: str) -> bool:
        with self._lock:
            db = self._conn()
            with db:
                cursor = db.execute(
                    "DELETE FROM ip_set_entries WHERE set_name = ? AND address = ?",
                    (set_name, address),
                )
            return cursor.rowcount > 0
