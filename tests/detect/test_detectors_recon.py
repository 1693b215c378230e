"""Recon:HTTP/ScannerUserAgent, Recon:HTTP/PathProbe, Discovery:HTTP/SensitiveFileProbe."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from wafproxy.detect.detectors.path_probe import PathProbe, PathProbeSettings
from wafproxy.detect.detectors.scanner_user_agent import (
    ScannerAgents,
    ScannerUserAgent,
    ScannerUserAgentSettings,
)
from wafproxy.detect.detectors.sensitive_files import (
    SensitiveFileProbe,
    SensitiveFileSettings,
    SensitivePaths,
    unquote,
)
from wafproxy.detect.observation import Observation
from wafproxy.detect.sample import BROWSER_AGENT, request
from wafproxy.findings.model import Finding, Severity

T0 = 1_700_000_000.0
IP = "203.0.113.5"


def run(detector: ScannerUserAgent | PathProbe | SensitiveFileProbe,
        stream: Iterable[Observation]) -> list[Finding]:  # fmt: skip
    return [f for obs in stream for f in detector.observe(obs)]


# -- scanner user agents -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("agent", "tool"),
    [
        ("sqlmap/1.8.2#stable (https://sqlmap.org)", "sqlmap"),
        ("Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:Port Check)", "nikto"),
        ("Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)", "nmap"),
        ("Mozilla/5.0 zgrab/0.x", "zgrab"),
        ("Nuclei - Open-source project (github.com/projectdiscovery/nuclei)", "nuclei"),
        ("WPScan v3.8.25 (https://wpscan.com/wordpress-security-scanner)", "wpscan"),
        ("gobuster/3.6", "gobuster"),
        ("Fuzz Faster U Fool v2.1.0-dev", ""),  # ffuf's default agent does not say ffuf
        ("ffuf/2.1", "ffuf"),
        ("Mozilla/5.0 (Windows NT 10.0) OWASP ZAP/2.14", "owasp zap"),
        ("Mozilla/5.0 (Hydra)", "hydra"),
        ("masscan/1.3 (https://github.com/robertdavidgraham/masscan)", "masscan"),
        (BROWSER_AGENT, ""),
        ("Zapier", ""),
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", ""),
        ("curl/8.5.0", ""),
        ("", ""),
    ],
)
def test_scanner_agents(agent: str, tool: str) -> None:
    assert ScannerAgents()(agent) == tool


def test_extra_scanner_agents_are_case_insensitive() -> None:
    assert ScannerAgents(["EvilScan"])("x EVILSCAN/1") == "evilscan"


def test_scanner_user_agent_finding_once_per_cooldown() -> None:
    detector = ScannerUserAgent(ScannerUserAgentSettings(cooldown=600.0))
    agent = "sqlmap/1.8.2#stable (https://sqlmap.org)"
    stream = [request(IP, T0 + n, n, "/item", user_agent=agent) for n in range(5)]
    (finding,) = run(detector, stream)
    assert finding.type == "Recon:HTTP/ScannerUserAgent"
    assert finding.subject == IP and finding.resource == "sample"
    assert finding.band is Severity.MEDIUM
    assert finding.evidence == (f"sample-{IP}-0",)
    assert finding.details["tool"] == "sqlmap"
    assert finding.source == "detect" and finding.check == "scanner_user_agent"
    later = run(detector, [request(IP, T0 + 700, 9, "/", user_agent=agent)])
    assert len(later) == 1 and later[0].evidence[-1] == f"sample-{IP}-9"


def test_scanner_user_agent_ignores_browsers() -> None:
    detector = ScannerUserAgent(ScannerUserAgentSettings())
    assert run(detector, [request(IP, T0 + n, n) for n in range(50)]) == []
    assert detector.state_keys() == 0


def test_severity_can_be_set() -> None:
    detector = ScannerUserAgent(ScannerUserAgentSettings(severity=8.2))
    (finding,) = run(detector, [request(IP, T0, 0, user_agent="nikto")])
    assert finding.severity == 8.2 and finding.band is Severity.HIGH


# -- path probes ---------------------------------------------------------------------------------
def probes(count: int, start: float = T0, step: float = 0.1, ip: str = IP) -> list[Observation]:
    return [request(ip, start + n * step, n, f"/w/{n}.php", status=404) for n in range(count)]


def test_path_probe_fires_past_the_threshold() -> None:
    detector = PathProbe(PathProbeSettings(threshold=25, window=300.0))
    findings = run(detector, probes(60))
    (finding,) = findings
    assert finding.type == "Recon:HTTP/PathProbe"
    assert finding.subject == IP and finding.band is Severity.MEDIUM
    assert finding.details["distinct_paths"] == 26
    assert finding.evidence[-1] == f"sample-{IP}-25"
    assert len(finding.evidence) == 10
    assert finding.details["paths"][-1] == "/w/25.php"


def test_path_probe_just_below_the_threshold_is_quiet() -> None:
    detector = PathProbe(PathProbeSettings(threshold=25, window=300.0))
    assert run(detector, probes(25, step=0.0)) == []


def test_path_probe_repeats_of_one_path_count_once() -> None:
    detector = PathProbe(PathProbeSettings(threshold=5))
    stream = [request(IP, T0 + n, n, "/favicon.ico", status=404) for n in range(100)]
    assert run(detector, stream) == []


def test_path_probe_slow_crawl_with_broken_links_is_quiet() -> None:
    """One distinct 404 every 20 s is under 25 per 300 s: the bucket drains faster."""
    detector = PathProbe(PathProbeSettings(threshold=25, window=300.0))
    assert run(detector, probes(500, step=20.0)) == []


def test_path_probe_only_counts_configured_statuses() -> None:
    detector = PathProbe(PathProbeSettings(threshold=5))
    stream = [request(IP, T0, n, f"/x/{n}", status=403) for n in range(20)]
    assert run(detector, stream) == []
    with_403 = PathProbe(PathProbeSettings(threshold=5, statuses=(403, 404)))
    assert len(run(with_403, stream)) == 1


def test_path_probe_re_emits_once_per_window_while_probing_continues() -> None:
    detector = PathProbe(PathProbeSettings(threshold=10, window=60.0))
    findings = run(detector, probes(600, step=0.5))  # five minutes of 2 paths/s
    assert 4 <= len(findings) <= 6
    assert len({f.id for f in findings}) == 1


def test_path_probe_state_is_bounded() -> None:
    detector = PathProbe(PathProbeSettings(max_keys=100))
    for n in range(5000):
        detector.observe(request(f"10.0.{n >> 8}.{n & 255}", T0 + n, n, "/nope", status=404))
    assert detector.state_keys() == 100


# -- sensitive files -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    [
        "/.env", "/app/.env", "/.env.production", "/.git/config", "/.git/HEAD", "/.svn/entries",
        "/.htpasswd", "/wp-config.php.bak", "/wp-config.php~", "/backup.zip", "/www.tar.gz",
        "/db.sql", "/dump.sql.gz", "/server-status", "/phpmyadmin/", "/pma/index.php",
        "/actuator/env", "/.ssh/id_rsa", "/home/id_rsa", "/.DS_Store", "/manager/html",
        "/index.php.bak", "/%2eenv", "/%2Egit/config", "/.AWS/credentials", "/adminer.php",
    ],
)  # fmt: skip
def test_sensitive_paths_match(path: str) -> None:
    assert SensitivePaths()(path)


@pytest.mark.parametrize(
    "path",
    [
        "/", "/index.html", "/products/12", "/static/app.js", "/downloads/manual.zip",
        "/environment", "/git", "/admin", "/api/keys", "/login", "/images/logo.png",
        "/blog/backup-strategies", "/envelope.pdf", "/%zz", "/.well-known/security.txt",
    ],
)  # fmt: skip
def test_ordinary_paths_do_not_match(path: str) -> None:
    assert not SensitivePaths()(path)


def test_extra_and_ignored_paths() -> None:
    paths = SensitivePaths(extra=["/internal/", "*.cfg", "secret-dir"], ignore=["/actuator/health"])
    assert paths("/internal/x") and paths("/a/settings.CFG") and paths("/x/Secret-Dir/y")
    assert not paths("/actuator/health") and paths("/actuator/env")


def test_catch_all_extra_patterns_are_ignored() -> None:
    paths = SensitivePaths(extra=["*", "/", "**", " "])
    assert not paths("/index.html") and not paths("/")


def test_unquote_is_lenient() -> None:
    assert unquote("/%2e%65nv") == "/.env"
    assert unquote("/100%") == "/100%"
    assert unquote("/%g1%41") == "/%g1A"


def test_sensitive_file_probe_collects_paths_and_statuses() -> None:
    detector = SensitiveFileProbe(SensitiveFileSettings(min_paths=2))
    stream = [
        request(IP, T0, 0, "/.env", status=404),
        request(IP, T0 + 1, 1, "/.env", status=404),
        request(IP, T0 + 2, 2, "/index.html"),
        request(IP, T0 + 3, 3, "/.git/config", status=200),
        request(IP, T0 + 4, 4, "/backup.zip", status=404),
    ]
    (finding,) = run(detector, stream)
    assert finding.type == "Discovery:HTTP/SensitiveFileProbe"
    assert finding.subject == IP and finding.band is Severity.MEDIUM
    assert finding.evidence == (f"sample-{IP}-0", f"sample-{IP}-1", f"sample-{IP}-3")
    assert finding.details["paths"] == [
        {"path": "/.env", "status": 404},
        {"path": "/.git/config", "status": 200},
    ]
    assert finding.details["served"] == ["/.git/config"]
    assert "answered 2xx" in finding.description


def test_sensitive_file_probe_one_path_is_below_the_threshold() -> None:
    detector = SensitiveFileProbe(SensitiveFileSettings(min_paths=2))
    stream = [request(IP, T0 + n, n, "/.env", status=404) for n in range(10)]
    assert run(detector, stream) == []


def test_sensitive_file_probe_paths_far_apart_do_not_add_up() -> None:
    detector = SensitiveFileProbe(SensitiveFileSettings(min_paths=2, window=600.0))
    stream = [request(IP, T0, 0, "/.env", status=404),
              request(IP, T0 + 601, 1, "/.git/config", status=404)]  # fmt: skip
    assert run(detector, stream) == []
