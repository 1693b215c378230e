"""Anomaly scoring and paranoia levels on rule group references."""

from __future__ import annotations

from collections.abc import Callable

from wafproxy.acl.engine import evaluate
from wafproxy.acl.model import ActionKind, WebAcl
from wafproxy.rawhttp import build_request

GROUP = """\
rule_groups:
  attacks:
    rules:
      - name: crit
        priority: 1
        severity: critical
        action: block
        rule_labels: [crit]
        statement: {byte_match: {field: query_string, constraint: contains, value: crit}}
      - name: med
        priority: 2
        severity: medium
        action: block
        statement: {byte_match: {field: query_string, constraint: contains, value: med}}
      - name: low
        priority: 3
        severity: low
        action: block
        statement: {byte_match: {field: query_string, constraint: contains, value: low}}
      - name: paranoid
        priority: 4
        severity: critical
        paranoia_level: 3
        action: block
        statement: {byte_match: {field: query_string, constraint: contains, value: para}}
"""


def acl_text(reference: str) -> str:
    return (
        "web_acl: w\ndefault_action: allow\nrules:\n"
        "  - name: attacks\n    priority: 1\n    override_action: none\n"
        f"    statement: {{rule_group: {{ref: attacks, {reference}}}}}\n"
        "  - name: threshold\n    priority: 2\n    action: block\n"
        "    statement: {anomaly_score: {comparison_operator: ge, score: 5}}\n" + GROUP
    )


def decide(acl: WebAcl, query: str) -> tuple[ActionKind, str]:
    verdict = evaluate(acl, build_request("GET", f"/?{query}"))
    return verdict.action, verdict.terminating_rule


def test_first_match_mode_blocks_on_the_first_rule(compile_acl: Callable[[str], WebAcl]) -> None:
    acl = compile_acl(acl_text("mode: first_match"))
    assert decide(acl, "q=low") == (ActionKind.BLOCK, "attacks")
    assert decide(acl, "q=para") == (ActionKind.BLOCK, "attacks")  # custom groups: level 4


def test_scoring_mode_adds_severities_and_blocks_at_the_threshold(
    compile_acl: Callable[[str], WebAcl],
) -> None:
    acl = compile_acl(acl_text("mode: anomaly_scoring"))
    assert decide(acl, "q=low") == (ActionKind.ALLOW, "Default_Action")  # 2 < 5
    assert decide(acl, "q=med+low") == (ActionKind.BLOCK, "threshold")  # 3 + 2
    assert decide(acl, "q=crit") == (ActionKind.BLOCK, "threshold")  # 5
    verdict = evaluate(acl, build_request("GET", "/?q=crit"))
    assert "rulegroup:attacks:crit" in verdict.labels  # scoring rules still label
    assert [m.action for m in verdict.matches[:1]] == [ActionKind.COUNT]


def test_paranoia_level_leaves_out_higher_rules(compile_acl: Callable[[str], WebAcl]) -> None:
    low = compile_acl(acl_text("mode: anomaly_scoring, paranoia_level: 2"))
    assert decide(low, "q=para") == (ActionKind.ALLOW, "Default_Action")
    high = compile_acl(acl_text("mode: anomaly_scoring, paranoia_level: 3"))
    assert decide(high, "q=para") == (ActionKind.BLOCK, "threshold")
    assert low.match_groups[0].atom_ids != high.match_groups[0].atom_ids  # never compiled in


def test_an_override_to_count_stops_a_rule_from_scoring(
    compile_acl: Callable[[str], WebAcl],
) -> None:
    acl = compile_acl(acl_text("mode: anomaly_scoring, rule_action_overrides: {crit: count}"))
    assert decide(acl, "q=crit") == (ActionKind.ALLOW, "Default_Action")
