"""The offline advisory database: OSV JSON documents, matched against banner versions.

The package ships a small curated set (``wafproxy/scan/advisories/*.json``) for servers and
frameworks that announce their version in headers or debug pages. ``wafproxy scan update-db
FILE...`` adds OSV documents (single files, lists, directories, or the ``all.zip`` exports of
OSV ecosystems) to a local database directory, newest ``modified`` winning per id.

Servers with no OSV ecosystem (nginx, Apache httpd, OpenSSL, PHP) use the ecosystem name
``Generic`` with a ``pkg:generic/…`` purl; ranges are ``ECOSYSTEM`` ranges compared with
:func:`version_key`, which also orders OpenSSL's letter releases (1.0.1f < 1.0.1g < 1.0.2zd).
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

PRERELEASE = {"a": -4, "alpha": -4, "b": -3, "beta": -3, "c": -2, "rc": -2, "pre": -2,
              "preview": -2, "dev": -5}  # fmt: skip
LABEL_SCORES = {"LOW": 3.0, "MODERATE": 5.5, "MEDIUM": 5.5, "HIGH": 7.5, "CRITICAL": 9.5}
ALIASES = {
    "apache": "apache-httpd", "httpd": "apache-httpd", "apache-httpd": "apache-httpd",
    "microsoft-iis": "iis", "tornadoserver": "tornado",
}  # fmt: skip


class AdvisoryError(ValueError):
    pass


# -- versions --------------------------------------------------------------------------------------
def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """A sort key for dotted versions with letters.

    Numbers compare as numbers. Letters directly after a number and followed by more digits are
    pre-releases when they are a known tag (``2.0rc1`` < ``2.0``, ``1.0a1`` < ``1.0``); any
    other letters are post-release suffixes (OpenSSL ``1.0.1f`` > ``1.0.1``). A leading ``v``
    and build metadata after ``+`` are ignored."""
    text = version.strip().lower().removeprefix("v").partition("+")[0]
    tokens = _tokens(text)
    split = next((i for i, t in enumerate(tokens) if not t.isdigit()), len(tokens))
    release = [int(t) for t in tokens[:split]]
    while release and release[-1] == 0:  # 1.0 == 1.0.0
        release.pop()
    key: list[tuple[int, int | str]] = [(2, n) for n in release]
    for i, token in enumerate(tokens[split:], start=split):
        if token.isdigit():
            key.append((2, int(token)))
            continue
        followed_by_number = i + 1 < len(tokens) and tokens[i + 1].isdigit()
        if token in PRERELEASE and (followed_by_number or token in ("alpha", "beta", "rc", "dev")):
            key.append((0, PRERELEASE[token]))
        else:
            key.append((1, token))
    key.append((0, 0))  # the end of a release sorts above its pre-releases, below suffixes
    return tuple(key)


def _tokens(text: str) -> list[str]:
    tokens: list[str] = []
    current = ""
    for ch in text:
        if ch.isalnum() and current and current[-1].isdigit() == ch.isdigit():
            current += ch
        else:
            if current:
                tokens.append(current)
            current = ch if ch.isalnum() else ""
    if current:
        tokens.append(current)
    return tokens


def normalize_name(name: str) -> str:
    low = name.strip().lower().replace("_", "-").replace(".", "-")
    return ALIASES.get(low, low)


# -- CVSS v3 ---------------------------------------------------------------------------------------
_CVSS = {
    "AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2},
    "AC": {"L": 0.77, "H": 0.44},
    "UI": {"N": 0.85, "R": 0.62},
    "C": {"H": 0.56, "L": 0.22, "N": 0.0},
}


def cvss3_base_score(vector: str) -> float:
    """The CVSS v3.0/v3.1 base score of a vector string (``CVSS:3.1/AV:N/…``)."""
    parts = dict(p.split(":", 1) for p in vector.split("/")[1:] if ":" in p)
    try:
        changed = parts["S"] == "C"
        pr = {"N": 0.85, "L": 0.68 if changed else 0.62, "H": 0.5 if changed else 0.27}[parts["PR"]]
        av, ac, ui = (_CVSS[m][parts[m]] for m in ("AV", "AC", "UI"))
        c, i, a = (_CVSS["C"][parts[m]] for m in ("C", "I", "A"))
    except KeyError as exc:
        raise AdvisoryError(f"not a CVSS v3 vector: {vector!r}") from exc
    iss = 1 - (1 - c) * (1 - i) * (1 - a)
    impact = 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15 if changed else 6.42 * iss
    if impact <= 0:
        return 0.0
    exploitability = 8.22 * av * ac * pr * ui
    total = (1.08 if changed else 1.0) * (impact + exploitability)
    return _roundup(min(total, 10.0))


def _roundup(value: float) -> float:
    """CVSS 3.1's Roundup: the smallest one-decimal number >= value, free of float noise."""
    integer = round(value * 100_000)
    if integer % 10_000 == 0:
        return integer / 100_000
    return (math.floor(integer / 10_000) + 1) / 10.0


# -- advisories ------------------------------------------------------------------------------------
def _event_order(event: tuple[str, str]) -> tuple[int, tuple[tuple[int, int | str], ...]]:
    return (0, ()) if event[1] == "0" else (1, version_key(event[1]))


@dataclass(frozen=True)
class Range:
    type: str
    events: tuple[tuple[str, str], ...]

    def contains(self, version: str) -> bool:
        """OSV's evaluation: walk the events in version order; introduced switches on, fixed
        (at or below) and last_affected (below) switch off."""
        key = version_key(version)
        affected = False
        for kind, at in sorted(self.events, key=_event_order):
            at_key = () if at == "0" else version_key(at)
            if kind == "introduced" and (at == "0" or key >= at_key):
                affected = True
            elif (kind == "fixed" and key >= at_key) or (kind == "last_affected" and key > at_key):
                affected = False
        return affected

    @property
    def fixed(self) -> list[str]:
        return [v for kind, v in self.events if kind == "fixed"]


@dataclass(frozen=True)
class Affected:
    ecosystem: str
    name: str
    ranges: tuple[Range, ...]
    versions: frozenset[str]

    def contains(self, version: str) -> bool:
        if version in self.versions:
            return True
        return any(r.contains(version) for r in self.ranges if r.type in ("ECOSYSTEM", "SEMVER"))

    def fixed_versions(self) -> list[str]:
        return sorted({v for r in self.ranges for v in r.fixed}, key=version_key)


@dataclass(frozen=True)
class Advisory:
    id: str
    summary: str
    details: str
    aliases: tuple[str, ...]
    modified: str
    score: float
    severity_source: str
    affected: tuple[Affected, ...]
    references: tuple[str, ...]
    virtual_patch: Mapping[str, Any] | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def matches(self, package: str, version: str) -> Affected | None:
        name = normalize_name(package)
        return next(
            (a for a in self.affected if normalize_name(a.name) == name and a.contains(version)),
            None,
        )


def parse_advisory(data: Mapping[str, Any]) -> Advisory:
    if not isinstance(data, Mapping) or not data.get("id"):
        raise AdvisoryError("not an OSV document: no id")
    affected = tuple(_affected(a) for a in data.get("affected", []) if a.get("package"))
    if not affected:
        raise AdvisoryError(f"{data['id']}: no affected package")
    score, source = _score(data)
    extension = (data.get("database_specific") or {}).get("wafproxy") or {}
    references = tuple(str(r["url"]) for r in data.get("references", []) if r.get("url"))
    return Advisory(
        id=str(data["id"]),
        summary=str(data.get("summary") or data.get("details", "")[:120] or data["id"]),
        details=str(data.get("details", "")),
        aliases=tuple(str(a) for a in data.get("aliases", [])),
        modified=str(data.get("modified", "")),
        score=score,
        severity_source=source,
        affected=affected,
        references=references,
        virtual_patch=extension.get("virtual_patch"),
        raw=dict(data),
    )


def _affected(data: Mapping[str, Any]) -> Affected:
    package = data["package"]
    ranges = tuple(
        Range(str(r.get("type", "ECOSYSTEM")),
              tuple((k, str(v)) for e in r.get("events", []) for k, v in e.items()))
        for r in data.get("ranges", [])
    )  # fmt: skip
    return Affected(
        ecosystem=str(package.get("ecosystem", "")),
        name=str(package["name"]),
        ranges=ranges,
        versions=frozenset(str(v) for v in data.get("versions", [])),
    )


def _score(data: Mapping[str, Any]) -> tuple[float, str]:
    """The CVSS v3 base score when the document has a vector, else the database's label."""
    for entry in data.get("severity", []):
        if str(entry.get("type", "")).startswith("CVSS_V3"):
            return cvss3_base_score(str(entry["score"])), str(entry["score"])
    label = str((data.get("database_specific") or {}).get("severity", "")).upper()
    if label in LABEL_SCORES:
        return LABEL_SCORES[label], label
    return 5.5, "unrated"


class AdvisoryDB:
    def __init__(self, advisories: Iterable[Advisory] = ()) -> None:
        self.by_id: dict[str, Advisory] = {}
        self.by_package: dict[str, list[Advisory]] = {}
        for advisory in advisories:
            self.add(advisory)

    def add(self, advisory: Advisory) -> None:
        old = self.by_id.get(advisory.id)
        if old is not None and old.modified > advisory.modified:
            return
        if old is not None:
            for a in old.affected:
                self.by_package[normalize_name(a.name)].remove(old)
        self.by_id[advisory.id] = advisory
        for name in dict.fromkeys(normalize_name(a.name) for a in advisory.affected):
            self.by_package.setdefault(name, []).append(advisory)

    def __len__(self) -> int:
        return len(self.by_id)

    def virtual_patches(self) -> dict[str, Mapping[str, Any]]:
        """Advisory id -> ``{statement, test_request}`` for advisories that carry one."""
        return {a.id: a.virtual_patch for a in self.by_id.values() if a.virtual_patch}

    def match(self, package: str, version: str) -> list[tuple[Advisory, Affected]]:
        found = []
        for advisory in self.by_package.get(normalize_name(package), []):
            affected = advisory.matches(package, version)
            if affected is not None:
                found.append((advisory, affected))
        return sorted(found, key=lambda pair: (-pair[0].score, pair[0].id))

    @classmethod
    def load(cls, extra_dirs: Iterable[Path] = ()) -> AdvisoryDB:
        """The shipped advisories, then every local database directory given."""
        db = cls(parse_advisory(doc) for doc in shipped_documents())
        for directory in extra_dirs:
            if directory.is_dir():
                for path in sorted(directory.glob("*.json")):
                    for doc in _documents(json.loads(path.read_text(encoding="utf-8"))):
                        db.add(parse_advisory(doc))
        return db


def shipped_documents() -> Iterator[Mapping[str, Any]]:
    folder = resources.files("wafproxy.scan") / "advisories"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            yield from _documents(json.loads(entry.read_text(encoding="utf-8")))


def _documents(data: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(data, list):
        yield from (d for d in data if isinstance(d, Mapping))
    elif isinstance(data, Mapping):
        yield data


def default_db_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "wafproxy" / "osv"


# -- update-db -------------------------------------------------------------------------------------
@dataclass
class UpdateResult:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    invalid: list[str] = field(default_factory=list)


def update_db(sources: Iterable[Path], db_dir: Path) -> UpdateResult:
    """Copy valid OSV documents into ``db_dir`` (one ``<id>.json`` each); a document whose id is
    already there replaces it only when its ``modified`` is newer."""
    db_dir.mkdir(parents=True, exist_ok=True)
    result = UpdateResult()
    for origin, doc in _read_sources(sources, result):
        try:
            advisory = parse_advisory(doc)
        except (AdvisoryError, KeyError, TypeError, ValueError, AttributeError) as exc:
            result.invalid.append(f"{origin}: {exc}")
            continue
        _store(db_dir, advisory, doc, result)
    return result


def _store(db_dir: Path, advisory: Advisory, doc: Mapping[str, Any], result: UpdateResult) -> None:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in advisory.id)
    path = db_dir / f"{safe}.json"
    if path.exists():
        old = json.loads(path.read_text(encoding="utf-8"))
        if str(old.get("modified", "")) >= advisory.modified:
            result.unchanged += 1
            return
        result.updated += 1
    else:
        result.added += 1
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=True), encoding="utf-8")
    tmp.replace(path)


def _read_sources(
    sources: Iterable[Path], result: UpdateResult
) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for source in sources:
        if source.is_dir():
            yield from _read_sources(sorted(source.glob("*.json")), result)
        elif source.suffix == ".zip":
            with zipfile.ZipFile(source) as archive:
                for name in archive.namelist():
                    if name.endswith(".json"):
                        yield from _parse(f"{source}:{name}", archive.read(name), result)
        else:
            try:
                data = source.read_bytes()
            except OSError as exc:
                result.invalid.append(f"{source}: {exc.strerror or exc}")
                continue
            yield from _parse(str(source), data, result)


def _parse(
    origin: str, data: bytes, result: UpdateResult
) -> Iterator[tuple[str, Mapping[str, Any]]]:
    try:
        parsed = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        result.invalid.append(f"{origin}: not JSON: {exc}")
        return
    for doc in _documents(parsed):
        yield origin, doc
