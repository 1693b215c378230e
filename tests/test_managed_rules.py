"""The managed rule groups in rules/ as a whole: metadata every rule must carry, what the YAML
rule tests cannot express (raw body bytes), paranoia levels, and the rule reference in
docs/managed-rules.md."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest
import yaml

from wafproxy.acl.compile import load_rule_files, managed_rules_dir
from wafproxy.acl.engine import evaluate
from wafproxy.acl.model import ActionKind
from wafproxy.acl.testcases import deciding_rule
from wafproxy.request import WafRequest

RULES = managed_rules_dir()
DOC = Path(__file__).resolve().parents[1] / "docs" / "managed-rules.md"
OTHERS = {"wafproxy-detect"}
"""Groups of other features (threat detection decisions), not attack rules."""
GROUPS = sorted(
    p.stem
    for p in RULES.glob("wafproxy-*.yaml")
    if not p.name.endswith(".tests.yaml") and p.stem not in OTHERS
)
SEVERITIES = {"critical", "high", "medium", "low"}
BROWSER = (("Host", "shop.example"), ("User-Agent", "Mozilla/5.0"), ("Accept", "text/html"))


def group_data(name: str) -> dict[str, object]:
    data: dict[str, object] = yaml.safe_load((RULES / f"{name}.yaml").read_text(encoding="utf-8"))
    return data


def group_acl(tmp_path: Path, name: str, level: int) -> Path:
    path = tmp_path / "acl.yaml"
    path.write_text(
        "web_acl: t\ndefault_action: allow\nrules:\n"
        f"  - name: g\n    priority: 1\n    override_action: none\n"
        f"    statement: {{managed_rule_group: {{name: {name}, paranoia_level: {level}}}}}\n"
    )
    return path


def test_the_issue_groups_are_shipped() -> None:
    expected = {
        "core", "sqli", "known-bad-inputs", "rce", "php", "nosql", "ssti", "xxe", "ldap",
        "mail", "ssi", "crlf", "protocol", "scanner-detection", "admin-protection",
        "ip-reputation", "anonymous-ip",
    }  # fmt: skip
    assert {g.removeprefix("wafproxy-") for g in GROUPS} == expected


@pytest.mark.parametrize("name", GROUPS)
def test_every_rule_carries_its_metadata(name: str) -> None:
    data = group_data(name)
    rules = data["rules"]
    assert isinstance(rules, list)
    short = name.removeprefix("wafproxy-")
    for rule in rules:
        where = f"{name}/{rule['name']}"
        assert rule.get("description"), where
        assert rule.get("severity") in SEVERITIES, where
        assert rule.get("paranoia_level") in (1, 2, 3, 4), where
        labels = rule.get("rule_labels", [])
        assert any(re.fullmatch(r"wafproxy:(?:attack|bot|ip):[a-z0-9-]+", x) for x in labels), where
        assert f"wafproxy:{short}:{rule['name']}" in labels, where
        level_in_name = re.search(r"_PL([2-4])$", rule["name"])
        if level_in_name:
            assert rule["paranoia_level"] == int(level_in_name.group(1)), where


@pytest.mark.parametrize("name", GROUPS)
def test_paranoia_level_selects_rules(tmp_path: Path, name: str) -> None:
    by_level = [int(r["paranoia_level"]) for r in group_data(name)["rules"]]  # type: ignore[attr-defined]
    for level in (1, 4):
        acl = load_rule_files([group_acl(tmp_path, name, level)]).acls["t"]
        group = acl.rules[0].group
        assert group is not None
        assert len(group.rules) == sum(1 for x in by_level if x <= level)


def test_a_raw_java_serialization_stream_is_caught(tmp_path: Path) -> None:
    acl = load_rule_files([group_acl(tmp_path, "wafproxy-known-bad-inputs", 1)]).acls["t"]
    body = b"\xac\xed\x00\x05sr\x00\x11java.util.HashMap"
    headers = (*BROWSER, ("Content-Type", "application/octet-stream"))
    attack = evaluate(acl, WafRequest("POST", "/api", headers=headers, body=body))
    assert (attack.action, deciding_rule(attack)) == (ActionKind.BLOCK, "JavaSerializedBody_BODY")
    image = evaluate(acl, WafRequest("POST", "/api", headers=headers, body=b"\x89PNG\r\n\x1a\n"))
    assert image.action is ActionKind.ALLOW


def test_latin1_text_passes_below_level_3_and_overlong_utf8_never_does(tmp_path: Path) -> None:
    """The YAML tests run at level 4; a Latin-1 site's forms (%F1 for ñ) must pass levels 1-2."""
    latin1 = WafRequest("GET", "/buscar", query_string="q=espa%F1a+a%F1o+%E9t%E9", headers=BROWSER)
    overlong = WafRequest("GET", "/static/\udcc0\udcae\udcc0\udcae/x", headers=BROWSER)  # raw bytes
    for level, latin1_passes in ((1, True), (2, True), (3, False)):
        acl = load_rule_files([group_acl(tmp_path, "wafproxy-protocol", level)]).acls["t"]
        assert (evaluate(acl, latin1).action is ActionKind.ALLOW) is latin1_passes, level
        verdict = evaluate(acl, overlong)
        assert (verdict.action, deciding_rule(verdict)) == (ActionKind.BLOCK, "Utf8Overlong_ARGS")


def test_a_lone_surrogate_in_a_json_body_is_inspected_not_an_error(tmp_path: Path) -> None:
    """JSON may escape a lone surrogate ("\\ud800"); with an ``on_error`` of allow, an error
    here would let the rest of the body through uninspected."""
    acl = load_rule_files([group_acl(tmp_path, "wafproxy-sqli", 1)]).acls["t"]
    headers = (*BROWSER, ("Content-Type", "application/json"))
    benign = WafRequest("POST", "/api", headers=headers, body=b'{"name": "caf\\ud800e"}')
    assert (evaluate(acl, benign).action, evaluate(acl, benign).error) == (ActionKind.ALLOW, None)
    body = b'{"q": "\\ud800\' union select password from users--"}'
    attack = evaluate(acl, WafRequest("POST", "/api", headers=headers, body=body))
    assert (attack.action, attack.error) == (ActionKind.BLOCK, None)
    assert deciding_rule(attack).startswith("SQLi")


def test_the_reference_lists_every_group_and_rule() -> None:
    text = DOC.read_text(encoding="utf-8")
    for name in GROUPS:
        assert f"`{name}`" in text, name
        for rule in group_data(name)["rules"]:  # type: ignore[attr-defined]
            assert f"`{rule['name']}`" in text, f"{name}/{rule['name']}"


def doc_examples() -> list[tuple[str, str, str]]:
    """(title, web ACL, tests) for every web ACL block in the doc and the tests block after it."""
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    examples = []
    for acl, tests in itertools.pairwise(blocks):
        if acl.startswith("web_acl:") and tests.startswith("tests:"):
            examples.append((acl.split("\n", 1)[0].removeprefix("web_acl: "), acl, tests))
    return examples


EXAMPLES = doc_examples()


def test_the_doc_has_its_recipes() -> None:
    assert [title for title, _, _ in EXAMPLES] == [
        *("strict", "shop", "api", "cms", "cms-precise", "prefs", "ops"),
    ]


@pytest.mark.parametrize(("title", "acl", "tests"), EXAMPLES, ids=[t for t, _, _ in EXAMPLES])
def test_doc_example(tmp_path: Path, title: str, acl: str, tests: str) -> None:
    from wafproxy.acl.testcases import load_test_file, run_test

    (tmp_path / "example.yaml").write_text(acl, encoding="utf-8")
    (tmp_path / "example.tests.yaml").write_text(tests, encoding="utf-8")
    tf = load_test_file(tmp_path / "example.tests.yaml")
    assert tf.tests
    for test in tf.tests:
        assert run_test(tf, test) == [], f"{title}: {test.name}"
