"""WafRequest from a client request: headers as sent, the target as sent, a bounded body prefix.

The engine inspects exactly what is forwarded: the same path and query string go upstream, and
the body bytes read here are sent first, followed by the rest of the stream.
"""

from __future__ import annotations

from dataclasses import dataclass

from wafproxy.http1 import Request
from wafproxy.request import Header, WafRequest


@dataclass(frozen=True)
class Snapshot:
    request: WafRequest
    prefix: bytes
    """Every body byte read so far (at most inspect_body_bytes + 1); forwarded first."""
    complete: bool
    """The prefix is the whole body."""


def origin_form(target: str) -> str | None:
    """``/path?query`` from an origin-form or absolute-form request target; None for the
    authority form (CONNECT) and ``*``, which a reverse proxy does not forward."""
    if target.startswith("/"):
        return target
    scheme, sep, rest = target.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        return None
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    tail = rest[cut:]
    return tail if tail.startswith("/") else "/" + tail


async def take_snapshot(
    request: Request,
    *,
    headers: tuple[Header, ...],
    target: str,
    inspect_bytes: int,
    client_ip: str,
    request_id: str,
    host: str,
) -> Snapshot:
    """``target`` is the origin-form request target, ``headers`` the request's, decoded; with a
    Content-Length the prefix stops at min(length, inspect_bytes), else one byte past
    inspect_bytes tells whether more follows. Raises MalformedBody or ConnectionError when the
    body breaks off."""
    body = request.body
    declared = body.expected
    prefix = b""
    complete = declared == 0
    if not complete and inspect_bytes > 0:
        limit = inspect_bytes + 1 if declared is None else min(declared, inspect_bytes)
        prefix = await body.read(limit)
        complete = (len(prefix) < limit) if declared is None else (declared <= inspect_bytes)
    path, _, query = target.partition("?")
    wreq = WafRequest(
        method=request.method,
        uri_path=path,
        query_string=query,
        headers=headers,
        body=prefix[:inspect_bytes],
        body_size=declared if declared is not None else len(prefix),
        body_oversize=not complete,
        client_ip=client_ip,
        source_ip=request.peer,
        http_version=request.version,
        scheme=request.scheme,
        request_id=request_id,
        host=host,
    )
    return Snapshot(request=wreq, prefix=prefix, complete=complete)
