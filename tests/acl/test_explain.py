"""``wafproxy explain``: every step of one evaluation, from --url/-H/--data or a raw HTTP file."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from wafproxy.cli import main

RULES = """\
web_acl: shop
default_action: allow
rules:
  - name: scanner-agents
    priority: 1
    action: count
    rule_labels: [bot:scanner]
    statement:
      regex_match: {field: {single_header: {name: user-agent}}, regex: '(?i)sqlmap|nikto',
                    transforms: [lowercase]}
  - name: script-in-query
    priority: 2
    action: block
    statement:
      byte_match: {field: all_query_arguments, constraint: contains, value: '<script',
                   transforms: [url_decode, lowercase]}
  - name: api-sqli
    priority: 3
    override_action: none
    statement:
      managed_rule_group:
        name: wafproxy-sqli
        scope_down_statement: {byte_match: {field: uri_path, constraint: starts_with, value: /api}}
  - name: huge-method
    priority: 4
    action: block
    statement: {size_constraint: {field: method, comparison_operator: gt, size: 10}}
"""


def explain(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    code = main(["explain", *args])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    path = tmp_path / "shop.yaml"
    path.write_text(RULES)
    return path


def section(lines: list[str], header: str) -> list[str]:
    """The indented lines printed under the rule line starting with ``header``."""
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    out = []
    for line in lines[start + 1 :]:
        if not line.startswith("      "):
            break
        out.append(line)
    return out


def test_explain_a_url_with_the_shipped_rules(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, err = explain(capsys, "--url", "/search?q=<script>")
    assert (code, err) == (0, "")
    assert lines[0] == "request: GET /search?q=<script>"
    assert lines[1].startswith("web ACL: default (")
    # the shipped default scores: a matching rule counts and adds to the anomaly score
    rule = "  [70] wafproxy-core/CrossSiteScripting_QUERYARGUMENTS (count): MATCH"
    assert rule in lines
    assert section(lines, rule) == [
        "      all_query_arguments (as sent): ['<script>']",
        "      all_query_arguments url_decode_uni: ['<script>']",
        "      all_query_arguments url_decode_uni -> url_decode_uni: ['<script>']",
        "      xss_match on all_query_arguments: MATCH",
        "      labels added: wafproxy:attack:xss, wafproxy:core:CrossSiteScripting_QUERYARGUMENTS",
    ]
    assert "wafproxy:attack:xss" in lines[-2].split(", ")
    assert lines[-1] == "verdict: BLOCK by anomaly-threshold"


def test_explain_shows_patterns_transformations_and_labels(
    capsys: pytest.CaptureFixture[str], rules: Path
) -> None:
    code, lines, _ = explain(
        capsys,
        "--rules",
        str(rules),
        "--url",
        "/search?q=%3CSCRIPT%3E",
        "-H",
        "User-Agent: sqlmap/1.0",
    )
    assert code == 0
    assert lines[1] == "web ACL: shop (4 rules, 13 scan groups)"
    scanner = section(lines, "  [1] scanner-agents (count): MATCH")
    assert scanner[:2] == [
        "      single_header:user-agent (as sent): ['sqlmap/1.0']",
        "      single_header:user-agent lowercase: ['sqlmap/1.0']",
    ]
    assert scanner[3] == "      labels added: webacl:shop:bot:scanner"
    script = section(lines, "  [2] script-in-query (block): MATCH")
    assert script[:3] == [
        "      all_query_arguments (as sent): ['%3CSCRIPT%3E']",
        "      all_query_arguments url_decode: ['<SCRIPT>']",
        "      all_query_arguments url_decode -> lowercase: ['<script>']",
    ]
    assert lines[-2:] == ["labels: webacl:shop:bot:scanner", "verdict: BLOCK by script-in-query"]
    # the pattern lines say which pattern was looked for, not an internal atom number
    assert scanner[2] == "      pattern '(?i)sqlmap|nikto' on single_header:user-agent: MATCH"
    assert script[3].startswith("      pattern '") and "script" in script[3], script[3]
    assert script[3].endswith(" on all_query_arguments: MATCH")


def test_explain_a_request_no_rule_matches(capsys: pytest.CaptureFixture[str], rules: Path) -> None:
    code, lines, _ = explain(capsys, "--rules", str(rules), "--url", "/search?q=shoes")
    assert code == 0
    assert "  [1] scanner-agents (count): no match" in lines
    assert "      single_header:user-agent (as sent): []" in lines
    assert "  group api-sqli: scope-down statement did not match; group skipped" in lines
    assert lines[-2:] == ["labels: none", "verdict: ALLOW by Default_Action"]


def test_scope_down_steps_are_not_shown_under_the_next_rule(
    capsys: pytest.CaptureFixture[str], rules: Path
) -> None:
    _, lines, _ = explain(capsys, "--rules", str(rules), "--url", "/search?q=shoes")
    assert section(lines, "  [4] huge-method (block): no match") == [
        "      method (as sent): ['GET']"
    ]


def test_explain_a_raw_request_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    body = b"user=bob&password=x%27%20or%201%3D1--"
    raw = tmp_path / "login.http"
    raw.write_bytes(
        b"POST /login HTTP/1.1\r\nHost: shop.example\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    code, lines, _ = explain(capsys, "--raw", str(raw), "--client-ip", "192.0.2.1")
    assert code == 0
    assert lines[0] == "request: POST /login"
    xss = "  [71] wafproxy-core/CrossSiteScripting_BODY (count): no match"
    values = "      all_body_arguments (as sent): ['bob', 'x%27%20or%201%3D1--']"
    assert values in section(lines, xss)
    assert "  [11] wafproxy-sqli/SQLi_BODY (count): MATCH" in lines
    assert lines[-1] == "verdict: BLOCK by anomaly-threshold"


def test_every_rule_shows_its_field_values(capsys: pytest.CaptureFixture[str]) -> None:
    """Values are computed once per request and cached; a later rule inspecting the same field
    through the same transformations must still show them."""
    _, lines, _ = explain(capsys, "--url", "/search?q=1'%20or%201=1--")
    xss = section(lines, "  [70] wafproxy-core/CrossSiteScripting_QUERYARGUMENTS (count): no match")
    sqli = section(lines, "  [10] wafproxy-sqli/SQLi_QUERYARGUMENTS (count): MATCH")
    shown = '      all_query_arguments url_decode_uni -> url_decode_uni: ["1\' or 1=1--"]'
    assert shown in xss
    assert shown in sqli


def test_explain_a_raw_request_from_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = b"GET /files/..%2f..%2fetc/passwd HTTP/1.1\nHost: x\n\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    code, lines, _ = explain(capsys, "--raw", "-")
    assert code == 0
    assert "  [43] wafproxy-core/GenericLFI_URIPATH (count): MATCH" in lines
    assert lines[-1] == "verdict: BLOCK by anomaly-threshold"


def test_explain_with_data(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "body.json").write_text('{"comment": "<img src=x onerror=alert(1)>"}')
    code, lines, _ = explain(
        capsys,
        "--method",
        "POST",
        "--url",
        "http://shop/api/comments",
        "-H",
        "Content-Type: application/json",
        "--data",
        f"@{tmp_path / 'body.json'}",
    )
    assert code == 0
    assert lines[0] == "request: POST /api/comments"
    assert "  [71] wafproxy-core/CrossSiteScripting_BODY (count): MATCH" in lines
    assert lines[-1] == "verdict: BLOCK by anomaly-threshold"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--url", "/", "--web-acl", "nope"], "error: no web ACL named 'nope'; have default\n"),
        ([], "error: give the request with --raw FILE or --url URL\n"),
        (["--url", "/", "-H", "no colon"], "error: a header is 'Name: value', got 'no colon'\n"),
        (["--raw", "{raw}"], "error: not an HTTP request line: 'hello'\n"),
    ],
)
def test_explain_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], message: str
) -> None:
    raw = tmp_path / "bad.http"
    raw.write_text("hello\n\n")
    code, _, err = explain(capsys, *[a.replace("{raw}", str(raw)) for a in args])
    assert (code, err) == (1, message)


def test_explain_with_broken_rules(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("web_acl: x\ndefault_action: maybe\n")
    code, out, err = explain(capsys, "--rules", str(path), "--url", "/")
    assert (code, out) == (1, [])
    assert err == f"{path}:2:17: default_action: unknown action 'maybe'\n1 error\n"
