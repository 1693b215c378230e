from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wafproxy.acl import bodies
from wafproxy.acl.bodies import (
    INVALID,
    MAX_JSON_DEPTH,
    MAX_PARTS,
    Part,
    header_params,
    json_leaves,
    json_named_values,
    parse_json,
    parse_multipart,
    parse_urlencoded,
    percent_decode,
)
from wafproxy.request import WafRequest

CT = "multipart/form-data; boundary=XyZ"


def multipart(*parts: tuple[str, bytes], newline: bytes = b"\r\n", close: bool = True) -> bytes:
    """A multipart body; a part header block is given as text (lines joined by newline)."""
    out = b""
    for headers, data in parts:
        head = newline.join(line.encode() for line in headers.split("\n"))
        out += b"--XyZ" + newline + head + newline + newline + data + newline
    return out + (b"--XyZ--" + newline if close else b"")


def field(name: str) -> str:
    return f'Content-Disposition: form-data; name="{name}"'


# -- percent_decode / parse_urlencoded ---------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "plus", "decoded"),
    [
        ("plain", False, "plain"),
        ("a%41%62", False, "aAb"),
        ("%zz%4%", False, "%zz%4%"),
        ("a+b", False, "a+b"),
        ("a+b%2B", True, "a b+"),
        ("%C3%A9t%C3%A9", False, "été"),
        ("%FF", False, "\udcff"),
        ("%e2%82", False, "\udce2\udc82"),
    ],
)
def test_percent_decode(raw: str, plus: bool, decoded: str) -> None:
    assert percent_decode(raw, plus) == decoded


def test_percent_decode_tolerates_lone_surrogates() -> None:
    # Not produced by surrogateescape decoding, but text from elsewhere may hold them.
    assert percent_decode("\ud800%41").endswith("A")


@given(st.text(alphabet=st.characters(exclude_categories=["Cs"])))
def test_percent_decode_inverts_quote(text: str) -> None:
    assert percent_decode(quote(text, safe="")) == text


def test_parse_urlencoded_keeps_raw_pairs_in_order() -> None:
    assert parse_urlencoded("a=1&b=%27+x&&flag&=v&a=2") == (
        ("a", "1"),
        ("b", "%27+x"),
        ("flag", ""),
        ("", "v"),
        ("a", "2"),
    )


# -- header_params -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "params"),
    [
        ("multipart/form-data; boundary=abc", {"boundary": "abc"}),
        ('multipart/form-data; Boundary="a b;c"; charset=x', {"boundary": "a b;c", "charset": "x"}),
        ('form-data; name="f"; filename="a;b.txt"', {"name": "f", "filename": "a;b.txt"}),
        ("form-data; bare; name=x", {"name": "x"}),
        ("form-data; name=a; name=b", {"name": "a"}),
        ('form-data; name="unterminated', {"name": "unterminated"}),
        ("form-data", {}),
        ("form-data; =v; k=", {"": "v", "k": ""}),
    ],
)
def test_header_params(value: str, params: dict[str, str]) -> None:
    assert header_params(value) == params


# -- multipart ---------------------------------------------------------------------------------
def test_multipart_fields_and_files() -> None:
    body = multipart(
        (field("a"), b"hello"),
        (f'{field("up")}; filename="x;y.php"\nContent-Type: image/png', b"\x89PNG\r\n--Xy"),
        ("Content-Disposition: form-data; name=u; filename*=UTF-8''%e2%82%ac.txt", b""),
    )
    assert parse_multipart(body, CT) == (
        Part("a", None, "", b"hello"),
        Part("up", "x;y.php", "image/png", b"\x89PNG\r\n--Xy"),
        Part("u", "€.txt", "", b""),
    )


def test_multipart_ignores_preamble_and_epilogue() -> None:
    body = b"preamble\r\n" + multipart((field("a"), b"1")) + b"epilogue\r\n--XyZ\r\n\r\nlate"
    assert parse_multipart(body, 'multipart/form-data; boundary="XyZ"') == (
        Part("a", None, "", b"1"),
    )


def test_multipart_splits_wherever_a_lenient_backend_would() -> None:
    lf = multipart((field("a"), b"1"), (field("b"), b"2"), newline=b"\n")
    assert [p.name for p in parse_multipart(lf, CT)] == ["a", "b"]
    cr = b"--XyZ\r\n" + field("a").encode() + b"\r\n\r\n1\r--XyZ\r\n\r\n2\r\n--XyZ--"
    assert [p.data for p in parse_multipart(cr, CT)] == [b"1", b"2"]


def test_multipart_boundary_inside_a_line_or_longer_is_content() -> None:
    data = b"x--XyZ\r\nnot a part\r\n--XyZabc\r\nstill content"
    assert parse_multipart(multipart((field("a"), data)), CT) == (Part("a", None, "", data),)


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data",
        "multipart/form-data; boundary=",
        "multipart/form-data; boundary=" + "b" * 201,
    ],
)
def test_multipart_without_usable_boundary_has_no_parts(content_type: str) -> None:
    assert parse_multipart(multipart((field("a"), b"1")), content_type) == ()


def test_multipart_truncated_at_every_byte_never_raises_and_keeps_a_prefix() -> None:
    body = multipart((field("a"), b"hello world"), (field("b"), b"second"))
    full = parse_multipart(body, CT)
    assert [p.data for p in full] == [b"hello world", b"second"]
    for end in range(len(body) + 1):
        parts = parse_multipart(body[:end], CT)
        assert len(parts) <= 2
        for got, whole in zip(parts, full, strict=False):
            assert whole.data.startswith(got.data)
            assert whole.name.startswith(got.name)


def test_multipart_is_bounded() -> None:
    many = multipart(*[(field(str(i)), b"v") for i in range(MAX_PARTS + 50)])
    assert len(parse_multipart(many, CT)) == MAX_PARTS
    header_flood = b"--XyZ\r\n" + b"X-A: b\r\n" * 100 + b"\r\ndata"
    (part,) = parse_multipart(header_flood, CT)
    assert part.data.startswith(b"X-A: b")  # past the header line limit: inspected as data


def test_part_text_survives_undecodable_bytes() -> None:
    assert Part("a", None, "", b"\xff\xfeok").text == "\udcff\udcfeok"


# -- JSON --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "value"),
    [
        (
            '{"a": [1, 2.50, -0, 1e999, true, null, "s"]}',
            {"a": ["1", "2.50", "-0", "1e999", True, None, "s"]},
        ),
        (" \n[]\t", []),
        ('"scalar"', "scalar"),
        ("1" * 5000, "1" * 5000),
        (
            "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH,
            json.loads("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH),
        ),
    ],
)
def test_parse_json_valid(text: str, value: object) -> None:
    assert parse_json(text) == value


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        '{"a": 1, "a": 2}',
        "[NaN]",
        "[Infinity]",
        "[1] [2]",
        '{"a": "trunc',
        "{'a': 1}",
        "\ufeff[]",
        "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1),
        "[" * 100_000,
        "[" * 100_000 + "]" * 100_000,
    ],
)
def test_parse_json_invalid(text: str) -> None:
    assert parse_json(text) is INVALID


def test_json_leaves_in_document_order_with_escaped_pointers() -> None:
    doc = parse_json('{"a/b": {"c~d": [1, {"e": null}]}, "": "empty", "f": []}')
    assert list(json_leaves(doc)) == [
        ("/a~1b", "a/b", None),
        ("/a~1b/c~0d", "c~d", None),
        ("/a~1b/c~0d/0", None, "1"),
        ("/a~1b/c~0d/1", None, None),
        ("/a~1b/c~0d/1/e", "e", "null"),
        ("/", "", "empty"),
        ("/f", "f", None),
    ]
    assert list(json_leaves(parse_json("false"))) == [("", None, "false")]


def test_json_named_values_array_elements_take_the_member_name() -> None:
    doc = parse_json('{"ids": [1, [2]], "user": {"name": "bob"}, "x": true}')
    assert list(json_named_values(doc)) == [
        ("ids", "1"),
        ("ids", "2"),
        ("name", "bob"),
        ("x", "true"),
    ]
    assert list(json_named_values(parse_json("[1]"))) == [("", "1")]
    assert list(json_named_values(parse_json("null"))) == [("", "null")]


# -- per-request parses ------------------------------------------------------------------------
def post(content_type: str, body: bytes) -> WafRequest:
    return WafRequest("POST", "/", headers=(("Content-Type", content_type),), body=body)


@pytest.mark.parametrize(
    ("content_type", "body", "args", "named"),
    [
        (
            "application/x-www-form-urlencoded; charset=utf-8",
            b"User=bob&pass%77ord=%27+or&Pass+Word=x",
            (("User", "bob"), ("pass%77ord", "%27+or"), ("Pass+Word", "x")),
            (("user", "bob"), ("password", "%27+or"), ("pass word", "x")),
        ),
        (
            CT,
            multipart((field("A"), b"1"), (f'{field("F")}; filename="e.php"', b"<?php")),
            (("A", "1"), ("F", "e.php")),
            (("a", "1"), ("f", "e.php")),
        ),
        (
            "application/json",
            b'{"Ids": [1, 2], "x": {"y": "z"}}',
            (("Ids", "1"), ("Ids", "2"), ("y", "z")),
            (("ids", "1"), ("ids", "2"), ("y", "z")),
        ),
        ("application/problem+json", b'"s"', (("", "s"),), (("", "s"),)),
        ("application/json", b'{"a": ', (), ()),
        ("text/plain", b"a=1", (), ()),
    ],
)
def test_body_arguments_by_content_type(
    content_type: str,
    body: bytes,
    args: tuple[tuple[str, str], ...],
    named: tuple[tuple[str, str], ...],
) -> None:
    req = post(content_type, body)
    assert bodies.body_arguments(req) == args
    assert bodies.named_body_arguments(req) == named
    assert bodies.body_argument_values(post(content_type, body)) == tuple(v for _, v in args)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab=&%+ \x00é", max_size=40))
def test_form_values_are_the_values_of_the_pairs(body: str) -> None:
    """A form's values are read without pairing them with names: the same values."""
    pairs = bodies.body_arguments(post("application/x-www-form-urlencoded", body.encode()))
    values = bodies.body_argument_values(post("application/x-www-form-urlencoded", body.encode()))
    assert values == tuple(v for _, v in pairs)


def test_parses_are_memoised_per_request() -> None:
    req = post("application/json", b'{"a": [1]}')
    assert bodies.json_document(req) is bodies.json_document(req)
    assert bodies.json_leaf_table(req) is bodies.json_leaf_table(req)
    assert bodies.body_arguments(req) is bodies.body_arguments(req)
    other = post("application/json", b"[2]")
    assert bodies.json_document(other) == ["2"]


# -- never raising -----------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.text(max_size=60))
def test_parsers_never_raise(body: bytes, header: str) -> None:
    parts = parse_multipart(body, header)
    assert len(parts) <= MAX_PARTS
    parse_multipart(body, "multipart/form-data; boundary=" + header)
    header_params(header)
    text = body.decode("utf-8", "surrogateescape")
    doc = parse_json(text)
    if doc is not INVALID:
        list(json_leaves(doc))
        list(json_named_values(doc))
    percent_decode(header + text, True)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.text(max_size=10), st.binary(max_size=20)), max_size=5),
    st.integers(min_value=0),
)
def test_truncated_multipart_never_raises(items: list[tuple[str, bytes]], cut: int) -> None:
    body = multipart(*[(field(name.replace('"', "")), data) for name, data in items])
    parse_multipart(body[: cut % (len(body) + 1)], CT)
