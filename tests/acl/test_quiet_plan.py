"""The web ACL's quiet plan (acl/prefilter.py): the rules a request whose scans found none of
the groups' quick atoms evaluates. Leaving rules out must never change a verdict."""

from __future__ import annotations

import pytest

from wafproxy.acl.compile import default_rule_files, load_rule_files, managed_rules_dir
from wafproxy.acl.engine import evaluate
from wafproxy.acl.memo import clear_all
from wafproxy.acl.model import EvalContext, Verdict, WebAcl
from wafproxy.acl.testcases import RuleTest, TestFile, discover, load_test_file
from wafproxy.rawhttp import build_request
from wafproxy.request import WafRequest


@pytest.fixture(scope="module")
def default_acl() -> WebAcl:
    return load_rule_files(default_rule_files()).acls["default"]


def traced(acl: WebAcl, req: WafRequest) -> Verdict:
    """Every rule evaluated: a traced evaluation skips nothing and remembers nothing."""
    return evaluate(acl, req, ctx=EvalContext(acl=acl, geo=acl.geo, trace=lambda k, d: None))


def test_the_default_acls_quiet_plan_keeps_only_rules_without_triggers(
    default_acl: WebAcl,
) -> None:
    plan = default_acl.quiet
    assert plan is not None and plan.atoms
    groups = {r.group.name: r.group for r in plan.rules if r.group is not None}
    # every rule of these groups needs one of its atoms found: a quiet request skips them
    # (a libinjection detection is an atom too)
    assert "wafproxy-rce" not in groups and "wafproxy-php" not in groups
    assert "wafproxy-sqli" not in groups
    # what stays has no atom to wait for: the missing User-Agent rule (a size constraint)
    assert [r.name for r in groups["wafproxy-core"].rules] == ["NoUserAgent_HEADER"]


def test_a_rule_of_a_group_walked_by_the_web_acl_still_reports_its_group(
    default_acl: WebAcl,
) -> None:
    """wafproxy-core scores (it cannot end an evaluation): a request without User-Agent walks
    its NoUserAgent_HEADER rule in the web ACL's own walk (engine._walk)."""
    req = build_request("GET", "/catalog", (("Host", "shop.example"),), client_ip="192.0.2.1")
    verdict = evaluate(default_acl, req)
    assert verdict == traced(default_acl, req)
    assert {m.rule: m.group for m in verdict.matches}["NoUserAgent_HEADER"] == "wafproxy-core"
    walked = {(r.group_name, r.name) for walk in default_acl.walks.values() for r in walk}
    assert ("wafproxy-core", "NoUserAgent_HEADER") in walked


def test_a_quiet_request_takes_the_plan_and_an_attack_does_not(default_acl: WebAcl) -> None:
    headers = (("Host", "shop.example"), ("User-Agent", "Mozilla/5.0"), ("Accept", "*/*"))
    quiet = build_request("GET", "/catalog?page=2", headers, client_ip="192.0.2.1")
    attack = build_request("GET", "/x?cmd=;cat+/etc/passwd", headers, client_ip="192.0.2.1")
    for req in (quiet, attack):
        assert evaluate(default_acl, req) == traced(default_acl, req)
    assert evaluate(default_acl, quiet).terminating_rule == "Default_Action"
    assert evaluate(default_acl, attack).action.name == "BLOCK"


def _shipped_cases() -> list[tuple[str, TestFile, RuleTest]]:
    cases: list[tuple[str, TestFile, RuleTest]] = []
    for path in discover([managed_rules_dir()]):
        tf = load_test_file(path)
        cases.extend((f"{path.name}::{t.name}", tf, t) for t in tf.tests)
    return cases


def test_every_shipped_rule_test_gets_the_same_verdict_skipping_or_not(
    default_acl: WebAcl,
) -> None:
    """Every group's attacks and benign look-alikes, in the group's own web ACL and in the
    default one, through the fast path twice (the second time from remembered values)."""
    clear_all()
    checked = 0
    for name, tf, test in _shipped_cases():
        for acl in (tf.rule_set.acls[tf.acl], default_acl):
            full = traced(acl, test.request)
            assert evaluate(acl, test.request) == full, name
            assert evaluate(acl, test.request) == full, name
        checked += 1
    assert checked >= 170
