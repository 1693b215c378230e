"""Login judgement: the username from the inspected body, the verdict from the response."""

from __future__ import annotations

import gzip
import json

import pytest

from wafproxy.detect.config import LoginFailure, LoginRoute
from wafproxy.detect.login import LoginRoutes, LoginWatch, MarkerScan, location_path, username_of
from wafproxy.request import WafRequest

FORM = "application/x-www-form-urlencoded"


def post(body: str, content_type: str, path: str = "/login") -> WafRequest:
    data = body.encode()
    return WafRequest(
        method="POST",
        uri_path=path,
        headers=(("Content-Type", content_type),),
        body=data,
        body_size=len(data),
    )


# -- routes ----------------------------------------------------------------------------------------
def test_exact_and_prefix_routes_match_by_method_and_path() -> None:
    routes = LoginRoutes(
        [LoginRoute("/login"), LoginRoute("/api/auth/", prefix=True, method="PUT")]
    )
    assert routes.route_for("POST", "/login") is not None
    assert routes.route_for("POST", "/login/") is None
    assert routes.route_for("GET", "/login") is None
    assert routes.route_for("PUT", "/api/auth/token") is not None
    assert routes.route_for("POST", "/api/auth/token") is None


def test_dot_segments_do_not_dodge_a_login_route() -> None:
    routes = LoginRoutes([LoginRoute("/login")])
    assert routes.route_for("POST", "/static/../login") is not None
    assert routes.route_for("POST", "//login") is not None


def test_no_routes_no_watch() -> None:
    assert LoginRoutes([]).watch("POST", "/login") is None


# -- usernames -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        ("username=Alice%40Example.com&password=x", FORM, "alice@example.com"),
        ("password=x&USERNAME=bob+smith", FORM, "bob smith"),
        (json.dumps({"username": "Carol", "password": "x"}), "application/json", "carol"),
        (json.dumps({"user": {"username": "dave"}}), "application/json", "dave"),
        ("password=x", FORM, None),
        ("username=&password=x", FORM, None),
        ("username=eve", "text/plain", None),
        ('{"username": "trunc', "application/json", None),
    ],
)
def test_username_from_the_body(body: str, content_type: str, expected: str | None) -> None:
    assert username_of(post(body, content_type), "username") == expected


def test_multipart_username() -> None:
    body = (
        '--XyZ\r\nContent-Disposition: form-data; name="email"\r\n\r\nfrank@example.com\r\n'
        "--XyZ--\r\n"
    )
    request = post(body, "multipart/form-data; boundary=XyZ")
    assert username_of(request, "email") == "frank@example.com"


def test_username_is_bounded() -> None:
    request = post("username=" + "a" * 10_000, FORM)
    name = username_of(request, "username")
    assert name is not None and len(name) == 256


# -- the verdict -----------------------------------------------------------------------------------
def watch(**failure: object) -> LoginWatch:
    return LoginWatch(LoginRoute("/login", failure=LoginFailure(**failure)))  # type: ignore[arg-type]


def test_failure_by_status() -> None:
    w = watch()
    assert w.failed(401, None, blocked=False) is True
    assert w.failed(403, None, blocked=False) is True
    assert w.failed(200, None, blocked=False) is False
    assert w.failed(302, "/home", blocked=False) is False
    custom = watch(statuses=frozenset({422}))
    assert custom.failed(422, None, blocked=False) is True
    assert custom.failed(401, None, blocked=False) is False


def test_failure_by_redirect_target() -> None:
    w = watch(location="/login?error")
    assert w.failed(302, "/login?error=1", blocked=False) is True
    assert w.failed(302, "https://shop.example/login?error=bad", blocked=False) is True
    assert w.failed(302, "/account", blocked=False) is False


def test_no_judgement_when_the_application_did_not_answer() -> None:
    w = watch()
    assert w.failed(403, None, blocked=True) is None
    assert w.failed(502, None, blocked=False) is None
    assert w.failed(499, None, blocked=False) is None


def test_failure_by_marker_across_chunks() -> None:
    w = watch(marker=b"Invalid password")
    for chunk in (b"<html><p>Inval", b"id pass", b"word</p></html>"):
        w.feed(chunk)
    assert w.failed(200, None, blocked=False) is True
    fine = watch(marker=b"Invalid password")
    fine.feed(b"<html>Welcome back</html>")
    assert fine.failed(200, None, blocked=False) is False


def test_marker_beyond_the_window_is_not_seen() -> None:
    scan = MarkerScan(b"MARK", window=100)
    scan.feed(b"x" * 98 + b"MA")
    scan.feed(b"RK")
    assert not scan.found and scan.done
    early = MarkerScan(b"MARK", window=100)
    early.feed(b"x" * 96 + b"MARK" + b"y" * 1000)
    assert early.found


def test_marker_in_a_gzip_body() -> None:
    packed = gzip.compress(b"<p>" + b"padding " * 50 + b"Invalid password</p>")
    scan = MarkerScan(b"Invalid password")
    for i in range(0, len(packed), 7):
        scan.feed(packed[i : i + 7])
    assert scan.found


def test_a_gzip_bomb_is_inflated_no_further_than_the_window() -> None:
    packed = gzip.compress(b"\0" * 50_000_000)
    scan = MarkerScan(b"never", window=64 * 1024)
    scan.feed(packed)
    assert scan.done and not scan.found and scan.seen == 64 * 1024


def test_location_path() -> None:
    assert location_path("/a?b") == "/a?b"
    assert location_path("https://x.example/a?b") == "/a?b"
    assert location_path("https://x.example") == "/"
    assert location_path("//x.example/a") == "/a"
    assert location_path("relative") == "relative"
