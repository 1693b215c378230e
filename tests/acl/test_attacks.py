"""The libinjection detections: agree with the libinjection binding, and the claim the XSS short
cut rests on (no '<', '=' or ':' means libinjection never reports XSS)."""

from __future__ import annotations

import libinjection
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wafproxy.acl.attacks import (
    MAX_INSPECT,
    Detection,
    _strip_sql_comments,
    found_each,
    raw_sqli,
    raw_xss,
)

SQLI = [
    "' or 1=1--", "1' OR '1'='1", "1 union select username, password from users",
    "1; DROP TABLE users", "admin'--", "1) or sleep(5)#", "' UNION ALL SELECT NULL,NULL--",
    "1 AND 1=1", "-1' union select 1,@@version--",
]  # fmt: skip
XSS = [
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "<svg/onload=alert(1)>",
    "\"><script>alert(document.cookie)</script>", "<a href=\"javascript:alert(1)\">x</a>",
    "' onmouseover='alert(1)", "<iframe src=javascript:alert(1)>", "<body onload=alert(1)>",
]  # fmt: skip
BENIGN = [
    "O'Brien", "D'Angelo's pizza", "john.smith@example.com", "hello world", "rock & roll",
    "2 + 2 = 4", "price<100", "a=b", "https://example.com/path?x=1", "¿Qué tal?", "it's 5 o'clock",
    "select a plan", "union station", "", "1", "-- just dashes --", "<b>bold</b>",
]  # fmt: skip
ALL = SQLI + XSS + BENIGN


def binding_sqli(value: str) -> bool:
    return bool(libinjection.is_sql_injection(value)["is_sqli"])


def binding_xss(value: str) -> bool:
    return bool(libinjection.is_xss(value)["is_xss"])


def is_sqli(value: str, *, high: bool = False) -> bool:
    detection = Detection.SQLI_HIGH if high else Detection.SQLI
    return detection.found_in(value.encode("utf-8", "surrogateescape"))


def is_xss(value: str) -> bool:
    return Detection.XSS.found_in(value.encode("utf-8", "surrogateescape"))


@pytest.mark.parametrize("value", ALL)
def test_wrapper_agrees_with_the_binding(value: str) -> None:
    assert is_sqli(value) is binding_sqli(value)
    assert is_xss(value) is binding_xss(value)
    data = value.encode()
    assert raw_sqli(data) is binding_sqli(value)
    assert raw_xss(data) is binding_xss(value)


@pytest.mark.parametrize("value", SQLI)
def test_sql_injection_is_detected(value: str) -> None:
    assert is_sqli(value)
    assert is_sqli(value, high=True)


@pytest.mark.parametrize("value", XSS)
def test_xss_is_detected(value: str) -> None:
    assert is_xss(value)


@pytest.mark.parametrize("value", BENIGN)
def test_benign_values_pass(value: str) -> None:
    assert not is_sqli(value)
    assert not is_sqli(value, high=True)


def test_javascript_url_alone_is_not_xss_for_libinjection() -> None:
    """A bare ``javascript:`` value is only XSS inside an attribute; both sides agree on it."""
    assert is_xss("javascript:alert(1)") is binding_xss("javascript:alert(1)")


def test_high_sensitivity_looks_through_comments() -> None:
    split = "1 UN/**/ION SEL/**/ECT 1,2"
    assert _strip_sql_comments(split.encode()) == b"1 UNION SELECT 1,2"
    assert not is_sqli(split)
    assert is_sqli(split, high=True)
    assert _strip_sql_comments(b"a/*unterminated") == b"a"
    assert not is_sqli("/* just a comment */", high=True)


def test_a_long_value_is_inspected_up_to_max_inspect() -> None:
    assert is_sqli("x " * 2000 + "' or 1=1--")
    assert not is_sqli("x" * MAX_INSPECT + "' or 1=1--")


def test_undecodable_bytes_from_the_wire_are_fine() -> None:
    """Bodies are decoded with surrogateescape; the detectors must take such text."""
    value = b"\xff\xfe' or 1=1--".decode("utf-8", "surrogateescape")
    assert is_sqli(value)
    assert not is_xss(b"\xff\xfe hello".decode("utf-8", "surrogateescape"))


# -- the claim in attacks.py's docstring ----------------------------------------------------------
HTML_BITS = [
    "'", '"', "`", " ", "\t", "\n", "\r", "\x0b", "\x0c", "\x00", "/", ">", "!", "-", "--", "?",
    "&", "#", ";", "\\", "(", ")", "x", "onload", "onerror", " onclick", "style", "src", "href",
    "javascript", "vbscript", "data", "script", "DOCTYPE", "[if", "xml", "import", "expression(",
    "alert(1)", "%3C", "&lt;", "&#60;", "\u00a0", "\uff1c", "\u2028", "srcdoc", "formaction",
]  # fmt: skip
NO_TRIGGERS = st.characters(exclude_characters="<=:", exclude_categories=["Cs"])
TEXT_WITHOUT_TRIGGERS = st.one_of(
    st.text(NO_TRIGGERS, max_size=60),
    st.lists(st.one_of(st.sampled_from(HTML_BITS), st.text(NO_TRIGGERS, max_size=3)),
             max_size=16).map("".join),
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(TEXT_WITHOUT_TRIGGERS)
def test_no_xss_without_angle_bracket_equals_or_colon(value: str) -> None:
    """attacks.xss_in skips values without '<', '=' and ':'; libinjection must agree.
    A counterexample here means the short cut lets XSS through."""
    assert not binding_xss(value), value
    assert not raw_xss(value.encode("utf-8")), value


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_wrapper_agrees_with_the_binding_on_any_text(value: str) -> None:
    assert is_sqli(value) is binding_sqli(value)
    assert is_xss(value) is binding_xss(value)


# -- a group's detections answered together -------------------------------------------------------
OBFUSCATED = ["1 UN/**/ION SEL/**/ECT 1,2", "/* just a comment */", "a/*unterminated", "x/**/y"]
GROUPS = [
    (Detection.SQLI,), (Detection.SQLI_HIGH,), (Detection.XSS,),
    (Detection.SQLI, Detection.SQLI_HIGH), (Detection.SQLI_HIGH, Detection.SQLI),
    (Detection.XSS, Detection.SQLI_HIGH, Detection.SQLI),
]  # fmt: skip


def answer_alone(detection: Detection, data: bytes) -> bool:
    """What one detection answers, spelled out from libinjection's two checks."""
    if detection is Detection.XSS:
        return bool(data) and raw_xss(data[:MAX_INSPECT])
    if data and raw_sqli(data[:MAX_INSPECT]):
        return True
    stripped = _strip_sql_comments(data)
    high = detection is Detection.SQLI_HIGH
    return high and stripped != data and raw_sqli(stripped[:MAX_INSPECT])


@pytest.mark.parametrize("detections", GROUPS)
@pytest.mark.parametrize("value", ALL + OBFUSCATED)
def test_found_each_answers_as_each_detection_alone(
    detections: tuple[Detection, ...], value: str
) -> None:
    data = value.encode("utf-8", "surrogateescape")
    assert found_each(detections, data) == [answer_alone(d, data) for d in detections]


def test_found_each_asks_libinjection_once_for_both_sql_sensitivities(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from wafproxy.acl import attacks

    calls: list[bytes] = []

    def counting(data: bytes) -> bool:
        calls.append(data)
        return raw_sqli(data)

    monkeypatch.setattr(attacks, "raw_sqli", counting)
    assert found_each((Detection.SQLI, Detection.SQLI_HIGH), b"' or 1=1--") == [True, True]
    assert found_each((Detection.SQLI, Detection.SQLI_HIGH), b"hello world") == [False, False]
    assert calls == [b"' or 1=1--", b"hello world"]
