"""WafRequest's derived values, against the straightforward computation."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from wafproxy.request import Header, WafRequest

NAMES = st.sampled_from(["Host", "host", "Cookie", "cookie", "X-A", "x-a", "Accept"]) | st.text(
    max_size=6
)
HEADERS = st.lists(st.tuples(NAMES, st.text(max_size=6)), max_size=8)


def header_map_oracle(headers: list[Header]) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for name, value in headers:
        out[name.lower()] = (*out.get(name.lower(), ()), value)
    return out


@given(HEADERS)
def test_header_map_holds_every_value_of_a_name_in_order(headers: list[Header]) -> None:
    req = WafRequest("GET", "/", headers=tuple(headers))
    assert req.header_map == header_map_oracle(headers)
    assert list(req.header_map) == list(header_map_oracle(headers))  # first-seen order
    assert req.folded_names == tuple(name.lower() for name, _ in headers)


def test_repeated_names_keep_every_value() -> None:
    req = WafRequest("GET", "/", headers=(("X-A", "1"), ("Host", "h"), ("x-a", "2")))
    assert req.header_map == {"x-a": ("1", "2"), "host": ("h",)}
    assert req.header("X-A") == "1"
