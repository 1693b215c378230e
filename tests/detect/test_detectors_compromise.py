"""AttackSequence:HTTP/CompromiseAttempt: reconnaissance, then attacks, then an apparent success."""

from __future__ import annotations

from collections.abc import Iterable

from wafproxy.detect.detectors.compromise import CompromiseAttempt, CompromiseSettings
from wafproxy.detect.observation import Observation
from wafproxy.detect.sample import SCANNER_AGENT, request
from wafproxy.findings.model import Finding, Severity

T0 = 1_700_000_000.0
IP = "203.0.113.50"


def run(stream: Iterable[Observation], **settings: object) -> list[Finding]:
    detector = CompromiseAttempt(CompromiseSettings(**settings))  # type: ignore[arg-type]
    return [f for obs in stream for f in detector.observe(obs)]


def obs(t: float, n: int, path: str = "/", **fields: object) -> Observation:
    return request(IP, T0 + t, n, path, **fields)


def block(t: float, n: int, path: str = "/admin/") -> Observation:
    return obs(t, n, path, status=403, action="BLOCK", terminating_rule="PathTraversal_URIPATH",
               labels=("wafproxy:attack:path-traversal",))  # fmt: skip


def login(t: float, n: int, failed: bool) -> Observation:
    return obs(t, n, "/login", method="POST", status=401 if failed else 302, username="admin",
               login_failed=failed)  # fmt: skip


def test_scanner_then_blocks_then_a_200_on_a_refused_path() -> None:
    stream = [
        obs(0, 0, "/", user_agent=SCANNER_AGENT),
        obs(1, 1, "/admin/"),  # nothing yet
        obs(2, 2, "/admin/panel", status=404),
        block(3, 3), block(4, 4), block(5, 5),
        obs(6, 6, "/admin/panel"),
    ]  # fmt: skip
    (finding,) = run(stream)
    assert finding.type == "AttackSequence:HTTP/CompromiseAttempt"
    assert finding.subject == IP
    assert finding.severity >= 9.0 and finding.band is Severity.CRITICAL
    assert finding.evidence == tuple(f"sample-{IP}-{n}" for n in (0, 3, 4, 5, 6))
    stages = finding.details["stages"]
    assert stages["recon"]["signal"] == "scanner user agent 'sqlmap'"
    assert stages["attack"]["requests"] == [f"sample-{IP}-{n}" for n in (3, 4, 5)]
    assert stages["success"]["path"] == "/admin/panel"
    assert stages["success"]["requests"] == [f"sample-{IP}-6"]


def test_sensitive_file_probe_then_failed_logins_then_a_login() -> None:
    stream = [obs(0, 0, "/.env", status=404)]
    stream += [login(10 + n, 1 + n, True) for n in range(5)]
    stream += [login(20, 9, False)]
    (finding,) = run(stream)
    assert finding.details["stages"]["recon"]["signal"] == "sensitive file probe"
    assert finding.details["stages"]["success"]["signal"] == "successful login after 5 failures"
    assert finding.evidence[0] == f"sample-{IP}-0" and finding.evidence[-1] == f"sample-{IP}-9"


def test_many_not_found_paths_then_attack_labels_then_success() -> None:
    stream = [obs(n, n, f"/old/{n}", status=404) for n in range(11)]
    stream += [obs(20 + n, 20 + n, "/q", labels=("wafproxy:attack:sqli",)) for n in range(3)]
    stream += [obs(30, 30, "/old/4")]
    (finding,) = run(stream, recon_paths=10)
    assert finding.details["stages"]["recon"]["signal"] == "more than 10 distinct not-found paths"
    assert finding.details["stages"]["attack"]["attacks"] == 3


def test_just_below_each_stage_is_quiet() -> None:
    few_probes = [obs(n, n, f"/old/{n}", status=404) for n in range(10)]
    attacks = [block(20 + n, 20 + n) for n in range(3)]
    assert run([*few_probes, *attacks, obs(30, 30, "/old/4")], recon_paths=10) == []
    recon = [obs(0, 0, user_agent=SCANNER_AGENT), obs(1, 1, "/secret", status=403)]
    two_attacks = [block(2, 2), block(3, 3)]
    assert run([*recon, *two_attacks, obs(4, 4, "/secret")]) == []
    four_failures = [login(10 + n, 10 + n, True) for n in range(4)]
    assert run([*recon, *four_failures, login(20, 20, False)]) == []


def test_stages_must_come_in_order() -> None:
    attacks_first = [block(n, n, "/x") for n in range(5)]
    then = [obs(10, 10, user_agent=SCANNER_AGENT), obs(11, 11, "/x", status=404)]
    assert run([*attacks_first, *then, obs(12, 12, "/x")]) == []


def test_success_must_be_on_a_path_it_was_refused() -> None:
    stream = [obs(0, 0, user_agent=SCANNER_AGENT), obs(1, 1, "/a", status=404)]
    stream += [block(2 + n, 2 + n) for n in range(3)]
    stream += [obs(10, 10, "/b"), obs(11, 11, "/")]
    assert run(stream) == []


def test_a_pause_longer_than_the_window_starts_over() -> None:
    stream = [obs(0, 0, user_agent=SCANNER_AGENT), obs(1, 1, "/a", status=404)]
    stream += [block(2 + n, 2 + n) for n in range(3)]
    stream += [obs(4000, 10, "/a")]
    assert run(stream, window=3600.0) == []


def test_once_per_window() -> None:
    stream = [obs(0, 0, user_agent=SCANNER_AGENT), obs(1, 1, "/a", status=404)]
    stream += [block(2 + n, 2 + n) for n in range(3)]
    stream += [obs(10 + n, 10 + n, "/a") for n in range(20)]
    assert len(run(stream)) == 1


def test_ordinary_clients_hold_no_state() -> None:
    detector = CompromiseAttempt(CompromiseSettings())
    for n in range(500):
        detector.observe(request(f"10.1.{n >> 8}.{n & 255}", T0 + n, n, "/products"))
        detector.observe(request(f"10.2.{n >> 8}.{n & 255}", T0 + n, n, "/x", labels=("a:b",)))
    assert detector.state_keys() == 0


def test_compromise_state_is_bounded() -> None:
    detector = CompromiseAttempt(CompromiseSettings(max_keys=50))
    for n in range(2000):
        detector.observe(request(f"10.1.{n >> 8}.{n & 255}", T0 + n, n, "/x", status=404))
    assert detector.state_keys() == 50
