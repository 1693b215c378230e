"""Scan reports: a JSON document and SARIF 2.1.0 (the HTML report is in html.py).

SARIF mapping: one ``reportingDescriptor`` (rule) per finding type and subject kind, one
``result`` per finding, located at the URL it is about (``artifactLocation.uri``), with the
finding id as partial fingerprint so code-scanning tools track it across runs; the numeric
severity goes to ``properties.security-severity`` (GitHub's convention) and the band to
``level`` (critical/high: error, medium: warning, low/informational: note).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from wafproxy import __version__
from wafproxy.findings.model import Finding, Severity, iso_time
from wafproxy.scan.patches import HeaderHardening, header_hardening
from wafproxy.scan.registry import CHECKS, check_doc
from wafproxy.scan.runner import ScanResult

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/wafproxy/wafproxy/blob/main/docs/scan.md"
LEVELS = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFORMATIONAL: "note",
}


@dataclass(frozen=True)
class Report:
    results: tuple[ScanResult, ...]
    generated: float = field(default_factory=time.time)

    @property
    def findings(self) -> list[Finding]:
        found = [f for r in self.results for f in r.findings]
        return sorted(found, key=lambda f: (-f.severity, f.resource, f.type, f.subject))

    def counts(self) -> dict[str, int]:
        counts = {s.value: 0 for s in reversed(Severity)}
        for finding in self.findings:
            counts[finding.band.value] += 1
        return counts

    def hardening(self) -> dict[str, HeaderHardening]:
        """Per resource: the route option that would add the missing headers."""
        out: dict[str, HeaderHardening] = {}
        for result in self.results:
            proposal = header_hardening(result.findings, https=_https(result))
            if proposal.add or proposal.remove:
                out[result.plan.resource] = proposal
        return out


def _https(result: ScanResult) -> bool:
    endpoint = result.plan.proxy or result.plan.direct
    return endpoint is not None and endpoint.scheme == "https"


# -- JSON ------------------------------------------------------------------------------------------
def to_json(report: Report) -> dict[str, Any]:
    return {
        "schema": "wafproxy-scan-report/1",
        "tool": {"name": "wafproxy", "version": __version__},
        "generated_at": iso_time(report.generated),
        "summary": {"by_severity": report.counts(), "findings": len(report.findings)},
        "scans": [_scan_json(r) for r in report.results],
        "findings": [f.to_dict() for f in report.findings],
        "proposals": {
            "response_headers": {res: h.as_route_option() for res, h in report.hardening().items()}
        },
    }


def _scan_json(result: ScanResult) -> dict[str, Any]:
    plan = result.plan
    return {
        "resource": plan.resource,
        "direct": plan.direct.base_url if plan.direct else None,
        "via_proxy": plan.proxy.base_url if plan.proxy else None,
        "started_at": iso_time(result.started),
        "finished_at": iso_time(result.finished),
        "requests": result.requests,
        "budget": result.budget,
        "budget_exhausted": result.budget_exhausted,
        "checks_completed": sorted(result.completed),
        "errors": result.errors,
        "grade": result.grade,
        "closed": [f.id for f in result.closed],
    }


def render_json(report: Report) -> str:
    return json.dumps(to_json(report), indent=2, sort_keys=False) + "\n"


# -- SARIF -----------------------------------------------------------------------------------------
def rule_id(finding: Finding) -> str:
    """Stable per kind of finding: the type plus the subject's kind (``header``, ``path``,
    ``tcp``, an advisory id …)."""
    kind = finding.subject.partition(":")[0] if ":" in finding.subject else finding.subject
    return f"{finding.type}/{kind}"


def to_sarif(report: Report) -> dict[str, Any]:
    findings = report.findings
    rules: dict[str, dict[str, Any]] = {}
    for finding in findings:
        rules.setdefault(rule_id(finding), _rule(finding))
    index = {rid: i for i, rid in enumerate(rules)}
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "wafproxy-scan",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "informationUri": INFORMATION_URI,
                        "rules": list(rules.values()),
                    }
                },
                "automationDetails": {"id": f"wafproxy-scan/{iso_time(report.generated)}"},
                "invocations": [_invocation(r) for r in report.results]
                or [{"executionSuccessful": True}],
                "results": [_result(f, index[rule_id(f)]) for f in findings],
                "columnKind": "unicodeCodePoints",
            }
        ],
    }


def _rule(finding: Finding) -> dict[str, Any]:
    help_text = finding.remediation or finding.description
    rule: dict[str, Any] = {
        "id": rule_id(finding),
        "name": "".join(w.capitalize() for w in rule_id(finding).replace("/", "_").split("_")),
        "shortDescription": {"text": finding.title[:200]},
        "fullDescription": {"text": finding.description[:1000]},
        "help": {"text": help_text, "markdown": help_text},
        "defaultConfiguration": {"level": LEVELS[finding.band]},
        "properties": {
            "tags": ["security", finding.type.lower()],
            "security-severity": f"{finding.severity:.1f}",
            "precision": "high",
        },
    }
    if finding.check in CHECKS:
        doc = check_doc(finding.check)
        rule["fullDescription"] = {"text": f"{doc.summary} {doc.why}"[:1000]}
        rule["helpUri"] = f"{INFORMATION_URI}#{finding.check.replace('_', '-')}"
    return rule


def _result(finding: Finding, rule_index: int) -> dict[str, Any]:
    uri = _location(finding)
    return {
        "ruleId": rule_id(finding),
        "ruleIndex": rule_index,
        "level": LEVELS[finding.band],
        "kind": "fail",
        "message": {"text": f"{finding.title}. {finding.description}"[:2000]},
        "locations": [
            {
                "physicalLocation": {"artifactLocation": {"uri": uri}},
                "logicalLocations": [
                    {
                        "name": finding.subject,
                        "fullyQualifiedName": f"{finding.resource} {finding.subject}",
                        "kind": "resource",
                    }
                ],
            }
        ],
        "partialFingerprints": {"wafproxyFindingId/v1": finding.id},
        "properties": {
            "severity": finding.severity,
            "severityLabel": finding.band.value,
            "status": finding.status.value,
            "type": finding.type,
            "check": finding.check,
            "count": finding.count,
            "firstObservedAt": iso_time(finding.first_seen),
            "lastObservedAt": iso_time(finding.last_seen),
            "evidence": list(finding.evidence),
            "details": dict(finding.details),
        },
    }


def _location(finding: Finding) -> str:
    path = finding.details.get("path")
    resource = finding.resource.rstrip("/")
    if isinstance(path, str) and path.startswith("/"):
        return resource + path
    return resource + "/"


def _invocation(result: ScanResult) -> dict[str, Any]:
    return {
        "executionSuccessful": not result.errors,
        "startTimeUtc": iso_time(result.started),
        "endTimeUtc": iso_time(result.finished),
        "toolExecutionNotifications": [
            {"level": "warning", "message": {"text": f"{check}: {error}"}}
            for check, error in sorted(result.errors.items())
        ],
        "properties": {"resource": result.plan.resource, "requests": result.requests,
                       "budget": result.budget, "budgetExhausted": result.budget_exhausted},
    }  # fmt: skip


def render_sarif(report: Report) -> str:
    return json.dumps(to_sarif(report), indent=2) + "\n"
