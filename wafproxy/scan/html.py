"""The HTML report: one self-contained page (inline CSS, no scripts, no external requests)
that a person can read top-down: summary by severity, the header grade of each scanned
resource, then every finding with its evidence and fix, and the proposed mitigations."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

import yaml

from wafproxy import __version__
from wafproxy.findings.model import Finding, Severity, iso_time
from wafproxy.scan.patches import HeaderHardening, ProposedRule
from wafproxy.scan.report import Report
from wafproxy.scan.runner import ScanResult

COLORS = {
    Severity.CRITICAL: "#7b1fa2",
    Severity.HIGH: "#c62828",
    Severity.MEDIUM: "#ef6c00",
    Severity.LOW: "#f9a825",
    Severity.INFORMATIONAL: "#607d8b",
}
GRADE_COLORS = {"A": "#2e7d32", "B": "#689f38", "C": "#f9a825", "D": "#ef6c00", "F": "#c62828"}
CSS = """
*{box-sizing:border-box}body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,
"DejaVu Sans",sans-serif;margin:0;background:#f4f5f7;color:#1f2933}
header{background:#102a43;color:#fff;padding:20px 32px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#bcccdc;font-size:13px}main{max-width:1100px;margin:0 auto;
padding:20px 32px}.cards{display:flex;gap:12px;flex-wrap:wrap;margin-bottom:18px}
.card{flex:1;min-width:120px;background:#fff;border-radius:8px;padding:12px 16px;
border-top:5px solid var(--c);box-shadow:0 1px 2px rgba(0,0,0,.08)}
.card b{display:block;font-size:28px}.card span{text-transform:capitalize;color:#52606d}
h2{font-size:18px;margin:26px 0 10px}table{border-collapse:collapse;width:100%;background:#fff;
border-radius:8px;overflow:hidden;box-shadow:0 1px 2px rgba(0,0,0,.08)}
td,th{padding:8px 12px;text-align:left;border-bottom:1px solid #e4e7eb;font-size:14px;
vertical-align:top}th{background:#f0f4f8}.grade{display:inline-block;min-width:38px;
text-align:center;color:#fff;border-radius:6px;padding:2px 8px;font-weight:700}
.finding{background:#fff;border-radius:8px;margin:10px 0;padding:12px 16px;
border-left:6px solid var(--c);box-shadow:0 1px 2px rgba(0,0,0,.08)}
.finding h3{margin:0 0 4px;font-size:16px}.badge{display:inline-block;color:#fff;
background:var(--c);border-radius:4px;padding:1px 7px;font-size:12px;font-weight:600;
text-transform:uppercase;margin-right:6px}.tag{display:inline-block;background:#e4e7eb;
border-radius:4px;padding:1px 7px;font-size:12px;margin-right:6px}.ok{background:#c8e6c9}
.meta{color:#52606d;font-size:13px}pre{background:#f0f4f8;border-radius:6px;padding:8px 10px;
overflow-x:auto;font-size:12.5px;margin:6px 0;white-space:pre-wrap;word-break:break-all}
.fix{background:#e3f2fd;border-radius:6px;padding:8px 10px;margin-top:8px}
footer{color:#7b8794;font-size:12px;text-align:center;padding:24px}
"""


def render_html(
    report: Report,
    rules: tuple[ProposedRule, ...] = (),
    hardening: Mapping[str, HeaderHardening] | None = None,
) -> str:
    findings = report.findings
    patched = {rule.finding.id: rule for rule in rules}
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        '<meta name=viewport content="width=device-width,initial-scale=1">',
        "<title>wafproxy scan report</title><style>",
        CSS,
        "</style></head><body><header><h1>wafproxy security assessment</h1>",
        f"<p>{len(report.results)} resource(s) scanned · {len(findings)} finding(s) · "
        f"generated {escape(iso_time(report.generated))} by wafproxy {escape(__version__)}</p>",
        "</header><main>",
        _summary(report),
        _scans(report.results),
        "<h2>Findings</h2>",
        *(_finding(f, patched.get(f.id)) for f in findings),
        "" if findings else "<p>No findings.</p>",
        _proposals(rules, hardening or {}),
        "</main><footer>Severity: informational 1.0&ndash;1.9 · low 2.0&ndash;3.9 · medium "
        "4.0&ndash;6.9 · high 7.0&ndash;8.9 · critical 9.0&ndash;10.0</footer></body></html>",
    ]
    return "\n".join(parts) + "\n"


def _summary(report: Report) -> str:
    cards = [
        f'<div class=card style="--c:{COLORS[Severity(name)]}"><b>{count}</b>'
        f"<span>{escape(name)}</span></div>"
        for name, count in report.counts().items()
    ]
    return "<div class=cards>" + "".join(cards) + "</div>"


def _scans(results: tuple[ScanResult, ...]) -> str:
    rows = []
    for result in results:
        grade = result.grade or {}
        letter = str(grade.get("grade", "-"))
        color = GRADE_COLORS.get(letter[:1], "#9aa5b1")
        via = result.plan.proxy.base_url if result.plan.proxy else "-"
        budget = f"{result.requests}/{result.budget}" + (
            " (exhausted)" if result.budget_exhausted else ""
        )
        errors = "; ".join(f"{k}: {v}" for k, v in sorted(result.errors.items())) or "none"
        rows.append(
            f"<tr><td>{escape(result.plan.resource)}</td><td>{escape(via)}</td>"
            f'<td><span class=grade style="background:{color}">{escape(letter)}</span> '
            f"{escape(str(grade.get('score', '')))}</td><td>{escape(budget)}</td>"
            f"<td>{len(result.findings)}</td><td>{escape(errors)}</td></tr>"
        )
    return (
        "<h2>Scanned</h2><table><tr><th>Resource</th><th>Through proxy</th>"
        "<th>Headers grade</th><th>Requests</th><th>Findings</th><th>Check errors</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _finding(f: Finding, rule: ProposedRule | None) -> str:
    color = COLORS[f.band]
    tags = [
        f"<span class=tag>{escape(f.type)}</span>",
        f"<span class=tag>{escape(f.status.value)}</span>",
    ]
    if f.details.get("mitigated_by_proxy"):
        tags.append("<span class='tag ok'>mitigated by the proxy</span>")
    if rule is not None:
        tags.append("<span class='tag ok'>virtual patch proposed</span>")
    evidence = "".join(f"<pre>{escape(e)}</pre>" for e in f.evidence)
    patch = ""
    if rule is not None:
        snippet = yaml.safe_dump(
            dict(rule.statement), sort_keys=False, default_flow_style=None, width=110
        )
        patch = (
            f"<p class=meta>Proposed rule <code>{escape(rule.name)}</code> "
            f"({escape(rule.why)}):</p><pre>{escape(snippet)}</pre>"
        )
    return (
        f'<section class=finding style="--c:{color}">'
        f"<h3><span class=badge>{escape(f.band.value)} {f.severity:.1f}</span>"
        f"{escape(f.title)}</h3>"
        f"<div class=meta>{''.join(tags)} {escape(f.resource)} · {escape(f.subject)} · "
        f"seen {f.count}&times; · first {escape(iso_time(f.first_seen))} · "
        f"id {escape(f.id[:12])}</div>"
        f"<p>{escape(f.description)}</p>{evidence}"
        f"<div class=fix><b>Fix:</b> {escape(f.remediation)}</div>{patch}</section>"
    )


def _proposals(rules: tuple[ProposedRule, ...], hardening: Mapping[str, HeaderHardening]) -> str:
    if not rules and not hardening:
        return ""
    parts = ["<h2>Proposed mitigations</h2>"]
    if rules:
        parts.append(
            f"<p>{len(rules)} virtual patch rule(s): write them with <code>wafproxy scan "
            "--propose-rules FILE</code>, test, then promote from count to block.</p>"
        )
    for resource, proposal in hardening.items():
        option = yaml.safe_dump({"response_headers": proposal.as_route_option()}, sort_keys=False)
        parts.append(
            f"<p>Route option for <b>{escape(resource)}</b> (adds the missing security "
            f"headers, strips version banners):</p><pre>{escape(option)}</pre>"
        )
    return "".join(parts)
