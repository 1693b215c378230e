"""Threat lists from local files: plain text, CSV, or STIX 2.1 JSON bundles.

- text: one address or CIDR per line; ``#`` or ``;`` starts a comment; the first word of a
  line counts (``1.2.3.4  botnet C2`` reads 1.2.3.4). Tor's exit-address format is understood
  (``ExitAddress 1.2.3.4 <date>``; its other lines are skipped).
- CSV: a header row naming the address column (``ip``, ``ip_address``, ``address``,
  ``dst_ip``, ``cidr``, ``indicator``, …; a header commented out with ``#`` as abuse.ch
  publishes it counts too), or no header and the address in the first column.
- STIX 2.1: a bundle whose ``indicator`` objects have patterns like
  ``[ipv4-addr:value = '203.0.113.7' OR ipv6-addr:value ISSUBSET '2001:db8::/32']``; other
  indicators (domains, hashes, …) and revoked ones are skipped. ``valid_until`` is not
  judged: the operator refreshes the file.

The format comes from the file name (``.csv``, ``.json``) or, failing that, from the content
(``{`` first: STIX). A bad entry is a ConfigError at file:line naming the entry. These are the
operator's own files read once at build time, never request data.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wafproxy.acl.ipset import IpSet, build_ip_set, parse_cidr
from wafproxy.errors import ConfigError, Mark

ADDRESS_COLUMNS = (
    "ip", "ip_address", "ipaddress", "ip_addr", "address", "addr", "dst_ip", "src_ip",
    "ipv4", "ipv6", "cidr", "network", "ip_or_cidr", "indicator", "value",
)  # fmt: skip
STIX_OBJECTS = ("ipv4-addr:value", "ipv6-addr:value")
STIX_OPERATORS = ("=", "ISSUBSET")
TOR_KEYWORDS = ("exitnode", "published", "laststatus")


@dataclass(frozen=True)
class ThreatList:
    name: str
    """The file's name (finding details say which list matched)."""
    path: Path
    addresses: IpSet
    entries: int

    def __contains__(self, ip: str) -> bool:
        return ip in self.addresses


Entry = tuple[int, str]
"""(line number, address or CIDR text)."""


def load_threat_list(path: Path) -> ThreatList:
    text = _read(path)
    entries = list(_entries(path, text))
    for line, address in entries:
        try:
            parse_cidr(address)
        except ValueError:
            raise ConfigError(Mark(str(path), line, 1), "", _bad(address)) from None
    ips = build_ip_set(path.name, (address for _, address in entries))
    return ThreatList(path.name, path, ips, len(entries))


def read_addresses(path: Path) -> list[str]:
    """Every address or CIDR of the file (any format above), checked; ConfigError at
    file:line for a bad one."""
    entries = list(_entries(path, _read(path)))
    for line, address in entries:
        try:
            parse_cidr(address)
        except ValueError:
            raise ConfigError(Mark(str(path), line, 1), "", _bad(address)) from None
    return [address for _, address in entries]


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError(None, "", f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(Mark(str(path), 1, 1), "", f"not UTF-8 text: {exc.reason}") from exc


def _entries(path: Path, text: str) -> Iterator[Entry]:
    suffix = path.suffix.lower()
    if suffix == ".json" or (suffix != ".csv" and text.lstrip().startswith("{")):
        return read_stix(text, str(path))
    if suffix == ".csv":
        return read_csv(text, str(path))
    return read_text(text)


def _bad(address: str) -> str:
    return f"not an IP address or CIDR: {address[:100]!r}"


# -- plain text ---------------------------------------------------------------------------------
def read_text(text: str) -> Iterator[Entry]:
    for number, line in enumerate(text.splitlines(), start=1):
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if not words or words[0].lower() in TOR_KEYWORDS:
            continue
        if words[0].lower() == "exitaddress":
            if len(words) > 1:
                yield number, words[1]
            continue
        yield number, words[0]


# -- CSV ----------------------------------------------------------------------------------------
def read_csv(text: str, filename: str) -> Iterator[Entry]:
    rows = csv.reader(io.StringIO(text))
    column: int | None = None
    for row in rows:
        line = rows.line_num
        cells = [cell.strip() for cell in row]
        if not any(cells):
            continue
        if cells[0].startswith("#"):
            column = _header_column([cells[0].lstrip("#").strip(), *cells[1:]], column)
            continue
        if column is None:
            column = _header_column(cells, None)
            if column is not None:
                continue
            column = _first_column(cells, filename, line)
        if column >= len(cells):
            raise ConfigError(Mark(filename, line, 1), "", f"no column {column + 1} in this row")
        yield line, cells[column]


def _header_column(cells: list[str], current: int | None) -> int | None:
    names = [cell.lower().replace(" ", "_") for cell in cells]
    for wanted in ADDRESS_COLUMNS:
        if wanted in names:
            return names.index(wanted)
    return current


def _first_column(cells: list[str], filename: str, line: int) -> int:
    try:
        parse_cidr(cells[0])
    except ValueError:
        wanted = ", ".join(ADDRESS_COLUMNS[:6])
        message = f"no address column: expected a header naming one ({wanted}, …)"
        raise ConfigError(Mark(filename, line, 1), "", message) from None
    return 0


# -- STIX 2.1 -----------------------------------------------------------------------------------
def read_stix(text: str, filename: str) -> Iterator[Entry]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        where = Mark(filename, exc.lineno, exc.colno)
        raise ConfigError(where, "", f"invalid JSON: {exc.msg}") from None
    objects = data.get("objects") if isinstance(data, dict) else None
    if not isinstance(objects, list):
        raise ConfigError(Mark(filename, 1, 1), "", "expected a STIX bundle with an objects list")
    for obj in objects:
        if _is_live_indicator(obj):
            line = _line_of(text, str(obj.get("id", "")))
            pattern = obj.get("pattern")
            if not isinstance(pattern, str):
                raise ConfigError(Mark(filename, line, 1), "", "indicator without a pattern")
            for address in stix_addresses(pattern):
                yield line, address


def _is_live_indicator(obj: Any) -> bool:
    return (
        isinstance(obj, dict)
        and obj.get("type") == "indicator"
        and obj.get("pattern_type", "stix") == "stix"
        and not obj.get("revoked", False)
    )


def _line_of(text: str, needle: str) -> int:
    at = text.find(needle) if needle else -1
    return text.count("\n", 0, at) + 1 if at >= 0 else 1


def stix_addresses(pattern: str) -> list[str]:
    """The address literals compared with ``=`` or ``ISSUBSET`` to ``ipv4-addr:value`` or
    ``ipv6-addr:value`` anywhere in a STIX pattern (a tiny scanner, not a STIX parser:
    comparisons on other objects are skipped)."""
    found: list[str] = []
    for target in STIX_OBJECTS:
        start = pattern.find(target)
        while start >= 0:
            literal = _literal_after(pattern, start + len(target))
            if literal is not None:
                found.append(literal)
            start = pattern.find(target, start + len(target))
    return found


def _literal_after(pattern: str, at: int) -> str | None:
    rest = pattern[at:].lstrip()
    operator = next((op for op in STIX_OPERATORS if rest.startswith(op)), None)
    if operator is None:
        return None
    rest = rest[len(operator) :].lstrip()
    if not rest.startswith("'"):
        return None
    out: list[str] = []
    i = 1
    while i < len(rest):
        char = rest[i]
        if char == "\\" and i + 1 < len(rest):
            out.append(rest[i + 1])
            i += 2
            continue
        if char == "'":
            return "".join(out)
        out.append(char)
        i += 1
    return None
