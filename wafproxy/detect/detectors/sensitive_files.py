"""Discovery:HTTP/SensitiveFileProbe: requests for files and consoles no visitor should ask for."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from wafproxy.detect.bounded import BoundedTable, Entry
from wafproxy.detect.detector import Report, make_finding, register, remember
from wafproxy.detect.observation import Observation
from wafproxy.detect.settings import DetectorSettings, count, score, seconds, texts
from wafproxy.findings.model import Finding

TYPE = "Discovery:HTTP/SensitiveFileProbe"
MAX_PATH = 2048
PATH_CHARS = 200
SAMPLE_PATHS = 10
CACHE = 8192
HEX = frozenset("0123456789abcdefABCDEF")

NAMES = frozenset((
    ".env", ".git", ".svn", ".hg", ".bzr", ".htpasswd", ".htaccess", ".htdigest", ".ds_store",
    ".ssh", ".aws", ".kube", ".docker", ".dockercfg", ".dockerenv", ".npmrc", ".pypirc",
    ".netrc", ".git-credentials", ".gitconfig", ".bash_history", ".zsh_history",
    ".mysql_history", ".psql_history", ".vscode", ".idea", "id_rsa", "id_dsa", "id_ecdsa",
    "id_ed25519", "sftp-config.json", "wp-config.php", "phpinfo.php", "server-status",
    "server-info", "phpmyadmin", "pma", "myadmin", "mysqladmin", "adminer", "adminer.php",
    "actuator", "heapdump", "jolokia", "jmx-console", "web-console", "elmah.axd", "trace.axd",
    "web.config", "docker-compose.yml", "credentials.json", "secrets.yml", "database.yml",
))  # fmt: skip
"""Path segments (lower case) that are a probe wherever they appear."""
SUFFIXES = (
    ".bak", ".old", ".orig", ".swp", ".swo", ".save", ".backup", ".sql", ".sql.gz", ".sqlite",
    ".dump", ".key", ".kdbx", "~",
)  # fmt: skip
"""Last-segment endings: backups, editor leftovers, database dumps, keys."""
ARCHIVES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".rar", ".7z", ".gz")
BACKUP_STEMS = frozenset((
    "backup", "backups", "bak", "site", "www", "wwwroot", "htdocs", "public_html", "html",
    "web", "website", "db", "database", "dump", "old", "src", "source", "archive", "root",
))  # fmt: skip
"""An archive named like this (``/backup.zip``, ``/www.tar.gz``) is a backup of the site."""
PREFIXES = ("/manager/html", "/solr/admin", "/_profiler", "/debug/pprof", "/cgi-bin/php")
"""Path beginnings: third-party admin consoles and debug endpoints. ``/admin`` itself is the
application's own panel on most sites, so it is not here (add it with ``extra_paths``)."""


@dataclass(frozen=True)
class SensitiveFileSettings(DetectorSettings):
    severity: float = score(6.0)
    min_paths: int = count(2)
    """Distinct sensitive paths from one client within ``window`` before a finding."""
    window: float = seconds(600.0)
    extra_paths: tuple[str, ...] = texts()
    """More patterns: ``/prefix``, ``*.suffix`` or a bare segment name (case-insensitive)."""
    ignore_paths: tuple[str, ...] = texts()
    """Path prefixes never reported (a health check under /actuator, say)."""


class SensitivePaths:
    """Matches a request path without regular expressions: lower-cased, percent-decoded once,
    then set lookups on its segments, ``endswith`` on the last one, ``startswith`` on the
    whole. Answers are cached (paths repeat), the cache bounded."""

    def __init__(self, extra: Iterable[str] = (), ignore: Iterable[str] = ()) -> None:
        extra = [p.strip().lower() for p in extra if p.strip().strip("*/")]
        self.names = NAMES | {p for p in extra if not p.startswith(("/", "*"))}
        self.suffixes = SUFFIXES + tuple(p[1:] for p in extra if p.startswith("*"))
        self.prefixes = PREFIXES + tuple(p for p in extra if p.startswith("/"))
        self.ignore = tuple(p.lower() for p in ignore)
        self._cache: dict[str, bool] = {}

    def __call__(self, path: str) -> bool:
        hit = self._cache.get(path)
        if hit is None:
            if len(self._cache) >= CACHE:
                self._cache.clear()
            hit = self._cache[path] = self._match(unquote(path[:MAX_PATH]).lower())
        return hit

    def _match(self, path: str) -> bool:
        if self.ignore and path.startswith(self.ignore):
            return False
        if path.startswith(self.prefixes):
            return True
        segments = [s for s in path.split("/") if s]
        if not segments:
            return False
        if any(s in self.names or s.startswith(".env.") for s in segments):
            return True
        last = segments[-1]
        if last.endswith(self.suffixes):
            return True
        return last.endswith(ARCHIVES) and last.split(".", 1)[0] in BACKUP_STEMS


def unquote(text: str) -> str:
    """Percent-decoding, linear and regex-free (``%2e%65nv`` is ``.env``); bad escapes stay."""
    if "%" not in text:
        return text
    head, *pieces = text.split("%")
    out = [head]
    for piece in pieces:
        code = piece[:2]
        if len(code) == 2 and code[0] in HEX and code[1] in HEX:
            out.append(chr(int(code, 16)))
            out.append(piece[2:])
        else:
            out.append("%" + piece)
    return "".join(out)


DEFAULT_PATHS = SensitivePaths()


class _Hits(Entry):
    __slots__ = ("evidence", "paths", "quiet_until", "since")

    def __init__(self) -> None:
        super().__init__()
        self.since = 0.0
        self.paths: tuple[tuple[str, int], ...] = ()
        self.evidence: tuple[str, ...] = ()
        self.quiet_until = 0.0


@register("sensitive_file_probe", SensitiveFileSettings)
class SensitiveFileProbe:
    """A client asking for configuration files, version-control folders, backups, keys or
    third-party admin consoles (``/.env``, ``/.git/config``, ``/backup.zip``,
    ``/wp-config.php.bak``, ``/server-status``, ``/phpmyadmin/``, ``/actuator/env``,
    ``/.ssh/id_rsa``, ``/.DS_Store``, …). No visitor of a site asks for these; a scanner asks
    for all of them. A 200 among the answers means the file is served: fix that first.

    ```yaml
    sensitive_file_probe: {min_paths: 2, window: 10m, extra_paths: ["/internal/", "*.cfg"]}
    ```
    """

    name = "sensitive_file_probe"
    finding_types: tuple[str, ...] = (TYPE,)

    def __init__(self, settings: SensitiveFileSettings, base: Path | None = None) -> None:
        self.settings = settings
        self.matches = SensitivePaths(settings.extra_paths, settings.ignore_paths)
        self.table: BoundedTable[_Hits] = BoundedTable(settings.max_keys, settings.window)

    def observe(self, obs: Observation) -> Iterable[Finding]:
        if not self.matches(obs.path):
            return ()
        s = self.settings
        state = self.table.get_or_put(obs.client_ip, obs.time, _Hits)
        if obs.time - state.since > s.window:
            state.since, state.paths, state.evidence = obs.time, (), ()
        path = obs.path[:PATH_CHARS]
        if all(p != path for p, _ in state.paths):
            state.paths = (*state.paths[-(SAMPLE_PATHS - 1) :], (path, obs.status))
        state.evidence = remember(state.evidence, obs.request_id)
        if len(state.paths) < s.min_paths or obs.time < state.quiet_until:
            return ()
        state.quiet_until = obs.time + s.window
        return (self._finding(obs, state),)

    def state_keys(self) -> int:
        return len(self.table)

    def _finding(self, obs: Observation, state: _Hits) -> Finding:
        served = [p for p, status in state.paths if 200 <= status < 300]
        report = Report(
            TYPE,
            f"{obs.client_ip} probed for sensitive files",
            f"{obs.client_ip} asked for {len(state.paths)} well-known sensitive paths "
            f"(configuration, version control, backups, keys, admin consoles)"
            + (f"; {len(served)} answered 2xx" if served else "")
            + ".",
            "Make sure none of these paths is served (deny dot-files, backups and consoles at "
            "the proxy or the server); block the address if it keeps going.",
        )
        details = {
            "paths": [{"path": p, "status": status} for p, status in state.paths],
            "served": served,
            "min_paths": self.settings.min_paths,
            "window_seconds": self.settings.window,
        }
        return make_finding(
            self.name,
            report,
            obs,
            subject=obs.client_ip,
            severity=self.settings.severity,
            evidence=state.evidence,
            details=details,
        )
