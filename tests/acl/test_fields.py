from __future__ import annotations

import inspect
import json
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wafproxy.acl.fields import FIELDS, MAX_BYTES, MAX_ITEMS, RequestField, compile_field
from wafproxy.acl.model import Oversize
from wafproxy.config.source import parse
from wafproxy.errors import ConfigError
from wafproxy.request import Header, WafRequest


def compile_yaml(text: str) -> RequestField:
    return compile_field(parse(f"field: {text}", "rules.yaml").map()["field"])


def field_name(text: str) -> str:
    return parse(f"field: {text}", "rules.yaml").map()["field"].single_key("field")[0]


GET = WafRequest(
    method="GET",
    uri_path="/a%2Fb/c",
    query_string="id=1&ID=2&%69d=3&x=y+z&flag&=empty",
    headers=(
        ("Host", "shop"),
        ("User-Agent", "sqlmap/1.0"),
        ("X-Multi", "a"),
        ("x-multi", "b"),
        ("Cookie", "session=abc; Token=t1"),
        ("Cookie", "theme=dark"),
    ),
)
JSON_TEXT = '{"user": {"name": "bob", "a/b~c": 1.50}, "tags": ["x", true, null], "n": -0}'
JSON = WafRequest(
    method="POST",
    uri_path="/api",
    headers=(("Content-Type", "application/json"),),
    body=JSON_TEXT.encode(),
)
DUPLICATE = WafRequest("POST", "/", body=b'{"a": 1, "a": 2}')
SCALAR = WafRequest("POST", "/", body=b'"just a string"')
TRUNCATED = WafRequest("POST", "/", body=b'{"a": "xx', body_size=10_000, body_oversize=True)
FORM = WafRequest(
    "POST",
    "/login",
    headers=(("Content-Type", "application/x-www-form-urlencoded; charset=UTF-8"),),
    body=b"user=bob&pass%77ord=s%27+or+1%3D1&Pass+Word=x&tags=a&tags=b",
)
MULTIPART = WafRequest(
    "POST",
    "/upload",
    headers=(("Content-Type", "multipart/form-data; boundary=XyZ"),),
    body=(
        b'--XyZ\r\nContent-Disposition: form-data; name="title"\r\n\r\nhello\r\n'
        b'--XyZ\r\nContent-Disposition: form-data; name="upload"; filename="evil.php"\r\n'
        b"Content-Type: application/x-php\r\n\r\n<?php system($_GET[1]); ?>\r\n--XyZ--\r\n"
    ),
)
TEXT = WafRequest("POST", "/", headers=(("Content-Type", "text/plain"),), body=b"a=1")
MANY_HEADERS = WafRequest("GET", "/", headers=tuple((f"X-H{i}", "v") for i in range(MAX_ITEMS + 1)))
LONG_HEADER = WafRequest("GET", "/", headers=(("X-A", "v"), ("X-Long", "w" * MAX_BYTES)))
EXACT_HEADERS = WafRequest("GET", "/", headers=(("X-Long", "w" * (MAX_BYTES - 6)),))
MANY_COOKIES = WafRequest(
    "GET", "/", headers=(("Cookie", "; ".join(f"c{i}=v" for i in range(MAX_ITEMS + 1))),)
)

HEADER_VALUES = (
    *("Host", "shop", "User-Agent", "sqlmap/1.0", "X-Multi", "a", "x-multi", "b"),
    *("Cookie", "session=abc; Token=t1", "Cookie", "theme=dark"),
)
ALL_HEADERS = "{headers: {match_pattern: {all: {}}, match_scope: %s, oversize_handling: %s}}"


@dataclass(frozen=True)
class Row:
    yaml: str
    req: WafRequest
    values: tuple[str, ...]
    oversize: Oversize | None = None
    forced: bool | None = None


JSON_ALL = "{json_body: {match_pattern: {all: {}}, match_scope: %s}}"
JSON_FALLBACK = (
    "{json_body: {match_pattern: {all: {}}, match_scope: all, invalid_fallback_behavior: %s}}"
)

ROWS = [
    Row("uri_path", GET, ("/a%2Fb/c",)),
    Row("{uri_path: {}}", GET, ("/a%2Fb/c",)),
    Row("query_string", GET, ("id=1&ID=2&%69d=3&x=y+z&flag&=empty",)),
    Row("query_string", JSON, ("",)),
    Row("method", GET, ("GET",)),
    Row("{single_header: {name: user-agent}}", GET, ("sqlmap/1.0",)),
    Row("{single_header: {name: X-MULTI}}", GET, ("a", "b")),
    Row("{single_header: {name: referer}}", GET, ()),
    Row("{single_query_argument: {name: Id}}", GET, ("1", "2", "3")),
    Row("{single_query_argument: {name: x}}", GET, ("y+z",)),
    Row("{single_query_argument: {name: flag}}", GET, ("",)),
    Row("{single_query_argument: {name: nope}}", GET, ()),
    Row("all_query_arguments", GET, ("1", "2", "3", "y+z", "", "empty")),
    Row("all_query_arguments", JSON, ()),
    Row("{all_query_arguments: {excluded_arguments: [ID, flag]}}", GET, ("y+z", "empty")),
    Row(
        "{all_query_arguments: {excluded_arguments: [nope]}}",
        GET,
        ("1", "2", "3", "y+z", "", "empty"),
    ),
    Row(
        ALL_HEADERS % ("all", "continue"),
        GET,
        HEADER_VALUES,
    ),
    Row(
        "{headers: {match_pattern: {included_headers: [user-agent, X-MULTI]},"
        " match_scope: key, oversize_handling: match}}",
        GET,
        ("User-Agent", "X-Multi", "x-multi"),
    ),
    Row(
        "{headers: {match_pattern: {excluded_headers: [cookie, HOST]},"
        " match_scope: value, oversize_handling: no_match}}",
        GET,
        ("sqlmap/1.0", "a", "b"),
    ),
    Row(
        ALL_HEADERS % ("key", "continue"),
        MANY_HEADERS,
        tuple(f"X-H{i}" for i in range(MAX_ITEMS)),
        Oversize.CONTINUE,
    ),
    Row(
        ALL_HEADERS % ("value", "match"), LONG_HEADER, ("v", "w" * (MAX_BYTES - 10)), Oversize.MATCH
    ),
    Row(ALL_HEADERS % ("key", "no_match"), EXACT_HEADERS, ("X-Long",)),
    Row(
        "{cookies: {match_pattern: {all: {}}, match_scope: value, oversize_handling: continue}}",
        GET,
        ("abc", "t1", "dark"),
    ),
    Row(
        "{cookies: {match_pattern: {included_cookies: [Token, theme]},"
        " match_scope: key, oversize_handling: continue}}",
        GET,
        ("Token", "theme"),
    ),
    Row(
        "{cookies: {match_pattern: {included_cookies: token}, match_scope: all,"
        " oversize_handling: continue}}",
        GET,
        (),
    ),
    Row(
        "{cookies: {match_pattern: {excluded_cookies: [session]}, match_scope: all,"
        " oversize_handling: match}}",
        GET,
        ("Token", "t1", "theme", "dark"),
    ),
    Row(
        "{cookies: {match_pattern: {all: {}}, match_scope: key, oversize_handling: no_match}}",
        MANY_COOKIES,
        tuple(f"c{i}" for i in range(MAX_ITEMS)),
        Oversize.NO_MATCH,
    ),
    Row(
        "{header_order: {oversize_handling: continue}}",
        GET,
        ("Host:User-Agent:X-Multi:x-multi:Cookie:Cookie",),
    ),
    Row(
        "{header_order: {oversize_handling: match}}",
        MANY_HEADERS,
        (":".join(f"X-H{i}" for i in range(MAX_ITEMS)),),
        Oversize.MATCH,
    ),
    Row("{header_order: {oversize_handling: match}}", JSON, ("Content-Type",)),
    Row("body", GET, ("",)),
    Row("body", JSON, (JSON_TEXT,)),
    Row("body", TRUNCATED, ('{"a": "xx',), Oversize.CONTINUE),
    Row("{body: {oversize_handling: no_match}}", TRUNCATED, ('{"a": "xx',), Oversize.NO_MATCH),
    Row(
        JSON_ALL % "all",
        JSON,
        ("user", "name", "bob", "a/b~c", "1.50", "tags", "x", "true", "null", "n", "-0"),
    ),
    Row(JSON_ALL % "key", JSON, ("user", "name", "a/b~c", "tags", "n")),
    Row(JSON_ALL % "value", JSON, ("bob", "1.50", "x", "true", "null", "-0")),
    Row(
        "{json_body: {match_pattern: {included_paths: [/user/a~1b~0c, /tags/0]},"
        " match_scope: value}}",
        JSON,
        ("1.50", "x"),
    ),
    Row(
        "{json_body: {match_pattern: {included_paths: [/user]}, match_scope: all}}",
        JSON,
        ("user", "name", "bob", "a/b~c", "1.50"),
    ),
    Row("{json_body: {match_pattern: {included_paths: /missing}, match_scope: all}}", JSON, ()),
    Row(JSON_ALL % "all", GET, ()),
    Row(JSON_ALL % "all", DUPLICATE, ('{"a": 1, "a": 2}',)),
    Row(JSON_ALL % "all", SCALAR, ('"just a string"',)),
    Row(JSON_FALLBACK % "evaluate_as_string", DUPLICATE, ('{"a": 1, "a": 2}',)),
    Row(JSON_FALLBACK % "match", DUPLICATE, (), forced=True),
    Row(JSON_FALLBACK % "no_match", SCALAR, (), forced=False),
    Row(
        JSON_FALLBACK % "match",
        JSON,
        ("user", "name", "bob", "a/b~c", "1.50", "tags", "x", "true", "null", "n", "-0"),
    ),
    Row(JSON_FALLBACK % "match", GET, ()),
    Row(
        "{json_body: {match_pattern: {all: {}}, match_scope: value,"
        " invalid_fallback_behavior: match, oversize_handling: match}}",
        TRUNCATED,
        (),
        Oversize.MATCH,
        True,
    ),
    Row(JSON_FALLBACK % "no_match", TRUNCATED, (), Oversize.CONTINUE, False),
    Row("all_body_arguments", FORM, ("bob", "s%27+or+1%3D1", "x", "a", "b")),
    Row("all_body_arguments", MULTIPART, ("hello", "evil.php")),
    Row("all_body_arguments", JSON, ("bob", "1.50", "x", "true", "null", "-0")),
    Row("all_body_arguments", TEXT, ()),
    Row("all_body_arguments", GET, ()),
    Row("{all_body_arguments: {oversize_handling: match}}", TRUNCATED, (), Oversize.MATCH),
    Row(
        "{all_body_arguments: {excluded_arguments: [PASS WORD, tags]}}",
        FORM,
        ("bob", "s%27+or+1%3D1"),
    ),
    Row("{all_body_arguments: {excluded_arguments: [upload]}}", MULTIPART, ("hello",)),
    Row(
        "{all_body_arguments: {excluded_arguments: [name, n]}}", JSON, ("1.50", "x", "true", "null")
    ),
    Row("{single_body_argument: {name: PASSWORD}}", FORM, ("s%27+or+1%3D1",)),
    Row("{single_body_argument: {name: pass word}}", FORM, ("x",)),
    Row("{single_body_argument: {name: tags}}", FORM, ("a", "b")),
    Row("{single_body_argument: {name: upload}}", MULTIPART, ("evil.php",)),
    Row("{single_body_argument: {name: TAGS}}", JSON, ("x", "true", "null")),
    Row("{single_body_argument: {name: name}}", JSON, ("bob",)),
    Row("{single_body_argument: {name: user}}", JSON, ()),
    Row("{single_body_argument: {name: a}}", TEXT, ()),
    Row(
        "{single_body_argument: {name: a, oversize_handling: no_match}}",
        TRUNCATED,
        (),
        Oversize.NO_MATCH,
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r.yaml}@{r.req.uri_path}")
def test_field_values(row: Row) -> None:
    fld = compile_yaml(row.yaml)
    assert fld.extract(row.req) == row.values
    assert fld.oversize(row.req) is row.oversize
    assert fld.forced(row.req) is row.forced


def test_every_registered_field_has_rows() -> None:
    assert {field_name(row.yaml) for row in ROWS} == set(FIELDS.names())


@pytest.mark.parametrize(
    ("yaml", "key"),
    [
        ("uri_path", "uri_path"),
        ("{single_header: {name: User-Agent}}", "single_header:user-agent"),
        ("{single_query_argument: {name: 'a:b,c'}}", "single_query_argument:a%3Ab%2Cc"),
        ("body", "body"),
        ("{body: {oversize_handling: continue}}", "body"),
        ("{body: {oversize_handling: match}}", "body:oversize=match"),
        (
            "{headers: {match_pattern: {included_headers: [B, a]}, match_scope: value,"
            " oversize_handling: continue}}",
            "headers:included=a,b:scope=value:oversize=continue",
        ),
        (
            "{cookies: {match_pattern: {excluded_cookies: [B, a]}, match_scope: all,"
            " oversize_handling: match}}",
            "cookies:excluded=B,a:scope=all:oversize=match",
        ),
        ("{header_order: {oversize_handling: no_match}}", "header_order:oversize=no_match"),
        (JSON_ALL % "key", "json_body:all:scope=key"),
        (
            "{json_body: {match_pattern: {included_paths: ['/b', '/a,/c']}, match_scope: all,"
            " invalid_fallback_behavior: no_match, oversize_handling: match}}",
            "json_body:included=/a%2C/c,/b:scope=all:fallback=no_match:oversize=match",
        ),
        ("all_body_arguments", "all_body_arguments"),
        (
            "{all_body_arguments: {excluded_arguments: [B, a], oversize_handling: match}}",
            "all_body_arguments:excluded=a,b:oversize=match",
        ),
        ("{all_query_arguments: {excluded_arguments: [Q]}}", "all_query_arguments:excluded=q"),
        (
            "{single_body_argument: {name: Pw, oversize_handling: match}}",
            "single_body_argument:pw:oversize=match",
        ),
    ],
)
def test_keys_are_canonical(yaml: str, key: str) -> None:
    assert compile_yaml(yaml).key == key


def test_equal_configurations_give_equal_fields_and_keys() -> None:
    a = compile_yaml(
        "{headers: {match_pattern: {included_headers: [X-A, b, x-a]}, match_scope: key,"
        " oversize_handling: match}}"
    )
    b = compile_yaml(
        "{headers: {oversize_handling: match, match_scope: key,"
        " match_pattern: {included_headers: [B, x-a]}}}"
    )
    assert a == b and a.key == b.key and hash(a) == hash(b)
    assert compile_yaml("{body: {oversize_handling: continue}}") == compile_yaml("body")


def test_keys_tell_unequal_fields_apart() -> None:
    fields = {compile_yaml(row.yaml) for row in ROWS}
    assert len({f.key for f in fields}) == len(fields)


@pytest.mark.parametrize(
    ("yaml", "message"),
    [
        ("uri_paht", "rules.yaml:1:8: field: unknown field 'uri_paht'; did you mean 'uri_path'?"),
        ("{nothing: {}}", "rules.yaml:1:8: field: unknown field 'nothing'"),
        ("[uri_path]", "rules.yaml:1:8: field: expected a mapping; got a list"),
        (
            "{uri_path: , method: }",
            "rules.yaml:1:8: field: expected exactly one field; got a mapping",
        ),
        (
            "{single_header: {nam: x}}",
            "rules.yaml:1:25: field.single_header.nam: unknown key 'nam'; expected one of name;"
            " did you mean 'name'?",
        ),
        ("single_header", "rules.yaml:1:8: field.single_header: missing required key 'name'"),
        ("{single_header: {name: ' '}}", "field.single_header.name: expected a non-empty name"),
        (
            "{single_header: user-agent}",
            "field.single_header: expected a mapping; got 'user-agent'",
        ),
        (
            "{uri_path: {x: 1}}",
            "rules.yaml:1:19: field.uri_path: expected no options; got a mapping",
        ),
        ("{method: []}", "field.method: expected no options; got a list"),
        (
            "{body: {oversize_handling: maybe}}",
            "expected one of continue, match, no_match; got 'maybe'",
        ),
        (
            "{headers: {match_pattern: {all: {}}, match_scope: all}}",
            "field.headers: missing required key 'oversize_handling'",
        ),
        ("headers", "field.headers: missing required key 'match_pattern'"),
        (
            "{headers: {match_pattern: {all: {}, included_headers: [a]}, match_scope: all,"
            " oversize_handling: match}}",
            "expected exactly one of all, included_headers, excluded_headers",
        ),
        (
            "{headers: {match_pattern: {all: {x: 1}}, match_scope: all, oversize_handling: match}}",
            "field.headers.match_pattern.all: expected an empty mapping {}; got a mapping",
        ),
        (
            "{headers: {match_pattern: {included_cookies: [a]}, match_scope: all,"
            " oversize_handling: match}}",
            "unknown key 'included_cookies'",
        ),
        (
            "{cookies: {match_pattern: {included_cookies: []}, match_scope: all,"
            " oversize_handling: match}}",
            "expected at least one name in included_cookies",
        ),
        (
            "{cookies: {match_pattern: {all: {}}, match_scope: both, oversize_handling: match}}",
            "field.cookies.match_scope: expected one of all, key, value; got 'both'",
        ),
        ("{json_body: {match_pattern: {all: {}}}}", "missing required key 'match_scope'"),
        (
            "{json_body: {match_pattern: {included_paths: [a/b]}, match_scope: all}}",
            "JSON pointers like /a/0/b (RFC 6901), at most 512 long; 'a/b'",
        ),
        (
            "{json_body: {match_pattern: {included_paths: ['/a~2']}, match_scope: all}}",
            "JSON pointers like /a/0/b (RFC 6901), at most 512 long; '/a~2'",
        ),
        (
            "{json_body: {match_pattern: {all: {}}, match_scope: all,"
            " invalid_fallback_behavior: x}}",
            "expected one of match, no_match, evaluate_as_string; got 'x'",
        ),
        ("header_order", "field.header_order: missing required key 'oversize_handling'"),
        (
            "{all_query_arguments: {excluded_arguments: []}}",
            "excluded_arguments: expected at least one argument name; got a list",
        ),
        ("{all_body_arguments: {excluded: [a]}}", "unknown key 'excluded'"),
    ],
)
def test_config_errors(yaml: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        compile_yaml(yaml)
    text = str(caught.value)
    assert message in text
    assert text.startswith("rules.yaml:1:")


def yaml_examples(doc: str) -> list[str]:
    chunks = doc.split("```yaml\n")[1:]
    return [chunk.split("```")[0] for chunk in chunks]


@pytest.mark.parametrize("name", FIELDS.names())
def test_docstring_examples_compile(name: str) -> None:
    doc = inspect.getdoc(FIELDS[name])
    assert doc, f"{name} has no docstring"
    examples = yaml_examples(doc)
    assert examples, f"{name}'s docstring has no yaml example"
    for example in examples:
        node = parse(example, f"{name}.yaml").map()["field"]
        assert node.single_key("field")[0] == name
        compile_field(node)


# -- hostile requests --------------------------------------------------------------------------
CONFIGS = sorted({row.yaml for row in ROWS})
FIELD_OBJECTS = [compile_yaml(text) for text in CONFIGS]

short_text = st.text(max_size=24)
query_text = st.text(alphabet="ab=&%+;2F41é\x00 ", max_size=40) | short_text
header_names = (
    st.sampled_from(["Host", "Cookie", "cookie", "User-Agent", "Content-Type"]) | short_text
)
content_types = (
    st.sampled_from(
        [
            "application/json",
            "application/ld+json",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=B",
            'multipart/form-data; boundary="B"',
            "multipart/form-data",
            "text/plain",
        ]
    )
    | short_text
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | short_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(short_text, children, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def multipart_bodies(draw: st.DrawFn) -> bytes:
    parts = draw(st.lists(st.tuples(short_text, st.binary(max_size=16), st.booleans()), max_size=4))
    out = b""
    for name, data, is_file in parts:
        disposition = f'form-data; name="{name}"' + ('; filename="f.txt"' if is_file else "")
        out += b"--B\r\nContent-Disposition: " + disposition.encode("utf-8", "surrogatepass")
        out += b"\r\n\r\n" + data + b"\r\n"
    out += b"--B--\r\n"
    return out[: draw(st.integers(min_value=0, max_value=len(out)))]


bodies_ = (
    st.binary(max_size=200)
    | json_values.map(lambda v: json.dumps(v).encode())
    | json_values.map(lambda v: json.dumps(v).encode()[:-1])
    | multipart_bodies()
    | query_text.map(lambda t: t.encode("utf-8", "surrogatepass"))
)


@st.composite
def requests(draw: st.DrawFn) -> WafRequest:
    headers: list[Header] = draw(st.lists(st.tuples(header_names, short_text), max_size=8))
    headers.append(("Content-Type", draw(content_types)))
    if draw(st.booleans()):
        headers.append(("Cookie", draw(query_text)))
    return WafRequest(
        method=draw(short_text),
        uri_path=draw(short_text),
        query_string=draw(query_text),
        headers=tuple(draw(st.permutations(headers))),
        body=draw(bodies_),
        body_oversize=draw(st.booleans()),
    )


@settings(max_examples=150, deadline=None)
@given(requests())
def test_fields_never_raise_on_hostile_requests(req: WafRequest) -> None:
    twin = WafRequest(
        method=req.method,
        uri_path=req.uri_path,
        query_string=req.query_string,
        headers=req.headers,
        body=req.body,
        body_oversize=req.body_oversize,
    )
    for fld in FIELD_OBJECTS:
        values = fld.extract(req)
        assert isinstance(values, tuple) and all(isinstance(v, str) for v in values)
        assert fld.oversize(req) in (None, *Oversize)
        assert fld.forced(req) in (None, True, False)
        assert fld.extract(twin) == values  # deterministic, memo or not
        assert fld.extract(req) == values


@settings(max_examples=150, deadline=None)
@given(requests(), st.sampled_from(["", "a=1; b=2", "a=1", "x" * 300]))
def test_visible_cookies_are_the_parse_of_the_cookie_headers(req: WafRequest, extra: str) -> None:
    """Remembered per Cookie header value (acl/fields/limits.py): the same answer as parsing,
    for one Cookie header or several, whatever earlier requests left in the memo."""
    from wafproxy.acl.fields import limit_pairs, visible_cookies

    variants = [req]
    if extra:
        variants.append(WafRequest("GET", "/", headers=(*req.headers, ("cookie", extra))))
        variants.append(WafRequest("GET", "/", headers=(("Cookie", extra),)))
    for one in variants:
        assert visible_cookies(one) == limit_pairs(one.cookies)
