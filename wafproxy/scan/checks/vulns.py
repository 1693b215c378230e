"""Known-vulnerable versions: banners and debug-page versions matched against the OSV database."""

from __future__ import annotations

from wafproxy.findings.model import Finding
from wafproxy.scan.banners import Product, products_of
from wafproxy.scan.osv import Advisory, AdvisoryDB, Affected
from wafproxy.scan.registry import check
from wafproxy.scan.target import ScanTarget

VULNERABILITY = "PACKAGE_VULNERABILITY"


@check("known_vulnerabilities")
async def known_vulnerabilities(target: ScanTarget) -> list[Finding]:
    """Known-vulnerable server and framework versions (offline OSV database).

    Looks for: product versions announced in Server / X-Powered-By headers (and in framework
    debug pages already fetched) that fall in an affected range of an advisory in the offline
    OSV database: the curated set shipped with wafproxy plus anything added with ``wafproxy scan
    update-db``. One PACKAGE_VULNERABILITY finding per advisory, with its id, the affected and
    fixed versions, and the advisory's CVSS score as severity.
    Why it matters: published vulnerabilities in the server stack are what automated attacks
    try first; several in the database are exploited in the wild.
    How to fix: upgrade to a fixed version (the finding lists them). Until then, for advisories
    with a known exploit pattern, the scan proposes a wafproxy rule (virtual patch).
    Banners can lie (backported fixes keep old version strings): confirm the installed version.
    """
    db = target.options.get("advisories")
    if not isinstance(db, AdvisoryDB):
        return []
    probes = [p for p in [await target.home()] if p is not None]
    probes += [p for p in target.cached_probes() if p not in probes]
    seen: set[tuple[str, str]] = set()
    found: list[Finding] = []
    for probe in probes:
        for product in products_of(probe):
            if product.version is None:
                continue
            for advisory, affected in db.match(product.name, product.version):
                if (advisory.id, affected.name) in seen:
                    continue
                seen.add((advisory.id, affected.name))
                found.append(_finding(target, product, advisory, affected, probe.evidence))
    return found


def _finding(
    target: ScanTarget, product: Product, advisory: Advisory, affected: Affected, evidence: str
) -> Finding:
    fixed = affected.fixed_versions()
    fix_text = (
        f"Upgrade {affected.name} to {' / '.join(fixed)} or later"
        if fixed
        else (f"No fixed version of {affected.name} is listed; follow the advisory")
    )
    where = "a debug page" if product.header == "body" else f"the {product.header} header"
    return target.finding(
        check="known_vulnerabilities",
        type=VULNERABILITY,
        subject=f"{advisory.id}:{affected.name}",
        title=f"{advisory.id}: {advisory.summary} ({affected.name} {product.version})",
        description=f"{where[0].upper()}{where[1:]} announces {product.name}/"
        f"{product.version}, which {advisory.id} affects. {advisory.details}",
        severity=max(1.0, advisory.score),
        remediation=f"{fix_text}."
        + (" A virtual patch is proposed meanwhile." if advisory.virtual_patch else ""),
        evidence=[evidence, f"{product.header}: {product.name}/{product.version}"],
        details={
            "vulnerability_id": advisory.id,
            "aliases": list(advisory.aliases),
            "package": affected.name,
            "ecosystem": affected.ecosystem,
            "installed_version": product.version,
            "fixed_versions": fixed,
            "severity_source": advisory.severity_source,
            "references": list(advisory.references),
            "virtual_patch": advisory.virtual_patch is not None,
        },
    )
