"""Exposed sensitive paths, each confirmed by its content, with soft-404 detection."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from wafproxy.findings.model import Finding
from wafproxy.scan.client import Probe
from wafproxy.scan.registry import check
from wafproxy.scan.target import ScanTarget

EXPOSED = "EXPOSED_SENSITIVE_PATH"
HEX = frozenset("0123456789abcdef")


def _starts(*prefixes: bytes) -> Callable[[bytes], bool]:
    return lambda body: body.lstrip().startswith(prefixes)


def _contains(*needles: bytes) -> Callable[[bytes], bool]:
    return lambda body: any(n in body for n in needles)


def _all(*needles: bytes) -> Callable[[bytes], bool]:
    return lambda body: all(n in body for n in needles)


def _git_head(body: bytes) -> bool:
    text = body.strip()
    return text.startswith(b"ref: refs/") or (len(text) == 40 and set(text.decode()) <= HEX)


def _dotenv(body: bytes) -> bool:
    """At least two KEY=value lines and no HTML."""
    if b"<html" in body.lower() or b"<!doctype" in body.lower():
        return False
    lines = [ln.strip() for ln in body.splitlines() if ln.strip() and not ln.startswith(b"#")]
    pairs = [ln for ln in lines if b"=" in ln and ln.split(b"=", 1)[0].replace(b"_", b"").isalnum()]
    return len(pairs) >= 2 and len(pairs) >= len(lines) // 2


@dataclass(frozen=True)
class Sensitive:
    path: str
    title: str
    severity: float
    confirm: Callable[[bytes], bool]
    block_prefix: str | None = None
    """What a virtual patch blocks (a directory for VCS metadata); None: the path itself."""
    fix: str = "Remove the file from the web root, or deny the path in the server config."


SENSITIVE = (
    Sensitive("/.git/HEAD", "Git repository metadata exposed (/.git/)", 7.5, _git_head, "/.git/",
              "Remove .git from the deployed web root (deploy build artefacts, not a checkout) "
              "and deny /.git/ in the server."),
    Sensitive("/.git/config", "Git repository configuration exposed", 7.5,
              _all(b"[core]", b"repositoryformatversion"), "/.git/"),
    Sensitive("/.env", "Environment file with secrets exposed (/.env)", 9.0, _dotenv, None,
              "Move .env out of the web root, rotate every secret in it, deny dotfiles."),
    Sensitive("/.svn/wc.db", "Subversion metadata exposed (/.svn/)", 7.0,
              _starts(b"SQLite format 3"), "/.svn/"),
    Sensitive("/.hg/requires", "Mercurial metadata exposed (/.hg/)", 7.0,
              _contains(b"revlogv1", b"store\n"), "/.hg/"),
    Sensitive("/.DS_Store", "macOS .DS_Store file exposed", 3.0,
              _starts(b"\x00\x00\x00\x01Bud1")),
    Sensitive("/.htpasswd", "Password file exposed (.htpasswd)", 9.0,
              _contains(b":$apr1$", b":{SHA}", b":$2y$", b":$6$")),
    Sensitive("/.aws/credentials", "AWS credentials file exposed", 9.5,
              _contains(b"aws_access_key_id")),
    Sensitive("/id_rsa", "SSH private key exposed", 9.5,
              _all(b"-----BEGIN ", b"PRIVATE KEY-----")),
    Sensitive("/backup.zip", "Backup archive exposed", 7.5, _starts(b"PK\x03\x04")),
    Sensitive("/backup.tar.gz", "Backup archive exposed", 7.5, _starts(b"\x1f\x8b")),
    Sensitive("/dump.sql", "Database dump exposed", 8.5,
              _contains(b"CREATE TABLE", b"INSERT INTO", b"-- MySQL dump")),
    Sensitive("/db.sql", "Database dump exposed", 8.5,
              _contains(b"CREATE TABLE", b"INSERT INTO", b"-- MySQL dump")),
    Sensitive("/wp-config.php.bak", "WordPress configuration backup exposed", 9.0,
              _all(b"DB_PASSWORD", b"define(")),
    Sensitive("/config.php.bak", "PHP configuration backup exposed", 8.0, _starts(b"<?php")),
    Sensitive("/server-status", "Apache server-status exposed", 5.3,
              _contains(b"Apache Server Status for")),
    Sensitive("/server-info", "Apache server-info exposed", 5.3,
              _contains(b"Apache Server Information")),
    Sensitive("/nginx_status", "nginx stub_status exposed", 3.5,
              _all(b"Active connections:", b"server accepts handled requests")),
    Sensitive("/phpinfo.php", "phpinfo() page exposed", 5.3, _all(b"phpinfo()", b"PHP Version")),
    Sensitive("/info.php", "phpinfo() page exposed", 5.3, _all(b"phpinfo()", b"PHP Version")),
    Sensitive("/actuator/env", "Spring Boot actuator /env exposed", 7.5,
              _all(b"propertySources", b"activeProfiles"), "/actuator/"),
    Sensitive("/actuator/heapdump", "Spring Boot heap dump exposed", 9.0,
              _starts(b"JAVA PROFILE"), "/actuator/"),
    Sensitive("/actuator", "Spring Boot actuator index exposed", 3.5,
              _all(b"\"_links\"", b"actuator"), "/actuator/"),
    Sensitive("/WEB-INF/web.xml", "Java WEB-INF/web.xml exposed", 7.5, _contains(b"<web-app"),
              "/WEB-INF/"),
    Sensitive("/elmah.axd", "ELMAH error log exposed", 5.3, _contains(b"Error Log for")),
    Sensitive("/debug/pprof/", "Go pprof profiling endpoints exposed", 5.3,
              _contains(b"Types of profiles available")),
)  # fmt: skip


@dataclass(frozen=True)
class Baseline:
    """How the app answers paths that cannot exist (two random ones)."""

    statuses: frozenset[int]
    digests: frozenset[str]

    def same_as(self, probe: Probe) -> bool:
        return _digest(probe.body) in self.digests


def _digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


async def soft_404_baseline(target: ScanTarget) -> Baseline:
    statuses: set[int] = set()
    digests: set[str] = set()
    for name in (f"wafproxy-scan-{target.token}", f".wafproxy-scan-{target.token}.bak"):
        probe = await target.fetch("/" + name)
        if probe is not None:
            statuses.add(probe.status)
            digests.add(_digest(probe.body))
    return Baseline(frozenset(statuses), frozenset(digests))


@check("sensitive_paths")
async def sensitive_paths(target: ScanTarget) -> list[Finding]:
    """Exposed sensitive files and endpoints, confirmed by content.

    Looks for: version-control metadata (/.git/HEAD, /.git/config, /.svn/, /.hg/), /.env,
    credential files, backups and database dumps, /server-status and /server-info,
    phpinfo pages, Spring Boot actuator endpoints, WEB-INF/web.xml and other debug endpoints.
    A path counts only when its body has the file's own signature (``ref: refs/`` for
    /.git/HEAD, ``PK`` for a zip, …) and differs from the answer to two random paths that
    cannot exist, so an app that answers 200 to everything (soft 404) yields no finding.
    Why it matters: a readable .git directory gives away the source code and its history
    (often with secrets); .env files and dumps hold credentials; status and debug endpoints map
    the internals for an attacker.
    How to fix: deploy build artefacts rather than a checkout, keep secrets and backups out of
    the web root, deny dotfiles and debug endpoints in the server, and rotate anything that was
    exposed. Until then, the proposed wafproxy rule blocks the path.
    """
    baseline = await soft_404_baseline(target)
    found: list[Finding] = []
    for item in SENSITIVE:
        probe = await target.fetch(item.path)
        if probe is None or probe.status != 200 or baseline.same_as(probe):
            continue
        if not item.confirm(probe.body):
            continue
        path = target.path_of(item.path)
        found.append(
            target.finding(
                check="sensitive_paths",
                type=EXPOSED,
                subject=f"path:{path}",
                title=item.title,
                description=f"GET {probe.url} answered 200 with the content of {item.path} "
                f"({len(probe.body)} bytes read).",
                severity=item.severity,
                remediation=item.fix,
                evidence=[probe.evidence, _excerpt(probe.body)],
                details={
                    "path": path,
                    "block_prefix": target.path_of(item.block_prefix)
                    if item.block_prefix
                    else None,
                    "soft_404_statuses": sorted(baseline.statuses),
                },
            )
        )
    return found


def _excerpt(body: bytes) -> str:
    """The first bytes as text, secrets masked after the first 8 characters of each line."""
    lines = body[:200].decode("utf-8", "replace").splitlines()[:3]
    return "excerpt: " + " | ".join(ln[:8] + ("…" if len(ln) > 8 else "") for ln in lines)
