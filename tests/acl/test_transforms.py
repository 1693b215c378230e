"""The text transformations: a table of documented behaviour per type, plus properties.

Rows come from the AWS WAF Developer Guide's descriptions and from ModSecurity's transformation
tests (secrules-language-tests), which AWS's types are modelled on. Text stands for request
bytes decoded with surrogateescape, so a lone byte 0xNN is written ``\\udcNN`` below.
"""

from __future__ import annotations

import base64
import hashlib
import html.entities
from urllib.parse import quote_from_bytes

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from wafproxy.acl.transforms import TRANSFORMS, chain
from wafproxy.acl.transforms.url import _percent_decode, _percent_decode_each

AWS_TYPES = [  # TextTransformation.Type in the AWS WAFV2 API reference
    *("NONE", "COMPRESS_WHITE_SPACE", "HTML_ENTITY_DECODE", "LOWERCASE", "CMD_LINE"),
    *("URL_DECODE", "BASE64_DECODE", "HEX_DECODE", "MD5", "REPLACE_COMMENTS"),
    *("ESCAPE_SEQ_DECODE", "SQL_HEX_DECODE", "CSS_DECODE", "JS_DECODE", "NORMALIZE_PATH"),
    *("NORMALIZE_PATH_WIN", "REMOVE_NULLS", "REPLACE_NULLS", "BASE64_DECODE_EXT"),
    *("URL_DECODE_UNI", "UTF8_TO_UNICODE", "REMOVE_WHITESPACE", "TRIM", "TRIM_LEFT"),
    *("TRIM_RIGHT", "REMOVE_COMMENTS_CHAR", "UPPERCASE", "CMD_LINE_WIN", "CMD_LINE_UNIX"),
    *("JS_DECODE_EXT", "SHA256"),
]


def raw(data: bytes) -> str:
    """Request bytes as the engine sees them."""
    return data.decode("utf-8", "surrogateescape")


ROWS: list[tuple[str, str, str]] = [
    # none
    ("none", "", ""),
    ("none", "%41 &lt; /a/../b", "%41 &lt; /a/../b"),
    # lowercase / uppercase (A-Z only)
    ("lowercase", "SeLeCt * FROM T", "select * from t"),
    ("lowercase", "ÉCOLE \udcc9", "École \udcc9"),
    ("lowercase", "", ""),
    ("uppercase", "union select", "UNION SELECT"),
    ("uppercase", "école", "éCOLE"),
    # remove_nulls / replace_nulls
    ("remove_nulls", "a\x00b\x00\x00c", "abc"),
    ("remove_nulls", "no nul", "no nul"),
    ("replace_nulls", "a\x00b\x00\x00c", "a b  c"),
    ("replace_nulls", "\x00", " "),
    # trim family: C whitespace only
    ("trim", " \t\n\v\f\rabc \t\r\n", "abc"),
    ("trim", "\x00 abc \x00", "\x00 abc \x00"),
    ("trim", "\xa0abc", "\xa0abc"),
    ("trim_left", " \t abc \t ", "abc \t "),
    ("trim_left", "abc", "abc"),
    ("trim_right", " \t abc \t\n", " \t abc"),
    ("trim_right", "   ", ""),
    # remove_whitespace: C whitespace and NBSP
    ("remove_whitespace", " s e\tl\ne\rc\vt\f \xa0*", "select*"),
    ("remove_whitespace", "a\udca0b", "ab"),
    ("remove_whitespace", "a\x00b", "a\x00b"),
    # compress_white_space
    ("compress_white_space", "  Test  \t   Case  ", " Test Case "),
    ("compress_white_space", "a\t\n\v\f\r\xa0b", "a b"),
    ("compress_white_space", "tab \t, NUL\x00 CRLF\r\n", "tab , NUL\x00 CRLF "),
    ("compress_white_space", "one two", "one two"),
    # cmd_line
    ("cmd_line", 'C"at^ /Etc/passwd', "cat/etc/passwd"),
    ("cmd_line", "a,b;c", "a b c"),
    ("cmd_line", "p\\i'n'g  \t\n -c 1", "ping -c 1"),
    ("cmd_line", "echo (x)", "echo(x)"),
    ("cmd_line", "a ,; /b", "a/b"),
    # cmd_line_win
    ("cmd_line_win", 'C^M^D /C "DIR" C:\\Windows', "cmd/c dir c:\\windows"),
    ("cmd_line_win", "a,b;c\td", "a b c d"),
    ("cmd_line_win", "it's", "it's"),
    # cmd_line_unix
    ("cmd_line_unix", "c'a't /e\"t\"c/pass\\wd", "cat /etc/passwd"),
    ("cmd_line_unix", "cat${IFS}/etc/passwd", "cat /etc/passwd"),
    ("cmd_line_unix", "c$@at\t\t/etc/$*passwd", "cat /etc/passwd"),
    ("cmd_line_unix", "CaT a,b;c", "CaT a,b;c"),
    # url_decode
    ("url_decode", "a%20b+c", "a b c"),
    ("url_decode", "%3Cscript%3e", "<script>"),
    ("url_decode", "%zz%4%", "%zz%4%"),
    ("url_decode", "%%41", "%A"),
    ("url_decode", "%u0041", "%u0041"),
    ("url_decode", "%C3%A9", "é"),
    ("url_decode", "%E9%00", "\udce9\x00"),
    ("url_decode", "%2B", "+"),
    ("url_decode", "plain", "plain"),
    ("url_decode", "a\\%41\\x41\\\\%5C", "a\\A\\x41\\\\\\"),  # the value's own backslashes
    # url_decode_uni
    ("url_decode_uni", "%u0041%U0042", "AB"),
    ("url_decode_uni", "%uff1cscript%uFF1E", "<script>"),
    ("url_decode_uni", "%u4e2d", "-"),
    ("url_decode_uni", "%uff00%uff5f", "\x00_"),
    ("url_decode_uni", "%u%u0020", "%u "),
    ("url_decode_uni", "%u000g%u00", "%u000g%u00"),
    ("url_decode_uni", "%%u0020+%41", "%  A"),
    ("url_decode_uni", "%0g%g0%", "%0g%g0%"),
    ("url_decode_uni", "\\%41\\%u0042%5c", "\\A\\B\\"),
    # utf8_to_unicode
    ("utf8_to_unicode", "aé中", "a%u00e9%u4e2d"),
    ("utf8_to_unicode", "😀", "%u1f600"),
    ("utf8_to_unicode", "ascii only", "ascii only"),
    ("utf8_to_unicode", "\udcc3x", "\udcc3x"),
    # base64_decode
    ("base64_decode", "VGVzdENhc2U=", "TestCase"),
    ("base64_decode", "VGVzdENhc2UxMg==", "TestCase12"),
    ("base64_decode", "VGVzdENhc2Ux", "TestCase1"),
    ("base64_decode", "VGVzdABDYXNl", "Test\x00Case"),
    ("base64_decode", "VGVzdENhc2U=\x00VGVzdENhc2U=", "TestCase"),
    ("base64_decode", "PHNjcmlwdD4.junk", "<script>"),
    ("base64_decode", "!nothing", ""),
    ("base64_decode", "", ""),
    ("base64_decode", "/w==", "\udcff"),
    # base64_decode_ext
    ("base64_decode_ext", "P.HNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==", "<script>alert(1)</script>"),
    ("base64_decode_ext", "VGVz\ndENh\r\nc2U=", "TestCase"),
    ("base64_decode_ext", "eyJwIjoieHh-In0", '{"p":"xx~"}'),
    ("base64_decode_ext", "P_8", "?\udcff"),
    ("base64_decode_ext", "***", ""),
    # hex_decode
    ("hex_decode", "5465737443617365", "TestCase"),
    ("hex_decode", "546573740043617365", "Test\x00Case"),
    ("hex_decode", "01234567890a0", "\x01#Eg\udc89\n"),
    ("hex_decode", "414", "A"),
    ("hex_decode", "41zz42", "AzzB"),
    ("hex_decode", "e9", "\udce9"),
    ("hex_decode", "", ""),
    # sql_hex_decode
    ("sql_hex_decode", "0x414243", "ABC"),
    ("sql_hex_decode", "SELECT 0X414243 FROM", "SELECT ABC FROM"),
    ("sql_hex_decode", "00x414243", "0ABC"),
    ("sql_hex_decode", "0xz0x414243", "0xzABC"),
    ("sql_hex_decode", "0x4142430x434241", "ABCCBA"),
    ("sql_hex_decode", "0x4142430x0x434241", "ABC0xCBA"),
    ("sql_hex_decode", "0x414", "A4"),
    ("sql_hex_decode", "0x", "0x"),
    ("sql_hex_decode", "ABC", "ABC"),
    # md5 / sha256: the raw digest bytes
    ("md5", "", raw(bytes.fromhex("d41d8cd98f00b204e9800998ecf8427e"))),
    ("md5", "abc", raw(hashlib.md5(b"abc").digest())),
    ("md5", "\udcff", raw(hashlib.md5(b"\xff").digest())),
    ("sha256", "", raw(hashlib.sha256(b"").digest())),
    ("sha256", "é", raw(hashlib.sha256("é".encode()).digest())),
    # replace_comments
    ("replace_comments", "/* TestCase */", " "),
    ("replace_comments", "Before/* TestCase */After", "Before After"),
    ("replace_comments", "Before /* TestCase */ After", "Before   After"),
    ("replace_comments", "a/**//**/b", "a  b"),
    ("replace_comments", "Before /* Test\nCase ", "Before  "),
    ("replace_comments", "Test\nCase */ After", "Test\nCase */ After"),
    ("replace_comments", "UNION/*&a=*/SELECT", "UNION SELECT"),
    ("replace_comments", "-- # not C comments", "-- # not C comments"),
    ("replace_comments", "a * b / c", "a * b / c"),
    ("replace_comments", "*/* x", "* "),
    # remove_comments_char
    ("remove_comments_char", "UNION/**/SELECT", "UNIONSELECT"),
    ("remove_comments_char", "a/*b*/c--d#e<!--f-->", "abcdef"),
    ("remove_comments_char", "1 -- x", "1  x"),
    ("remove_comments_char", "#####", ""),
    ("remove_comments_char", "---", "-"),
    ("remove_comments_char", "--->", "->"),
    ("remove_comments_char", "-/*-", "--"),
    ("remove_comments_char", "/*/", "/"),
    ("remove_comments_char", "- # -", "-  -"),
    # escape_seq_decode
    ("escape_seq_decode", "\\a\\b\\f\\n\\r\\t\\v\\\\\\?\\'\\\"", "\a\b\f\n\r\t\v\\?'\""),
    ("escape_seq_decode", "\\x41\\X42\\101\\0", "ABA\x00"),
    ("escape_seq_decode", "\\0123", "\n3"),
    ("escape_seq_decode", "\\666", "\udcb6"),
    ("escape_seq_decode", "\\xff", "\udcff"),
    ("escape_seq_decode", "\\q\\8\\xZZ\\x4", "\\q\\8\\xZZ\\x4"),
    ("escape_seq_decode", "\\u0041", "\\u0041"),
    ("escape_seq_decode", "\\", "\\"),
    ("escape_seq_decode", "\\\\x41", "\\x41"),
    # js_decode
    ("js_decode", "\\u0041\\x42\\103", "ABC"),
    ("js_decode", "\\uff1cscript\\uFF1E", "<script>"),
    ("js_decode", "\\u4e2d", "-"),
    ("js_decode", "\\a\\b\\f\\n\\r\\t\\v\\?\\'\\\"\\\\", "\a\b\f\n\r\t\v?'\"\\"),
    ("js_decode", "\\8\\9\\666\\u00ag\\xag\\0123", "8966u00agxag\n3"),
    ("js_decode", "\\u\\u0\\u01\\u012", "uu0u01u012"),
    ("js_decode", "\\", "\\"),
    ("js_decode", "\\\\0", "\\0"),
    ("js_decode", "ja\\vascript", "ja\vascript"),
    # js_decode_ext
    ("js_decode_ext", "\\u0041\\u4e2d", "A中"),
    ("js_decode_ext", "\\ud83d\\ude00", "😀"),
    ("js_decode_ext", "\\u{1F600}\\u{41}", "😀A"),
    ("js_decode_ext", "\\ud800x", "\\ud800x"),
    ("js_decode_ext", "\\u{110000}", "u{110000}"),
    ("js_decode_ext", "\\\\ud83d\\ude00", "\\ud83d\\ude00"),
    ("js_decode_ext", "\\x41\\uff01", "A\uff01"),
    # css_decode
    ("css_decode", "ja\\vascript", "javascript"),
    ("css_decode", "\\6a\\61 vascript", "javascript"),
    ("css_decode", "\\1A\\1 A\\1234567\\123456 7", "\x1a\x01AV7V7"),
    ("css_decode", "\\ff01\\0ff5e\\00ff3c", "!~\\"),
    ("css_decode", "a\\\nb", "ab"),
    ("css_decode", "\\0  string", "\x00 string"),
    ("css_decode", "test\\", "test"),
    ("css_decode", "\\\\41", "\\41"),
    # html_entity_decode
    ("html_entity_decode", "&lt;script&gt;", "<script>"),
    ("html_entity_decode", "&quot;&amp;&nbsp;&LT;", '"&\xa0<'),
    ("html_entity_decode", "&#x41;&#X42;&#67;&#0000068;", "ABCD"),
    ("html_entity_decode", "&#x41&#66&lt&quot", 'AB<"'),
    ("html_entity_decode", "&#x4e2d;&#20013;", "中中"),
    ("html_entity_decode", "&#xg;&#a;&foo;&;&#;&", "&#xg;&#a;&foo;&;&#;&"),
    ("html_entity_decode", "&#X2g;&#3a&#10a;", "\x02g;\x03a\na;"),
    ("html_entity_decode", "&#x110000;&#xd800;", "&#x110000;&#xd800;"),
    ("html_entity_decode", "&lpar;&rpar;&sol;&NewLine;&Tab;&colon;", "()/\n\t:"),
    ("html_entity_decode", "&ltx &lpar x", "&ltx &lpar x"),
    ("html_entity_decode", "a=1&lt=2", "a=1<=2"),
    # normalize_path
    ("normalize_path", "/a/./b/../c", "/a/c"),
    ("normalize_path", "/dir/foo//bar", "/dir/foo/bar"),
    ("normalize_path", "dir/foo//bar/", "dir/foo/bar/"),
    ("normalize_path", "dir/../../foo", "../foo"),
    ("normalize_path", "dir/./.././../../foo/bar/..", "../../foo"),
    ("normalize_path", "/../../etc/passwd", "/etc/passwd"),
    ("normalize_path", "/./.././../\x00/../etc/./passwd", "/etc/passwd"),
    ("normalize_path", "/a/..", "/"),
    ("normalize_path", "./", ""),
    ("normalize_path", "../", "../"),
    ("normalize_path", "/index.html", "/index.html"),
    ("normalize_path", ".htaccess", ".htaccess"),
    ("normalize_path", "/a\\..\\b", "/a\\..\\b"),
    # normalize_path_win
    ("normalize_path_win", "C:\\a\\..\\b", "C:/b"),
    ("normalize_path_win", "\\a\\.\\b\\\\c", "/a/b/c"),
    ("normalize_path_win", "/a/b\\..\\..\\..\\win.ini", "/win.ini"),
    ("normalize_path_win", "..\\..\\x", "../../x"),
]


@pytest.mark.parametrize(("name", "value", "expected"), ROWS)
def test_documented_behaviour(name: str, value: str, expected: str) -> None:
    assert TRANSFORMS[name](value) == expected


def test_every_transform_has_a_row() -> None:
    covered = {name for name, _, _ in ROWS}
    assert [name for name in TRANSFORMS if name not in covered] == []


def test_registry_holds_exactly_the_aws_types() -> None:
    assert sorted(TRANSFORMS) == sorted(t.lower() for t in AWS_TYPES)


@pytest.mark.parametrize("name", TRANSFORMS.names())
def test_docstring_says_what_and_shows_yaml(name: str) -> None:
    doc = TRANSFORMS[name].__doc__ or ""
    summary, _, _ = doc.strip().partition("\n")
    examples = [line.strip().strip("`") for line in doc.splitlines() if "transforms:" in line]
    assert summary
    assert len(examples) == 1
    parsed = yaml.safe_load(examples[0])
    assert name in parsed["transforms"]
    assert all(t in TRANSFORMS for t in parsed["transforms"])


def test_named_entities_mean_what_html5_says() -> None:
    from wafproxy.acl.transforms import entities

    html5 = {key.rstrip(";").lower(): value for key, value in html.entities.html5.items()}
    for name, value in entities._ENTITIES.items():
        assert html5[name] == value, name


def test_chain_looks_names_up_in_order() -> None:
    fns = chain(["url_decode", "html_entity_decode", "lowercase"])
    value = "%26LT%3BSCRIPT%26gt%3B"
    for fn in fns:
        value = fn(value)
    assert value == "<script>"
    assert chain([]) == ()


def test_chain_rejects_an_unknown_name_with_a_hint() -> None:
    with pytest.raises(KeyError, match=r"unknown text transformation 'url_decod'.*'url_decode'"):
        chain(["lowercase", "url_decod"])


# -- properties ----------------------------------------------------------------------------------
SPECIAL = st.text(
    alphabet=st.sampled_from(
        [
            *"%uUxX0123456789abcdefABCDEF&#;\\/.*-+=<>!'\"^$@{}() \t\n\r\v\f\x00",
            *("\xa0", "é", "中", "😀", "\udcff", "\udcc3", "\udca9", "\ud800"),
        ]
    ),
    max_size=40,
)
REQUEST_TEXT = st.binary(max_size=200).map(raw)
ANY_TEXT = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=100)


@settings(max_examples=400)
@given(value=st.one_of(SPECIAL, ANY_TEXT))
def test_every_transform_is_total_and_deterministic(value: str) -> None:
    for name, fn in TRANSFORMS.items():
        first = fn(value)
        assert isinstance(first, str), name
        assert fn(value) == first, name


@settings(max_examples=300)
@given(value=REQUEST_TEXT)
def test_request_bytes_stay_request_bytes(value: str) -> None:
    for name, fn in TRANSFORMS.items():
        first = fn(value)
        assert fn(value) == first, name
        first.encode("utf-8", "surrogateescape")  # what the scanners will do


@given(data=st.binary())
def test_url_decoders_invert_percent_encoding(data: bytes) -> None:
    encoded = quote_from_bytes(data, safe="")
    assert TRANSFORMS["url_decode"](encoded) == raw(data)
    assert TRANSFORMS["url_decode_uni"](encoded) == raw(data)


PERCENT_HEAVY = st.binary().map(lambda b: b.replace(b"!", b"%")) | st.text("%uU09afAFgz\\x+ ").map(
    str.encode
)


@settings(max_examples=400)
@given(data=PERCENT_HEAVY)
def test_percent_decoding_by_escape_decode_equals_the_loop(data: bytes) -> None:
    for unicode in (False, True):
        assert _percent_decode(data, unicode) == _percent_decode_each(data, unicode)


@given(data=st.binary(), junk=st.sampled_from(["", " ", "\n", "!", "=="]))
def test_base64_decoders_invert_base64(data: bytes, junk: str) -> None:
    encoded = base64.b64encode(data).decode()
    assert TRANSFORMS["base64_decode"](encoded) == raw(data)
    spread = junk.join(encoded[i : i + 4] for i in range(0, len(encoded), 4))
    assert TRANSFORMS["base64_decode_ext"](spread) == raw(data)
    assert TRANSFORMS["base64_decode_ext"](base64.urlsafe_b64encode(data).decode()) == raw(data)


@given(data=st.binary())
def test_hex_decoders_invert_hex(data: bytes) -> None:
    assert TRANSFORMS["hex_decode"](data.hex()) == raw(data)
    assert TRANSFORMS["hex_decode"](data.hex().upper()) == raw(data)
    if data:
        assert TRANSFORMS["sql_hex_decode"]("0x" + data.hex()) == raw(data)


@given(data=st.binary())
def test_digests_are_the_raw_hash_bytes(data: bytes) -> None:
    assert TRANSFORMS["md5"](raw(data)) == raw(hashlib.md5(data).digest())
    assert TRANSFORMS["sha256"](raw(data)) == raw(hashlib.sha256(data).digest())


@given(char=st.characters(codec="utf-8"))  # no surrogates: they are not UTF-8
def test_character_references_decode_to_the_character(char: str) -> None:
    code = ord(char)
    assert TRANSFORMS["html_entity_decode"](f"&#{code};&#x{code:x};") == char * 2
    escape = f"\\u{{{code:x}}}"
    assert TRANSFORMS["js_decode_ext"](escape) == char


IDEMPOTENT = (
    "compress_white_space",
    "lowercase",
    "uppercase",
    "normalize_path",
    "normalize_path_win",
    "remove_nulls",
    "remove_whitespace",
    "trim",
    "cmd_line",
)


@settings(max_examples=300)
@given(value=st.one_of(SPECIAL, REQUEST_TEXT))
def test_normalisers_are_idempotent(value: str) -> None:
    value = raw(value.encode("utf-8", "surrogatepass"))  # what a request can carry
    for name in IDEMPOTENT:
        once = TRANSFORMS[name](value)
        assert TRANSFORMS[name](once) == once, name
