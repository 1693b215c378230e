"""The YAML rule tests shipped beside every rule file, run in-process (one pytest case each)."""

from __future__ import annotations

from pathlib import Path

import pytest

from wafproxy.acl.compile import managed_rules_dir
from wafproxy.acl.testcases import RuleTest, TestFile, discover, load_test_file, run_test

RULES = managed_rules_dir()


def _cases() -> list[tuple[TestFile, RuleTest]]:
    cases: list[tuple[TestFile, RuleTest]] = []
    for path in discover([RULES]):
        tf = load_test_file(path)
        cases.extend((tf, test) for test in tf.tests)
    return cases


CASES = _cases()


@pytest.mark.parametrize(
    ("tf", "test"), CASES, ids=[f"{tf.path.name}:{t.mark.line}:{t.name}" for tf, t in CASES]
)
def test_rule_file_case(tf: TestFile, test: RuleTest) -> None:
    assert run_test(tf, test) == []


def test_every_shipped_rule_file_has_tests() -> None:
    rule_files = {p.stem for p in RULES.glob("*.yaml") if not p.name.endswith(".tests.yaml")}
    tested = {p.name.removesuffix(".tests.yaml") for p in RULES.glob("*.tests.yaml")}
    assert rule_files <= tested


EXERCISED_ELSEWHERE = {
    # a YAML test body is UTF-8 text: the raw AC ED 00 05 magic is sent by
    # tests/test_managed_rules.py instead
    "wafproxy-known-bad-inputs": {"JavaSerializedBody_BODY"},
}


def test_every_shipped_rule_is_exercised() -> None:
    """Each rule of each managed group matches at least one of its group's tests (deciding it,
    or, for count rules that never decide, matching on the way)."""
    from wafproxy.acl.engine import evaluate
    from wafproxy.acl.testcases import deciding_rule

    for path in discover([RULES]):
        tf = load_test_file(path)
        if path.name == "default.tests.yaml":
            continue
        acl = tf.rule_set.acls[tf.acl]
        verdicts = [evaluate(acl, t.request) for t in tf.tests]
        decided = {deciding_rule(v) for v in verdicts}
        decided |= {m.rule for v in verdicts for m in v.matches}
        (group_rule,) = acl.rules
        assert group_rule.group is not None
        names = {r.name for r in group_rule.group.rules}
        names -= EXERCISED_ELSEWHERE.get(group_rule.group.name, set())
        assert names <= decided, f"{path.name}: untested rules {sorted(names - decided)}"


def test_a_wrong_expectation_fails(tmp_path: Path) -> None:
    (tmp_path / "x.tests.yaml").write_text(
        "rule_group: wafproxy-sqli\ntests:\n"
        "  - name: wrong on purpose\n"
        "    request: {uri: /search?q=shoes}\n"
        "    expect: {action: block, rule: SQLi_QUERYARGUMENTS}\n"
    )
    tf = load_test_file(tmp_path / "x.tests.yaml")
    problems = run_test(tf, tf.tests[0])
    assert problems == [
        "action: expected block, got allow",
        "rule: expected SQLi_QUERYARGUMENTS, got Default_Action",
    ]
