"""UnauthorizedAccess:HTTP/BruteForce and CredentialAccess:HTTP/CredentialStuffing."""

from __future__ import annotations

from collections.abc import Iterable

from wafproxy.detect.detectors.brute_force import BruteForce, BruteForceSettings
from wafproxy.detect.detectors.credential_stuffing import (
    CredentialStuffing,
    CredentialStuffingSettings,
)
from wafproxy.detect.observation import Observation
from wafproxy.detect.sample import request
from wafproxy.findings.model import Finding, Severity

T0 = 1_700_000_000.0
IP = "203.0.113.20"


def login(ip: str, t: float, n: int, user: str, failed: bool) -> Observation:
    return request(ip, t, n, "/login", method="POST", status=401 if failed else 302,
                   username=user, login_failed=failed)  # fmt: skip


def run(detector: BruteForce | CredentialStuffing, stream: Iterable[Observation]) -> list[Finding]:
    return [f for obs in stream for f in detector.observe(obs)]


# -- brute force ---------------------------------------------------------------------------------
def test_brute_force_per_account_from_many_addresses() -> None:
    detector = BruteForce(BruteForceSettings(per_account=10, per_client=20, window=300.0))
    stream = [login(f"198.51.100.{n}", T0 + 5 * n, n, "alice", True) for n in range(12)]
    (finding,) = run(detector, stream)
    assert finding.type == "UnauthorizedAccess:HTTP/BruteForce"
    assert finding.subject == "alice"
    assert finding.band is Severity.HIGH
    assert finding.details["scope"] == "account"
    assert finding.details["failures"] == 10
    assert finding.evidence[-1] == "sample-198.51.100.9-9"
    assert len(finding.details["clients"]) == 10


def test_brute_force_per_client_over_many_accounts() -> None:
    detector = BruteForce(BruteForceSettings(per_account=10, per_client=20, window=300.0))
    stream = [login(IP, T0 + n, n, f"user{n % 4}", True) for n in range(20)]
    (finding,) = run(detector, stream)
    assert finding.subject == IP
    assert finding.details["scope"] == "client"
    assert finding.evidence == tuple(f"sample-{IP}-{n}" for n in range(10, 20))


def test_brute_force_just_below_both_thresholds_is_quiet() -> None:
    detector = BruteForce(BruteForceSettings(per_account=10, per_client=20, window=300.0))
    stream = [login(IP, T0 + n, n, "bob", True) for n in range(9)]
    stream += [login(IP, T0 + 10 + n, 9 + n, f"u{n}", True) for n in range(10)]
    assert run(detector, stream) == []


def test_brute_force_failures_spread_beyond_the_window_are_quiet() -> None:
    detector = BruteForce(BruteForceSettings(per_account=10, window=300.0))
    stream = [login(IP, T0 + 40 * n, n, "carol", True) for n in range(50)]  # 7-8 per window
    assert run(detector, stream) == []


def test_brute_force_ignores_successes_and_other_routes() -> None:
    detector = BruteForce(BruteForceSettings(per_account=2, per_client=2))
    stream = [login(IP, T0 + n, n, "dave", False) for n in range(10)]
    stream += [request(IP, T0 + 20 + n, 20 + n, "/x", status=401) for n in range(10)]
    assert run(detector, stream) == []
    assert detector.state_keys() == 0


def test_brute_force_zero_turns_a_scope_off() -> None:
    detector = BruteForce(BruteForceSettings(per_account=0, per_client=3))
    findings = run(detector, [login(IP, T0 + n, n, "erin", True) for n in range(3)])
    assert [f.subject for f in findings] == [IP]


def test_brute_force_once_per_window_per_key() -> None:
    detector = BruteForce(BruteForceSettings(per_account=5, per_client=0, window=60.0))
    findings = run(detector, [login(IP, T0 + n, n, "frank", True) for n in range(100)])
    assert len(findings) == 2  # at 4 s and again a window later


def test_brute_force_long_usernames_are_cut_for_the_key() -> None:
    detector = BruteForce(BruteForceSettings(per_account=3, per_client=0))
    stream = [login(IP, T0 + n, n, "x" * 1000 + str(n), True) for n in range(3)]
    (finding,) = run(detector, stream)
    assert finding.subject == "x" * 256


# -- credential stuffing -------------------------------------------------------------------------
def test_credential_stuffing_many_usernames_from_one_client() -> None:
    detector = CredentialStuffing(CredentialStuffingSettings(threshold=10, window=600.0))
    stream = [login(IP, T0 + n, n, f"victim{n}@example.com", True) for n in range(30)]
    (finding,) = run(detector, stream)
    assert finding.type == "CredentialAccess:HTTP/CredentialStuffing"
    assert finding.subject == IP
    assert finding.band is Severity.HIGH
    assert finding.details["distinct_usernames"] == 11
    assert finding.evidence[-1] == f"sample-{IP}-10"
    assert finding.details["usernames"][-1] == "victim10@example.com"


def test_credential_stuffing_just_below_is_quiet() -> None:
    detector = CredentialStuffing(CredentialStuffingSettings(threshold=10, window=600.0))
    stream = [login(IP, T0, n, f"victim{n}", True) for n in range(10)]
    assert run(detector, stream) == []


def test_credential_stuffing_one_user_retrying_is_not_stuffing() -> None:
    detector = CredentialStuffing(CredentialStuffingSettings(threshold=3))
    assert run(detector, [login(IP, T0 + n, n, "gina", True) for n in range(50)]) == []


def test_an_office_logging_many_users_in_successfully_is_quiet() -> None:
    detector = CredentialStuffing(CredentialStuffingSettings(threshold=10))
    stream = []
    for n in range(60):
        if n % 10 == 0:
            stream.append(login(IP, T0 + 10 * n, 2 * n, f"staff{n}", True))
        stream.append(login(IP, T0 + 10 * n + 1, 2 * n + 1, f"staff{n}", False))
    assert run(detector, stream) == []


def test_credential_stuffing_counts_successes_in_details() -> None:
    detector = CredentialStuffing(CredentialStuffingSettings(threshold=3))
    stream = [login(IP, T0, 0, "a", True), login(IP, T0 + 1, 1, "b", False)]
    stream += [login(IP, T0 + 2 + n, 2 + n, f"c{n}", True) for n in range(3)]
    (finding,) = run(detector, stream)
    assert finding.details["successes"] == 1
