"""Security-header grading in the spirit of the Mozilla HTTP Observatory.

Every site starts at 100; each test adds a modifier (penalties, and bonuses that only count
when the score without them is 90 or more); the score never goes below 0 and maps to a letter
on the Observatory's chart. The tests and modifiers follow the Observatory's published scoring
for the headers a single response shows (CSP, cookies, HSTS, Referrer-Policy,
X-Content-Type-Options, frame protection); the redirection, SRI and CORS-file tests need more
than one response and are left to the other checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from wafproxy.scan.client import Probe

GRADES = (
    (100, "A+"), (90, "A"), (85, "A-"), (80, "B+"), (70, "B"), (65, "B-"), (60, "C+"),
    (50, "C"), (45, "C-"), (40, "D+"), (30, "D"), (25, "D-"), (0, "F"),
)  # fmt: skip
SIX_MONTHS = 15_768_000
PRIVATE_REFERRER = frozenset(
    {"no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin"}
)
UNSAFE_REFERRER = frozenset({"unsafe-url", "no-referrer-when-downgrade"})
ALL_REFERRER = PRIVATE_REFERRER | UNSAFE_REFERRER | {"origin", "origin-when-cross-origin"}
SESSION_WORDS = ("sess", "sid", "auth", "token", "jwt", "login", "remember", "user")


@dataclass(frozen=True)
class Modifier:
    test: str
    result: str
    points: int
    text: str


@dataclass(frozen=True)
class Grade:
    score: int
    letter: str
    modifiers: tuple[Modifier, ...]


@dataclass(frozen=True)
class Cookie:
    name: str
    attributes: frozenset[str]
    """Flag names, lower case (``secure``, ``httponly``)."""
    samesite: str | None
    raw: str

    @property
    def secure(self) -> bool:
        return "secure" in self.attributes

    @property
    def httponly(self) -> bool:
        return "httponly" in self.attributes

    @property
    def session_like(self) -> bool:
        low = self.name.lower()
        return any(word in low for word in SESSION_WORDS)


def parse_set_cookie(value: str) -> Cookie | None:
    first, *attrs = value.split(";")
    name, sep, _ = first.partition("=")
    if not sep or not name.strip():
        return None
    flags: set[str] = set()
    samesite = None
    for attr in attrs:
        key, _, val = attr.strip().partition("=")
        key = key.strip().lower()
        flags.add(key)
        if key == "samesite":
            samesite = val.strip().lower() or None
    return Cookie(name.strip(), frozenset(flags), samesite, value)


def cookies_of(probe: Probe) -> list[Cookie]:
    parsed = (parse_set_cookie(v) for v in probe.header_all("Set-Cookie"))
    return [c for c in parsed if c is not None]


def directives(policy: str) -> dict[str, list[str]]:
    """A CSP as {directive: [sources]} (the first occurrence of a directive wins)."""
    out: dict[str, list[str]] = {}
    for part in policy.split(";"):
        words = part.strip().split()
        if words and words[0].lower() not in out:
            out[words[0].lower()] = [w.lower() for w in words[1:]]
    return out


def csp_modifier(probe: Probe) -> Modifier:
    policy = probe.header("Content-Security-Policy")
    if not policy:
        return Modifier("csp", "csp-not-implemented", -25, "Content Security Policy not set")
    csp = directives(policy)
    scripts = csp.get("script-src", csp.get("default-src", []))
    guarded = any(s.startswith(("'nonce-", "'sha256-", "'sha384-", "'sha512-")) for s in scripts)
    if "'unsafe-inline'" in scripts and not guarded:
        return Modifier("csp", "csp-unsafe-inline", -20, "CSP allows 'unsafe-inline' scripts")
    if "'unsafe-eval'" in scripts:
        return Modifier("csp", "csp-unsafe-eval", -10, "CSP allows 'unsafe-eval'")
    if csp.get("default-src") == ["'none'"]:
        return Modifier("csp", "csp-default-src-none", 10, "CSP with default-src 'none'")
    return Modifier("csp", "csp-implemented", 5, "CSP set without unsafe sources")


def hsts_modifier(probe: Probe, https: bool) -> Modifier:
    value = probe.header("Strict-Transport-Security")
    if not https:
        return Modifier("hsts", "hsts-no-https", -5, "not served over HTTPS: HSTS cannot apply")
    if not value:
        return Modifier("hsts", "hsts-not-implemented", -20, "HSTS not set")
    max_age = hsts_max_age(value)
    if max_age is None:
        return Modifier("hsts", "hsts-invalid", -20, "HSTS header cannot be parsed")
    if max_age < SIX_MONTHS:
        return Modifier("hsts", "hsts-max-age-too-low", -10, "HSTS max-age under six months")
    return Modifier("hsts", "hsts-implemented", 0, "HSTS set for six months or more")


def hsts_max_age(value: str) -> int | None:
    for part in value.split(";"):
        key, _, val = part.strip().partition("=")
        if key.strip().lower() == "max-age":
            digits = val.strip().strip('"')
            return int(digits) if digits.isdigit() else None
    return None


def referrer_modifier(probe: Probe) -> Modifier:
    value = probe.header("Referrer-Policy")
    if not value:
        return Modifier("referrer", "referrer-policy-not-implemented", 0, "Referrer-Policy not set")
    # several comma-separated policies: the last one the browser knows applies
    tokens = [t.strip().lower() for t in value.split(",") if t.strip()]
    known = [t for t in tokens if t in ALL_REFERRER]
    if not known:
        return Modifier("referrer", "referrer-policy-invalid", -5, "Referrer-Policy invalid")
    if known[-1] in UNSAFE_REFERRER:
        return Modifier("referrer", "referrer-policy-unsafe", -5, f"Referrer-Policy {known[-1]}")
    if known[-1] in PRIVATE_REFERRER:
        return Modifier("referrer", "referrer-policy-private", 5, f"Referrer-Policy {known[-1]}")
    return Modifier("referrer", "referrer-policy-other", 0, f"Referrer-Policy {known[-1]}")


def nosniff_modifier(probe: Probe) -> Modifier:
    value = probe.header("X-Content-Type-Options")
    if value is None:
        return Modifier("nosniff", "x-content-type-options-not-implemented", -5, "not set")
    if value.strip().lower() != "nosniff":
        return Modifier("nosniff", "x-content-type-options-invalid", -5, "not 'nosniff'")
    return Modifier("nosniff", "x-content-type-options-nosniff", 0, "nosniff")


def frame_modifier(probe: Probe) -> Modifier:
    csp = directives(probe.header("Content-Security-Policy") or "")
    if "frame-ancestors" in csp:
        return Modifier("frame", "frame-ancestors-implemented", 5, "CSP frame-ancestors set")
    value = probe.header("X-Frame-Options")
    if value is None:
        return Modifier("frame", "x-frame-options-not-implemented", -20, "no frame protection")
    if value.strip().lower() not in ("deny", "sameorigin"):
        return Modifier("frame", "x-frame-options-invalid", -20, f"X-Frame-Options {value!r}")
    return Modifier("frame", "x-frame-options-implemented", 0, "X-Frame-Options set")


def cookie_modifier(cookies: Sequence[Cookie], https: bool) -> Modifier:
    if not cookies:
        return Modifier("cookies", "cookies-not-found", 0, "no cookies set")
    if any(c.session_like and not c.httponly for c in cookies):
        return Modifier("cookies", "cookies-session-without-httponly", -30,
                        "session cookie readable by scripts")  # fmt: skip
    if any(not c.secure for c in cookies):
        return Modifier("cookies", "cookies-without-secure-flag", -20, "cookie without Secure")
    if all(c.samesite in ("strict", "lax") for c in cookies):
        return Modifier("cookies", "cookies-secure-with-httponly-sessions-and-samesite", 5,
                        "cookies Secure, sessions HttpOnly, SameSite set")  # fmt: skip
    return Modifier("cookies", "cookies-secure-with-httponly-sessions", 0, "cookies Secure")


def grade(probe: Probe, https: bool) -> Grade:
    modifiers = (
        csp_modifier(probe),
        cookie_modifier(cookies_of(probe), https),
        hsts_modifier(probe, https),
        referrer_modifier(probe),
        nosniff_modifier(probe),
        frame_modifier(probe),
    )
    score = 100 + sum(m.points for m in modifiers if m.points < 0)
    if score >= 90:
        score += sum(m.points for m in modifiers if m.points > 0)
    score = max(0, score)
    return Grade(score, letter(score), modifiers)


def letter(score: int) -> str:
    return next(grade for floor, grade in GRADES if score >= floor)
