"""WafRequest without a server: from raw HTTP bytes (``explain``) or parts (rule tests)."""

from __future__ import annotations

from collections.abc import Sequence

from wafproxy.errors import WafProxyError
from wafproxy.request import Header, WafRequest

DEFAULT_INSPECT_BYTES = 16 * 1024


class RawRequestError(WafProxyError):
    pass


def build_request(
    method: str,
    target: str,
    headers: Sequence[Header] = (),
    body: bytes = b"",
    *,
    client_ip: str = "127.0.0.1",
    inspect_body_bytes: int = DEFAULT_INSPECT_BYTES,
    http_version: str = "HTTP/1.1",
) -> WafRequest:
    """``target`` is the request target as sent: path plus optional ?query (or an absolute URL)."""
    path, query = split_target(target)
    host = next((v for n, v in headers if n.lower() == "host"), "")
    return WafRequest(
        method=method.upper(),
        uri_path=path,
        query_string=query,
        headers=tuple(headers),
        body=body[:inspect_body_bytes],
        body_size=len(body),
        body_oversize=len(body) > inspect_body_bytes,
        client_ip=client_ip,
        source_ip=client_ip,
        http_version=http_version,
        host=host,
    )


def split_target(target: str) -> tuple[str, str]:
    if "://" in target.split("?", 1)[0]:
        after = target.split("://", 1)[1]
        slash = after.find("/")
        target = after[slash:] if slash >= 0 else "/"
    path, _, query = target.partition("?")
    path = path.split("#", 1)[0]
    return path or "/", query.split("#", 1)[0]


def parse_raw_request(
    data: bytes, *, client_ip: str = "127.0.0.1", inspect_body_bytes: int = DEFAULT_INSPECT_BYTES
) -> WafRequest:
    """Parse one HTTP/1.x request (CRLF or LF line ends). Chunked bodies are de-chunked."""
    head, body = _split_head(data)
    lines = head.decode("latin-1").split("\n")
    request_line = lines[0].rstrip("\r").split(" ")
    if len(request_line) == 2:  # "GET /path" written by hand: assume HTTP/1.1
        request_line.append("HTTP/1.1")
    if len(request_line) != 3 or not request_line[2].startswith("HTTP/"):
        raise RawRequestError(f"not an HTTP request line: {lines[0][:80]!r}")
    method, target, version = request_line
    headers: list[Header] = []
    for line in lines[1:]:
        line = line.rstrip("\r")
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise RawRequestError(f"malformed header line: {line[:80]!r}")
        headers.append((name, value.strip()))
    if any(n.lower() == "transfer-encoding" and "chunked" in v.lower() for n, v in headers):
        body = _dechunk(body)
    return build_request(
        method,
        target,
        headers,
        body,
        client_ip=client_ip,
        inspect_body_bytes=inspect_body_bytes,
        http_version=version,
    )


def _split_head(data: bytes) -> tuple[bytes, bytes]:
    for sep in (b"\r\n\r\n", b"\n\n"):
        idx = data.find(sep)
        if idx >= 0:
            return data[:idx], data[idx + len(sep) :]
    return data, b""


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    pos = 0
    while pos < len(data):
        end = data.find(b"\n", pos)
        if end < 0:
            break
        size_text = data[pos:end].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError as exc:
            raise RawRequestError(f"invalid chunk size {size_text[:20]!r}") from exc
        if size == 0:
            break
        out += data[end + 1 : end + 1 + size]
        pos = end + 1 + size
        if data[pos : pos + 2] == b"\r\n":
            pos += 2
        elif data[pos : pos + 1] == b"\n":
            pos += 1
    return bytes(out)
