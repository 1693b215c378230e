"""Login routes: who tried to log in (the username field of the inspected body) and whether the
application turned the attempt down (status, redirect target, or a marker in the response body).

Only requests on a configured login route pay for any of this. The marker is looked for as the
response streams through ``relay``: at most the first 64 KiB, keeping only the marker's length
of overlap between chunks, never a copy of the body. A gzip-encoded response is inflated for
the look (bounded to the same 64 KiB of output); other encodings (br, deflate) cannot be read
and leave the judgement to status and Location.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence

from wafproxy.acl.bodies import FORM, named_body_arguments, percent_decode
from wafproxy.config.runtime import routing_path
from wafproxy.detect.config import MARKER_WINDOW, LoginRoute
from wafproxy.request import WafRequest

MAX_USERNAME = 256
GZIP_MAGIC = b"\x1f\x8b"
CLIENT_CLOSED = 499


class LoginRoutes:
    """The configured login routes, matched by method first (most requests stop there)."""

    def __init__(self, routes: Sequence[LoginRoute]) -> None:
        self.routes = tuple(routes)
        self.methods = frozenset(r.method for r in self.routes)

    def route_for(self, method: str, path: str) -> LoginRoute | None:
        if method not in self.methods:
            return None
        clean = routing_path(path)
        for route in self.routes:
            if route.matches(method, clean):
                return route
        return None

    def watch(self, method: str, path: str) -> LoginWatch | None:
        route = self.route_for(method, path)
        return None if route is None else LoginWatch(route)


class MarkerScan:
    """Is ``marker`` in the first ``window`` bytes of a body fed chunk by chunk?"""

    __slots__ = ("_inflate", "_started", "_tail", "found", "marker", "seen", "window")

    def __init__(self, marker: bytes, window: int = MARKER_WINDOW) -> None:
        self.marker = marker
        self.window = window
        self.seen = 0
        self.found = False
        self._tail = b""
        self._started = False
        self._inflate: zlib._Decompress | None = None

    @property
    def done(self) -> bool:
        return self.found or self.seen >= self.window

    def feed(self, chunk: bytes) -> None:
        if self.done or not chunk:
            return
        if not self._started:
            self._started = True
            if chunk.startswith(GZIP_MAGIC):
                self._inflate = zlib.decompressobj(wbits=31)
        if self._inflate is not None:
            chunk = self._inflated(chunk)
        self._look(chunk[: self.window - self.seen])

    def _inflated(self, chunk: bytes) -> bytes:
        assert self._inflate is not None
        try:
            return self._inflate.decompress(chunk, self.window - self.seen)
        except zlib.error:
            self.seen = self.window  # not gzip after all: stop looking
            return b""

    def _look(self, part: bytes) -> None:
        self.seen += len(part)
        window = self._tail + part
        if self.marker in window:
            self.found = True
            return
        keep = len(self.marker) - 1
        self._tail = window[-keep:] if keep else b""


class LoginWatch:
    """One request on a login route: fed the response body (when a marker is configured), then
    asked for the username and the verdict."""

    __slots__ = ("route", "scan")

    def __init__(self, route: LoginRoute) -> None:
        self.route = route
        marker = route.failure.marker
        self.scan = MarkerScan(marker) if marker is not None else None

    @property
    def body_sink(self) -> Callable[[bytes], None] | None:
        """What the relay feeds the response body to; None when no marker is configured."""
        return self.scan.feed if self.scan is not None else None

    def feed(self, chunk: bytes) -> None:
        if self.scan is not None:
            self.scan.feed(chunk)

    def username(self, request: WafRequest | None) -> str | None:
        return None if request is None else username_of(request, self.route.username_field)

    def failed(self, status: int, location: str | None, blocked: bool) -> bool | None:
        """True / False as the application answered; None when it did not judge the attempt
        (blocked by the WAF, refused, upstream failure, the client went away)."""
        if blocked or status >= 500 or status == CLIENT_CLOSED:
            return None
        failure = self.route.failure
        if status in failure.statuses:
            return True
        if failure.location and location and location_path(location).startswith(failure.location):
            return True
        return self.scan is not None and self.scan.found


def username_of(request: WafRequest, field: str) -> str | None:
    """The first body argument named ``field`` (case-insensitive; urlencoded, multipart or JSON
    at any depth), stripped, lower-cased (accounts are case-insensitive almost everywhere) and
    bounded; None when absent or empty."""
    wanted = field.lower()
    for name, value in named_body_arguments(request):
        if name != wanted:
            continue
        text = percent_decode(value, True) if request.content_type == FORM else value
        text = text.strip()[:MAX_USERNAME].lower()
        return text or None
    return None


def location_path(location: str) -> str:
    """``https://shop.example/login?e=1`` -> ``/login?e=1``; a relative target as it is."""
    if location.startswith("/") and not location.startswith("//"):
        return location
    _, sep, rest = location.partition("//")
    if not sep:
        return location
    slash = rest.find("/")
    return rest[slash:] if slash >= 0 else "/"
