"""ACTIONS: a row for every registered action, custom responses and header validation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from wafproxy.acl.actions import ACTIONS, compile_action, response_body
from wafproxy.acl.engine import evaluate
from wafproxy.acl.model import ActionKind, CustomResponse, RuleAction, WebAcl
from wafproxy.config.source import parse
from wafproxy.errors import ConfigError
from wafproxy.rawhttp import build_request

CompileAcl = Callable[[str], WebAcl]

BODIES = {
    "denied": CustomResponse(body=b"denied\n", content_type="text/plain"),
    "page": CustomResponse(body=b"<h1>no</h1>", content_type="text/html"),
}


def action(text: str) -> RuleAction:
    return compile_action(parse(f"action: {text}", "rules.yaml").map()["action"], BODIES)


def action_error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        action(text)
    return str(info.value)


@dataclass(frozen=True)
class Row:
    yaml: str
    expected: RuleAction

    @property
    def name(self) -> str:
        return parse(f"a: {self.yaml}").map()["a"].single_key("action")[0]


ROWS = [
    Row("allow", RuleAction(ActionKind.ALLOW)),
    Row("{allow: {}}", RuleAction(ActionKind.ALLOW)),
    Row("{allow: {custom_request_handling: {insert_headers: [{name: Checked, value: 'yes'}]}}}",
        RuleAction(ActionKind.ALLOW, insert_headers=(("x-wafproxy-checked", "yes"),))),
    Row("count", RuleAction(ActionKind.COUNT)),
    Row("{count: {custom_request_handling: {insert_headers: [{name: a, value: '1'}, "
        "{name: b_2, value: ''}]}}}",
        RuleAction(ActionKind.COUNT,
                   insert_headers=(("x-wafproxy-a", "1"), ("x-wafproxy-b_2", "")))),
    Row("block", RuleAction(ActionKind.BLOCK)),
    Row("{block: {}}", RuleAction(ActionKind.BLOCK)),
    Row("{block: {custom_response: {response_code: 429}}}",
        RuleAction(ActionKind.BLOCK, response=CustomResponse(status=429))),
    Row("{block: {custom_response: {response_code: 403, custom_response_body_key: page, "
        "response_headers: [{name: X-Why, value: policy}]}}}",
        RuleAction(ActionKind.BLOCK, response=CustomResponse(
            status=403, headers=(("X-Why", "policy"),), body=b"<h1>no</h1>",
            content_type="text/html"))),
]  # fmt: skip


def test_every_action_has_a_row() -> None:
    assert {row.name for row in ROWS} == set(ACTIONS)


@pytest.mark.parametrize("row", ROWS, ids=[row.yaml for row in ROWS])
def test_action_row(row: Row) -> None:
    compiled = action(row.yaml)
    assert compiled == row.expected
    assert compiled.terminating is (row.name != "count")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("blok", "rules.yaml:1:9: action: unknown action 'blok'; did you mean 'block'?"),
        ("{allow: {}, block: {}}", "expected exactly one action; got a mapping"),
        ("{block: {custom_response: {response_code: 403, custom_response_body_key: nope}}}",
         "action.block.custom_response.custom_response_body_key: no custom_response_bodies entry "
         "named 'nope'"),
        ("{block: {custom_response: {custom_response_body_key: denied}}}",
         "action.block.custom_response: missing required key 'response_code'"),
        ("{block: {custom_response: {response_code: 600}}}",
         "expected an integer from 200 to 599; got 600"),
        ("{block: {custom_response: {response_code: 199}}}",
         "expected an integer from 200 to 599; got 199"),
        ("{block: {custom_response: {response_code: 403, response_headers: "
         "[{name: 'bad name', value: x}]}}}",
         "response_headers[0].name: expected a header name of letters, digits, '-' and '_'"),
        ("{block: {custom_response: {response_code: 403, response_headers: "
         "[{name: 'x:y', value: x}]}}}", "expected a header name"),
        ("{block: {custom_response: {response_code: 403, response_headers: "
         "[{name: '', value: x}]}}}", "expected a header name"),
        ("{block: {custom_response: {response_code: 403, response_headers: "
         "[{name: ok, value: \"a\\r\\nSet-Cookie: x=1\"}]}}}",
         "response_headers[0].value: header values cannot contain line breaks"),
        ("{allow: {custom_request_handling: {insert_headers: [{name: 'x y', value: '1'}]}}}",
         "insert_headers[0].name: expected a header name"),
        ("{count: {custom_request_handling: {insert_headers: [{name: n}]}}}",
         "insert_headers[0]: missing required key 'value'"),
        ("{count: {custom_request_handling: {}}}", "missing required key 'insert_headers'"),
        ("{allow: {custom_response: {response_code: 403}}}", "unknown key 'custom_response'"),
        ("{block: {custom_request_handling: {insert_headers: []}}}",
         "unknown key 'custom_request_handling'"),
    ],
)  # fmt: skip
def test_action_errors(text: str, message: str) -> None:
    assert message in action_error(text)


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [("text/plain", "text/plain"), ("text/html", "text/html"),
     ("application/json", "application/json"), ("APPLICATION_JSON", "application/json"),
     ("TEXT_HTML", "text/html")],
)  # fmt: skip
def test_response_body_content_types(content_type: str, expected: str) -> None:
    node = parse(f"b: {{content_type: {content_type}, content: '{{}}'}}").map()["b"]
    assert response_body(node) == CustomResponse(body=b"{}", content_type=expected)


def test_response_body_rejects_other_content_types() -> None:
    with pytest.raises(ConfigError) as info:
        response_body(parse("b: {content_type: image/png, content: x}").map()["b"])
    assert "expected one of text/plain, text/html, application/json" in str(info.value)


def test_custom_response_with_an_unknown_body_key_in_a_rule_file(compile_acl: CompileAcl) -> None:
    from wafproxy.errors import ConfigErrors

    with pytest.raises(ConfigErrors) as info:
        compile_acl(
            "web_acl: a\ndefault_action: allow\n"
            "custom_response_bodies: {denied: {content: 'no'}}\nrules:\n"
            "  - name: r\n    priority: 1\n    action: {block: {custom_response: "
            "{response_code: 403, custom_response_body_key: denid}}}\n"
            "    statement: {byte_match: {field: uri_path, constraint: contains, value: x}}\n"
        )
    (error,) = info.value.errors
    assert error.message == "no custom_response_bodies entry named 'denid'"
    assert error.mark is not None and (error.mark.line, error.mark.col) == (7, 86)


def test_custom_response_reaches_the_verdict(compile_acl: CompileAcl) -> None:
    acl = compile_acl(
        "web_acl: a\ndefault_action: allow\n"
        "custom_response_bodies:\n"
        "  slow: {content_type: application/json, content: '{\"wait\": 60}'}\n"
        "rules:\n  - name: r\n    priority: 1\n    action: {block: {custom_response: "
        "{response_code: 429, custom_response_body_key: slow, "
        "response_headers: [{name: Retry-After, value: '60'}]}}}\n"
        "    statement: {byte_match: {field: uri_path, constraint: contains, value: x}}\n"
    )
    verdict = evaluate(acl, build_request("GET", "/x"))
    assert verdict.response == CustomResponse(
        status=429,
        headers=(("Retry-After", "60"),),
        body=b'{"wait": 60}',
        content_type="application/json",
    )
