"""How forwarding to an upstream fails: the error kinds (a 502 or a 504) and the exceptions."""

from __future__ import annotations

import enum

from wafproxy.upstream_http import ConnectFailed, UpstreamProtocolError


class ErrorKind(enum.Enum):
    CONNECT = "connect"
    TIMEOUT = "timeout"
    RESET = "reset"
    PROTOCOL = "protocol"

    @property
    def status(self) -> int:
        return 504 if self is ErrorKind.TIMEOUT else 502


class UpstreamError(Exception):
    def __init__(self, kind: ErrorKind) -> None:
        super().__init__(kind.value)
        self.kind = kind


class BodyTooLarge(Exception):
    """The streamed request body went past max_body_bytes."""


class UpgradeRefused(Exception):
    """The upstream answered a WebSocket handshake with a plain HTTP status."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class ClientBodyError(Exception):
    """The client's body broke off, was malformed (bad chunk framing) or stalled past
    ``body_read_timeout`` (``timed_out``) while streaming."""

    def __init__(self, timed_out: bool = False) -> None:
        super().__init__("request body timed out" if timed_out else "request body broken")
        self.timed_out = timed_out


def classify(exc: BaseException) -> ErrorKind:
    if isinstance(exc, ConnectFailed):
        return ErrorKind.TIMEOUT if exc.timed_out else ErrorKind.CONNECT
    if isinstance(exc, TimeoutError):
        return ErrorKind.TIMEOUT
    if isinstance(exc, OSError):  # ConnectionError included: the upstream went away
        return ErrorKind.RESET
    return ErrorKind.PROTOCOL


UPSTREAM_FAILURES = (TimeoutError, OSError, ConnectFailed, UpstreamProtocolError)


def is_connect_failure(exc: BaseException) -> bool:
    """Failures before anything was sent: safe to try the next target, and count for health."""
    return isinstance(exc, ConnectFailed)
