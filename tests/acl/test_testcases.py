"""YAML rule tests (X.tests.yaml beside X.yaml): loading, checking, and `wafproxy test`."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from wafproxy.acl.model import ActionKind
from wafproxy.acl.testcases import Expect, check, discover, load_test_file, run_test
from wafproxy.cli import main
from wafproxy.errors import ConfigError, ConfigErrors

SHOP = """\
web_acl: shop
default_action: allow
rule_groups:
  admin-guard:
    rules:
      - name: no-admin
        priority: 1
        action: block
        rule_labels: [admin]
        statement: {byte_match: {field: uri_path, constraint: starts_with, value: /admin}}
rules:
  - name: tag-bots
    priority: 1
    action: count
    rule_labels: [bot]
    statement: {regex_match: {field: {single_header: {name: user-agent}}, regex: '(?i)bot'}}
  - name: guard
    priority: 2
    override_action: none
    statement: {rule_group: {ref: admin-guard}}
  - name: sqli
    priority: 3
    override_action: none
    statement: {managed_rule_group: {name: wafproxy-sqli}}
"""

PASSING = """\
tests:
  - name: a plain page
    request: {uri: /shop}
    expect: {action: allow, rule: Default_Action, absent_labels: [bot]}
  - name: admin is blocked by the group's own rule
    request: {method: GET, uri: /admin/users, headers: {User-Agent: friendly-bot}}
    expect: {action: block, rule: no-admin, labels: [bot, "rulegroup:admin-guard:admin"]}
  - name: sqli in a form
    request:
      method: POST
      uri: /login
      headers: [[Content-Type, application/x-www-form-urlencoded]]
      body: "user=x%27%20or%201%3D1--"
    expect: {action: block, rule: SQLi_BODY, labels: [attack:sqli]}
  - name: a raw request
    raw: "GET /search?q=1'%20or%20'1'='1 HTTP/1.1\\r\\nHost: shop\\r\\n\\r\\n"
    expect: {action: block, rule: SQLi_QUERYARGUMENTS}
"""

FAILING = """\
tests:
  - name: right
    request: {uri: /admin}
    expect: {action: block}
  - name: wrong on purpose
    request: {uri: /shop}
    expect: {action: block, rule: no-admin, labels: [admin], absent_labels: []}
  - name: label that should be absent
    request: {uri: /, headers: {User-Agent: bot}}
    expect: {absent_labels: [bot]}
"""


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    (tmp_path / "shop.yaml").write_text(SHOP)
    return tmp_path


def test_a_passing_test_file(shop: Path) -> None:
    path = shop / "shop.tests.yaml"
    path.write_text(PASSING)
    tf = load_test_file(path)
    assert tf.acl == "shop"
    assert tf.tests[0].name == "a plain page"
    assert [t.mark.line for t in tf.tests] == [2, 5, 8, 15]
    assert [run_test(tf, t) for t in tf.tests] == [[], [], [], []]


def test_failure_messages(shop: Path) -> None:
    path = shop / "shop.tests.yaml"
    path.write_text(FAILING)
    tf = load_test_file(path)
    assert [run_test(tf, t) for t in tf.tests] == [
        [],
        [
            "action: expected block, got allow",
            "rule: expected no-admin, got Default_Action",
            "label 'admin' missing (labels: none)",
        ],
        ["label 'bot' present but expected absent"],
    ]


def test_check_reports_an_evaluation_error() -> None:
    from wafproxy.acl.model import Verdict

    verdict = Verdict(ActionKind.BLOCK, "Evaluation_Error", error="boom")
    assert check(verdict, Expect(ActionKind.BLOCK, None, (), ())) == ["evaluation error: boom"]


def test_the_cli_exit_code_and_output(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (shop / "shop.tests.yaml").write_text(PASSING)
    assert main(["test", str(shop / "shop.tests.yaml")]) == 0
    assert capsys.readouterr().out == "4 passed, 0 failed\n"
    assert main(["test", "-v", str(shop)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"ok   {shop / 'shop.tests.yaml'}:2:5 a plain page"
    assert out[-1] == "4 passed, 0 failed"

    (shop / "shop.tests.yaml").write_text(FAILING)
    assert main(["test", str(shop)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"FAIL {shop / 'shop.tests.yaml'}:5:5 wrong on purpose",
        "     action: expected block, got allow",
        "     rule: expected no-admin, got Default_Action",
        "     label 'admin' missing (labels: none)",
        f"FAIL {shop / 'shop.tests.yaml'}:8:5 label that should be absent",
        "     label 'bot' present but expected absent",
        "1 passed, 2 failed",
    ]


def test_no_test_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test", str(tmp_path)]) == 1
    assert capsys.readouterr().out == "no *.tests.yaml files found\n"


def test_a_broken_test_file_is_an_error(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = shop / "shop.tests.yaml"
    path.write_text(
        "tests:\n  - name: neither\n    expect: {action: allow}\n"
        "  - name: bad action\n    request: {uri: /}\n    expect: {action: count}\n"
    )
    assert main(["test", str(path)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"ERROR {path}:2:5: tests[0]: a test needs exactly one of request or raw",
        f"ERROR {path}:6:22: tests[1].expect.action: expected one of allow, block; got 'count'",
        "0 passed, 1 failed",
    ]
    with pytest.raises(ConfigErrors):
        load_test_file(path)


def test_testing_a_rule_group_alone(tmp_path: Path) -> None:
    path = tmp_path / "sqli.tests.yaml"
    path.write_text(
        "rule_group: wafproxy-sqli\ntests:\n"
        "  - name: cookie\n    request: {uri: /, headers: {Cookie: \"id=1' or '1'='1\"}}\n"
        "    expect: {action: block, rule: SQLi_COOKIE, labels: [wafproxy:attack:sqli]}\n"
        "  - name: clean\n    request: {uri: /?q=O'Brien}\n    expect: {action: allow}\n"
    )
    tf = load_test_file(path)
    assert [run_test(tf, t) for t in tf.tests] == [[], []]


def test_testing_a_custom_rule_group_alone(shop: Path) -> None:
    path = shop / "guard.tests.yaml"
    path.write_text(
        "rule_files: [shop.yaml]\nrule_group: admin-guard\ntests:\n"
        "  - name: admin\n    request: {uri: /admin}\n    expect: {action: block, rule: no-admin}\n"
        "  - name: sqli is not this group's job\n    request: {uri: \"/?q=1' or 1=1--\"}\n"
        "    expect: {action: allow}\n"
    )
    tf = load_test_file(path)
    assert [run_test(tf, t) for t in tf.tests] == [[], []]


def test_choosing_the_web_acl(shop: Path) -> None:
    (shop / "other.yaml").write_text("web_acl: other\ndefault_action: block\n")
    path = shop / "both.tests.yaml"
    body = "tests:\n  - name: t\n    request: {uri: /}\n    expect: {action: block}\n"
    path.write_text("rule_files: [shop.yaml, other.yaml]\n" + body)
    with pytest.raises(ConfigError, match="say which web_acl to test"):
        load_test_file(path)
    path.write_text("rule_files: [shop.yaml, other.yaml]\nweb_acl: other\n" + body)
    tf = load_test_file(path)
    assert [run_test(tf, t) for t in tf.tests] == [[]]
    path.write_text("rule_files: [shop.yaml]\nweb_acl: nope\n" + body)
    with pytest.raises(ConfigError, match="no web ACL named 'nope' in the rule files"):
        load_test_file(path)


def test_discover(shop: Path) -> None:
    (shop / "sub").mkdir()
    for name in ("b.tests.yaml", "sub/a.tests.yaml", "shop.yaml", "notes.txt"):
        (shop / name).write_text("")
    single = shop / "explicit.yaml"
    assert discover([shop, single]) == [
        shop / "b.tests.yaml",
        shop / "sub" / "a.tests.yaml",
        single,
    ]


def test_a_body_that_is_not_utf8_comes_as_base64(tmp_path: Path) -> None:
    """Raw overlong UTF-8 (``..\\xc0\\xaf``, "../" to a lenient decoder) in a form body: only
    bytes can say it, and the core group's LFI rule must see them as sent."""
    body = b"file=..\xc0\xafetc"
    path = tmp_path / "core.tests.yaml"
    path.write_text(
        "rule_group: wafproxy-core\ntests:\n"
        "  - name: overlong slash in a form field\n"
        "    request:\n"
        "      method: POST\n"
        "      uri: /f\n"
        "      http_version: HTTP/1.0\n"
        "      headers: {User-Agent: t, Content-Type: application/x-www-form-urlencoded}\n"
        f"      body_base64: {base64.b64encode(body).decode()}\n"
        "    expect: {action: block, rule: GenericLFI_BODY}\n"
    )
    tf = load_test_file(path)
    (test,) = tf.tests
    assert test.request.body == body
    assert test.request.http_version == "HTTP/1.0"
    assert run_test(tf, test) == []


@pytest.mark.parametrize(
    ("request_yaml", "message"),
    [
        ("{uri: /, body: x, body_base64: eA==}", "a request has body or body_base64, not both"),
        ("{uri: /, body_base64: 'not base64!'}", "expected standard base64"),
        ("{uri: /, http_version: HTTP/3}", "expected one of HTTP/1.0, HTTP/1.1; got 'HTTP/3'"),
    ],
)
def test_bad_request_bodies_and_versions_are_errors(
    shop: Path, request_yaml: str, message: str
) -> None:
    path = shop / "shop.tests.yaml"
    path.write_text(f"tests:\n  - name: t\n    request: {request_yaml}\n    expect: {{}}\n")
    with pytest.raises(ConfigErrors) as caught:
        load_test_file(path)
    assert message in str(caught.value)
