"""load_rule_files(): golden compile errors (the wording is part of the product), all errors at
once, capacity, warnings, names shared across files, and the scan plan."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from wafproxy.acl.compile import load_rule_files
from wafproxy.acl.model import WebAcl
from wafproxy.cli import main
from wafproxy.errors import ConfigErrors

CompileAcl = Callable[[str], WebAcl]
CompileErrors = Callable[[str], list[str]]

GOLDEN = Path(__file__).parent / "golden"
GOLDEN_NAMES = sorted(p.stem for p in GOLDEN.glob("*.yaml"))


def test_every_golden_rule_file_has_its_expected_output() -> None:
    assert GOLDEN_NAMES
    assert sorted(p.stem for p in GOLDEN.glob("*.txt")) == GOLDEN_NAMES


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_golden_compile_errors(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``wafproxy check -q --rules NAME.yaml`` prints exactly NAME.txt on stderr and exits 1."""
    monkeypatch.chdir(GOLDEN)
    code = main(["check", "-q", "--rules", f"{name}.yaml"])
    out, err = capsys.readouterr()
    assert err == (GOLDEN / f"{name}.txt").read_text(encoding="utf-8")
    assert (code, out) == (1, "")


# -- all errors at once ---------------------------------------------------------------------------
RULE = "  - {name: %s, priority: %d, action: block, statement: %s}\n"
ADMIN = "{byte_match: {field: uri_path, constraint: starts_with, value: /admin}}"
BAD_REGEX = "{regex_match: {field: uri_path, regex: 'a(?=b)'}}"


def test_errors_in_several_files_are_all_reported(tmp_path: Path) -> None:
    acl = tmp_path / "acl.yaml"
    sets = tmp_path / "sets.yaml"
    acl.write_text(
        "web_acl: shop\ndefault_action: allow\nrules:\n"
        + RULE % ("one", 1, BAD_REGEX)
        + RULE % ("two", 2, "{ip_set: {ref: partners}}")
        + RULE % ("three", 3, "{byte_match: {field: body, constraint: contains}}")
    )
    sets.write_text(
        "ip_sets:\n  office: {addresses: [not-an-ip]}\nregex_pattern_sets:\n"
        "  agents: {regular_expressions: ['(a)\\1']}\n"
    )
    with pytest.raises(ConfigErrors) as info:
        load_rule_files([acl, sets])
    text = [str(e).replace(f"{tmp_path}/", "") for e in info.value.errors]
    assert sorted(text) == [
        "acl.yaml:4:95: rules[0].statement.regex_match.regex: invalid regex: lookaround ((?=, (?!, "
        "(?<=, (?<!) is not supported: it needs backtracking; match the surrounding text instead",
        "acl.yaml:5:71: rules[1].statement.ip_set.ref: no IP set named 'partners'",
        "acl.yaml:6:71: rules[2].statement.byte_match: missing required key 'value'",
        "sets.yaml:2:11: ip_sets.office: not an IP address or CIDR: 'not-an-ip'",
        "sets.yaml:4:34: regex_pattern_sets.agents.regular_expressions[0]: invalid regex: "
        "backreferences (\\1) are not supported: they need backtracking",
    ]


GROUP_WITH_BAD_RULE = "rule_groups:\n  guard:\n    rules:\n  " + RULE % ("bad", 1, BAD_REGEX)


def test_errors_in_a_rule_group_no_rule_references_are_reported(
    compile_errors: CompileErrors,
) -> None:
    """`wafproxy check` must find a broken group before someone references it in production."""
    errors = compile_errors(
        "web_acl: shop\ndefault_action: allow\nrules: []\n" + GROUP_WITH_BAD_RULE
    )
    assert len(errors) == 1
    assert errors[0].startswith("rules.yaml:7:")
    assert (
        "rule_groups.guard.rules[0].statement.regex_match.regex: invalid regex: lookaround"
        in (errors[0])
    )


def test_an_error_in_a_group_referenced_twice_is_reported_once(
    compile_errors: CompileErrors,
) -> None:
    ref = (
        "  - {name: %s, priority: %d, override_action: none,\n"
        "     statement: {rule_group: {ref: guard}}}\n"
    )
    errors = compile_errors(
        "web_acl: shop\ndefault_action: allow\nrules:\n"
        + ref % ("first", 1)
        + ref % ("second", 2)
        + GROUP_WITH_BAD_RULE
    )
    assert len(errors) == 1, errors


def test_a_rule_group_cannot_reference_a_rule_group(compile_errors: CompileErrors) -> None:
    errors = compile_errors(
        "web_acl: shop\ndefault_action: allow\nrules:\n"
        "  - {name: outer, priority: 1, override_action: none, statement: {rule_group: {ref: a}}}\n"
        "rule_groups:\n  a:\n    rules:\n"
        "      - {name: inner, priority: 1, override_action: none, "
        "statement: {managed_rule_group: {name: wafproxy-sqli}}}\n"
    )
    assert len(errors) == 1
    assert "a rule group cannot contain a managed_rule_group statement" in errors[0]


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("{name: g, priority: 1, action: block, statement: {rule_group: {ref: a}}}",
         "rules[0].action: a rule group reference takes override_action, not action"),
        ("{name: g, priority: 1, override_action: count, statement: " + ADMIN + "}",
         "rules[0].override_action: override_action is only for rule group references"),
        ("{name: g, priority: 1, statement: " + ADMIN + "}",
         "rules[0]: missing required key 'action'"),
        ("{name: 'bad name', priority: 1, action: block, statement: " + ADMIN + "}",
         "rules[0].name: expected a rule name of 1-128 letters, digits, '-', '_' and '.'"),
        ("{name: g, priority: -1, action: block, statement: " + ADMIN + "}",
         "rules[0].priority: expected an integer >= 0; got -1"),
        ("{name: g, priority: 1, action: block, rule_labels: ['a::b'], statement: " + ADMIN + "}",
         "rules[0].rule_labels[0]: expected a label such as attack:sqli (no empty parts)"),
    ],
)  # fmt: skip
def test_rule_shape_errors(compile_errors: CompileErrors, rule: str, message: str) -> None:
    errors = compile_errors(
        f"web_acl: shop\ndefault_action: allow\nrules:\n  - {rule}\n"
        "rule_groups:\n  a:\n    rules:\n      - {name: x, priority: 1, action: count, "
        f"statement: {ADMIN}}}\n"
    )
    assert len(errors) == 1, errors
    assert message in errors[0]


def test_unknown_top_level_key(compile_errors: CompileErrors) -> None:
    (error,) = compile_errors("web_acl: shop\ndefault_action: allow\nrule:\n  - x\n")
    assert error.startswith("rules.yaml:")
    assert "unknown key 'rule';" in error and "did you mean 'rules'?" in error


def test_no_web_acl(tmp_path: Path) -> None:
    path = tmp_path / "sets.yaml"
    path.write_text("ip_sets:\n  office: {addresses: [10.0.0.0/8]}\n")
    with pytest.raises(ConfigErrors) as info:
        load_rule_files([path])
    assert [str(e) for e in info.value.errors] == ["no web_acl defined in the rule files"]


def test_a_file_that_is_not_a_mapping(compile_errors: CompileErrors) -> None:
    assert compile_errors("- web_acl: shop\n") == ["rules.yaml:1:1: expected a mapping; got a list"]


# -- several files, one namespace -----------------------------------------------------------------
def test_names_are_shared_across_files(tmp_path: Path) -> None:
    (tmp_path / "acl.yaml").write_text(
        "web_acl: shop\ndefault_action: allow\nrules:\n"
        + RULE % ("office", 1, "{ip_set: {ref: office}}")
        + "  - {name: guard, priority: 2, override_action: none, "
        "statement: {rule_group: {ref: guard}}}\n"
    )
    (tmp_path / "sets.yaml").write_text(
        "ip_sets:\n  office: {addresses: [10.0.0.0/8]}\n"
        "rule_groups:\n  guard:\n    rules:\n  " + RULE % ("admin", 1, ADMIN)
    )
    rule_set = load_rule_files([tmp_path / "acl.yaml", tmp_path / "sets.yaml"])
    acl = rule_set.acls["shop"]
    assert [r.name for r in acl.rules] == ["office", "guard"]
    assert rule_set.warnings == ()


def test_a_web_acl_defined_in_two_files(tmp_path: Path) -> None:
    for name in ("a.yaml", "b.yaml"):
        (tmp_path / name).write_text("web_acl: shop\ndefault_action: allow\n")
    with pytest.raises(ConfigErrors) as info:
        load_rule_files([tmp_path / "a.yaml", tmp_path / "b.yaml"])
    text = [str(e).replace(f"{tmp_path}/", "") for e in info.value.errors]
    assert text == ["b.yaml:1:10: web_acl: web ACL 'shop' is already defined at a.yaml:1:1"]


def test_a_set_defined_in_two_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("web_acl: shop\ndefault_action: allow\n" + SETS)
    (tmp_path / "b.yaml").write_text(SETS)
    with pytest.raises(ConfigErrors) as info:
        load_rule_files([tmp_path / "a.yaml", tmp_path / "b.yaml"])
    text = [str(e).replace(f"{tmp_path}/", "") for e in info.value.errors]
    assert text == [
        "b.yaml:2:11: ip_sets.office: ip_sets entry 'office' is defined twice",
        "b.yaml:4:7: regex_pattern_sets.re: regex_pattern_sets entry 're' is defined twice",
    ]


SETS = (
    "ip_sets:\n  office: {addresses: [10.0.0.0/8]}\n"
    "regex_pattern_sets:\n  re: {regular_expressions: [x]}\n"
)


# -- capacity -------------------------------------------------------------------------------------
RICH = """\
web_acl: shop
default_action: allow
ip_sets:
  office: {addresses: [10.0.0.0/8]}
regex_pattern_sets:
  agents: {regular_expressions: ['(?i)sqlmap', nikto]}
rule_groups:
  guard:
    rules:
      - {name: g1, priority: 1, action: block, statement: {xss_match: {field: body}}}
      - {name: g2, priority: 2, action: block,
         statement: {regex_match: {field: uri_path, regex: x}}}
rules:
  - {name: plain, priority: 1, action: block, statement: %(admin)s}
  - name: transformed
    priority: 2
    action: block
    statement:
      byte_match: {field: uri_path, constraint: starts_with, value: /admin,
                   transforms: [url_decode, lowercase]}
  - {name: both, priority: 3, action: block, statement: {and: [%(admin)s, {ip_set: {ref: office}}]}}
  - name: agents
    priority: 4
    action: block
    statement: {regex_pattern_set: {ref: agents, field: {single_header: {name: user-agent}}}}
  - {name: sqli, priority: 5, action: block, statement: {sqli_match: {field: query_string}}}
  - {name: guard, priority: 6, override_action: none, statement: {rule_group: {ref: guard}}}
  - name: managed
    priority: 7
    override_action: none
    statement: {managed_rule_group: {name: wafproxy-core}}
""".replace("%(admin)s", ADMIN)


def test_capacity_is_positive_and_adds_up(compile_acl: CompileAcl) -> None:
    acl = compile_acl(RICH)
    rules = {r.name: r for r in acl.rules}
    assert all(r.capacity > 0 for r in acl.rules)
    assert acl.capacity == sum(r.capacity for r in acl.rules)
    assert rules["transformed"].capacity > rules["plain"].capacity
    both = rules["both"]
    assert both.capacity > rules["plain"].capacity
    for name in ("guard", "managed"):
        group = rules[name].group
        assert group is not None
        assert all(r.capacity > 0 for r in group.rules)
        assert rules[name].capacity == sum(r.capacity for r in group.rules)


def test_a_groups_declared_capacity_is_checked(
    compile_acl: CompileAcl, compile_errors: CompileErrors
) -> None:
    used = next(r for r in compile_acl(RICH).rules if r.name == "guard").capacity
    tight = RICH.replace("  guard:\n", f"  guard:\n    capacity: {used - 1}\n")
    (error,) = compile_errors(tight)
    assert error == (
        f"rules.yaml:9:15: rule_groups.guard.capacity: the group's rules cost {used} "
        f"capacity units; capacity is {used - 1}"
    )
    compile_acl(RICH.replace("  guard:\n", f"  guard:\n    capacity: {used}\n"))


def test_check_prints_each_rules_capacity(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "rich.yaml").write_text(RICH)
    assert main(["check", "--rules", str(tmp_path / "rich.yaml")]) == 0
    out = capsys.readouterr().out
    assert "web ACL shop: capacity" in out
    assert out.rstrip().endswith("ok")


# -- warnings -------------------------------------------------------------------------------------
WARNED = """\
web_acl: shop
default_action: allow
ip_sets:
  office: {addresses: [10.0.0.0/8]}
  unused: {addresses: [192.0.2.0/24]}
regex_pattern_sets:
  idle: {regular_expressions: [x]}
rules:
  - {name: first, priority: 1, action: block, statement: %(admin)s}
  - {name: shadowed, priority: 2, action: count, statement: %(admin)s}
  - {name: office, priority: 3, action: allow, statement: {ip_set: {ref: office}}}
""".replace("%(admin)s", ADMIN)


def test_warnings_for_unused_sets_and_shadowed_rules(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(WARNED)
    warnings = [w.replace(f"{tmp_path}/", "") for w in load_rule_files([path]).warnings]
    assert sorted(warnings) == [
        "rules.yaml:10:5: rule 'shadowed' is shadowed: rule 'first' (priority 1) has the same "
        "statement and a terminating action",
        "rules.yaml:5:11: IP set 'unused' is not used by any rule",
        "rules.yaml:7:9: regex pattern set 'idle' is not used by any rule",
    ]


def test_a_count_rule_shadows_nothing(compile_acl: CompileAcl) -> None:
    text = WARNED.replace("action: block", "action: count").replace(
        "  unused: {addresses: [192.0.2.0/24]}\n", ""
    )
    acl = compile_acl(text.replace("regex_pattern_sets:\n  idle: {regular_expressions: [x]}\n", ""))
    assert acl.warnings == ()


def test_check_prints_warnings_and_succeeds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "rules.yaml").write_text(WARNED)
    assert main(["check", "-q", "--rules", str(tmp_path / "rules.yaml")]) == 0
    err = capsys.readouterr().err
    assert err.count("warning: ") == 3
    assert "IP set 'unused' is not used by any rule" in err


# -- the scan plan --------------------------------------------------------------------------------
def test_atoms_of_one_field_and_chain_share_one_match_group(compile_acl: CompileAcl) -> None:
    acl = compile_acl(
        "web_acl: shop\ndefault_action: allow\nregex_pattern_sets:\n"
        "  agents: {regular_expressions: [sqlmap, nikto]}\nrules:\n"
        + RULE % ("a", 1, ADMIN)
        + RULE % ("b", 2, "{regex_match: {field: uri_path, regex: '\\.php$'}}")
        + RULE % ("c", 3, "{regex_pattern_set: {ref: agents, field: uri_path}}")
        + RULE % ("d", 4, "{regex_match: {field: uri_path, regex: x, transforms: [lowercase]}}")
        + RULE % ("e", 5, "{regex_match: {field: query_string, regex: x}}")
        + RULE % ("f", 6, ADMIN.replace("/admin", "/manage"))
    )
    groups = {(g.field_key, g.transforms): len(g.atom_ids) for g in acl.match_groups}
    assert groups == {("uri_path", ()): 5, ("uri_path", ("lowercase",)): 1, ("query_string", ()): 1}
    assert len(acl.scan_inputs) == len(acl.match_groups)


def test_the_shipped_default_acl_compiles_cleanly() -> None:
    from wafproxy.acl.compile import default_rule_files

    rule_set = load_rule_files(default_rule_files())
    assert list(rule_set.acls) == ["default"]
    assert rule_set.warnings == ()
    assert rule_set.acls["default"].capacity > 0
    assert os.path.basename(rule_set.files[0]) == "default.yaml"


def test_rules_after_a_catch_all_are_reported_unreachable(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "web_acl: w\ndefault_action: allow\nrules:\n"
        "  - name: everything\n    priority: 1\n    action: block\n"
        "    statement: {size_constraint: {field: uri_path, comparison_operator: ge, size: 0}}\n"
        "  - name: later\n    priority: 2\n    action: count\n"
        "    statement: {byte_match: {field: uri_path, constraint: contains, value: x}}\n"
    )
    warnings = load_rule_files([path]).warnings
    assert len(warnings) == 1
    assert "rules.yaml:8:5: rule 'later' (priority 2) is unreachable" in warnings[0]
