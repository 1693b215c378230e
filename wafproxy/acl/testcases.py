"""YAML rule tests: ``request`` -> ``expect: {action, rule, labels}``.

A test file ``X.tests.yaml`` sits beside the rule file ``X.yaml`` it tests. ``wafproxy test``
and pytest (tests/test_rule_files.py) both run them through this module.

    rule_files: [shop.yaml]     # optional; default: X.yaml beside this file
    web_acl: shop               # optional; default: the only web ACL of the rule files
    rule_group: wafproxy-sqli   # or: test one rule group alone (wrapped in an allow-by-default ACL)
    tests:
      - name: sqli in a query argument
        request: {method: GET, uri: "/search?q=1' or '1'='1", headers: {User-Agent: test}}
        expect: {action: block, rule: SQLi_QUERYARGUMENTS, labels: [wafproxy:attack:sqli]}

The format is documented in docs/rule-language.md ("Rule tests").
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from wafproxy.acl.compile import RuleSet, load_rule_files
from wafproxy.acl.engine import evaluate
from wafproxy.acl.model import ActionKind, Verdict
from wafproxy.config.source import Node, load_file, parse
from wafproxy.errors import ConfigError, ConfigErrors, Mark
from wafproxy.rawhttp import RawRequestError, build_request, parse_raw_request
from wafproxy.request import Header, WafRequest

SUFFIX = ".tests.yaml"
WRAPPER_ACL = "rule-group-under-test"


@dataclass(frozen=True)
class Expect:
    action: ActionKind | None
    rule: str | None
    labels: tuple[str, ...]
    absent_labels: tuple[str, ...]


@dataclass(frozen=True)
class RuleTest:
    name: str
    mark: Mark
    request: WafRequest
    expect: Expect


@dataclass(frozen=True)
class TestFile:
    __test__ = False  # not a pytest class

    path: Path
    rule_set: RuleSet
    acl: str
    tests: tuple[RuleTest, ...]


def discover(paths: Iterable[Path]) -> list[Path]:
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(sorted(path.rglob(f"*{SUFFIX}")))
        else:
            out.append(path)
    return out


def load_test_file(path: Path) -> TestFile:
    root = load_file(path)
    opts = root.fields(
        required=["tests"], optional=["rule_files", "web_acl", "rule_group", "paranoia_level"]
    )
    rule_files = _rule_files(path, opts.get("rule_files"))
    extra: list[Node] = []
    if "rule_group" in opts:
        level = opts["paranoia_level"].int(1, 4) if "paranoia_level" in opts else 4
        extra.append(_wrapper(opts["rule_group"], path, level))
    rule_set = load_rule_files(rule_files, extra)
    acl = _pick_acl(rule_set, opts, root)
    errors: list[ConfigError] = []
    tests: list[RuleTest] = []
    for item in opts["tests"].seq():
        try:
            tests.append(_test(item))
        except ConfigError as exc:
            errors.append(exc)
    if errors:
        raise ConfigErrors(errors)
    return TestFile(path, rule_set, acl, tuple(tests))


def run_test(tf: TestFile, test: RuleTest) -> list[str]:
    """Failure messages; empty when the test passes."""
    verdict = evaluate(tf.rule_set.acls[tf.acl], test.request)
    return check(verdict, test.expect)


def check(verdict: Verdict, expect: Expect) -> list[str]:
    problems: list[str] = []
    if verdict.error:
        problems.append(f"evaluation error: {verdict.error}")
    if expect.action is not None and verdict.action is not expect.action:
        problems.append(f"action: expected {expect.action.value}, got {verdict.action.value}")
    rule = deciding_rule(verdict)
    if expect.rule is not None and rule != expect.rule:
        problems.append(f"rule: expected {expect.rule}, got {rule}")
    for label in expect.labels:
        if not any(have == label or have.endswith(":" + label) for have in verdict.labels):
            problems.append(
                f"label {label!r} missing (labels: {', '.join(verdict.labels) or 'none'})"
            )
    for label in expect.absent_labels:
        if any(have == label or have.endswith(":" + label) for have in verdict.labels):
            problems.append(f"label {label!r} present but expected absent")
    return problems


def deciding_rule(verdict: Verdict) -> str:
    """The innermost rule that terminated (a group's own rule, not the group reference)."""
    if verdict.terminating_rule == "Default_Action":
        return "Default_Action"
    for match in reversed(verdict.matches):
        if match.action.terminating:
            return match.rule
    return verdict.terminating_rule


def _rule_files(path: Path, node: Node | None) -> list[Path]:
    if node is not None:
        return [path.parent / name for name in node.str_list()]
    sibling = path.with_name(path.name[: -len(SUFFIX)] + ".yaml")
    return [sibling] if sibling.exists() else []


def _wrapper(node: Node, path: Path, paranoia_level: int) -> Node:
    """A web ACL holding just the group, so its rules can be tested alone (a managed group at
    ``paranoia_level``, by default 4: every rule)."""
    name = node.str()
    from wafproxy.acl.compile import _managed_files

    managed = any(f.stem == name for f in _managed_files())
    if managed:
        statement = f"managed_rule_group: {{name: {name}, paranoia_level: {paranoia_level}}}"
    else:
        statement = f"rule_group: {{ref: {name}}}"
    text = (
        f"web_acl: {WRAPPER_ACL}\ndefault_action: allow\nrules:\n"
        f"  - name: {name}\n    priority: 0\n    override_action: none\n"
        f"    statement: {{{statement}}}\n"
    )
    return parse(text, str(path))


def _pick_acl(rule_set: RuleSet, opts: dict[str, Node], root: Node) -> str:
    if "rule_group" in opts:
        return WRAPPER_ACL
    if "web_acl" in opts:
        name = opts["web_acl"].str()
        if name not in rule_set.acls:
            raise opts["web_acl"].error(f"no web ACL named {name!r} in the rule files")
        return name
    if len(rule_set.acls) != 1:
        raise root.error("say which web_acl to test (the rule files define several)")
    return next(iter(rule_set.acls))


def _test(node: Node) -> RuleTest:
    opts = node.fields(required=["name", "expect"], optional=["request", "raw"])
    if ("request" in opts) == ("raw" in opts):
        raise node.error("a test needs exactly one of request or raw")
    req = _request(opts["request"]) if "request" in opts else _raw(opts["raw"])
    return RuleTest(opts["name"].str(), node.mark, req, _expect(opts["expect"]))


def _request(node: Node) -> WafRequest:
    opts = node.fields(
        required=["uri"],
        optional=["method", "headers", "body", "body_base64", "client_ip", "http_version"],
    )
    headers = _headers(opts["headers"]) if "headers" in opts else ()
    body = _body(node, opts)
    if body and not any(n.lower() == "content-length" for n, _ in headers):
        headers = (*headers, ("Content-Length", str(len(body))))
    return build_request(
        opts["method"].str() if "method" in opts else "GET",
        opts["uri"].str(),
        headers,
        body,
        client_ip=opts["client_ip"].str() if "client_ip" in opts else "192.0.2.10",
        http_version=_http_version(opts["http_version"]) if "http_version" in opts else "HTTP/1.1",
    )


def _body(node: Node, opts: dict[str, Node]) -> bytes:
    """``body`` as UTF-8 text, or ``body_base64`` for bytes that are not (invalid UTF-8, NULs)."""
    if "body" in opts and "body_base64" in opts:
        raise node.error("a request has body or body_base64, not both")
    if "body" in opts:
        return opts["body"].str().encode("utf-8")
    if "body_base64" not in opts:
        return b""
    encoded = opts["body_base64"]
    try:
        return base64.b64decode(encoded.str(), validate=True)
    except (binascii.Error, ValueError):
        raise encoded.expected("standard base64 (A-Z a-z 0-9 + /, = padding)") from None


def _http_version(node: Node) -> str:
    return node.one_of(["HTTP/1.0", "HTTP/1.1"])


def _headers(node: Node) -> tuple[Header, ...]:
    if node.is_map:
        return tuple((k, v.str()) for k, v in node.map().items())
    out: list[Header] = []
    for item in node.seq():
        pair = item.seq()
        if len(pair) != 2:
            raise item.expected("a [name, value] pair")
        out.append((pair[0].str(), pair[1].str()))
    return tuple(out)


def _raw(node: Node) -> WafRequest:
    try:
        return parse_raw_request(node.str().encode("utf-8"))
    except RawRequestError as exc:
        raise node.error(str(exc)) from exc


def _expect(node: Node) -> Expect:
    opts = node.fields(optional=["action", "rule", "labels", "absent_labels"])
    action = ActionKind(opts["action"].one_of(["allow", "block"])) if "action" in opts else None
    return Expect(
        action=action,
        rule=opts["rule"].str() if "rule" in opts else None,
        labels=tuple(opts["labels"].str_list()) if "labels" in opts else (),
        absent_labels=tuple(opts["absent_labels"].str_list()) if "absent_labels" in opts else (),
    )
