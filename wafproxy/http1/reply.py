"""The answer to one request, written on the connection's transport."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from email.utils import formatdate
from http import HTTPStatus
from typing import TYPE_CHECKING, Protocol

from wafproxy.request import Header

if TYPE_CHECKING:
    from wafproxy.http1.connection import Request


class ReplyOwner(Protocol):
    """What an answer needs of its connection."""

    def write(self, data: bytes) -> None: ...

    def writelines(self, data: Sequence[bytes]) -> None: ...

    async def drain(self) -> None: ...

    def detach(self) -> tuple[asyncio.Transport, bytes]: ...

    @property
    def closed(self) -> bool: ...


class Reply:
    """The answer to one request: ``send`` a whole response, or ``start`` / ``write`` / ``end``
    a streamed one (Content-Length when given, else chunked on HTTP/1.1)."""

    def __init__(self, conn: ReplyOwner, request: Request) -> None:
        self._conn = conn
        self._head_only = request.method == "HEAD"
        self.keep_alive = request.keep_alive
        """False once the connection is to close after this answer."""
        self.started = False
        self.finished = False
        self._chunked = False
        self._http10 = request.version == "HTTP/1.0"
        self.detached = False

    def send(self, status: int, headers: Sequence[Header], body: bytes, reason: str = "") -> None:
        """The whole response in one write (Content-Length is set here)."""
        head = self._head(status, reason, headers, len(body))
        self._conn.write(head if self._head_only or _bodiless(status) else head + body)
        self.started = self.finished = True

    async def start(
        self, status: int, headers: Sequence[Header], length: int | None, reason: str = ""
    ) -> None:
        if length is None and self._http10:
            self.keep_alive = False  # an HTTP/1.0 client reads to the end of the connection
        self._chunked = length is None and not self._http10 and not _bodiless(status)
        self._conn.write(self._head(status, reason, headers, length))
        self.started = True

    async def write(self, data: bytes) -> None:
        if not data or self._head_only:
            return
        if self._chunked:
            self._conn.writelines((b"%x\r\n" % len(data), data, b"\r\n"))
        else:
            self._conn.write(data)
        await self._conn.drain()

    async def end(self) -> None:
        if self._chunked and not self._head_only:
            self._conn.write(b"0\r\n\r\n")
        self.finished = True

    @property
    def head_only(self) -> bool:
        """A HEAD request: the head is sent, never a body."""
        return self._head_only

    @property
    def client_gone(self) -> bool:
        return self._conn.closed

    def close_after(self) -> None:
        self.keep_alive = False

    def detach(self) -> tuple[asyncio.Transport, bytes]:
        """Hand the connection over (an upgrade): its transport and the bytes after the head."""
        self.detached = self.finished = True
        return self._conn.detach()

    def _head(
        self, status: int, reason: str, headers: Sequence[Header], length: int | None
    ) -> bytes:
        lines = [f"HTTP/1.1 {status} {reason or phrase(status)}"]
        lines += [f"{name}: {value}" for name, value in headers]
        if length is not None and not _bodiless(status):
            lines.append(f"Content-Length: {length}")
        elif length is None and not _bodiless(status) and not self._http10:
            lines.append("Transfer-Encoding: chunked")
        if not self.keep_alive:
            lines.append("Connection: close")
        elif self._http10:
            lines.append("Connection: keep-alive")
        return encode_head(lines)


def encode_head(lines: Sequence[str]) -> bytes:
    """A message head from its start line and header lines; ValueError if a line holds a CR or
    LF (a header would split the head: request smuggling, response splitting)."""
    flat = "".join(lines)  # two `in` tests (memchr) cost half of counting in the joined head
    if "\n" in flat or "\r" in flat:
        raise ValueError("a header name or value contains CR or LF")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")


def _bodiless(status: int) -> bool:
    return status < 200 or status in (204, 304)


def phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


_date: tuple[int, str] = (0, "")


def date_header() -> str:
    """The current time as an HTTP ``Date`` value, formatted once a second."""
    global _date
    now = int(time.time())
    if _date[0] != now:
        _date = (now, formatdate(now, usegmt=True))
    return _date[1]
