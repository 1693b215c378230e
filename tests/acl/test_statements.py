"""STATEMENTS: one table row (or error row) for every registered statement, each row a statement
in a real rule file and requests it must or must not match."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from wafproxy.acl.compile import load_rule_files
from wafproxy.acl.engine import evaluate
from wafproxy.acl.model import WebAcl
from wafproxy.acl.statements import STATEMENTS
from wafproxy.config.source import parse
from wafproxy.errors import ConfigErrors
from wafproxy.rawhttp import build_request
from wafproxy.request import Header, WafRequest

CompileAcl = Callable[[str], WebAcl]
CompileErrors = Callable[[str], list[str]]

OUTSIDE = "203.0.113.1"
"""An address in no IP set and unknown to the test MaxMind databases."""


def req(
    target: str = "/",
    *headers: Header,
    ip: str = OUTSIDE,
    body: bytes = b"",
    method: str = "GET",
    inspect: int = 16 * 1024,
) -> WafRequest:
    return build_request(method, target, headers, body, client_ip=ip, inspect_body_bytes=inspect)


def xff(value: str, ip: str = OUTSIDE) -> WafRequest:
    return req("/", ("X-Forwarded-For", value), ip=ip)


def ua(value: str) -> WafRequest:
    return req("/", ("User-Agent", value))


def post(body: bytes, inspect: int = 16 * 1024) -> WafRequest:
    return req("/", ("Content-Type", "text/plain"), body=body, method="POST", inspect=inspect)


def json_post(body: bytes) -> WafRequest:
    return req("/", ("Content-Type", "application/json"), body=body, method="POST")


Case = tuple[WafRequest, bool]


@dataclass(frozen=True)
class Row:
    id: str
    statement: str
    """A YAML flow mapping: the rule's statement."""
    cases: tuple[Case, ...]

    @property
    def name(self) -> str:
        return next(iter(parse(self.statement).map()))


@dataclass(frozen=True)
class ErrorRow:
    id: str
    name: str
    statement: str
    message: str
    """Expected in the one compile error (after ``rules.yaml:line:col: path: ``)."""


def on_path(constraint: str, value: str, transforms: str = "") -> str:
    extra = f", transforms: [{transforms}]" if transforms else ""
    return f"{{byte_match: {{field: uri_path, constraint: {constraint}, value: '{value}'{extra}}}}}"


def size(op: str, n: int = 5) -> str:
    return f"{{size_constraint: {{field: query_string, comparison_operator: {op}, size: {n}}}}}"


def fwd(position: str, fallback: str = "no_match", ref: str = "v4") -> str:
    return (
        f"{{ip_set: {{ref: {ref}, forwarded_ip_config: {{header_name: X-Forwarded-For, "
        f"fallback_behavior: {fallback}, position: {position}}}}}}}"
    )


def body_match(handling: str | None) -> str:
    field = "body" if handling is None else f"{{body: {{oversize_handling: {handling}}}}}"
    return f"{{byte_match: {{field: {field}, constraint: contains, value: ATTACK}}}}"


def json_match(fallback: str, scope: str = "value") -> str:
    return (
        "{byte_match: {field: {json_body: {match_pattern: {all: {}}, match_scope: "
        f"{scope}, invalid_fallback_behavior: {fallback}}}}}, constraint: contains, value: evil}}}}"
    )


PAD = b"." * 100
A_B = ["{byte_match: {field: uri_path, constraint: starts_with, value: /a}}",
       "{byte_match: {field: uri_path, constraint: ends_with, value: .php}}"]  # fmt: skip
SQLI = "{sqli_match: {field: all_query_arguments, transforms: [url_decode]%s}}"
SPLIT_UNION = "/?q=1%20UN/**/ION%20SEL/**/ECT%201,2"
ELEVEN = ", ".join(["192.0.2.1"] + [f"203.0.113.{i}" for i in range(10)])

ROWS = [
    # -- byte_match: all five constraints, case sensitivity ------------------------------------
    Row("exactly", on_path("exactly", "/admin"),
        ((req("/admin"), True), (req("/admin/"), False), (req("/x/admin"), False))),
    Row("starts_with", on_path("starts_with", "/admin"),
        ((req("/admin/x"), True), (req("/x/admin"), False))),
    Row("ends_with", on_path("ends_with", ".php"),
        ((req("/a.php"), True), (req("/a.php/x"), False), (req("/a.PHP"), False))),
    Row("contains", on_path("contains", "admin"),
        ((req("/x/admin/y"), True), (req("/adm"), False), (req("/ADMIN"), False))),
    Row("contains_word", on_path("contains_word", "admin"),
        ((req("/admin"), True), (req("/x/admin/y"), True), (req("/x-admin.php"), True),
         (req("/administrator"), False), (req("/x_admin"), False), (req("/sysadmin"), False))),
    Row("lowercase-first", on_path("contains", "admin", "lowercase"),
        ((req("/ADMIN"), True), (req("/Adm"), False))),
    Row("on-a-header", "{byte_match: {field: {single_header: {name: X-Api}}, constraint: exactly, "
        "value: key}}", ((req("/", ("x-api", "key")), True), (req("/", ("x-api", "key2")), False),
                         (req("/"), False))),
    # -- regex_match, regex_pattern_set ------------------------------------------------------------
    Row("regex", "{regex_match: {field: {single_header: {name: user-agent}}, "
        "regex: '(?i)sqlmap|nikto'}}",
        ((ua("SQLMap/1.5"), True), (ua("Mozilla/5.0"), False), (req("/"), False))),
    Row("regex-anchored", "{regex_match: {field: query_string, regex: '^id=[0-9]+$', "
        "transforms: [url_decode]}}",
        ((req("/?id=12"), True), (req("/?id=%31%32"), True), (req("/?id=12x"), False))),
    Row("regex_pattern_set", "{regex_pattern_set: {ref: agents, "
        "field: {single_header: {name: user-agent}}}}",
        ((ua("sqlmap"), True), (ua("curl/8.0"), True), (ua("x curl/8.0"), False))),
    # -- ip_set ------------------------------------------------------------------------------------
    Row("ip_set-v4", "{ip_set: {ref: v4}}",
        ((req(ip="192.0.2.77"), True), (req(ip="192.0.3.1"), False),
         (req(ip="::ffff:192.0.2.9"), True), (req(ip="2001:db8::1"), False))),
    Row("ip_set-v6", "{ip_set: {ref: v6}}",
        ((req(ip="2001:db8::5"), True), (req(ip="2001:db8:ffff::1"), True),
         (req(ip="2001:db9::1"), False), (req(ip="192.0.2.77"), False))),
    Row("forwarded-first", fwd("first"),
        ((xff("192.0.2.5, 203.0.113.9"), True), (xff("203.0.113.9, 192.0.2.5"), False),
         (xff("203.0.113.9", ip="192.0.2.5"), False), (xff("192.0.2.5, not-an-ip"), True),
         (req("/", ("x-forwarded-for", "192.0.2.5")), True))),
    Row("forwarded-last", fwd("last"),
        ((xff("203.0.113.9, 192.0.2.5"), True), (xff("192.0.2.5, 203.0.113.9"), False))),
    Row("forwarded-any", fwd("any", ref="both"),
        ((xff("203.0.113.9, 192.0.2.5, 198.51.100.1"), True),
         (xff("203.0.113.9, 2001:db8::7"), True),
         (xff("203.0.113.9, 198.51.100.1"), False), (xff(ELEVEN), False),
         (xff(ELEVEN + ", 192.0.2.9"), True))),
    Row("fallback-match", fwd("first", "match"),
        ((xff("garbage"), True), (xff(""), True), (xff("203.0.113.9"), False),
         # AWS: "If the specified header isn't present in the request, AWS WAF doesn't apply the
         # rule to the web request at all" -- the fallback is for an invalid address only
         (req("/"), False))),
    Row("fallback-no_match", fwd("last", "no_match"),
        ((xff("garbage"), False), (xff("192.0.2.5"), True), (req("/", ip="192.0.2.5"), False))),
    # -- geo_match, asn_match (tiny MaxMind databases built by conftest) -------------------------
    Row("geo_match", "{geo_match: {country_codes: [NL]}}",
        ((req(ip="192.0.2.7"), True), (req(ip="2001:db8::1"), True),
         (req(ip="198.51.100.7"), False), (req(ip=OUTSIDE), False))),
    Row("geo_match-two", "{geo_match: {country_codes: [BE, US]}}",
        ((req(ip="198.51.100.7"), True), (req(ip="192.0.2.7"), False))),
    Row("geo_match-forwarded", "{geo_match: {country_codes: [NL], forwarded_ip_config: "
        "{header_name: X-Real-IP, fallback_behavior: match}}}",
        ((req("/", ("X-Real-IP", "192.0.2.7")), True), (req("/", ("X-Real-IP", "bad")), True),
         (req("/", ("X-Real-IP", "198.51.100.7"), ip="192.0.2.7"), False),
         (req("/", ip="192.0.2.7"), False))),
    Row("asn_match", "{asn_match: {asn_list: [64500, 64511]}}",
        ((req(ip="192.0.2.7"), True), (req(ip="198.51.100.7"), False), (req(ip=OUTSIDE), False))),
    Row("asn_match-other", "{asn_match: {asn_list: [64501]}}", ((req(ip="192.0.2.7"), False),)),
    # -- size_constraint: every operator; bytes after transforms; the whole body -----------------
    Row("size-eq", size("eq"),
        ((req("/?abcde"), True), (req("/?abcd"), False), (req("/?abcdef"), False))),
    Row("size-ne", size("ne"), ((req("/?abcde"), False), (req("/?abcd"), True))),
    Row("size-le", size("le"),
        ((req("/?abcd"), True), (req("/?abcde"), True), (req("/?abcdef"), False))),
    Row("size-lt", size("lt"), ((req("/?abcd"), True), (req("/?abcde"), False))),
    Row("size-ge", size("ge"),
        ((req("/?abcde"), True), (req("/?abcdef"), True), (req("/?abcd"), False))),
    Row("size-gt", size("gt"), ((req("/?abcdef"), True), (req("/?abcde"), False))),
    Row("size-bytes", "{size_constraint: {field: {single_query_argument: {name: q}}, "
        "comparison_operator: eq, size: 2, transforms: [url_decode]}}",
        ((req("/?q=%41%42"), True), (req("/?q=%C3%A9"), True), (req("/?q=abc"), False))),
    Row("size-remembered-per-value",  # answers are remembered per raw value: asked again
        "{size_constraint: {field: {single_header: {name: user-agent}}, comparison_operator: eq, "
        "size: 0, transforms: [trim]}}",
        ((ua("  "), True), (ua("x"), False), (ua("  "), True), (ua(" x "), False), (req("/"), True),
         (ua("x"), False), (ua("  "), True))),
    Row("size-remembered-each-value",
        "{size_constraint: {field: all_query_arguments, comparison_operator: gt, size: 3, "
        "transforms: [url_decode]}}",
        ((req("/?a=1&b=%41%42%43%44"), True), (req("/?a=1&b=%41%42"), False),
         (req("/?b=%41%42&a=1"), False), (req("/?a=1&b=%41%42%43%44"), True), (req("/"), False))),
    Row("size-long-values",  # too long to remember: answered through the request's chain cache
        "{size_constraint: {field: query_string, comparison_operator: gt, size: 280, "
        "transforms: [url_decode]}}",
        ((req("/?" + "a" * 300), True), (req("/?" + "%41" * 100 + "a" * 10), False),
         (req("/?" + "a" * 300), True))),
    Row("size-whole-body", "{size_constraint: {field: body, comparison_operator: gt, size: 100}}",
        ((post(b"x" * 200, inspect=16), True), (post(b"x" * 50), False))),
    Row("size-whole-body-lt",
        "{size_constraint: {field: body, comparison_operator: lt, size: 100}}",
        ((post(b"x" * 200, inspect=16), False), (post(b"x" * 50, inspect=16), True))),
    # -- sqli_match, xss_match ---------------------------------------------------------------------
    Row("sqli-low", SQLI % "",
        ((req("/?q=1'%20or%201=1--"), True), (req("/?q=O'Brien"), False),
         (req(SPLIT_UNION), False))),
    Row("sqli-high", SQLI % ", sensitivity_level: high",
        ((req(SPLIT_UNION), True), (req("/?q=1'%20or%201=1--"), True),
         (req("/?q=O'Brien"), False))),
    Row("xss", "{xss_match: {field: all_query_arguments, transforms: [url_decode]}}",
        ((req("/?q=%3Cscript%3Ealert(1)%3C/script%3E"), True),
         (req("/?q=%3Cimg%20src=x%20onerror=alert(1)%3E"), True), (req("/?q=hello"), False))),
    Row("xss-body", "{xss_match: {field: body}}",
        ((post(b"<svg onload=alert(1)>"), True), (post(b"a < b and c > d"), False))),
    # -- label_match -------------------------------------------------------------------------------
    Row("label", "{label_match: {scope: label, key: 'seen:it'}}",
        ((req("/", ("X-Label", "yes")), True), (req("/"), False))),
    Row("label-namespace", "{label_match: {scope: namespace, key: 'seen:'}}",
        ((req("/", ("X-Label", "yes")), True), (req("/"), False))),
    # -- anomaly_score (no scoring group here: the score stays 0) ----------------------------------
    Row("anomaly-score-ge-0", "{anomaly_score: {comparison_operator: ge, score: 0}}",
        ((req("/"), True),)),
    Row("anomaly-score-gt-0", "{anomaly_score: {comparison_operator: gt, score: 0}}",
        ((req("/?q=anything"), False),)),
    # -- and / or / not ----------------------------------------------------------------------------
    Row("and", f"{{and: [{A_B[0]}, {A_B[1]}]}}",
        ((req("/a/x.php"), True), (req("/a/x"), False), (req("/b/x.php"), False))),
    Row("or", f"{{or: [{A_B[0]}, {A_B[1]}]}}",
        ((req("/a/x"), True), (req("/b/x.php"), True), (req("/b/x"), False))),
    Row("not", f"{{not: {A_B[0]}}}", ((req("/a"), False), (req("/b"), True))),
    Row("nested", f"{{and: [{{not: {A_B[0]}}}, {{or: [{A_B[1]}, {{ip_set: {{ref: v4}}}}]}}]}}",
        ((req("/b.php"), True), (req("/b", ip="192.0.2.1"), True), (req("/a.php"), False))),
    # -- oversize handling and invalid JSON --------------------------------------------------------
    Row("oversize-continue", body_match(None),
        ((post(b"xxATTACK" + PAD, inspect=16), True), (post(PAD + b"ATTACK", inspect=16), False))),
    Row("oversize-continue-explicit", body_match("continue"),
        ((post(b"xxATTACK" + PAD, inspect=16), True), (post(PAD + b"ATTACK", inspect=16), False))),
    Row("oversize-match", body_match("match"),
        ((post(PAD, inspect=16), True), (post(b"short", inspect=16), False),
         (post(b"ATTACK", inspect=16), True))),
    Row("oversize-no_match", body_match("no_match"),
        ((post(b"xxATTACK" + PAD, inspect=16), False), (post(b"ATTACK", inspect=16), True))),
    Row("json-fallback-match", json_match("match"),
        ((json_post(b"{not json"), True), (json_post(b'{"a": "good"}'), False),
         (json_post(b'{"a": "evil"}'), True))),
    Row("json-fallback-no_match", json_match("no_match"),
        ((json_post(b'{"evil'), False), (json_post(b'{"a": ["evil"]}'), True))),
    Row("json-fallback-as-string", json_match("evaluate_as_string"),
        ((json_post(b'{"evil'), True), (json_post(b'{"good'), False),
         (json_post(b'{"a": "evil"}'), True))),
    Row("json-keys", json_match("no_match", scope="key"),
        ((json_post(b'{"evil": 1}'), True), (json_post(b'{"a": "evil"}'), False))),
]  # fmt: skip

ERROR_ROWS = [
    ErrorRow("rate_based", "rate_based", f"{{and: [{{rate_based: {{limit: 100}}}}, {A_B[0]}]}}",
             "rate_based can only be the top-level statement of a rule"),
    ErrorRow("rule_group-nested", "rule_group",
             f"{{and: [{{rule_group: {{ref: grp}}}}, {A_B[0]}]}}",
             "rule_group can only be the top-level statement of a rule"),
    ErrorRow("managed_rule_group-nested", "managed_rule_group",
             "{not: {managed_rule_group: {name: wafproxy-sqli}}}",
             "managed_rule_group can only be the top-level statement of a rule"),
    ErrorRow("and-of-one", "and", f"{{and: [{A_B[0]}]}}",
             "expected a list of at least two statements"),
    ErrorRow("not-of-a-list", "not", f"{{not: [{A_B[0]}, {A_B[1]}]}}", "expected"),
    ErrorRow("bad-operator", "size_constraint",
             "{size_constraint: {field: body, comparison_operator: gte, size: 1}}",
             "expected one of eq, ne, le, lt, ge, gt; got 'gte'"),
    ErrorRow("bad-sensitivity", "sqli_match",
             "{sqli_match: {field: body, sensitivity_level: medium}}",
             "expected one of low, high; got 'medium'"),
    ErrorRow("bad-scope", "label_match", "{label_match: {scope: labels, key: a}}",
             "expected one of label, namespace; got 'labels'"),
    ErrorRow("bad-country", "geo_match", "{geo_match: {country_codes: [nl]}}",
             "expected a two-letter upper-case country code"),
    ErrorRow("bad-position", "ip_set", "{ip_set: {ref: v4, forwarded_ip_config: {header_name: "
             "X-Forwarded-For, fallback_behavior: match, position: middle}}}",
             "expected one of first, last, any; got 'middle'"),
    ErrorRow("geo-position", "geo_match", "{geo_match: {country_codes: [NL], forwarded_ip_config: "
             "{header_name: X-Real-IP, fallback_behavior: match, position: last}}}",
             "unknown key 'position'"),
    ErrorRow("bad-asn", "asn_match", "{asn_match: {asn_list: [-1]}}",
             "expected an integer from 0 to 4294967295; got -1"),
    # AWS: for CONTAINS_WORD "SearchString must contain only alphanumeric characters or underscore"
    ErrorRow("contains_word-not-a-word", "byte_match", on_path("contains_word", "/admin"),
             "rules[1].statement.byte_match.value: "),
    ErrorRow("empty-value", "byte_match", on_path("contains", ""), "expected a non-empty string"),
    ErrorRow("missing-ip-set", "ip_set", "{ip_set: {ref: v5}}", "no IP set named 'v5'"),
    ErrorRow("missing-regex-set", "regex_pattern_set",
             "{regex_pattern_set: {ref: agent, field: uri_path}}",
             "no regex pattern set named 'agent'; did you mean 'agents'?"),
    ErrorRow("bad-regex", "regex_match", "{regex_match: {field: uri_path, regex: '(?<=a)b'}}",
             "lookaround ((?=, (?!, (?<=, (?<!) is not supported"),
    ErrorRow("xss-extra-key", "xss_match", "{xss_match: {field: body, sensitivity_level: high}}",
             "unknown key 'sensitivity_level'"),
    ErrorRow("label-key-chars", "label_match", "{label_match: {scope: label, key: 'a b'}}",
             "expected a label of letters, digits"),
    ErrorRow("or-not-a-list", "or", f"{{or: {A_B[0]}}}", "expected a list"),
]  # fmt: skip


def acl_text(statement: str, geo: Path | None) -> str:
    dbs = f"geo_database: {geo / 'geo.mmdb'}\nasn_database: {geo / 'asn.mmdb'}\n" if geo else ""
    return f"""\
web_acl: t
default_action: allow
{dbs}ip_sets:
  v4: {{addresses: [192.0.2.0/24]}}
  v6: {{addresses: ["2001:db8::/32"]}}
  both: {{addresses: [192.0.2.0/24, "2001:db8::/32"]}}
regex_pattern_sets:
  agents: {{regular_expressions: ['(?i)sqlmap', '^curl/']}}
rule_groups:
  grp:
    rules:
      - {{name: g, priority: 1, action: count, statement: {A_B[0]}}}
rules:
  - name: tagger
    priority: 0
    action: count
    rule_labels: [seen:it]
    statement:
      byte_match: {{field: {{single_header: {{name: x-label}}}}, constraint: exactly, value: "yes"}}
  - name: subject
    priority: 1
    action: block
    statement: {statement}
"""


@pytest.fixture(scope="module")
def rule_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("statements")


def compile_row(directory: Path, geo: Path, row_id: str, statement: str) -> WebAcl:
    path = directory / f"{row_id}.yaml"
    path.write_text(acl_text(statement, geo), encoding="utf-8")
    return load_rule_files([path]).acls["t"]


def test_every_statement_has_a_row() -> None:
    covered = {row.name for row in ROWS} | {row.name for row in ERROR_ROWS}
    assert covered == set(STATEMENTS), set(STATEMENTS) ^ covered
    assert {row.name for row in ERROR_ROWS} >= {"rate_based", "rule_group", "managed_rule_group"}


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_statement_row(row: Row, rule_dir: Path, geo_dir: Path) -> None:
    acl = compile_row(rule_dir, geo_dir, row.id, row.statement)
    got = [evaluate(acl, request).terminating_rule == "subject" for request, _ in row.cases]
    want = [expected for _, expected in row.cases]
    assert got == want, [
        f"{r.client_ip} {r.uri_path}?{r.query_string} {dict(r.headers)} {r.body[:40]!r}"
        for (r, _), g, w in zip(row.cases, got, want, strict=True)
        if g != w
    ]
    assert all(evaluate(acl, request).error is None for request, _ in row.cases)


@pytest.mark.parametrize("row", ERROR_ROWS, ids=[row.id for row in ERROR_ROWS])
def test_statement_error_row(row: ErrorRow, rule_dir: Path, geo_dir: Path) -> None:
    path = rule_dir / f"error-{row.id}.yaml"
    path.write_text(acl_text(row.statement, geo_dir), encoding="utf-8")
    with pytest.raises(ConfigErrors) as info:
        load_rule_files([path])
    errors = [str(e) for e in info.value.errors]
    assert len(errors) == 1, errors
    assert row.message in errors[0]
    assert errors[0].startswith(f"{path}:")


# -- geo details ----------------------------------------------------------------------------------
def test_geo_match_adds_the_country_label_whether_or_not_it_matches(
    rule_dir: Path, geo_dir: Path
) -> None:
    acl = compile_row(rule_dir, geo_dir, "geo-label", "{geo_match: {country_codes: [BE]}}")
    verdict = evaluate(acl, req(ip="192.0.2.7"))
    assert verdict.terminating_rule == "Default_Action"
    assert "awswaf:clientip:geo:country:NL" in verdict.labels
    assert not any("geo" in label for label in evaluate(acl, req(ip=OUTSIDE)).labels)


def test_geo_match_with_a_forwarded_ip_labels_the_forwarded_country(
    rule_dir: Path, geo_dir: Path
) -> None:
    statement = (
        "{geo_match: {country_codes: [US], forwarded_ip_config: "
        "{header_name: X-Forwarded-For, fallback_behavior: no_match}}}"
    )
    acl = compile_row(rule_dir, geo_dir, "geo-fwd-label", statement)
    verdict = evaluate(
        acl, req("/", ("X-Forwarded-For", "198.51.100.9, 192.0.2.7"), ip="192.0.2.7")
    )
    assert verdict.terminating_rule == "subject"
    assert "awswaf:forwardedip:geo:country:US" in verdict.labels


def test_geo_label_is_visible_to_later_rules(
    compile_acl: CompileAcl, tmp_path: Path, geo_dir: Path
) -> None:
    shutil.copy(geo_dir / "geo.mmdb", tmp_path / "countries.mmdb")
    acl = compile_acl(
        "web_acl: geo\ndefault_action: allow\ngeo_database: countries.mmdb\nrules:\n"
        "  - {name: nl, priority: 1, action: count,\n"
        "     statement: {geo_match: {country_codes: [NL]}}}\n"
        "  - name: by-label\n    priority: 2\n    action: block\n    statement: {label_match: "
        "{scope: label, key: 'awswaf:clientip:geo:country:NL'}}\n"
    )
    assert evaluate(acl, req(ip="192.0.2.7")).terminating_rule == "by-label"
    assert evaluate(acl, req(ip="198.51.100.7")).terminating_rule == "Default_Action"


def test_geo_database_path_is_relative_to_the_rule_file(
    compile_acl: CompileAcl, tmp_path: Path, geo_dir: Path
) -> None:
    (tmp_path / "db").mkdir()
    shutil.copy(geo_dir / "asn.mmdb", tmp_path / "db" / "asn.mmdb")
    acl = compile_acl(
        "web_acl: asn\ndefault_action: allow\nasn_database: db/asn.mmdb\nrules:\n"
        "  - {name: as, priority: 1, action: block, statement: {asn_match: {asn_list: [64500]}}}\n"
    )
    assert evaluate(acl, req(ip="192.0.2.7")).blocked


def test_geo_database_that_cannot_be_opened(compile_errors: CompileErrors, tmp_path: Path) -> None:
    (tmp_path / "junk.mmdb").write_bytes(b"not a database")
    for name in ("missing.mmdb", "junk.mmdb"):
        (error,) = compile_errors(
            f"web_acl: g\ndefault_action: allow\ngeo_database: {name}\nrules: []\n"
        )
        assert error.startswith("rules.yaml:3:15: geo_database: cannot open MaxMind database")


def test_geo_match_needs_a_database(compile_errors: CompileErrors) -> None:
    (error,) = compile_errors(
        "web_acl: g\ndefault_action: allow\nrules:\n"
        "  - {name: nl, priority: 1, action: block,\n"
        "     statement: {geo_match: {country_codes: [NL]}}}\n"
    )
    assert "geo_match / asn_match need geo_database (or asn_database) in the web ACL" in error
