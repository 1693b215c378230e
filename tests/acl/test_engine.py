"""evaluate(): AWS WAF's evaluation semantics on compiled rule files."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import pytest

from wafproxy.acl.engine import DEFAULT_ACTION, evaluate
from wafproxy.acl.model import ActionKind, RuleMatch, RuleType, Verdict, WebAcl
from wafproxy.rawhttp import build_request
from wafproxy.request import Header, WafRequest

CompileAcl = Callable[[str], WebAcl]
CompileErrors = Callable[[str], list[str]]


def get(target: str = "/", headers: tuple[Header, ...] = ()) -> WafRequest:
    return build_request("GET", target, headers, client_ip="192.0.2.10")


def path_rule(name: str, priority: int, action: str, value: str, extra: str = "") -> str:
    """One rule whose statement is 'the path contains VALUE', as YAML list item text."""
    return (
        f"  - name: {name}\n    priority: {priority}\n    action: {action}\n{extra}"
        "    statement:\n"
        f"      byte_match: {{field: uri_path, constraint: contains, value: {value}}}\n"
    )


def acl_text(*rules: str, head: str = "") -> str:
    return f"web_acl: shop\ndefault_action: allow\n{head}rules:\n" + "".join(rules)


def matched(verdict: Verdict) -> list[tuple[str, ActionKind, str | None]]:
    return [(m.rule, m.action, m.group) for m in verdict.matches]


# -- order and termination ------------------------------------------------------------------------
def test_rules_run_by_priority_not_by_file_order(compile_acl: CompileAcl) -> None:
    acl = compile_acl(
        acl_text(
            path_rule("third", 30, "block", "x"),
            path_rule("first", 10, "count", "x"),
            path_rule("second", 20, "allow", "x"),
        )
    )
    assert [r.name for r in acl.rules] == ["first", "second", "third"]
    verdict = evaluate(acl, get("/x"))
    assert verdict.action is ActionKind.ALLOW
    assert verdict.terminating_rule == "second"
    assert matched(verdict) == [
        ("first", ActionKind.COUNT, None),
        ("second", ActionKind.ALLOW, None),
    ]


def test_first_terminating_action_wins(compile_acl: CompileAcl) -> None:
    teapot = "    action: {block: {custom_response: {response_code: 418}}}\n"
    acl = compile_acl(
        acl_text(
            path_rule("late", 5, "block", "x"),
            f"  - name: early\n    priority: 1\n{teapot}"
            "    statement: {byte_match: {field: uri_path, constraint: contains, value: x}}\n",
        )
    )
    verdict = evaluate(acl, get("/x"))
    assert verdict.terminating_rule == "early"
    assert verdict.response is not None and verdict.response.status == 418
    assert [m.rule for m in verdict.matches] == ["early"]


def test_allow_terminates(compile_acl: CompileAcl) -> None:
    acl = compile_acl(
        acl_text(path_rule("ok", 1, "allow", "x"), path_rule("blocker", 2, "block", "x"))
    )
    verdict = evaluate(acl, get("/x"))
    assert (verdict.action, verdict.terminating_rule) == (ActionKind.ALLOW, "ok")
    assert [m.rule for m in verdict.matches] == ["ok"]
    assert not verdict.blocked


def test_count_records_the_match_and_goes_on(compile_acl: CompileAcl) -> None:
    acl = compile_acl(
        acl_text(path_rule("seen", 1, "count", "x"), path_rule("blocker", 2, "block", "x"))
    )
    verdict = evaluate(acl, get("/x"))
    assert (verdict.action, verdict.terminating_rule) == (ActionKind.BLOCK, "blocker")
    assert matched(verdict) == [
        ("seen", ActionKind.COUNT, None),
        ("blocker", ActionKind.BLOCK, None),
    ]


def test_count_alone_ends_in_the_default_action(compile_acl: CompileAcl) -> None:
    acl = compile_acl(acl_text(path_rule("seen", 1, "count", "x")))
    verdict = evaluate(acl, get("/x"))
    assert (verdict.action, verdict.terminating_rule) == (ActionKind.ALLOW, DEFAULT_ACTION)
    assert matched(verdict) == [("seen", ActionKind.COUNT, None)]


def test_nothing_matched_is_the_default_action(compile_acl: CompileAcl) -> None:
    acl = compile_acl(acl_text(path_rule("blocker", 1, "block", "x")))
    verdict = evaluate(acl, get("/y"))
    assert verdict.terminating_rule == "Default_Action" == DEFAULT_ACTION
    assert verdict.action is ActionKind.ALLOW
    assert verdict.matches == () and verdict.labels == () and verdict.error is None


# -- labels ---------------------------------------------------------------------------------------
LABEL_IS = "    statement: {label_match: {scope: label, key: %s}}\n"


def label_rule(name: str, priority: int, action: str, key: str) -> str:
    return f"  - name: {name}\n    priority: {priority}\n    action: {action}\n" + LABEL_IS % key


def test_labels_are_visible_to_later_rules_only(compile_acl: CompileAcl) -> None:
    acl = compile_acl(
        acl_text(
            label_rule("before", 1, "block", "seen:it"),
            path_rule("tagger", 2, "count", "x", "    rule_labels: [seen:it]\n"),
            label_rule("after", 3, "block", "seen:it"),
        )
    )
    verdict = evaluate(acl, get("/x"))
    assert verdict.terminating_rule == "after"
    assert verdict.labels == ("webacl:shop:seen:it",)
    assert evaluate(acl, get("/y")).terminating_rule == DEFAULT_ACTION


def test_web_acl_labels_use_the_label_namespace(compile_acl: CompileAcl) -> None:
    rule = path_rule("tagger", 1, "count", "x", "    rule_labels: [a:b, c]\n")
    assert evaluate(compile_acl(acl_text(rule)), get("/x")).labels == (
        "webacl:shop:a:b",
        "webacl:shop:c",
    )
    renamed = compile_acl(acl_text(rule, head="label_namespace: mine\n"))
    assert evaluate(renamed, get("/x")).labels == ("mine:a:b", "mine:c")


GROUP = """\
rule_groups:
  guard:
    rules:
      - name: tag-in-group
        priority: 1
        action: count
        rule_labels: [probe]
        statement: {byte_match: {field: uri_path, constraint: contains, value: x}}
      - name: group-sees-own-label
        priority: 2
        action: {block: {custom_response: {response_code: 451}}}
        statement:
          and:
            - {label_match: {scope: label, key: probe}}
            - {byte_match: {field: uri_path, constraint: contains, value: own}}
      - name: group-sees-acl-label-unqualified
        priority: 3
        action: {block: {custom_response: {response_code: 452}}}
        statement:
          and:
            - {label_match: {scope: label, key: outer}}
            - {byte_match: {field: uri_path, constraint: contains, value: unq}}
      - name: group-sees-acl-label-qualified
        priority: 4
        action: {block: {custom_response: {response_code: 453}}}
        statement:
          and:
            - {label_match: {scope: label, key: "webacl:shop:outer"}}
            - {byte_match: {field: uri_path, constraint: contains, value: qual}}
"""
GROUP_REF = """\
  - name: guard-ref
    priority: 2
    override_action: none
    statement: {rule_group: {ref: guard}}
"""


def test_label_keys_resolve_in_the_context_of_their_rule(compile_acl: CompileAcl) -> None:
    acl = compile_acl(
        acl_text(
            path_rule("outer-tag", 1, "count", "x", "    rule_labels: [outer]\n"),
            GROUP_REF,
            label_rule("acl-unqualified", 3, "block", "probe"),
            label_rule("acl-qualified", 4, "allow", "rulegroup:guard:probe"),
            head=GROUP,
        )
    )
    plain = evaluate(acl, get("/x"))
    assert plain.labels == ("webacl:shop:outer", "rulegroup:guard:probe")
    # "probe" in the web ACL means webacl:shop:probe; only the qualified key sees the group's label
    assert (plain.action, plain.terminating_rule) == (ActionKind.ALLOW, "acl-qualified")

    def status(path: str) -> int | None:
        verdict = evaluate(acl, get(path))
        return verdict.response.status if verdict.response else None

    assert status("/x/own") == 451
    assert status("/x/unq") is None  # "outer" inside the group means rulegroup:guard:outer
    assert status("/x/qual") == 453


def test_label_key_may_be_a_trailing_part_of_the_label(compile_acl: CompileAcl) -> None:
    """docs/rule-language.md: scope label matches when key equals the label or a trailing run of
    its ':'-separated parts (AWS: the key "must include the name and can include any number of
    preceding namespace specifications")."""
    acl = compile_acl(
        acl_text(
            path_rule("tagger", 1, "count", "x", "    rule_labels: [attack:sqli]\n"),
            label_rule("by-name", 2, "block", "sqli"),
        )
    )
    assert evaluate(acl, get("/x")).terminating_rule == "by-name"


def test_fully_qualified_key_under_a_custom_label_namespace(compile_acl: CompileAcl) -> None:
    """With ``label_namespace: mine`` the label is ``mine:a``; writing that full label as the key
    must find it, as ``webacl:shop:a`` does under the default namespace."""
    acl = compile_acl(
        acl_text(
            path_rule("tagger", 1, "count", "x", "    rule_labels: [a]\n"),
            label_rule("full", 2, "block", "'mine:a'"),
            label_rule("short", 3, "block", "a"),
            head="label_namespace: mine\n",
        )
    )
    verdict = evaluate(acl, get("/x"))
    assert verdict.labels == ("mine:a",)
    assert verdict.terminating_rule == "full"


@pytest.mark.parametrize(
    ("key", "hit"),
    [("attack", True), ("attack:", True), ("webacl:shop:attack:", True), ("other:", False)],
)
def test_namespace_scope(compile_acl: CompileAcl, key: str, hit: bool) -> None:
    acl = compile_acl(
        acl_text(
            path_rule("tagger", 1, "count", "x", "    rule_labels: [attack:sqli]\n"),
            "  - name: ns\n    priority: 2\n    action: block\n"
            f"    statement: {{label_match: {{scope: namespace, key: '{key}'}}}}\n",
        )
    )
    assert (evaluate(acl, get("/x")).terminating_rule == "ns") is hit


# -- rule groups ----------------------------------------------------------------------------------
ORDERED_GROUP = """\
rule_groups:
  ordered:
    rules:
      - name: g-block
        priority: 20
        action: block
        statement: {byte_match: {field: uri_path, constraint: contains, value: x}}
      - name: g-count
        priority: 1
        action: count
        rule_labels: [counted]
        statement: {byte_match: {field: uri_path, constraint: contains, value: x}}
      - name: g-allow
        priority: 10
        action: allow
        statement: {byte_match: {field: uri_path, constraint: contains, value: ok}}
"""


def group_ref(override: str = "none", overrides: str = "", priority: int = 2) -> str:
    extra = f", rule_action_overrides: {overrides}" if overrides else ""
    return (
        f"  - name: ordered-ref\n    priority: {priority}\n    override_action: {override}\n"
        f"    statement: {{rule_group: {{ref: ordered{extra}}}}}\n"
    )


def test_a_group_runs_inline_in_its_own_priority_order(compile_acl: CompileAcl) -> None:
    acl = compile_acl(
        acl_text(
            path_rule("acl-first", 1, "count", "x"),
            group_ref(),
            path_rule("acl-after", 3, "block", "x"),
            head=ORDERED_GROUP,
        )
    )
    verdict = evaluate(acl, get("/x"))
    assert matched(verdict) == [
        ("acl-first", ActionKind.COUNT, None),
        ("g-count", ActionKind.COUNT, "ordered"),
        ("g-block", ActionKind.BLOCK, "ordered"),
    ]
    assert verdict.action is ActionKind.BLOCK
    assert verdict.terminating_rule == "ordered-ref"
    assert verdict.terminating_group == "ordered"
    assert verdict.terminating_rule_type is RuleType.GROUP
    assert verdict.labels == ("rulegroup:ordered:counted",)


def test_allow_inside_a_group_ends_the_whole_evaluation(compile_acl: CompileAcl) -> None:
    acl = compile_acl(
        acl_text(group_ref(), path_rule("acl-after", 3, "block", "ok"), head=ORDERED_GROUP)
    )
    verdict = evaluate(acl, get("/ok"))
    assert (verdict.action, verdict.terminating_group) == (ActionKind.ALLOW, "ordered")
    assert "acl-after" not in [m.rule for m in verdict.matches]


def test_a_group_without_a_terminating_match_lets_evaluation_go_on(
    compile_acl: CompileAcl,
) -> None:
    acl = compile_acl(
        acl_text(group_ref(), path_rule("acl-after", 3, "block", "y"), head=ORDERED_GROUP)
    )
    verdict = evaluate(acl, get("/y"))
    assert (verdict.terminating_rule, verdict.terminating_group) == ("acl-after", None)


def test_override_action_count_turns_the_groups_block_into_a_count(
    compile_acl: CompileAcl,
) -> None:
    acl = compile_acl(
        acl_text(group_ref("count"), path_rule("acl-after", 3, "block", "late"), head=ORDERED_GROUP)
    )
    verdict = evaluate(acl, get("/x"))
    assert (verdict.action, verdict.terminating_rule) == (ActionKind.ALLOW, DEFAULT_ACTION)
    assert verdict.labels == ("rulegroup:ordered:counted",)
    assert ("ordered-ref", ActionKind.COUNT, None) in matched(verdict)
    later = evaluate(acl, get("/x/late"))
    assert (later.action, later.terminating_rule) == (ActionKind.BLOCK, "acl-after")


def test_rule_action_override_changes_one_rule(compile_acl: CompileAcl) -> None:
    acl = compile_acl(
        acl_text(
            group_ref(overrides="{g-block: count}"),
            path_rule("acl-after", 3, "block", "z"),
            head=ORDERED_GROUP,
        )
    )
    verdict = evaluate(acl, get("/x"))
    assert (verdict.action, verdict.terminating_rule) == (ActionKind.ALLOW, DEFAULT_ACTION)
    assert ("g-block", ActionKind.COUNT, "ordered") in matched(verdict)
    assert evaluate(acl, get("/x/z")).terminating_rule == "acl-after"
    # the other rules keep their actions
    assert evaluate(acl, get("/ok")).terminating_group == "ordered"


def test_rule_action_override_with_an_action_mapping(compile_acl: CompileAcl) -> None:
    overrides = "{g-block: {block: {custom_response: {response_code: 429}}}}"
    acl = compile_acl(acl_text(group_ref(overrides=overrides), head=ORDERED_GROUP))
    verdict = evaluate(acl, get("/x"))
    assert verdict.response is not None and verdict.response.status == 429


def test_rule_action_override_of_a_missing_rule(compile_errors: CompileErrors) -> None:
    errors = compile_errors(acl_text(group_ref(overrides="{nope: count}"), head=ORDERED_GROUP))
    assert len(errors) == 1
    assert "the group has no rule named 'nope'" in errors[0]


def managed(options: str, override: str = "none") -> str:
    return (
        f"  - name: sqli\n    priority: 5\n    override_action: {override}\n"
        f"    statement: {{managed_rule_group: {{name: wafproxy-sqli{options}}}}}\n"
    )


SQLI = "/search?q=1'%20or%201=1--"


def test_managed_group_blocks_and_labels(compile_acl: CompileAcl) -> None:
    acl = compile_acl(acl_text(managed("")))
    verdict = evaluate(acl, get(SQLI))
    assert verdict.action is ActionKind.BLOCK
    assert verdict.terminating_rule_type is RuleType.MANAGED_RULE_GROUP
    assert verdict.terminating_group == "wafproxy-sqli"
    assert matched(verdict) == [("SQLi_QUERYARGUMENTS", ActionKind.BLOCK, "wafproxy-sqli")]
    assert "wafproxy:attack:sqli" in verdict.labels
    assert evaluate(acl, get("/search?q=O'Brien")).action is ActionKind.ALLOW


def test_managed_rule_override_to_count_keeps_the_label(compile_acl: CompileAcl) -> None:
    acl = compile_acl(
        acl_text(
            managed(
                ", rule_action_overrides: "
                "{SQLi_QUERYARGUMENTS: count, SQLiPatterns_QUERYARGUMENTS: count}"
            ),
            "  - name: after\n    priority: 6\n    action: block\n"
            "    statement: {label_match: {scope: label, key: 'wafproxy:attack:sqli'}}\n",
        )
    )
    verdict = evaluate(acl, get(SQLI))
    assert (verdict.terminating_rule, verdict.terminating_group) == ("after", None)
    assert matched(verdict)[:2] == [
        ("SQLi_QUERYARGUMENTS", ActionKind.COUNT, "wafproxy-sqli"),
        ("SQLiPatterns_QUERYARGUMENTS", ActionKind.COUNT, "wafproxy-sqli"),
    ]


def test_scope_down_statement_skips_the_group(compile_acl: CompileAcl) -> None:
    scope = (
        ", scope_down_statement: "
        "{byte_match: {field: uri_path, constraint: starts_with, value: /api}}"
    )
    acl = compile_acl(acl_text(managed(scope)))
    skipped = evaluate(acl, get(SQLI))
    assert (skipped.action, skipped.matches, skipped.labels) == (ActionKind.ALLOW, (), ())
    inspected = evaluate(acl, get("/api" + SQLI))
    assert (inspected.action, inspected.terminating_group) == (ActionKind.BLOCK, "wafproxy-sqli")


def test_managed_group_version_is_pinned(
    compile_acl: CompileAcl, compile_errors: CompileErrors
) -> None:
    compile_acl(acl_text(managed(", version: '1.0'")))
    errors = compile_errors(acl_text(managed(", version: '2.0'")))
    assert len(errors) == 1
    assert errors[0].startswith("rules.yaml:")
    assert "managed rule group 'wafproxy-sqli' is shipped at version '1.0', not '2.0'" in errors[0]


def test_unknown_managed_group(compile_errors: CompileErrors) -> None:
    errors = compile_errors(
        acl_text(
            "  - name: m\n    priority: 1\n    override_action: none\n"
            "    statement: {managed_rule_group: {name: wafproxy-sqlj}}\n"
        )
    )
    assert len(errors) == 1
    assert "no managed rule group named 'wafproxy-sqlj'; did you mean 'wafproxy-sqli'?" in errors[0]


# -- actions and responses ------------------------------------------------------------------------
BODIES = """\
custom_response_bodies:
  denied: {content_type: text/html, content: "<p>denied</p>"}
"""


def test_default_action_block_with_a_custom_response(compile_acl: CompileAcl) -> None:
    acl = compile_acl(
        "web_acl: strict\n" + BODIES + "default_action:\n  block:\n    custom_response:\n"
        "      response_code: 429\n      custom_response_body_key: denied\n"
        "      response_headers: [{name: retry-after, value: '60'}]\n"
        "rules:\n" + path_rule("open", 1, "allow", "public")
    )
    verdict = evaluate(acl, get("/private"))
    assert (verdict.action, verdict.terminating_rule) == (ActionKind.BLOCK, DEFAULT_ACTION)
    assert verdict.response is not None
    assert verdict.response.status == 429
    assert verdict.response.body == b"<p>denied</p>"
    assert verdict.response.content_type == "text/html"
    assert verdict.response.headers == (("retry-after", "60"),)
    assert evaluate(acl, get("/public")).action is ActionKind.ALLOW


def test_default_action_block_plain(compile_acl: CompileAcl) -> None:
    acl = compile_acl("web_acl: strict\ndefault_action: block\nrules: []\n")
    verdict = evaluate(acl, get("/"))
    assert (verdict.action, verdict.terminating_rule, verdict.response) == (
        ActionKind.BLOCK,
        DEFAULT_ACTION,
        None,
    )


def test_default_action_count_is_refused(compile_errors: CompileErrors) -> None:
    (error,) = compile_errors("web_acl: a\ndefault_action: count\n")
    assert error.startswith("rules.yaml:2:17: default_action: expected allow or block")


def test_block_with_custom_body_and_headers(compile_acl: CompileAcl) -> None:
    action = (
        "    action:\n      block:\n        custom_response:\n          response_code: 403\n"
        "          custom_response_body_key: denied\n"
        "          response_headers: [{name: x-why, value: policy}, {name: x-n, value: '2'}]\n"
    )
    acl = compile_acl(
        acl_text(
            f"  - name: deny\n    priority: 1\n{action}"
            "    statement:\n"
            "      byte_match: {field: uri_path, constraint: starts_with, value: /admin}\n",
            head=BODIES,
        )
    )
    response = evaluate(acl, get("/admin")).response
    assert response is not None
    assert (response.status, response.body, response.content_type) == (
        403,
        b"<p>denied</p>",
        "text/html",
    )
    assert response.headers == (("x-why", "policy"), ("x-n", "2"))


def test_insert_headers_from_count_and_allow_rules(compile_acl: CompileAcl) -> None:
    count = "{count: {custom_request_handling: {insert_headers: [{name: Suspicious, value: '1'}]}}}"
    allow = "{allow: {custom_request_handling: {insert_headers: [{name: checked, value: 'yes'}]}}}"
    acl = compile_acl(
        acl_text(
            path_rule("flag", 1, count, "x"),
            path_rule("ok", 2, allow, "x/ok"),
            path_rule("blocker", 3, "block", "x/no"),
        )
    )
    allowed = evaluate(acl, get("/x/ok"))
    assert allowed.insert_headers == (
        ("x-wafproxy-suspicious", "1"),
        ("x-wafproxy-checked", "yes"),
    )
    by_default = evaluate(acl, get("/x"))
    assert by_default.terminating_rule == DEFAULT_ACTION
    assert by_default.insert_headers == (("x-wafproxy-suspicious", "1"),)
    assert evaluate(acl, get("/y")).insert_headers == ()


def test_insert_headers_from_the_default_action(compile_acl: CompileAcl) -> None:
    acl = compile_acl(
        "web_acl: a\ndefault_action: {allow: {custom_request_handling: "
        "{insert_headers: [{name: via-waf, value: 'yes'}]}}}\nrules: []\n"
    )
    assert evaluate(acl, get("/")).insert_headers == (("x-wafproxy-via-waf", "yes"),)


# -- evaluation errors ----------------------------------------------------------------------------
# A path that is bytes, not text, cannot be scanned: a request built in Python (never one from the
# wire) that makes a statement fail, without replacing any of our own components. (A lone
# surrogate did until 2026-11-29; JSON bodies carry them, and they are inspected now.)
BROKEN = WafRequest("GET", cast(str, b"/x"))


@pytest.mark.parametrize(
    ("on_error", "action"),
    [("", ActionKind.BLOCK), ("on_error: block\n", ActionKind.BLOCK),
     ("on_error: allow\n", ActionKind.ALLOW)],
)  # fmt: skip
def test_evaluation_error_applies_on_error(
    compile_acl: CompileAcl, on_error: str, action: ActionKind
) -> None:
    acl = compile_acl(acl_text(path_rule("breaks", 1, "block", "x"), head=on_error))
    verdict = evaluate(acl, BROKEN)
    assert verdict.action is action
    assert verdict.terminating_rule == "Evaluation_Error"
    assert verdict.error is not None and "AttributeError" in verdict.error
    assert evaluate(acl, get("/x")).error is None


def test_verdict_matches_are_rule_matches(compile_acl: CompileAcl) -> None:
    acl = compile_acl(acl_text(path_rule("seen", 1, "count", "x")))
    (match,) = evaluate(acl, get("/x")).matches
    assert match == RuleMatch("seen", ActionKind.COUNT, None, RuleType.REGULAR)


# -- one scan for two chains that gave the same text ---------------------------------------------
JOINT_RULES = (
    "  - name: plain\n    priority: 1\n    action: block\n    statement:\n"
    "      regex_match: {field: body, regex: 'alpha\\s+beta', transforms: [url_decode]}\n"
    "  - name: uncommented\n    priority: 2\n    action: block\n    statement:\n"
    "      regex_match: {field: body, regex: 'union\\s+select', "
    "transforms: [url_decode, replace_comments]}\n"
)
LONG_FORM_TAIL = "&note=" + "Sturdy shelving for small workshops and garden sheds. " * 8
"""Past memo.MAX_VALUE: the body is scanned in every request, never remembered."""


def form(body: str) -> WafRequest:
    headers = (("Content-Type", "application/x-www-form-urlencoded"),)
    return build_request("POST", "/f", headers, body.encode(), inspect_body_bytes=16 * 1024)


@pytest.mark.parametrize(
    ("field", "rule"),
    [
        ("q=alpha%20beta", "plain"),  # replace_comments changes nothing: one joint scan
        ("q=union%20select", "uncommented"),
        ("q=union/**/select", "uncommented"),  # it changes the text: each slot scans alone
        ("q=alpha/**/beta", None),
        ("q=nothing%20here", None),
        ("q=(alpha%20beta)", "plain"),  # a rare character: each slot scans alone
    ],
)
def test_two_chains_that_give_the_same_text_share_one_scan(
    compile_acl: CompileAcl, field: str, rule: str | None
) -> None:
    from wafproxy.acl.engine import field_values
    from wafproxy.acl.model import EvalContext

    acl = compile_acl(acl_text(JOINT_RULES))
    joint = acl.joint_scans[0]
    assert joint is not None and (joint.first, joint.second) == (0, 1)
    req = form(field + LONG_FORM_TAIL)
    ctx = EvalContext(acl=acl, geo=acl.geo)
    verdict = evaluate(acl, req, ctx=ctx)
    assert verdict.terminating_rule == (rule or DEFAULT_ACTION)
    for slot in (0, 1):  # what each group finds in its own input, whichever way it was scanned
        inp = acl.scan_inputs[slot]
        (value,) = field_values(req, ctx, inp.field, inp.names, inp.fns)
        assert ctx.hits[slot] == acl.match_groups[slot].scan_one(value)


# -- arguments remembered per name=value part ----------------------------------------------------
PART_RULES = (
    "  - name: exact-b\n    priority: 1\n    action: count\n    statement:\n"
    "      regex_match: {field: all_body_arguments, regex: '^b$'}\n"
    "  - name: spelt-like-a-part\n    priority: 2\n    action: count\n    statement:\n"
    "      regex_match: {field: all_body_arguments, regex: '^a=b$'}\n"
)


def json_post(body: str) -> WafRequest:
    headers = (("Content-Type", "application/json"),)
    return build_request("POST", "/f", headers, body.encode())


@pytest.mark.parametrize("first", ["form", "json"])
def test_a_json_value_spelt_like_a_form_part_has_its_own_answer(
    compile_acl: CompileAcl, first: str
) -> None:
    """A form's answers are remembered per raw part (``a=b``, whose value is ``b``); a JSON
    body's value ``a=b`` must not be answered from that memo, nor the other way round."""
    acl = compile_acl(acl_text(PART_RULES))
    assert acl.prefilter is not None  # the path that looks answers up by part
    expected = {"form": ["exact-b"], "json": ["spelt-like-a-part"]}
    order = ["form", "json"] if first == "form" else ["json", "form"]
    for _ in range(2):  # the second round answers from the memo
        for kind in order:
            req = form("a=b") if kind == "form" else json_post('{"x": "a=b"}')
            assert [m.rule for m in evaluate(acl, req).matches] == expected[kind]


def test_remembered_parts_and_a_new_one_give_every_slots_hits(compile_acl: CompileAcl) -> None:
    """After a form's parts are remembered, a form with one new part: each slot's hits in the
    context are what its group finds in all of the form's values."""
    from wafproxy.acl.engine import field_values
    from wafproxy.acl.model import EvalContext

    acl = compile_acl(acl_text(PART_RULES))
    evaluate(acl, form("a=b&c=d"))
    req = form("c=d&a=b&e=b")
    ctx = EvalContext(acl=acl, geo=acl.geo)
    assert [m.rule for m in evaluate(acl, req, ctx=ctx).matches] == ["exact-b"]
    for slot, group in enumerate(acl.match_groups):
        inp = acl.scan_inputs[slot]
        assert ctx.hits[slot] == group.scan(field_values(req, ctx, inp.field, inp.names, inp.fns))
