"""Country and ASN lookups from MaxMind-format (.mmdb) databases named in the web ACL file.

The database is read whole into memory at load time (MODE_MEMORY), so a lookup at request
time is pure computation and never touches the disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import maxminddb

from wafproxy.config.source import Node
from wafproxy.errors import ConfigError


@dataclass(frozen=True)
class MmdbGeo:
    country_db: Any | None
    asn_db: Any | None

    def country(self, ip: str) -> str | None:
        record = self._get(self.country_db, ip)
        if not isinstance(record, dict):
            return None
        for key in ("country", "registered_country"):
            entry = record.get(key)
            if isinstance(entry, dict) and isinstance(entry.get("iso_code"), str):
                return str(entry["iso_code"])
        return None

    def asn(self, ip: str) -> int | None:
        record = self._get(self.asn_db, ip)
        if isinstance(record, dict):
            number = record.get("autonomous_system_number")
            if isinstance(number, int):
                return number
        return None

    @staticmethod
    def _get(db: Any | None, ip: str) -> object:
        if db is None:
            return None
        try:
            return db.get(ip)
        except ValueError:  # not an address
            return None


def open_geo(items: dict[str, Node], base: Path) -> MmdbGeo | None:
    """The resolver for a web ACL's ``geo_database`` / ``asn_database`` keys, if any."""
    dbs: dict[str, Any] = {}
    for key in ("geo_database", "asn_database"):
        if key in items:
            dbs[key] = _open(items[key], base)
    if not dbs:
        return None
    return MmdbGeo(dbs.get("geo_database"), dbs.get("asn_database"))


def _open(node: Node, base: Path) -> Any:
    path = base / node.str()
    try:
        return maxminddb.open_database(str(path), maxminddb.MODE_MEMORY)
    except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
        raise ConfigError(
            node.mark, node.path, f"cannot open MaxMind database {path}: {exc}"
        ) from exc
