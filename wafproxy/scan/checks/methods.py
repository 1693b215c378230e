"""Dangerous HTTP methods: TRACE answered, PUT/DELETE advertised without authentication."""

from __future__ import annotations

from wafproxy.findings.model import Finding
from wafproxy.scan.registry import check
from wafproxy.scan.target import ScanTarget

METHODS = "DANGEROUS_HTTP_METHOD"
WRITE_METHODS = ("PUT", "DELETE", "PATCH")


@check("http_methods")
async def http_methods(target: ScanTarget) -> list[Finding]:
    """TRACE enabled, and PUT/DELETE/PATCH advertised without authentication.

    Looks for: a TRACE request to the base path answered 200 with the request echoed back
    (TRACE is one of RFC 9110's safe methods; nothing else is sent), and an OPTIONS answer whose
    Allow (or Access-Control-Allow-Methods) header lists PUT, DELETE or PATCH without asking for
    credentials (no 401/403). PUT and DELETE themselves are never sent.
    Why it matters: TRACE echoes request headers, including cookies and Authorization, which
    cross-site tracing and some proxies' bugs turn into credential theft; write methods open to
    anyone let anyone change or delete content.
    How to fix: disable TRACE in the web server (``TraceEnable Off`` in Apache; nginx and most
    frameworks answer 405 by default) or block it at the WAF; require authentication on every
    write method, and advertise only the methods a resource supports.
    """
    found: list[Finding] = []
    marker = f"wafproxy-scan-{target.token}"
    trace = await target.fetch("/", method="TRACE", headers=[("X-Wafproxy-Scan", marker)])
    if trace is not None and trace.status == 200 and marker in trace.text:
        found.append(
            target.finding(
                check="http_methods",
                type=METHODS,
                subject="method:TRACE",
                title="HTTP TRACE method enabled",
                description=f"{trace.url} answers TRACE with 200 and echoes the request back, "
                "headers included (cross-site tracing).",
                severity=5.0,
                remediation="Disable TRACE in the server (Apache: TraceEnable Off) or block it "
                "with the proposed wafproxy rule.",
                evidence=[trace.evidence, f"echoed header X-Wafproxy-Scan: {marker}"],
                details={"method": "TRACE"},
            )
        )
    options = await target.fetch("/", method="OPTIONS")
    if options is None or options.status in (401, 403):
        return found
    allow = options.header("Allow")
    advertised = _advertised(allow, options.header("Access-Control-Allow-Methods"))
    risky = [m for m in WRITE_METHODS if m in advertised]
    if risky:
        found.append(
            target.finding(
                check="http_methods",
                type=METHODS,
                subject="method:" + ",".join(risky),
                title=f"{'/'.join(risky)} advertised without authentication",
                description=f"OPTIONS {options.url} (answered {options.status} without asking "
                f"for credentials) advertises {', '.join(risky)}.",
                severity=5.0,
                remediation="Require authentication for write methods and list in Allow only "
                "what the resource supports; block the methods at the WAF if the app has no "
                "legitimate use for them.",
                evidence=[options.evidence, f"Allow: {options.header('Allow') or ''}"],
                details={"methods": risky},
            )
        )
    return found


def _advertised(*headers: str | None) -> set[str]:
    return {m.strip().upper() for h in headers if h for m in h.split(",") if m.strip()}
