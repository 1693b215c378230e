"""The demo upstream: a small shop that ``wafproxy demo`` puts behind the proxy.

The test suite uses it as a realistic upstream too: ``/echo`` reports what arrived, ``/stream``,
``/upload`` and ``/slow`` exercise streaming and timeouts, ``/status/{code}`` answers any status.
"""

from __future__ import annotations

import asyncio
import html
import json
import math
import secrets
from dataclasses import dataclass, field
from urllib.parse import quote

from aiohttp import BodyPartReader, WSMsgType, web
from aiohttp.typedefs import Handler

CHUNK_BYTES = 64 * 1024
MAX_STREAM_BYTES = 4 * 1024**3
MAX_SLOW_SECONDS = 30.0
# Above the proxy's own header limits, so the upstream is never what rejects a big header.
MAX_HEADER_LINE_BYTES = 64 * 1024
STREAM_PATTERN = bytes(range(256)) * (CHUNK_BYTES // 256)
"""What /stream sends, repeated: byte i of the download is ``i % 256``."""
DEMO_USER = "demo"
DEMO_PASSWORD = "demo"
SQLI_PROBE = "1' OR '1'='1"
XSS_PROBE = "<script>alert(1)</script>"


@dataclass(frozen=True)
class Product:
    id: int
    name: str
    price: float
    description: str


PRODUCTS: tuple[Product, ...] = (
    Product(1, "Running shoes", 89.0, "Light shoes for road running."),
    Product(2, "Leather shoes", 129.0, "Classic shoes for the office."),
    Product(3, "Rain jacket", 74.5, "Keeps you dry, packs small."),
    Product(4, "Wool socks", 12.0, "Three pairs, warm and soft."),
)


@dataclass(frozen=True)
class Item:
    id: int
    name: str
    price: float

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "price": self.price}


@dataclass
class ItemStore:
    """The demo's only mutable state: the items behind /api/items, kept on the app."""

    items: dict[int, Item] = field(default_factory=dict)
    next_id: int = 1

    def add(self, name: str, price: float) -> Item:
        item = Item(self.next_id, name, price)
        self.items[item.id] = item
        self.next_id += 1
        return item


ITEMS = web.AppKey("items", ItemStore)


def html_page(title: str, body: str, status: int = 200) -> web.Response:
    nav = " | ".join(
        f"<a href='{href}'>{label}</a>"
        for href, label in (("/", "home"), ("/products", "products"), ("/search", "search"))
    )
    text = (
        "<!doctype html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)} - demo shop</title></head>\n"
        f"<body><nav>{nav} | <a href='/login'>login</a></nav>\n{body}\n</body></html>\n"
    )
    return web.Response(text=text, content_type="text/html", status=status)


def bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


def product_list(products: tuple[Product, ...]) -> str:
    rows = "".join(
        f"<li><a href='/products/{p.id}'>{html.escape(p.name)}</a> {p.price:.2f}</li>"
        for p in products
    )
    return f"<ul>{rows}</ul>"


def ascii_int(raw: str, max_digits: int) -> int | None:
    """An int from ASCII digits only: ``int()`` also takes '+1', ' 1', '1_0', other scripts."""
    if raw.isascii() and raw.isdigit() and len(raw) <= max_digits:
        return int(raw)
    return None


async def home(request: web.Request) -> web.Response:
    links = (
        "<ul><li><a href='/products'>all products</a></li>"
        "<li><a href='/search?q=shoes'>search for shoes</a></li>"
        "<li><a href='/login'>log in</a> (demo / demo)</li>"
        "<li><a href='/api/items'>the items API</a></li></ul>"
    )
    return html_page("Home", f"<h1>Demo shop</h1>\n{links}")


async def products(request: web.Request) -> web.Response:
    return html_page("Products", f"<h1>Products</h1>\n{product_list(PRODUCTS)}")


async def product(request: web.Request) -> web.Response:
    wanted = ascii_int(request.match_info["id"], 9)
    for p in PRODUCTS:
        if p.id == wanted:
            body = f"<h1>{html.escape(p.name)}</h1><p>{html.escape(p.description)}</p>"
            return html_page(p.name, f"{body}<p>price: {p.price:.2f}</p>")
    raise web.HTTPNotFound()


async def search(request: web.Request) -> web.Response:
    query = request.query.get("q", "")
    shown = html.escape(query)
    form = (
        "<form action='/search' method='get'>"
        f"<input name='q' value='{shown}'><button>search</button></form>"
    )
    if not query:
        return html_page("Search", f"<h1>Search</h1>\n{form}")
    hits = tuple(p for p in PRODUCTS if query.lower() in p.name.lower())
    results = product_list(hits) if hits else "<p>no products found</p>"
    return html_page("Search", f"<h1>Results for {shown}</h1>\n{form}\n{results}")


LOGIN_FORM = (
    "<form action='/login' method='post'>"
    "<label>username <input name='username'></label> "
    "<label>password <input name='password' type='password'></label> "
    "<button>log in</button></form>"
)


async def login_form(request: web.Request) -> web.Response:
    return html_page("Log in", f"<h1>Log in</h1>\n{LOGIN_FORM}")


def is_demo_login(username: object, password: object) -> bool:
    if not isinstance(username, str) or not isinstance(password, str):
        return False
    user_ok = secrets.compare_digest(username.encode(), DEMO_USER.encode())
    password_ok = secrets.compare_digest(password.encode(), DEMO_PASSWORD.encode())
    return user_ok and password_ok


async def login(request: web.Request) -> web.Response:
    form = await request.post()
    if not is_demo_login(form.get("username"), form.get("password")):
        return html_page("Log in", f"<p>invalid credentials</p>\n{LOGIN_FORM}", status=401)
    response = html_page("Welcome", "<h1>welcome, demo</h1>")
    response.set_cookie("session", secrets.token_urlsafe(16), httponly=True, samesite="Lax")
    return response


def parse_price(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad_request("price: expected a number")
    try:
        price = float(value)
    except OverflowError:
        raise bad_request("price: out of range") from None
    if not math.isfinite(price) or price < 0:
        raise bad_request("price: expected a finite number >= 0")
    return price


async def read_item_fields(request: web.Request) -> tuple[str, float]:
    try:
        data: object = json.loads(await request.read())
    except ValueError:
        raise bad_request("body: not valid JSON") from None
    if not isinstance(data, dict):
        raise bad_request("body: expected a JSON object")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise bad_request("name: expected a non-empty string")
    return name, parse_price(data.get("price", 0))


def find_item(request: web.Request) -> Item:
    item_id = ascii_int(request.match_info["id"], 9)
    item = request.app[ITEMS].items.get(item_id) if item_id is not None else None
    if item is None:
        raise web.HTTPNotFound(
            text=json.dumps({"error": "no such item"}), content_type="application/json"
        )
    return item


async def list_items(request: web.Request) -> web.Response:
    items = request.app[ITEMS].items.values()
    return web.json_response({"items": [item.to_json() for item in items]})


async def create_item(request: web.Request) -> web.Response:
    name, price = await read_item_fields(request)
    item = request.app[ITEMS].add(name, price)
    headers = {"Location": f"/api/items/{item.id}"}
    return web.json_response(item.to_json(), status=201, headers=headers)


async def get_item(request: web.Request) -> web.Response:
    return web.json_response(find_item(request).to_json())


async def put_item(request: web.Request) -> web.Response:
    old = find_item(request)
    name, price = await read_item_fields(request)
    item = Item(old.id, name, price)
    request.app[ITEMS].items[item.id] = item
    return web.json_response(item.to_json())


async def delete_item(request: web.Request) -> web.Response:
    item = find_item(request)
    del request.app[ITEMS].items[item.id]
    return web.Response(status=204)


async def drain_part(part: BodyPartReader) -> int:
    size = 0
    while chunk := await part.read_chunk(CHUNK_BYTES):
        size += len(chunk)
    return size


async def upload(request: web.Request) -> web.Response:
    """Counts each part's bytes as they stream by; nothing is kept."""
    if not request.content_type.startswith("multipart/"):
        raise bad_request("body: expected multipart/form-data")
    parts: list[dict[str, object]] = []
    total = 0
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise bad_request("body: nested multipart is not supported")
            size = await drain_part(part)
            parts.append({"name": part.name, "filename": part.filename, "size": size})
            total += size
    except ValueError as exc:
        raise bad_request(f"body: malformed multipart: {exc}") from None
    return web.json_response({"parts": parts, "total_bytes": total})


def merged_headers(request: web.Request) -> dict[str, str]:
    merged: dict[str, str] = {}
    for name, value in request.headers.items():
        key = name.lower()
        merged[key] = f"{merged[key]}, {value}" if key in merged else value
    return merged


async def echo(request: web.Request) -> web.Response:
    """What this upstream received: ``headers`` lower-cased with repeats joined by ', ';
    ``raw_headers`` exactly as sent; ``raw_path`` / ``query_string`` still percent-encoded."""
    body_size = 0
    async for chunk in request.content.iter_chunked(CHUNK_BYTES):
        body_size += len(chunk)
    raw_path, _, raw_query = request.raw_path.partition("?")
    return web.json_response(
        {
            "method": request.method,
            "path": request.path,
            "raw_path": raw_path,
            "query_string": raw_query,
            "query": {name: request.query.getall(name) for name in request.query},
            "headers": merged_headers(request),
            "raw_headers": [[name, value] for name, value in request.headers.items()],
            "body_size": body_size,
            "remote": request.remote,
            "http_version": f"{request.version.major}.{request.version.minor}",
        }
    )


async def websocket_echo(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for message in ws:
        if message.type is WSMsgType.TEXT:
            await ws.send_str(message.data)
        elif message.type is WSMsgType.BINARY:
            await ws.send_bytes(message.data)
    return ws


async def stream(request: web.Request) -> web.StreamResponse:
    size = ascii_int(request.query.get("bytes", str(CHUNK_BYTES)), 12)
    if size is None or size > MAX_STREAM_BYTES:
        raise bad_request(f"bytes: expected an integer from 0 to {MAX_STREAM_BYTES}")
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    response.content_length = size
    await response.prepare(request)
    pattern = memoryview(STREAM_PATTERN)
    while size > 0:
        chunk = pattern[: min(size, CHUNK_BYTES)]
        await response.write(chunk)
        size -= len(chunk)
    await response.write_eof()
    return response


async def slow(request: web.Request) -> web.Response:
    try:
        seconds = float(request.query.get("seconds", "1"))
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise bad_request("seconds: expected a number >= 0")
    seconds = min(seconds, MAX_SLOW_SECONDS)
    await asyncio.sleep(seconds)
    return web.json_response({"slept": seconds})


async def status(request: web.Request) -> web.Response:
    code = ascii_int(request.match_info["code"], 3)
    if code is None or not 200 <= code <= 599:
        raise bad_request("code: expected a status from 200 to 599")
    if code in (204, 304):
        return web.Response(status=code)
    return web.Response(status=code, text=f"status {code}\n")


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


@web.middleware
async def not_found_page(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPNotFound as exc:
        if exc.content_type == "application/json":
            raise
        body = f"<h1>Not found</h1><p>nothing at {html.escape(request.path)}</p>"
        return html_page("Not found", body, status=404)


def routes() -> list[web.RouteDef]:
    return [
        web.get("/", home),
        web.get("/products", products),
        web.get("/products/{id}", product),
        web.get("/search", search),
        web.get("/login", login_form),
        web.post("/login", login),
        web.get("/api/items", list_items),
        web.post("/api/items", create_item),
        web.get("/api/items/{id}", get_item),
        web.put("/api/items/{id}", put_item),
        web.delete("/api/items/{id}", delete_item),
        web.post("/upload", upload),
        web.route("*", "/echo", echo),
        web.get("/ws", websocket_echo),
        web.get("/stream", stream),
        web.get("/slow", slow),
        web.get("/status/{code}", status),
        web.get("/healthz", healthz),
    ]


def build_demo_app() -> web.Application:
    app = web.Application(
        middlewares=[not_found_page],
        handler_args={
            "max_line_size": MAX_HEADER_LINE_BYTES,
            "max_field_size": MAX_HEADER_LINE_BYTES,
        },
    )
    store = ItemStore()
    store.add("Running shoes", 89.0)
    store.add("Rain jacket", 74.5)
    app[ITEMS] = store
    app.add_routes(routes())
    return app


def demo_urls(base: str) -> list[tuple[str, str]]:
    """(description, URL) pairs to try against the proxy at ``base``, e.g. http://127.0.0.1:8080."""
    root = base.rstrip("/")
    return [
        ("home page: allowed", f"{root}/"),
        ("a normal search: allowed", f"{root}/search?q=shoes"),
        ("SQL injection: blocked", f"{root}/search?q={quote(SQLI_PROBE, safe='')}"),
        ("cross-site scripting: blocked", f"{root}/search?q={quote(XSS_PROBE, safe='')}"),
    ]
