"""HTTP security headers, cookie flags and CORS: what the home page's response says."""

from __future__ import annotations

from wafproxy.findings.model import Finding
from wafproxy.scan.checks.grading import (
    Cookie,
    Grade,
    Modifier,
    cookies_of,
    directives,
    grade,
    hsts_max_age,
)
from wafproxy.scan.client import Probe
from wafproxy.scan.registry import check
from wafproxy.scan.target import ScanTarget

HEADERS = "SECURITY_HEADERS"
COOKIES = "INSECURE_COOKIE"
CORS = "CORS_MISCONFIGURATION"
MDN = "https://developer.mozilla.org/en-US/docs/Web/HTTP/Headers/"


@check("security_headers")
async def security_headers(target: ScanTarget) -> list[Finding]:
    """HTTP security headers, graded like the Mozilla HTTP Observatory.

    Looks for: Strict-Transport-Security, Content-Security-Policy, X-Content-Type-Options,
    frame protection (CSP frame-ancestors or X-Frame-Options), Referrer-Policy and
    Permissions-Policy on the home page; computes an Observatory-style score (100 plus
    modifiers) and letter grade, reported as an informational finding.
    Why it matters: these headers switch on browser defences against cross-site scripting,
    clickjacking, MIME sniffing, protocol downgrade and referrer leaks; without them one bug in
    the app is enough.
    How to fix: send the headers from the app or its web server, or let wafproxy add them with
    the route option ``response_headers: {add: {...}}`` (the scan report proposes the values).
    """
    probe = await target.home()
    if probe is None:
        return []
    https = target.endpoint.scheme == "https"
    result = grade(probe, https)
    found = [_grade_finding(target, probe, result)]
    for modifier in result.modifiers:
        issue = _header_issue(modifier, probe, https)
        if issue is not None:
            subject, title, severity, fix = issue
            found.append(
                target.finding(
                    check="security_headers",
                    type=HEADERS,
                    subject=subject,
                    title=title,
                    description=f"{title} on {probe.url} ({modifier.text}; Observatory "
                    f"modifier {modifier.points:+d}).",
                    severity=severity,
                    remediation=fix,
                    evidence=[probe.evidence],
                    details={
                        "test": modifier.test,
                        "result": modifier.result,
                        "modifier": modifier.points,
                    },
                )
            )
    if probe.header("Permissions-Policy") is None:
        found.append(_permissions_policy(target, probe))
    return found


def _grade_finding(target: ScanTarget, probe: Probe, result: Grade) -> Finding:
    lines = [f"{m.points:+d} {m.result}: {m.text}" for m in result.modifiers]
    return target.finding(
        check="security_headers",
        type=HEADERS,
        subject="grade",
        title=f"Security headers grade {result.letter} ({result.score}/100)",
        description="Observatory-style score of the home page's security headers: "
        + "; ".join(lines),
        severity=1.0,
        remediation="Fix the header findings listed with this one; each names its modifier.",
        evidence=[probe.evidence],
        details={
            "score": result.score,
            "grade": result.letter,
            "modifiers": [m.__dict__ for m in result.modifiers],
        },
    )


def _header_issue(m: Modifier, probe: Probe, https: bool) -> tuple[str, str, float, str] | None:
    """(subject, title, severity, remediation) for a failed test, None for a passed one."""
    issues: dict[str, tuple[str, str, float, str]] = {
        "csp-not-implemented": ("header:content-security-policy",
            "Content-Security-Policy header missing", 5.0,
            "Send a Content-Security-Policy, starting from \"default-src 'self'; object-src "
            "'none'; base-uri 'self'; frame-ancestors 'self'\" and widening only what the app "
            f"needs. {MDN}Content-Security-Policy"),
        "csp-unsafe-inline": ("header:content-security-policy",
            "Content-Security-Policy allows inline scripts", 3.5,
            "Replace 'unsafe-inline' with nonces or hashes for the scripts the app needs."),
        "csp-unsafe-eval": ("header:content-security-policy",
            "Content-Security-Policy allows eval", 3.0,
            "Remove 'unsafe-eval' from script-src; refactor code that needs eval()."),
        "hsts-not-implemented": ("header:strict-transport-security",
            "Strict-Transport-Security header missing", 5.0,
            "Send \"Strict-Transport-Security: max-age=63072000; includeSubDomains\" on every "
            "HTTPS response."),
        "hsts-invalid": ("header:strict-transport-security",
            "Strict-Transport-Security header invalid", 5.0,
            "Send \"Strict-Transport-Security: max-age=63072000; includeSubDomains\"."),
        "hsts-max-age-too-low": ("header:strict-transport-security",
            "Strict-Transport-Security max-age under six months", 3.0,
            "Raise max-age to at least 15768000 seconds (six months); two years is usual."),
        "hsts-no-https": ("header:strict-transport-security",
            "Served over plain HTTP: Strict-Transport-Security cannot apply", 1.5,
            "Serve the app over HTTPS at the edge (a TLS listener or a TLS-terminating load "
            "balancer) and send Strict-Transport-Security there."),
        "x-content-type-options-not-implemented": ("header:x-content-type-options",
            "X-Content-Type-Options header missing", 3.0,
            "Send \"X-Content-Type-Options: nosniff\" on every response."),
        "x-content-type-options-invalid": ("header:x-content-type-options",
            "X-Content-Type-Options header invalid", 3.0,
            "Send exactly \"X-Content-Type-Options: nosniff\"."),
        "x-frame-options-not-implemented": ("header:frame-protection",
            "No clickjacking protection (frame-ancestors / X-Frame-Options)", 4.5,
            "Send \"Content-Security-Policy: frame-ancestors 'self'\" (or 'none'), and "
            "\"X-Frame-Options: SAMEORIGIN\" for old browsers."),
        "x-frame-options-invalid": ("header:frame-protection",
            "X-Frame-Options header invalid", 4.5,
            "Use X-Frame-Options DENY or SAMEORIGIN (ALLOW-FROM is ignored by browsers), or "
            "CSP frame-ancestors."),
        "referrer-policy-not-implemented": ("header:referrer-policy",
            "Referrer-Policy header missing", 2.5,
            "Send \"Referrer-Policy: strict-origin-when-cross-origin\" (or stricter)."),
        "referrer-policy-unsafe": ("header:referrer-policy",
            "Referrer-Policy leaks full URLs", 3.0,
            "Use strict-origin-when-cross-origin, same-origin or no-referrer."),
        "referrer-policy-invalid": ("header:referrer-policy",
            "Referrer-Policy header invalid", 2.5,
            "Use strict-origin-when-cross-origin, same-origin or no-referrer."),
    }  # fmt: skip
    return issues.get(m.result)


def _permissions_policy(target: ScanTarget, probe: Probe) -> Finding:
    return target.finding(
        check="security_headers",
        type=HEADERS,
        subject="header:permissions-policy",
        title="Permissions-Policy header missing",
        description=f"{probe.url} does not restrict powerful browser features "
        "(camera, microphone, geolocation, …) with Permissions-Policy.",
        severity=1.5,
        remediation='Send "Permissions-Policy: camera=(), microphone=(), geolocation=()" and '
        "allow only the features the app uses.",
        evidence=[probe.evidence],
    )


# -- cookies ---------------------------------------------------------------------------------------
@check("cookie_flags")
async def cookie_flags(target: ScanTarget) -> list[Finding]:
    """Secure, HttpOnly and SameSite on the cookies the app sets.

    Looks for: Set-Cookie headers on the home page without Secure, without HttpOnly (for
    cookies whose name says session, token, auth, …), without SameSite, or with SameSite=None
    but no Secure (which browsers reject).
    Why it matters: a cookie without Secure travels in clear text over any HTTP request; a
    session cookie readable by scripts turns one XSS into account takeover; SameSite is the
    browser's built-in defence against cross-site request forgery.
    How to fix: set ``Secure; HttpOnly; SameSite=Lax`` (or Strict) in the framework's session
    and cookie settings (e.g. SESSION_COOKIE_SECURE / SESSION_COOKIE_HTTPONLY in Django,
    ``cookie: {secure: true, httpOnly: true, sameSite: 'lax'}`` in Express).
    """
    probe = await target.home()
    if probe is None:
        return []
    return [f for c in cookies_of(probe) if (f := _cookie_finding(target, probe, c)) is not None]


def _cookie_finding(target: ScanTarget, probe: Probe, cookie: Cookie) -> Finding | None:
    problems: list[tuple[str, float]] = []
    session = cookie.session_like
    if not cookie.secure:
        problems.append(("no Secure flag", 5.0 if session else 3.0))
    if not cookie.httponly:
        problems.append(("no HttpOnly flag", 5.5 if session else 2.0))
    if cookie.samesite is None:
        problems.append(("no SameSite attribute", 3.0 if session else 1.5))
    elif cookie.samesite == "none" and not cookie.secure:
        problems.append(("SameSite=None without Secure", 4.0))
    if not problems:
        return None
    what = ", ".join(p for p, _ in problems)
    kind = "Session cookie" if session else "Cookie"
    return target.finding(
        check="cookie_flags",
        type=COOKIES,
        subject=f"cookie:{cookie.name}",
        title=f"{kind} {cookie.name!r} set without protective flags",
        description=f"{probe.url} sets cookie {cookie.name!r} with {what}.",
        severity=max(s for _, s in problems),
        remediation=f"Set the cookie as `{cookie.name}=…; Path=/; Secure; HttpOnly; "
        "SameSite=Lax` in the app's session/cookie configuration.",
        evidence=[probe.evidence, "Set-Cookie: " + _redacted(cookie)],
        details={"cookie": cookie.name, "problems": [p for p, _ in problems]},
    )


def _redacted(cookie: Cookie) -> str:
    """The Set-Cookie header with the value hidden: a report must not carry a live session."""
    _, _, attributes = cookie.raw.partition(";")
    return f"{cookie.name}=<redacted>" + (f";{attributes}" if attributes else "")


# -- CORS ------------------------------------------------------------------------------------------
@check("cors")
async def cors(target: ScanTarget) -> list[Finding]:
    """Cross-origin resource sharing that trusts any origin.

    Looks for: an Access-Control-Allow-Origin that reflects an arbitrary Origin (a random
    ``https://….invalid``) or the ``null`` origin, especially together with
    Access-Control-Allow-Credentials: true.
    Why it matters: reflecting any origin with credentials lets every web page a logged-in user
    visits read the app's authenticated responses (their data, CSRF tokens); ``null`` is sent by
    sandboxed iframes and local files an attacker controls.
    How to fix: answer CORS only for an explicit allow-list of trusted origins, never echo the
    request's Origin unchecked, never allow ``null``, and send credentials only to origins on
    the list.
    """
    found: list[Finding] = []
    evil = f"https://wafproxy-scan-{target.token}.invalid"
    for origin, label in ((evil, "arbitrary"), ("null", "null")):
        probe = await target.fetch("/", headers=[("Origin", origin)])
        if probe is None:
            continue
        allowed = (probe.header("Access-Control-Allow-Origin") or "").strip()
        credentials = (probe.header("Access-Control-Allow-Credentials") or "").lower() == "true"
        if allowed != origin:
            continue
        severity = (7.5 if label == "arbitrary" else 7.0) if credentials else 4.0
        extra = " with credentials" if credentials else ""
        found.append(
            target.finding(
                check="cors",
                type=CORS,
                subject=f"cors:{label}-origin",
                title=f"CORS trusts {'any' if label == 'arbitrary' else 'the null'} origin{extra}",
                description=f"{probe.url} answered Origin: {origin} with "
                f"Access-Control-Allow-Origin: {allowed}{extra}.",
                severity=severity,
                remediation="Check Origin against an explicit allow-list before echoing it; "
                "never allow 'null'; send Access-Control-Allow-Credentials only to trusted "
                "origins.",
                evidence=[probe.evidence, f"Access-Control-Allow-Origin: {allowed}"],
                details={"origin": origin, "credentials": credentials},
            )
        )
    return found


__all__ = ["cookie_flags", "cors", "directives", "hsts_max_age", "security_headers"]
