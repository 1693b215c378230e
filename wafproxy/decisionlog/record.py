"""The record as a mapping in AWS WAF's log format, and the fields that depend on the verdict."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from wafproxy.acl.model import RuleMatch, Verdict
from wafproxy.decisionlog.config import DecisionLogConfig
from wafproxy.decisionlog.http_request import http_request
from wafproxy.request import Header, WafRequest

SOURCE_NAME = "wafproxy"


def format_record(
    req: WafRequest,
    verdict: Verdict,
    *,
    acl: str,
    status: int,
    config: DecisionLogConfig,
    country: str | None = None,
    rate_based: Sequence[Mapping[str, object]] = (),
    now: float,
    webacl_id_prefix: str = "",
) -> dict[str, object]:
    """The record as a mapping; ``format_line`` writes the same record faster."""
    return {
        "timestamp": int(now * 1000),
        **verdict_fields(webacl_id_prefix + acl, acl, verdict),
        "rateBasedRuleList": [dict(r) for r in rate_based],
        "responseCodeSent": status,
        "requestBodySize": req.body_size,
        "requestBodySizeInspectedByWAF": len(req.body),
        "httpRequest": http_request(req, config.redaction, country),
    }


def verdict_fields(webacl_id: str, acl: str, verdict: Verdict) -> dict[str, object]:
    """The fields that depend on the web ACL and the verdict only."""
    return {
        "formatVersion": 1,
        "webaclId": webacl_id,
        "terminatingRuleId": verdict.terminating_rule,
        "terminatingRuleType": verdict.terminating_rule_type.value,
        "action": verdict.action.name,
        "terminatingRuleMatchDetails": [],
        "httpSourceName": SOURCE_NAME,
        "httpSourceId": acl,
        "ruleGroupList": _rule_groups(verdict.matches),
        "nonTerminatingMatchingRules": [
            _rule_ref(m) for m in verdict.matches if m.group is None and not _terminating(m)
        ],
        "requestHeadersInserted": _name_values(verdict.insert_headers) or None,
        "labels": [{"name": label} for label in verdict.labels],
        "oversizeFields": list(verdict.oversize_fields),
    }


def _terminating(match: RuleMatch) -> bool:
    return match.action.terminating


def _rule_ref(match: RuleMatch) -> dict[str, object]:
    return {"ruleId": match.rule, "action": match.action.name}


def _rule_groups(matches: Sequence[RuleMatch]) -> list[dict[str, object]]:
    """One entry per rule group that had a match, in the order the groups first matched."""
    groups: dict[str, dict[str, object]] = {}
    for match in matches:
        if match.group is None:
            continue
        entry = groups.setdefault(match.group, _empty_group(match.group))
        if _terminating(match):
            entry["terminatingRule"] = _rule_ref(match)
        else:
            counted = entry["nonTerminatingMatchingRules"]
            assert isinstance(counted, list)
            counted.append(_rule_ref(match))
    return list(groups.values())


def _empty_group(group: str) -> dict[str, object]:
    return {
        "ruleGroupId": group,
        "terminatingRule": None,
        "nonTerminatingMatchingRules": [],
        "excludedRules": None,
    }


def _name_values(pairs: Sequence[Header]) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in pairs]
