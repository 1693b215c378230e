"""Hypothesis: evaluate() never raises, never reports an evaluation error, and is deterministic,
on arbitrary requests against the shipped default ACL and an ACL using every statement, every
field and every transformation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wafproxy.acl.compile import default_rule_files, load_rule_files
from wafproxy.acl.engine import evaluate
from wafproxy.acl.fields import FIELDS
from wafproxy.acl.model import ActionKind, EvalContext, WebAcl
from wafproxy.acl.statements import STATEMENTS
from wafproxy.acl.together import Job, evaluate_together
from wafproxy.acl.transforms import TRANSFORMS
from wafproxy.rawhttp import build_request
from wafproxy.request import Header, WafRequest

FIELD_TEXTS = [
    "uri_path", "query_string", "method", "{single_header: {name: user-agent}}",
    "{single_query_argument: {name: id}}", "all_query_arguments", "body",
    "{body: {oversize_handling: match}}",
    "{json_body: {match_pattern: {all: {}}, match_scope: all, invalid_fallback_behavior: match}}",
    "{json_body: {match_pattern: {included_paths: [/a, /b/0]}, match_scope: value, "
    "oversize_handling: no_match}}",
    "{json_body: {match_pattern: {all: {}}, match_scope: key}}",
    "{headers: {match_pattern: {all: {}}, match_scope: all, oversize_handling: continue}}",
    "{headers: {match_pattern: {excluded_headers: [cookie]}, match_scope: key, "
    "oversize_handling: match}}",
    "{cookies: {match_pattern: {included_cookies: [session]}, match_scope: value, "
    "oversize_handling: no_match}}",
    "{cookies: {match_pattern: {all: {}}, match_scope: all, oversize_handling: continue}}",
    "{header_order: {oversize_handling: continue}}", "all_body_arguments",
    "{single_body_argument: {name: user, oversize_handling: match}}",
]  # fmt: skip
TRANSFORM_NAMES = [name for name in TRANSFORMS.names() if name != "none"]
CHAINS = [TRANSFORM_NAMES[i : i + 10] for i in range(0, len(TRANSFORM_NAMES), 10)]


def rich_rules() -> list[str]:
    """Statement texts: every field with byte_match, regex, sqli, xss, size; every transformation
    in some chain; every other statement at least once."""
    out: list[str] = []
    for i, field in enumerate(FIELD_TEXTS):
        chain = ", ".join(CHAINS[i % len(CHAINS)])
        out += [
            f"{{byte_match: {{field: {field}, constraint: contains_word, value: admin}}}}",
            f"{{regex_match: {{field: {field}, regex: '(?i)(?:union|<scr|\\.\\./)', "
            f"transforms: [{chain}]}}}}",
            f"{{regex_pattern_set: {{ref: pats, field: {field}, transforms: [url_decode]}}}}",
            f"{{sqli_match: {{field: {field}, sensitivity_level: high, transforms: [{chain}]}}}}",
            f"{{xss_match: {{field: {field}, transforms: [{chain}]}}}}",
            f"{{size_constraint: {{field: {field}, comparison_operator: gt, size: 20, "
            f"transforms: [{chain}]}}}}",
        ]
    for names in CHAINS:
        out.append(
            f"{{sqli_match: {{field: all_query_arguments, transforms: [{', '.join(names)}]}}}}"
        )
    out += [
        "{ip_set: {ref: nets}}",
        "{ip_set: {ref: nets, forwarded_ip_config: {header_name: X-Forwarded-For, "
        "fallback_behavior: match, position: any}}}",
        "{geo_match: {country_codes: [NL, US]}}",
        "{geo_match: {country_codes: [NL], forwarded_ip_config: {header_name: X-Real-IP, "
        "fallback_behavior: no_match}}}",
        "{asn_match: {asn_list: [64500]}}",
        "{label_match: {scope: label, key: 'awswaf:clientip:geo:country:NL'}}",
        "{label_match: {scope: namespace, key: 'hit:'}}",
        "{anomaly_score: {comparison_operator: ge, score: 5}}",
        "{and: [{not: {ip_set: {ref: nets}}}, {or: [{label_match: {scope: label, key: 'hit:x'}}, "
        "{byte_match: {field: method, constraint: exactly, value: POST}}]}]}",
    ]
    return out


def rich_acl_text(geo: Path) -> str:
    rules = "".join(
        f"  - {{name: r{i}, priority: {i + 1}, action: count, rule_labels: ['hit:x'], "
        f"statement: {text}}}\n"
        for i, text in enumerate(rich_rules())
    )
    last = len(rich_rules()) + 1
    return f"""\
web_acl: rich
default_action: block
geo_database: {geo / "geo.mmdb"}
asn_database: {geo / "asn.mmdb"}
ip_sets:
  nets: {{addresses: [192.0.2.0/24, "2001:db8::/32", 10.0.0.0/8]}}
regex_pattern_sets:
  pats: {{regular_expressions: ['(?i)sqlmap', '^/admin', 'a+b+c+$', '\\x00']}}
rule_groups:
  grp:
    rules:
      - {{name: g1, priority: 1, action: count, rule_labels: [g],
         statement: {{xss_match: {{field: body}}}}}}
      - {{name: g2, priority: 2, action: block,
         statement: {{label_match: {{scope: label, key: nothing}}}}}}
rules:
{rules}  - name: grp-ref
    priority: {last}
    override_action: count
    statement: {{rule_group: {{ref: grp, rule_action_overrides: {{g2: count}}}}}}
  - name: managed
    priority: {last + 1}
    override_action: none
    statement:
      managed_rule_group:
        name: wafproxy-core
        version: "1.0"
        scope_down_statement:
          not: {{byte_match: {{field: uri_path, constraint: exactly, value: /skip}}}}
        rule_action_overrides: {{CrossSiteScripting_BODY: count}}
  - name: sqli
    priority: {last + 2}
    override_action: none
    statement: {{managed_rule_group: {{name: wafproxy-sqli}}}}
  - name: allow-rest
    priority: {last + 3}
    action: allow
    statement: {{not: {{label_match: {{scope: label, key: never}}}}}}
"""


@pytest.fixture(scope="module")
def acls(tmp_path_factory: pytest.TempPathFactory, geo_dir: Path) -> dict[str, WebAcl]:
    path = tmp_path_factory.mktemp("rich") / "rich.yaml"
    path.write_text(rich_acl_text(geo_dir), encoding="utf-8")
    rich = load_rule_files([path]).acls["rich"]
    default = load_rule_files(default_rule_files()).acls["default"]
    return {"rich": rich, "default": default}


def test_the_rich_acl_uses_every_statement_field_and_transformation(
    acls: dict[str, WebAcl],
) -> None:
    text = "\n".join(rich_rules())
    group_statements = {"rule_group", "managed_rule_group", "rate_based"}
    assert all(f"{{{name}:" in text for name in set(STATEMENTS) - group_statements)
    assert all(name in " ".join(FIELD_TEXTS) for name in FIELDS)
    assert sorted(n for chain in CHAINS for n in chain) == sorted(TRANSFORM_NAMES)
    assert acls["rich"].capacity > 0


# -- requests -------------------------------------------------------------------------------------
JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    # json.dumps escapes lone surrogates ("\\ud800"): valid JSON, not valid Unicode
    | st.text(st.characters(min_codepoint=0xD7F0, max_codepoint=0xDC90), max_size=4),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
ATTACKY = st.sampled_from([
    "' or 1=1--", "<script>alert(1)</script>", "../../etc/passwd", "admin", "%00", "%2e%2e%2f",
    "&#x3C;svg onload=alert(1)&#x3E;", "union select", "sqlmap", "\\u003c", "%u002e", "=",
    "union/**/select", "1/*", "%2f%2a*/",
])  # fmt: skip
TEXT = st.one_of(
    st.text(max_size=30), ATTACKY, st.text(alphabet="%2eEfF0a/&=;<>'\"\\ +", max_size=30)
)
PAIRS = st.lists(st.tuples(TEXT, TEXT), max_size=5)


def form_body(pairs: list[tuple[str, str]]) -> bytes:
    return "&".join(f"{quote(k)}={quote(v)}" for k, v in pairs).encode()


def multipart_body(pairs: list[tuple[str, str]]) -> bytes:
    parts = [
        f'--XyZ\r\nContent-Disposition: form-data; name="{k}"; filename="{v[:5]}"\r\n\r\n{v}\r\n'
        for k, v in pairs
    ]
    return ("".join(parts) + "--XyZ--\r\n").encode("utf-8", "surrogateescape")


BODY_AND_TYPE = st.one_of(
    st.tuples(JSONISH.map(lambda v: json.dumps(v).encode()), st.just("application/json")),
    st.tuples(st.binary(max_size=200), st.just("application/json")),
    st.tuples(PAIRS.map(form_body), st.just("application/x-www-form-urlencoded")),
    st.tuples(PAIRS.map(multipart_body), st.just("multipart/form-data; boundary=XyZ")),
    st.tuples(st.binary(max_size=200), st.sampled_from(["multipart/form-data", "text/plain",
                                                        "application/x-www-form-urlencoded"])),
    st.tuples(TEXT.map(str.encode), st.text(max_size=30)),
)  # fmt: skip
HEADER_NAMES = st.sampled_from(
    ["User-Agent", "Cookie", "X-Forwarded-For", "X-Real-IP", "Host", "Referer", "Accept", "cookie"]
) | st.text(alphabet="abcxyzXYZ-_", min_size=1, max_size=12)
COOKIE = st.lists(st.tuples(st.sampled_from(["session", "a", ""]) | TEXT, TEXT), max_size=4).map(
    lambda pairs: "; ".join(f"{k}={v}" for k, v in pairs)
)
IPS = st.one_of(
    st.ip_addresses().map(str),
    st.sampled_from(["192.0.2.7", "198.51.100.7", "2001:db8::1", "::ffff:192.0.2.7", "unknown"]),
)


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    headers: list[Header] = draw(st.lists(st.tuples(HEADER_NAMES, TEXT | IPS), max_size=8))
    if draw(st.booleans()):
        headers.append(("Cookie", draw(COOKIE)))
    body, content_type = draw(BODY_AND_TYPE)
    if draw(st.booleans()):
        headers.append(("Content-Type", content_type))
    query = draw(st.one_of(TEXT, PAIRS.map(lambda p: "&".join(f"{k}={v}" for k, v in p))))
    return {
        "method": draw(st.sampled_from(["GET", "POST", "PUT", "OPTIONS"]) | st.text(max_size=8)),
        "target": "/" + draw(TEXT) + ("?" + query if query else ""),
        "headers": tuple(headers),
        "body": body,
        "client_ip": draw(IPS),
        "inspect_body_bytes": draw(st.sampled_from([8, 64, 16 * 1024])),
    }


def build(parts: dict[str, Any]) -> WafRequest:
    return build_request(**parts)


@pytest.mark.parametrize("which", ["default", "rich"])
@settings(max_examples=100, deadline=None)
@given(parts=requests())
def test_evaluate_never_fails_and_is_deterministic(
    acls: dict[str, WebAcl], which: str, parts: dict[str, Any]
) -> None:
    acl = acls[which]
    request = build(parts)
    first = evaluate(acl, request)
    assert first.error is None, first.error
    assert first.action in (ActionKind.ALLOW, ActionKind.BLOCK)
    assert evaluate(acl, request) == first  # the same snapshot again (its caches are warm)
    assert evaluate(acl, build(parts)) == first  # a fresh snapshot of the same request


CONTENT_TYPES = (
    "application/json",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=",
    "multipart/form-data; boundary=a",
)


@pytest.mark.parametrize("which", ["default", "rich"])
@settings(max_examples=60, deadline=None)
@given(raw=st.binary(max_size=300), target=st.text(max_size=40), ip=IPS)
def test_random_bytes_with_every_content_type(
    acls: dict[str, WebAcl], which: str, raw: bytes, target: str, ip: str
) -> None:
    for content_type in CONTENT_TYPES:
        request = build_request(
            "POST", "/" + target, (("Content-Type", content_type),), raw, client_ip=ip
        )
        verdict = evaluate(acls[which], request)
        assert verdict.error is None, verdict.error


@pytest.mark.parametrize("which", ["default", "rich"])
@settings(max_examples=150, deadline=None)
@given(parts=requests())
def test_skipping_rules_and_remembering_values_never_change_a_verdict(
    acls: dict[str, WebAcl], which: str, parts: dict[str, Any]
) -> None:
    """The hot path skips rules whose atoms were not found (acl/prefilter.py) and reuses the
    answers for values seen before (acl/memo.py); a traced evaluation does neither."""
    acl = acls[which]
    evaluate(acl, build(parts))  # fill the memo tables with this request's values
    fast = evaluate(acl, build(parts))
    traced = EvalContext(acl=acl, geo=acl.geo, trace=lambda kind, data: None)
    assert fast == evaluate(acl, build(parts), ctx=traced)


ARG = st.tuples(st.sampled_from(["q", "name", "id", "a"]) | TEXT, TEXT)


@pytest.mark.parametrize("which", ["default", "rich"])
@pytest.mark.parametrize("where", ["body", "query"])
@settings(max_examples=80, deadline=None)
@given(seen=st.lists(ARG, max_size=6), kept=st.integers(0, 6), new=st.lists(ARG, max_size=4))
def test_arguments_partly_remembered_give_the_verdict_of_a_fresh_evaluation(
    acls: dict[str, WebAcl],
    which: str,
    where: str,
    seen: list[tuple[str, str]],
    kept: int,
    new: list[tuple[str, str]],
) -> None:
    """A form's or query's arguments are remembered per raw name=value part; a request whose
    parts were partly seen before gets the rest scanned and the seen ones from the memo."""
    acl = acls[which]

    def request(pairs: list[tuple[str, str]]) -> WafRequest:
        if where == "query":
            return build_request("GET", "/p?" + form_body(pairs).decode(), ())
        return form_post(form_body(pairs))

    evaluate(acl, request(seen))  # remembers the parts of the first request
    mixed = seen[:kept] + new + seen[kept:][::-1]
    fast = evaluate(acl, request(mixed))
    traced = EvalContext(acl=acl, geo=acl.geo, trace=lambda kind, data: None)
    assert fast == evaluate(acl, request(mixed), ctx=traced)


RAW_ARGUMENTS = ("a=1&&b=2", "flag", "=x", "a==b", "a=1&a=1&a=1", "&", "a=b=c&d",
                 "x=%27%20or%201%3D1--&flag&=<script>", "noeq&q=1' or '1'='1")  # fmt: skip
"""Arguments split by hand-written ``&``: empty parts, parts without ``=``, repeated parts."""


@pytest.mark.parametrize("where", ["body", "query"])
def test_arguments_of_every_shape_partly_remembered(acls: dict[str, WebAcl], where: str) -> None:
    def request(raw: str) -> WafRequest:
        if where == "query":
            return build_request("GET", "/p?" + raw, ())
        return form_post(raw.encode())

    for acl in acls.values():
        for first in RAW_ARGUMENTS:
            for second in RAW_ARGUMENTS:
                evaluate(acl, request(first))
                fast = evaluate(acl, request(second))
                traced = EvalContext(acl=acl, geo=acl.geo, trace=lambda kind, data: None)
                assert fast == evaluate(acl, request(second), ctx=traced), (first, second)


LONG_TAIL = b"&note=" + b"Ideal for furniture and shelving or small projects. " * 8
"""Past memo.MAX_VALUE: a body the engine scans every time (acl/together.py scans those
together)."""
INSPECTED = {"inspect_body_bytes": 16 * 1024}


def form_post(body: bytes) -> WafRequest:
    headers = (("Host", "shop.example"), ("User-Agent", "Mozilla/5.0"),
               ("Content-Type", "application/x-www-form-urlencoded"),
               ("Content-Length", str(len(body))))  # fmt: skip
    return build_request("POST", "/f", headers, body, **INSPECTED)


def test_evaluating_together_keeps_each_long_body_to_its_own_request(
    acls: dict[str, WebAcl],
) -> None:
    bodies = [b"q=<script>alert(1)</script>", b"q=plain", b"q=1' union select pass from users--",
              b"q=also plain", b"q=../../../../etc/passwd"]  # fmt: skip
    cases = [(acls[which], body + LONG_TAIL) for body in bodies for which in ("default", "rich")]
    jobs = [Job(acl, form_post(body)) for acl, body in cases]
    together = [verdict for verdict, _ in evaluate_together(jobs)]
    alone = [evaluate(acl, form_post(body)) for acl, body in cases]
    assert together == alone
    assert {v.action for v in together} == {ActionKind.ALLOW, ActionKind.BLOCK}


@settings(max_examples=60, deadline=None)
@given(batch=st.lists(st.tuples(st.sampled_from(["default", "rich"]), requests(), st.booleans()),
                      min_size=1, max_size=6))  # fmt: skip
def test_evaluating_together_gives_each_request_its_own_verdict(
    acls: dict[str, WebAcl], batch: list[tuple[str, dict[str, Any], bool]]
) -> None:
    """Requests evaluated together (their long bodies scanned group by group first) get the
    verdicts they get alone, whatever web ACLs and bodies are mixed in the batch."""
    cases = [
        (acls[which], {**parts, "body": parts["body"] + LONG_TAIL, **INSPECTED} if long else parts)
        for which, parts, long in batch
    ]
    together = [verdict for verdict, _ in evaluate_together([Job(a, build(p)) for a, p in cases])]
    alone = [evaluate(acl, build(parts)) for acl, parts in cases]
    assert together == alone
