"""Body parsing for the body-argument and JSON fields: pure, bounded, never raising.

The parsers see only the inspected body prefix, which may end anywhere: a truncated multipart part
is kept as far as it goes; a truncated JSON document is INVALID (AWS WAF counts truncation as a
parse failure). No stdlib ``re`` touches request data (``urllib.parse.unquote`` and
``JSONDecoder.decode`` both use it), only str/bytes methods and the C JSON scanner.

Parses are memoised in the WafRequest's ``__dict__`` (where its ``lazy`` values live too),
so every field evaluated on one request shares one parse.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from wafproxy.acl.transforms._bytes import to_bytes
from wafproxy.request import Header, WafRequest, arg_values, split_arg_parts, split_args

T = TypeVar("T")

MAX_PARTS = 1000
MAX_PART_HEADER_LINES = 64
MAX_PARAMS = 16
MAX_BOUNDARY = 200
MAX_JSON_DEPTH = 64

FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"

JsonLeaf = tuple[str, str | None, str | None]
"""(JSON pointer, member name or None for array elements, scalar text or None for containers)."""


def memo(req: WafRequest, key: str, build: Callable[[WafRequest], T]) -> T:
    """``build(req)`` computed once per request."""
    cache = req.__dict__
    value: T | object = cache.get(key, _MISSING)  # not try/except: the first ask always misses
    if value is _MISSING:
        value = cache[key] = build(req)
    return value  # type: ignore[return-value]


_MISSING = object()


# -- URL encoding ------------------------------------------------------------------------------
_HEXDIGITS = "0123456789abcdefABCDEF"
_HEX = {f"{a}{b}".encode(): int(a + b, 16) for a in _HEXDIGITS for b in _HEXDIGITS}


def percent_decode(text: str, plus: bool = False) -> str:
    """%XX escapes decoded (malformed ones kept as they are); ``+`` -> space when ``plus``."""
    if plus and "+" in text:
        text = text.replace("+", " ")
    if "%" not in text:
        return text
    head, *chunks = to_bytes(text).split(b"%")
    out = bytearray(head)
    for chunk in chunks:
        byte = _HEX.get(chunk[:2])
        if byte is None:
            out += b"%"
            out += chunk
        else:
            out.append(byte)
            out += chunk[2:]
    return out.decode("utf-8", "surrogateescape")


def parse_urlencoded(text: str) -> tuple[Header, ...]:
    """(name, value) pairs of a query string or form body, raw (not URL-decoded), in order."""
    return split_args(text)


# -- header parameters -------------------------------------------------------------------------
def header_params(value: str) -> dict[str, str]:
    """The ``name=value`` parameters after a header's first ``;`` (names lower-cased, first wins).

    Quoted values end at the next quote, without backslash unescaping: browsers percent-encode
    quotes in form names and file names rather than escaping them.
    """
    params: dict[str, str] = {}
    pos = value.find(";") + 1
    for _ in range(MAX_PARAMS):
        if pos <= 0:
            break
        eq = value.find("=", pos)
        semi = value.find(";", pos)
        if eq == -1:
            break
        if -1 < semi < eq:
            pos = semi + 1
            continue
        name = value[pos:eq].strip().lower()
        rest = value[eq + 1 :].lstrip(" \t")
        start = len(value) - len(rest)
        if rest.startswith('"'):
            end = value.find('"', start + 1)
            end = len(value) if end == -1 else end
            params.setdefault(name, value[start + 1 : end])
            pos = value.find(";", end) + 1
        else:
            end = semi if semi != -1 else len(value)
            params.setdefault(name, value[start:end].strip())
            pos = semi + 1
    return params


# -- multipart/form-data -----------------------------------------------------------------------
@dataclass(frozen=True)
class Part:
    name: str
    filename: str | None
    """None for a plain form field; the (possibly empty) file name for a file upload."""
    content_type: str
    data: bytes

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "surrogateescape")


def parse_multipart(body: bytes, content_type_header: str) -> tuple[Part, ...]:
    """The parts of a multipart body (at most MAX_PARTS; the last one may be truncated)."""
    boundary = header_params(content_type_header).get("boundary", "")
    if not 0 < len(boundary) <= MAX_BOUNDARY:
        return ()
    delimiter = b"--" + to_bytes(boundary)
    return tuple(_parse_part(segment) for segment in _segments(body, delimiter))


def _segments(body: bytes, delimiter: bytes) -> Iterator[bytes]:
    """What lies between delimiter lines.

    A delimiter line starts the body or follows CR or LF, and has only blanks after the boundary:
    as lenient as the most lenient common backend parser (Werkzeug), so that every place a
    backend may split, we split too and no part can hide inside another part's headers.
    """
    start = -1
    pos = 0
    found = 0
    while found < MAX_PARTS:
        hit = body.find(delimiter, pos)
        if hit == -1:
            break
        pos = hit + len(delimiter)
        if hit and body[hit - 1] not in b"\r\n":
            continue
        if body.startswith(b"--", pos):
            if start != -1:
                yield _strip_line_break(body[start:hit])
            return
        eol = body.find(b"\n", pos)
        if eol != -1 and body[pos:eol].strip(b" \t\r"):
            continue
        if start != -1:
            yield _strip_line_break(body[start:hit])
            found += 1
        if eol == -1:
            return
        start = pos = eol + 1
    if start != -1 and found < MAX_PARTS and start < len(body):
        yield _trim_partial_delimiter(body[start:], delimiter)


def _trim_partial_delimiter(data: bytes, delimiter: bytes) -> bytes:
    """A truncated last part without the start of the delimiter line the prefix ended in."""
    eol = data.rfind(b"\n", -len(delimiter) - 1)
    if eol != -1 and delimiter.startswith(data[eol + 1 :]):
        return _strip_line_break(data[: eol + 1])
    return data[:-1] if data.endswith(b"\r") else data


def _strip_line_break(data: bytes) -> bytes:
    if data.endswith(b"\r\n"):
        return data[:-2]
    if data.endswith((b"\n", b"\r")):
        return data[:-1]
    return data


def _parse_part(segment: bytes) -> Part:
    headers: dict[bytes, bytes] = {}
    pos = 0
    for _ in range(MAX_PART_HEADER_LINES):
        eol = segment.find(b"\n", pos)
        line = segment[pos:] if eol == -1 else segment[pos:eol].rstrip(b"\r")
        pos = len(segment) if eol == -1 else eol + 1
        if not line:
            break
        name, _, value = line.partition(b":")
        headers.setdefault(name.strip().lower(), value.strip())
    disposition = headers.get(b"content-disposition", b"").decode("utf-8", "surrogateescape")
    params = header_params(disposition)
    filename = params.get("filename")
    if "filename*" in params:
        filename = percent_decode(params["filename*"].rpartition("'")[2])
    content_type = headers.get(b"content-type", b"").decode("utf-8", "surrogateescape")
    return Part(params.get("name", ""), filename, content_type, segment[pos:])


# -- JSON --------------------------------------------------------------------------------------
class _Invalid(enum.Enum):
    INVALID = "invalid"


INVALID = _Invalid.INVALID
"""parse_json's answer for anything that is not one complete, valid JSON document."""

_BLANK = " \t\n\r"


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    # AWS WAF stops parsing at a duplicate key; backends disagree on which duplicate wins.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate key")
    return obj


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(
    object_pairs_hook=_unique_keys, parse_int=str, parse_float=str, parse_constant=_no_constant
)


def parse_json(text: str) -> object:
    """The JSON document, or INVALID (syntax, duplicate keys, NaN, trailing data, too deep).

    Numbers stay as their JSON text (str), so leaves read exactly as sent and a huge number
    costs nothing to convert.
    """
    start = len(text) - len(text.lstrip(_BLANK))
    try:
        value, end = _DECODER.raw_decode(text, start)
    except (ValueError, RecursionError):
        return INVALID
    if text[end:].strip(_BLANK) or not _depth_within(value, MAX_JSON_DEPTH):
        return INVALID
    return value


def _depth_within(value: object, limit: int) -> bool:
    stack: list[tuple[dict[str, object] | list[object], int]] = []
    if isinstance(value, (dict, list)):
        stack.append((value, 1))
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return False
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return True


def scalar_text(value: object) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    return value if isinstance(value, str) else str(value)


def escape_pointer_token(token: str) -> str:
    if "~" in token or "/" in token:
        return token.replace("~", "~0").replace("/", "~1")
    return token


def _members(node: object) -> Iterator[tuple[str | None, str, object]]:
    if isinstance(node, dict):
        return ((k, escape_pointer_token(k), v) for k, v in node.items())
    if isinstance(node, list):
        return ((None, str(i), v) for i, v in enumerate(node))
    return iter(())


def json_leaves(value: object) -> Iterator[JsonLeaf]:
    """Every member and element below the root, in document order (a scalar root: one leaf)."""
    if not isinstance(value, (dict, list)):
        yield ("", None, scalar_text(value))
        return
    stack = [("", _members(value))]
    while stack:
        base, members = stack[-1]
        member = next(members, None)
        if member is None:
            stack.pop()
            continue
        key, token, child = member
        pointer = f"{base}/{token}"
        if isinstance(child, (dict, list)):
            yield (pointer, key, None)
            stack.append((pointer, _members(child)))
        else:
            yield (pointer, key, scalar_text(child))


def json_named_values(value: object) -> Iterator[Header]:
    """(name, scalar text) for every scalar; array elements take the name of the member that
    holds the array (``{"ids": [1, 2]}`` -> ids=1, ids=2); a scalar root is named ""."""
    if not isinstance(value, (dict, list)):
        yield ("", scalar_text(value))
        return
    stack: list[tuple[str, Iterator[tuple[str | None, str, object]]]] = [("", _members(value))]
    while stack:
        inherited, members = stack[-1]
        member = next(members, None)
        if member is None:
            stack.pop()
            continue
        key, _, child = member
        name = inherited if key is None else key
        if isinstance(child, (dict, list)):
            stack.append((name, _members(child)))
        else:
            yield (name, scalar_text(child))


# -- per-request parses ------------------------------------------------------------------------
def is_json_type(content_type: str) -> bool:
    return content_type == "application/json" or content_type.endswith("+json")


def json_document(req: WafRequest) -> object:
    """The body parsed as JSON (whatever its Content-Type), or INVALID."""
    return memo(req, "_wafproxy_json", _parse_body_json)


def _parse_body_json(req: WafRequest) -> object:
    return parse_json(req.body_text)


def json_leaf_table(req: WafRequest) -> tuple[JsonLeaf, ...]:
    """json_leaves of an object or array body; () for anything else."""
    return memo(req, "_wafproxy_json_leaves", _leaf_table)


def _leaf_table(req: WafRequest) -> tuple[JsonLeaf, ...]:
    doc = json_document(req)
    return tuple(json_leaves(doc)) if isinstance(doc, (dict, list)) else ()


def body_arguments(req: WafRequest) -> tuple[Header, ...]:
    """(name, value) of the body's arguments, chosen by Content-Type: urlencoded fields (raw),
    multipart fields (a file part gives its file name, not its content), JSON scalars."""
    return memo(req, "_wafproxy_body_args", _body_arguments)


def _body_arguments(req: WafRequest) -> tuple[Header, ...]:
    if not req.body:
        return ()
    content_type = req.content_type
    if content_type == FORM:
        return parse_urlencoded(req.body_text)
    if content_type == MULTIPART:
        parts = parse_multipart(req.body, req.header("content-type") or "")
        return tuple((p.name, p.text if p.filename is None else p.filename) for p in parts)
    if is_json_type(content_type):
        doc = json_document(req)
        return () if doc is INVALID else tuple(json_named_values(doc))
    return ()


def body_argument_values(req: WafRequest) -> tuple[str, ...]:
    """The values of ``body_arguments``; of a form without building its (name, value) pairs
    (a 2 KB form has dozens, and the shipped rules read only the values)."""
    return memo(req, "_wafproxy_body_values", _body_argument_values)


def _body_argument_values(req: WafRequest) -> tuple[str, ...]:
    parts = form_parts(req)
    if parts is not None:
        return tuple(arg_values(parts))
    return tuple([value for _, value in body_arguments(req)])


def form_parts(req: WafRequest) -> list[str] | None:
    """The raw ``name=value`` parts of a urlencoded body, one per value of
    ``body_argument_values`` (none without a body); None for any other body."""
    if not req.body:
        return []
    if req.content_type != FORM:
        return None
    return memo(req, "_wafproxy_form_parts", _form_parts)


def _form_parts(req: WafRequest) -> list[str]:
    return split_arg_parts(req.body_text)


def named_body_arguments(req: WafRequest) -> tuple[Header, ...]:
    """body_arguments with names lower-cased (urlencoded names URL-decoded first)."""
    return memo(req, "_wafproxy_body_names", _named_body_arguments)


def _named_body_arguments(req: WafRequest) -> tuple[Header, ...]:
    if req.content_type == FORM:
        return fold_names(body_arguments(req))
    return tuple((n.lower(), v) for n, v in body_arguments(req))


def fold_names(pairs: tuple[Header, ...]) -> tuple[Header, ...]:
    """(URL-decoded lower-cased name, value); the inline test skips a call for plain names."""
    return tuple(
        (percent_decode(n, True).lower() if "%" in n or "+" in n else n.lower(), v)
        for n, v in pairs
    )
