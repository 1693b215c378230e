"""Virtual patches: rules (and a route option) that mitigate findings until the app is fixed.

``propose_rules`` turns the findings the WAF can mitigate into rules of our YAML language:
block an exposed path, a dangerous method or a directory index, the exploit pattern of a
known-vulnerable version (from the advisory's ``database_specific.wafproxy.virtual_patch``),
or the attack class a WAF canary got through with. ``render_rule_group`` writes them as one
custom rule group in count mode, each rule under a comment naming its finding; promoting a
rule means changing its ``action: count`` to ``action: block``. ``header_hardening`` proposes
the route option ``response_headers`` for missing security headers and version banners.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from wafproxy.findings.model import Finding, Status, iso_time

GROUP = "wafproxy-virtual-patches"
PATH_TRANSFORMS = ["url_decode_uni", "normalize_path", "lowercase"]
HEADER_DEFAULTS = {
    "header:content-security-policy": (
        "Content-Security-Policy", "frame-ancestors 'self'; object-src 'none'; base-uri 'self'"),
    "header:frame-protection": ("X-Frame-Options", "SAMEORIGIN"),
    "header:x-content-type-options": ("X-Content-Type-Options", "nosniff"),
    "header:referrer-policy": ("Referrer-Policy", "strict-origin-when-cross-origin"),
    "header:permissions-policy": (
        "Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
    "header:strict-transport-security": (
        "Strict-Transport-Security", "max-age=63072000; includeSubDomains"),
}  # fmt: skip
MISSING_RESULTS = frozenset(
    {"csp-not-implemented", "x-frame-options-not-implemented", "hsts-not-implemented",
     "x-content-type-options-not-implemented", "referrer-policy-not-implemented"}
)  # fmt: skip
CANARY_STATEMENTS: dict[str, dict[str, Any]] = {
    "sqli": {"sqli_match": {"field": "all_query_arguments",
                            "transforms": ["url_decode", "html_entity_decode"]}},
    "xss": {"xss_match": {"field": "all_query_arguments",
                          "transforms": ["url_decode", "html_entity_decode"]}},
    "path_traversal": {"regex_match": {"field": "all_query_arguments",
                                       "regex": "(?:^|[\\\\/])\\.\\.[\\\\/]",
                                       "transforms": ["url_decode_uni", "url_decode_uni",
                                                      "remove_nulls"]}},
    "lfi": {"regex_match": {"field": "all_query_arguments",
                            "regex": "(?i)(?:/etc/(?:passwd|shadow|hosts)|/proc/self/)",
                            "transforms": ["url_decode_uni", "normalize_path"]}},
    "scanner_user_agent": {"regex_match": {"field": {"single_header": {"name": "user-agent"}},
                                           "regex": "(?i)(?:sqlmap|nikto|nmap|masscan|zgrab)"}},
}  # fmt: skip


@dataclass(frozen=True)
class ProposedRule:
    name: str
    finding: Finding
    statement: Mapping[str, Any]
    test_request: Mapping[str, Any]
    why: str


@dataclass(frozen=True)
class HeaderHardening:
    add: tuple[tuple[str, str], ...] = ()
    remove: tuple[str, ...] = ()
    finding_ids: tuple[str, ...] = ()

    def as_route_option(self) -> dict[str, Any]:
        option: dict[str, Any] = {}
        if self.add:
            option["add"] = dict(self.add)
        if self.remove:
            option["remove"] = list(self.remove)
        return option


def _actionable(findings: Iterable[Finding]) -> list[Finding]:
    """Active findings the proxy does not already hide."""
    return [
        f
        for f in findings
        if f.status is Status.ACTIVE and not f.details.get("mitigated_by_proxy", False)
    ]


# -- response headers ------------------------------------------------------------------------------
def header_hardening(findings: Iterable[Finding], https: bool) -> HeaderHardening:
    add: dict[str, str] = {}
    remove: list[str] = []
    ids: list[str] = []
    for finding in _actionable(findings):
        if finding.type == "SECURITY_HEADERS" and finding.subject in HEADER_DEFAULTS:
            missing = finding.details.get("result") in MISSING_RESULTS or (
                finding.subject == "header:permissions-policy"
            )
            is_hsts = finding.subject == "header:strict-transport-security"
            if missing and (https or not is_hsts):
                name, value = HEADER_DEFAULTS[finding.subject]
                add[name] = value
                ids.append(finding.id)
        elif finding.type == "INFORMATION_DISCLOSURE" and finding.subject.startswith("banner:"):
            header = str(finding.details.get("header", ""))
            if header and header not in remove:
                remove.append(header)
                ids.append(finding.id)
    return HeaderHardening(tuple(sorted(add.items())), tuple(remove), tuple(ids))


# -- rules -----------------------------------------------------------------------------------------
def _match(field: Any, constraint: str, value: str, transforms: Sequence[str]) -> dict[str, Any]:
    return {"byte_match": {"field": field, "constraint": constraint, "value": value,
                           "transforms": list(transforms)}}  # fmt: skip


def _one_of(statements: list[dict[str, Any]]) -> dict[str, Any]:
    return statements[0] if len(statements) == 1 else {"or": statements}


def _path_rule(f: Finding) -> tuple[dict[str, Any], dict[str, Any], str] | None:
    path = str(f.details.get("path") or "")
    if not path:
        return None
    prefix = f.details.get("block_prefix")
    if isinstance(prefix, str) and prefix.endswith("/"):
        low = prefix.lower()
        statement = _one_of([_match("uri_path", "starts_with", low, PATH_TRANSFORMS),
                             _match("uri_path", "exactly", low[:-1], PATH_TRANSFORMS)])  # fmt: skip
        why = f"blocks everything under {prefix}"
    else:
        statement = _match("uri_path", "exactly", path.lower(), PATH_TRANSFORMS)
        why = f"blocks {path}"
    return statement, {"method": "GET", "uri": path}, why


def _listing_rule(f: Finding) -> tuple[dict[str, Any], dict[str, Any], str] | None:
    path = str(f.details.get("path") or "")
    if not path.endswith("/") or path == "/":
        return None
    low = path.lower()
    statement = _one_of([_match("uri_path", "exactly", low, PATH_TRANSFORMS),
                         _match("uri_path", "exactly", low[:-1], PATH_TRANSFORMS)])  # fmt: skip
    return statement, {"method": "GET", "uri": path}, f"blocks the index page of {path}"


def _method_rule(f: Finding) -> tuple[dict[str, Any], dict[str, Any], str] | None:
    methods = f.subject.partition(":")[2].split(",")
    statements = [_match("method", "exactly", m.lower(), ["lowercase"]) for m in methods if m]
    if not statements:
        return None
    why = f"blocks {', '.join(methods)}"
    if methods != ["TRACE"]:
        why += " (only if the app has no legitimate use for them)"
    return _one_of(statements), {"method": methods[0], "uri": "/"}, why


def _canary_rule(f: Finding) -> tuple[dict[str, Any], dict[str, Any], str] | None:
    from wafproxy.scan.checks.network import CANARIES

    name = f.subject.partition(":")[2]
    statement = CANARY_STATEMENTS.get(name)
    canary = next((c for c in CANARIES if c[0] == name), None)
    if statement is None or canary is None:
        return None
    _, path, headers, meaning = canary
    request = {"method": "GET", "uri": path, "headers": {"User-Agent": "test", **dict(headers)}}
    return statement, request, f"blocks {meaning} the WAF let through"


def _advisory_rule(
    f: Finding, patches: Mapping[str, Mapping[str, Any]]
) -> tuple[dict[str, Any], dict[str, Any], str] | None:
    patch = patches.get(str(f.details.get("vulnerability_id", "")))
    if not patch or "statement" not in patch:
        return None
    request = dict(patch.get("test_request") or {"uri": "/"})
    request.setdefault("method", "GET")
    return dict(patch["statement"]), request, f"blocks the exploit pattern of {f.subject}"


def propose_rules(
    findings: Iterable[Finding], advisory_patches: Mapping[str, Mapping[str, Any]] | None = None
) -> list[ProposedRule]:
    """Rules for the findings the WAF can mitigate (active, not already hidden by the proxy).

    ``advisory_patches``: advisory id -> ``{statement, test_request}`` (from the OSV database's
    ``database_specific.wafproxy.virtual_patch``)."""
    patches = advisory_patches or {}
    proposed: list[ProposedRule] = []
    seen_statements: list[Mapping[str, Any]] = []
    for f in sorted(_actionable(findings), key=lambda f: (-f.severity, f.subject)):
        built = None
        if f.type == "EXPOSED_SENSITIVE_PATH":
            built = _path_rule(f)
        elif f.type == "DANGEROUS_HTTP_METHOD":
            built = _method_rule(f)
        elif f.type == "INFORMATION_DISCLOSURE" and f.subject.startswith("listing:"):
            built = _listing_rule(f)
        elif f.type == "WAF_EFFICACY":
            built = _canary_rule(f)
        elif f.type == "PACKAGE_VULNERABILITY":
            built = _advisory_rule(f, patches)
        if built is None or built[0] in seen_statements:
            continue
        statement, request, why = built
        seen_statements.append(statement)
        proposed.append(ProposedRule(_rule_name(f), f, statement, request, why))
    return proposed


def _rule_name(f: Finding) -> str:
    slug = "".join(c if c.isalnum() else "-" for c in f.subject.lower()).strip("-")
    while "--" in slug:
        slug = slug.replace("--", "-")
    return f"vp-{slug[:60]}-{f.id[:8]}"


def label_of(rule: ProposedRule) -> str:
    return f"virtual-patch:{rule.finding.id[:12]}"


def qualified_label(rule: ProposedRule, group: str = GROUP) -> str:
    return f"rulegroup:{group}:{label_of(rule)}"


def render_rule_group(
    rules: Sequence[ProposedRule],
    *,
    group: str = GROUP,
    hardening: Mapping[str, HeaderHardening] | None = None,
    now: float | None = None,
) -> str:
    stamp = iso_time(time.time() if now is None else now)
    lines = [
        f"# Virtual patches proposed by `wafproxy scan` at {stamp}.",
        "# Each rule is in count mode and names the finding it mitigates. To use them, add the",
        "# group to the web ACL ahead of the managed groups:",
        f"#   - name: {group}",
        "#     priority: 5",
        "#     override_action: none",
        f"#     statement: {{rule_group: {{ref: {group}}}}}",
        "# run `wafproxy test` on the .tests.yaml file written beside this one, watch",
        "# wafproxy_rule_matches_total for false positives, then promote a rule by changing",
        "# its `action: count` to `action: block`.",
        "rule_groups:",
        f"  {group}:",
        f"    description: virtual patches for {len(rules)} scan finding(s)",
    ]
    lines.append("    rules:" if rules else "    rules: []")
    for priority, rule in enumerate(rules, start=1):
        lines.extend(_rule_lines(rule, priority * 10))
    lines.extend(_hardening_lines(hardening or {}))
    return "\n".join(lines) + "\n"


def _rule_lines(rule: ProposedRule, priority: int) -> list[str]:
    f = rule.finding
    comment = [
        f"      # finding {f.id}: {f.title}",
        f"      #   {f.type}, severity {f.band.value} {f.severity:.1f}, on {f.resource}",
        f"      #   {rule.why}; first seen {iso_time(f.first_seen)}",
    ]
    body = {
        "name": rule.name,
        "priority": priority,
        "action": "count",
        "rule_labels": [label_of(rule)],
        "statement": dict(rule.statement),
    }
    dumped = yaml.safe_dump([body], sort_keys=False, default_flow_style=None, width=96)
    return [
        *(c.replace("\n", " ") for c in comment),
        *("      " + ln for ln in dumped.splitlines()),
    ]


def _hardening_lines(hardening: Mapping[str, HeaderHardening]) -> list[str]:
    lines: list[str] = []
    for resource, proposal in hardening.items():
        option = yaml.safe_dump({"response_headers": proposal.as_route_option()},
                                sort_keys=False, width=96)  # fmt: skip
        lines.append("")
        lines.append(f"# Response-header hardening for the route(s) to {resource}, for the")
        lines.append("# service config (findings " + ", ".join(i[:8] for i in proposal.finding_ids)
                     + "):")  # fmt: skip
        lines.extend("#   " + ln for ln in option.splitlines())
    return lines


def render_tests(rules: Sequence[ProposedRule], rule_file: str, *, group: str = GROUP) -> str:
    """A ``wafproxy test`` file: each rule's finding request must get the rule's label (count
    and block both add it, so the file stays valid after promotion)."""
    doc = {
        "rule_files": [rule_file],
        "rule_group": group,
        "tests": [
            {
                "name": f"{rule.name} matches the request of its finding",
                "request": dict(rule.test_request),
                "expect": {"labels": [qualified_label(rule, group)]},
            }
            for rule in rules
        ],
    }
    header = "# Tests for the virtual patches in " + rule_file + " (wafproxy test FILE).\n"
    return header + yaml.safe_dump(doc, sort_keys=False, width=96)
