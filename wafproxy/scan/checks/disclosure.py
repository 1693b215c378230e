"""Information disclosure: version banners, stack traces and debug pages, directory listings."""

from __future__ import annotations

from wafproxy.findings.model import Finding
from wafproxy.scan.banners import products_of
from wafproxy.scan.client import Probe
from wafproxy.scan.registry import check
from wafproxy.scan.target import ScanTarget

DISCLOSURE = "INFORMATION_DISCLOSURE"

MALFORMED_PROBES = (
    "/?id=%27%22%3C%3E%00",  # quotes, angle brackets and a NUL in a parameter
    "/?page=-1&id[]=x&id=%ff%fe",  # negative number, array syntax, invalid UTF-8
    "/%ff%fe%fd",  # a path that is not UTF-8
    "/index.php?id=1%27",  # the classic unbalanced quote
)
# (marker, what it means, severity); all are matched as plain substrings of the body
DEBUG_SIGNATURES = (
    ("Werkzeug Debugger", "the Werkzeug interactive debugger (a Python console)", 9.0),
    ("You're seeing this error because you have <code>DEBUG = True</code>",
     "Django's debug page (settings, SQL, environment)", 6.5),
    ("Whoops! There was an error.", "Laravel/Whoops debug page", 6.5),
    ("Traceback (most recent call last)", "a Python stack trace", 5.0),
    ("<b>Fatal error</b>:", "a PHP fatal error with file paths", 5.0),
    ("Stack trace:\n#0 ", "a PHP stack trace", 5.0),
    ("Exception in thread \"", "a Java stack trace", 5.0),
    ("\tat java.", "a Java stack trace", 5.0),
    ("at org.springframework.", "a Spring stack trace", 5.0),
    ("Server Error in '/' Application", "an ASP.NET error page with a stack trace", 5.0),
    ("ActionController::RoutingError", "a Rails debug page", 5.0),
    ("    at Object.<anonymous> (", "a Node.js stack trace", 5.0),
    ("    at Layer.handle [as handle_request]", "an Express stack trace", 5.0),
)  # fmt: skip
LISTING_SIGNATURES = (
    "<title>Index of /",
    "<h1>Index of /",
    "<title>Directory listing for /",
    "[To Parent Directory]",
    "<title>Directory: /",
)
LISTING_DIRS = ("/", "/static/", "/uploads/", "/files/", "/images/", "/assets/", "/backup/")


@check("version_banners")
async def version_banners(target: ScanTarget) -> list[Finding]:
    """Server and framework version banners.

    Looks for: product tokens with a version in Server, X-Powered-By, X-AspNet-Version and
    similar response headers of the home page (``Server: Apache/2.4.49 (Unix)``); a banner
    without a version is reported as informational.
    Why it matters: an exact version tells an attacker which published exploits to try, and
    saves them the noisy probing that would otherwise give them away.
    How to fix: hide versions (nginx ``server_tokens off``, Apache ``ServerTokens Prod`` and
    ``ServerSignature Off``, PHP ``expose_php = Off``, Express ``app.disable('x-powered-by')``)
    or let wafproxy strip the headers with the route option ``response_headers: {remove:
    [Server, X-Powered-By]}``.
    """
    probe = await target.home()
    if probe is None:
        return []
    found: list[Finding] = []
    by_header: dict[str, list[str]] = {}
    versioned: dict[str, bool] = {}
    for product in products_of(probe):
        if product.header == "body":
            continue
        text = product.name + (f"/{product.version}" if product.version else "")
        by_header.setdefault(product.header, []).append(text)
        versioned[product.header] = versioned.get(product.header, False) or bool(product.version)
    for header, texts in by_header.items():
        has_version = versioned[header]
        found.append(
            target.finding(
                check="version_banners",
                type=DISCLOSURE,
                subject=f"banner:{header.lower()}",
                title=f"{header} header discloses "
                + ("software versions" if has_version else "the software in use"),
                description=f"{probe.url} answers with {header}: {probe.header(header)}.",
                severity=2.5 if has_version else 1.5,
                remediation=f"Hide the {header} header's product and version in the server's "
                "configuration, or strip it with the route option response_headers: "
                f"{{remove: [{header}]}}.",
                evidence=[probe.evidence, f"{header}: {probe.header(header)}"],
                details={"header": header, "products": texts},
            )
        )
    return found


@check("error_pages")
async def error_pages(target: ScanTarget) -> list[Finding]:
    """Stack traces and debug pages on malformed input.

    Looks for: framework debug pages (Werkzeug debugger, Django DEBUG page, Whoops) and stack
    traces (Python, PHP, Java, .NET, Ruby, Node.js) in the answers to a few malformed GET
    requests: unbalanced quotes, NUL bytes, invalid UTF-8, unexpected array parameters.
    Why it matters: a stack trace shows file paths, library versions, queries and sometimes
    secrets; a debugger console (Werkzeug) is remote code execution for anyone who reaches it.
    How to fix: turn debug mode off in production (Flask ``debug=False``, Django ``DEBUG =
    False``, PHP ``display_errors = Off``), install a generic error handler that logs the
    details server-side and answers a plain 400/500 page.
    """
    for path in MALFORMED_PROBES:
        probe = await target.fetch(path)
        if probe is None:
            continue
        hit = _debug_signature(probe)
        if hit is None:
            continue
        marker, meaning, severity = hit
        return [
            target.finding(
                check="error_pages",
                type=DISCLOSURE,
                subject="debug-page",
                title=f"Malformed input shows {meaning}",
                description=f"GET {probe.url} answered {probe.status} with {meaning}.",
                severity=severity,
                remediation="Turn debug mode off in production and answer errors with a "
                "generic page; log the details server-side.",
                evidence=[probe.evidence, f"body contains {marker!r}"],
                details={"signature": marker, "status": probe.status},
            )
        ]
    return []


def _debug_signature(probe: Probe) -> tuple[str, str, float] | None:
    text = probe.text
    return next((sig for sig in DEBUG_SIGNATURES if sig[0] in text), None)


@check("directory_listing")
async def directory_listing(target: ScanTarget) -> list[Finding]:
    """Directory listings.

    Looks for: auto-generated index pages ("Index of /…", "Directory listing for /…", IIS's
    "[To Parent Directory]") at the base path and a few usual directories (/static/,
    /uploads/, /files/, /images/, /assets/, /backup/).
    Why it matters: a listing hands out every file name in the directory, including backups,
    uploads of other users and files nobody meant to publish.
    How to fix: disable automatic indexes (nginx ``autoindex off``, Apache ``Options
    -Indexes``, aiohttp ``add_static(show_index=False)``) and serve an index page or 403.
    """
    found: list[Finding] = []
    for directory in LISTING_DIRS:
        probe = await target.get(directory)
        if probe is None or probe.status != 200:
            continue
        marker = next((m for m in LISTING_SIGNATURES if m in probe.text), None)
        if marker is None:
            continue
        path = target.path_of(directory)
        found.append(
            target.finding(
                check="directory_listing",
                type=DISCLOSURE,
                subject=f"listing:{path}",
                title=f"Directory listing at {path}",
                description=f"{probe.url} answers with an automatic directory index.",
                severity=5.0,
                remediation="Disable automatic directory indexes in the server or framework.",
                evidence=[probe.evidence, f"body contains {marker!r}"],
                details={"path": path},
            )
        )
    return found
