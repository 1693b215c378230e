"""The header filters, remembered per name, say what a per-request pass would: the oracles
below are the straightforward versions (lower-case and test every name on every call)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wafproxy import proxy_headers
from wafproxy.proxy_headers import (
    FORWARDED,
    HOP_BY_HOP,
    INSERTED_PREFIX,
    ForwardedFor,
    connection_tokens,
    decode_raw,
    upstream_headers,
    without_hop_by_hop,
)
from wafproxy.request import Header


def hop_by_hop_oracle(headers: list[Header]) -> list[Header]:
    named = {
        token
        for name, value in headers
        if name.lower() == "connection"
        for token in connection_tokens(value)
    }
    return [
        (name, value)
        for name, value in headers
        if name.lower() not in HOP_BY_HOP
        and not name.lower().startswith("proxy-")
        and name.lower() not in named
    ]


def upstream_oracle(headers: list[Header], fwd: ForwardedFor) -> list[Header]:
    dropped = HOP_BY_HOP | FORWARDED | {fwd.request_id_header.lower()}
    dropped |= {name.lower() for name, _ in fwd.insert_headers}
    named = {
        token
        for name, value in headers
        if name.lower() == "connection"
        for token in connection_tokens(value)
    }
    kept = [
        (name, value)
        for name, value in headers
        if name.lower() not in dropped
        and not name.lower().startswith(("proxy-", INSERTED_PREFIX))
        and name.lower() not in named
    ]
    prior = [value for name, value in headers if name.lower() == "x-forwarded-for"]
    kept.append(("X-Forwarded-For", ", ".join([*prior, fwd.peer])))
    kept.append(("X-Forwarded-Proto", fwd.scheme))
    if fwd.host:
        kept.append(("X-Forwarded-Host", fwd.host))
    kept.append((fwd.request_id_header, fwd.request_id))
    kept.extend(fwd.insert_headers)
    return kept


NAMES = st.one_of(
    st.sampled_from(
        [
            "Connection",
            "connection",
            "CONNECTION",
            "Keep-Alive",
            "TE",
            "Trailer",
            "Transfer-Encoding",
            "Upgrade",
            "Proxy-Authorization",
            "proxy-x",
            "Host",
            "X-Forwarded-For",
            "x-forwarded-for",
            "X-Request-Id",
            "x-wafproxy-checked",
            "X-Wafproxy-Other",
            "Accept",
            "accept",
            "X-Custom",
            "x-custom",
            "Cookie",
        ]
    ),
    st.text(alphabet="abcXYZ-", min_size=1, max_size=8),
    st.text(alphabet="ab-", min_size=60, max_size=70),  # around the longest name kept
)
VALUES = st.one_of(
    st.sampled_from(["close", "keep-alive, X-Custom", "Accept , x-custom", "1.2.3.4", "v"]),
    st.text(max_size=10),
)
HEADERS = st.lists(st.tuples(NAMES, VALUES), max_size=12)


@pytest.fixture(autouse=True)
def small_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables that fill and start afresh within one test."""
    monkeypatch.setattr(proxy_headers, "NAMES_KEPT", 8)


@settings(max_examples=300, deadline=None)
@given(headers=HEADERS)
def test_without_hop_by_hop_is_the_per_request_pass(headers: list[Header]) -> None:
    assert without_hop_by_hop(headers) == hop_by_hop_oracle(headers)


@settings(max_examples=300, deadline=None)
@given(
    headers=HEADERS,
    id_header=st.sampled_from(["X-Request-Id", "x-trace", "Accept"]),
    insert=st.sampled_from([(), (("x-wafproxy-checked", "1"),), (("X-Custom", "2"),)]),
)
def test_upstream_headers_are_the_per_request_pass(
    headers: list[Header], id_header: str, insert: tuple[Header, ...]
) -> None:
    fwd = ForwardedFor(
        peer="203.0.113.9",
        scheme="https",
        host="shop.example",
        host_header="pass",
        request_id_header=id_header,
        request_id="rid",
        insert_headers=insert,
    )
    assert upstream_headers(headers, fwd) == upstream_oracle(headers, fwd)


@settings(max_examples=200, deadline=None)
@given(raw=st.lists(st.tuples(st.binary(max_size=70), st.binary(max_size=10)), max_size=12))
def test_decode_raw_decodes_every_name_and_value(raw: list[tuple[bytes, bytes]]) -> None:
    expected = [
        (n.decode("utf-8", "surrogateescape"), v.decode("utf-8", "surrogateescape")) for n, v in raw
    ]
    assert decode_raw(raw) == expected
    assert decode_raw(raw) == expected  # again, names from the table


def test_long_names_are_not_remembered() -> None:
    long = "x" * (proxy_headers.LONGEST_NAME_KEPT + 1)
    decode_raw([(long.encode(), b"v")])
    without_hop_by_hop([(long, "v")])
    assert long.encode() not in proxy_headers._decoded_names
    assert long not in proxy_headers._RESPONSE_KINDS.known
