import asyncio
import io
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient
from multidict import CIMultiDict
from pytest_aiohttp import AiohttpClient
from yarl import URL

from wafproxy import demo
from wafproxy.demo import SQLI_PROBE, STREAM_PATTERN, XSS_PROBE, build_demo_app, demo_urls

ROOT = Path(__file__).resolve().parents[1]
Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def client(aiohttp_client: AiohttpClient) -> Client:
    return await aiohttp_client(build_demo_app())


async def test_home_links_to_the_shop(client: Client) -> None:
    resp = await client.get("/")
    assert resp.status == 200
    assert resp.content_type == "text/html"
    text = await resp.text()
    for href in ("/products", "/search?q=shoes", "/login", "/api/items"):
        assert f"href='{href}'" in text


async def test_products_list_and_pages(client: Client) -> None:
    text = await (await client.get("/products")).text()
    for product in demo.PRODUCTS:
        assert f"href='/products/{product.id}'" in text
    resp = await client.get("/products/3")
    assert resp.status == 200
    assert "Rain jacket" in await resp.text()


@pytest.mark.parametrize("path", ["/products/99", "/products/abc", "/products/%2B1", "/nowhere"])
async def test_unknown_pages_get_the_html_404(client: Client, path: str) -> None:
    resp = await client.get(path)
    assert resp.status == 404
    assert resp.content_type == "text/html"
    assert "Not found" in await resp.text()


async def test_search_form_without_query(client: Client) -> None:
    resp = await client.get("/search")
    text = await resp.text()
    assert resp.status == 200
    assert "<form action='/search'" in text
    assert "Results" not in text


async def test_search_finds_products(client: Client) -> None:
    text = await (await client.get("/search", params={"q": "SHOES"})).text()
    assert "Results for SHOES" in text
    assert "Running shoes" in text and "Leather shoes" in text
    assert "Rain jacket" not in text
    text = await (await client.get("/search", params={"q": "kayak"})).text()
    assert "no products found" in text


async def test_search_escapes_the_echoed_query(client: Client) -> None:
    query = XSS_PROBE + "' onfocus='x"
    text = await (await client.get("/search", params={"q": query})).text()
    assert "<script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "' onfocus='x" not in text


async def test_login_form(client: Client) -> None:
    text = await (await client.get("/login")).text()
    assert "<form action='/login' method='post'>" in text
    assert "name='password'" in text


async def test_login_with_demo_credentials(client: Client) -> None:
    resp = await client.post("/login", data={"username": "demo", "password": "demo"})
    assert resp.status == 200
    assert "welcome" in await resp.text()
    assert resp.cookies["session"].value


@pytest.mark.parametrize(
    "form",
    [{"username": "demo", "password": "nope"}, {"username": "admin", "password": "demo"}, {}],
)
async def test_login_rejects_anything_else(client: Client, form: dict[str, str]) -> None:
    resp = await client.post("/login", data=form)
    assert resp.status == 401
    assert "invalid credentials" in await resp.text()
    assert "session" not in resp.cookies


async def test_items_crud(client: Client) -> None:
    listed = await (await client.get("/api/items")).json()
    assert [item["id"] for item in listed["items"]] == [1, 2]

    resp = await client.post("/api/items", json={"name": "Umbrella", "price": 15})
    assert resp.status == 201
    created = await resp.json()
    assert created == {"id": 3, "name": "Umbrella", "price": 15.0}
    assert resp.headers["Location"] == "/api/items/3"
    assert await (await client.get("/api/items/3")).json() == created

    resp = await client.put("/api/items/3", json={"name": "Big umbrella", "price": 25.5})
    assert await resp.json() == {"id": 3, "name": "Big umbrella", "price": 25.5}
    assert (await (await client.get("/api/items/3")).json())["name"] == "Big umbrella"

    assert (await client.delete("/api/items/3")).status == 204
    assert (await client.get("/api/items/3")).status == 404
    assert (await client.delete("/api/items/3")).status == 404


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe\xfa", "not valid JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"price": 1}', "name"),
        (b'{"name": "  "}', "name"),
        (b'{"name": "x", "price": true}', "price"),
        (b'{"name": "x", "price": -1}', "price"),
        (b'{"name": "x", "price": NaN}', "price"),
        (b'{"name": "x", "price": 1' + b"0" * 400 + b"}", "price"),
        (b'{"name": "x", "price": "3"}', "price"),
    ],
)
async def test_items_reject_bad_bodies(client: Client, body: bytes, error: str) -> None:
    for method, path in (("POST", "/api/items"), ("PUT", "/api/items/1")):
        resp = await client.request(
            method, path, data=body, headers={"Content-Type": "application/json"}
        )
        assert resp.status == 400
        assert resp.content_type == "application/json"
        assert error in (await resp.json())["error"]
    assert (await (await client.get("/api/items/1")).json())["name"] == "Running shoes"


@pytest.mark.parametrize("path", ["/api/items/99", "/api/items/x", "/api/items/-1"])
async def test_unknown_item_is_a_json_404(client: Client, path: str) -> None:
    for method in ("GET", "PUT", "DELETE"):
        resp = await client.request(method, path, json={"name": "x"})
        assert resp.status == 404
        assert await resp.json() == {"error": "no such item"}


async def test_each_app_has_its_own_items(aiohttp_client: AiohttpClient) -> None:
    first = await aiohttp_client(build_demo_app())
    second = await aiohttp_client(build_demo_app())
    assert (await first.post("/api/items", json={"name": "only here"})).status == 201
    assert len((await (await first.get("/api/items")).json())["items"]) == 3
    assert len((await (await second.get("/api/items")).json())["items"]) == 2


async def test_upload_reports_part_sizes(client: Client) -> None:
    form = aiohttp.FormData()
    form.add_field("note", "hello")
    form.add_field("file", io.BytesIO(b"x" * 3_000_000), filename="big.bin")
    resp = await client.post("/upload", data=form)
    assert resp.status == 200
    assert await resp.json() == {
        "parts": [
            {"name": "note", "filename": None, "size": 5},
            {"name": "file", "filename": "big.bin", "size": 3_000_000},
        ],
        "total_bytes": 3_000_005,
    }


async def test_upload_streams_past_the_client_max_size(client: Client) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"--b\r\nContent-Disposition: form-data; name=f; filename=a\r\n\r\n"
        for _ in range(40):
            yield b"y" * 65536
        yield b"\r\n--b--\r\n"

    headers = {"Content-Type": "multipart/form-data; boundary=b"}
    resp = await client.post("/upload", data=body(), headers=headers)
    assert resp.status == 200
    assert (await resp.json())["total_bytes"] == 40 * 65536


@pytest.mark.parametrize(
    "content_type", ["application/json", "multipart/form-data", "multipart/mixed; boundary=b"]
)
async def test_upload_rejects_other_bodies(client: Client, content_type: str) -> None:
    resp = await client.post("/upload", data=b"{}", headers={"Content-Type": content_type})
    assert resp.status == 400
    assert "body" in (await resp.json())["error"]


async def test_echo_reports_what_arrived(client: Client) -> None:
    resp = await client.post(
        "/echo?a=1&a=2&b=%3Cx%3E",
        data=b"z" * 100_000,
        headers=CIMultiDict([("X-Test", "one"), ("X-Test", "two"), ("X-Request-Id", "abc")]),
    )
    data = await resp.json()
    assert data["method"] == "POST"
    assert data["path"] == "/echo"
    assert data["query_string"] == "a=1&a=2&b=%3Cx%3E"
    assert data["query"] == {"a": ["1", "2"], "b": ["<x>"]}
    assert data["headers"]["x-test"] == "one, two"
    assert data["headers"]["x-request-id"] == "abc"
    assert ["X-Test", "one"] in data["raw_headers"] and ["X-Test", "two"] in data["raw_headers"]
    assert data["body_size"] == 100_000
    assert data["remote"] == "127.0.0.1"
    assert data["http_version"] == "1.1"


async def test_echo_keeps_the_raw_path(client: Client) -> None:
    url = URL(f"{client.make_url('/echo')}?q=%27%20OR", encoded=True)
    resp = await client.session.get(url)
    data = await resp.json()
    assert data["raw_path"] == "/echo"
    assert data["query_string"] == "q=%27%20OR"
    assert data["query"] == {"q": ["' OR"]}


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND"])
async def test_echo_takes_any_method(client: Client, method: str) -> None:
    resp = await client.request(method, "/echo", data=b"abc")
    data = await resp.json()
    assert data["method"] == method
    assert data["body_size"] == 3


async def test_echo_counts_a_chunked_body(client: Client) -> None:
    async def body() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b"q" * 1000

    data = await (await client.post("/echo", data=body())).json()
    assert data["headers"]["transfer-encoding"] == "chunked"
    assert data["body_size"] == 5000


async def test_websocket_echo(client: Client) -> None:
    async with client.ws_connect("/ws") as ws:
        await ws.send_str("hello")
        assert await ws.receive_str() == "hello"
        await ws.send_bytes(b"\x00\x01")
        assert await ws.receive_bytes() == b"\x00\x01"


@pytest.mark.parametrize("size", [0, 1, 65536, 200_001])
async def test_stream_sends_the_pattern(client: Client, size: int) -> None:
    resp = await client.get("/stream", params={"bytes": str(size)})
    assert resp.status == 200
    assert resp.headers["Content-Length"] == str(size)
    body = await resp.read()
    assert len(body) == size
    assert body == (STREAM_PATTERN * 4)[:size]


@pytest.mark.parametrize("value", ["-1", "abc", "1e3", str(demo.MAX_STREAM_BYTES + 1)])
async def test_stream_rejects_bad_sizes(client: Client, value: str) -> None:
    assert (await client.get("/stream", params={"bytes": value})).status == 400


async def test_slow_sleeps(client: Client) -> None:
    start = time.monotonic()
    resp = await client.get("/slow", params={"seconds": "0.2"})
    assert await resp.json() == {"slept": 0.2}
    assert time.monotonic() - start >= 0.2


async def test_slow_is_capped(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "MAX_SLOW_SECONDS", 0.01)
    resp = await asyncio.wait_for(client.get("/slow", params={"seconds": "1000"}), 5)
    assert await resp.json() == {"slept": 0.01}


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "soon"])
async def test_slow_rejects_bad_durations(client: Client, value: str) -> None:
    assert (await client.get("/slow", params={"seconds": value})).status == 400


@pytest.mark.parametrize("code", [200, 201, 204, 299, 304, 404, 418, 500, 503, 599])
async def test_status_answers_the_code(client: Client, code: int) -> None:
    resp = await client.get(f"/status/{code}")
    assert resp.status == code
    body = await resp.read()
    assert body == (b"" if code in (204, 304) else f"status {code}\n".encode())


@pytest.mark.parametrize("code", ["100", "199", "600", "abc", "2000"])
async def test_status_rejects_other_codes(client: Client, code: str) -> None:
    assert (await client.get(f"/status/{code}")).status == 400


async def test_healthz(client: Client) -> None:
    resp = await client.get("/healthz")
    assert resp.status == 200
    assert await resp.text() == "ok\n"


async def test_big_headers_are_accepted(client: Client) -> None:
    resp = await client.get("/echo", headers={"X-Big": "v" * 20_000})
    assert resp.status == 200
    assert len((await resp.json())["headers"]["x-big"]) == 20_000


def test_demo_urls() -> None:
    urls = dict(demo_urls("http://127.0.0.1:8080/"))
    assert len(urls) == 4
    assert all(url.startswith("http://127.0.0.1:8080/") for url in urls.values())
    queries = [parse_qs(urlsplit(url).query).get("q", [""])[0] for url in urls.values()]
    assert queries == ["", "shoes", SQLI_PROBE, XSS_PROBE]
    assert urls["SQL injection: blocked"].endswith("/search?q=1%27%20OR%20%271%27%3D%271")
    assert all(" " not in url and "<" not in url for url in urls.values())


async def test_demo_urls_work_against_the_app(client: Client) -> None:
    base = str(client.make_url("/"))
    for _, url in demo_urls(base):
        resp = await client.session.get(url)
        assert resp.status == 200


SERVICE_CONFIG_KEYS = {
    "listeners",
    "routes",
    "upstreams",
    "rules",
    "limits",
    "client_ip",
    "request_id",
    "admin",
    "decision_log",
    "state",
}


def deploy_yaml_files() -> list[Path]:
    files = [*(ROOT / "deploy").rglob("*.yaml"), *(ROOT / "deploy").rglob("*.yml")]
    return sorted([*files, ROOT / "examples" / "wafproxy.yaml"])


def test_deploy_yaml_parses() -> None:
    files = deploy_yaml_files()
    names = {str(path.relative_to(ROOT)) for path in files}
    assert {
        "deploy/compose.yaml",
        "deploy/wafproxy.yaml",
        "deploy/prometheus/alerts.yaml",
        "examples/wafproxy.yaml",
    } <= names
    for path in files:
        docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
        assert docs, path
        for doc in docs:
            assert isinstance(doc, dict), path
            if doc.get("kind") == "ConfigMap":
                for text in doc["data"].values():
                    assert isinstance(yaml.safe_load(text), dict)


def service_configs() -> list[tuple[str, dict[str, object]]]:
    configs = [
        (str(path), yaml.safe_load(path.read_text()))
        for path in (ROOT / "examples" / "wafproxy.yaml", ROOT / "deploy" / "wafproxy.yaml")
    ]
    for path in (ROOT / "deploy" / "kubernetes").glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "ConfigMap" and "wafproxy.yaml" in doc["data"]:
                configs.append((str(path), yaml.safe_load(doc["data"]["wafproxy.yaml"])))
    return configs


def test_service_configs_use_the_schema_sections() -> None:
    configs = service_configs()
    assert len(configs) == 3
    for name, config in configs:
        assert set(config) <= SERVICE_CONFIG_KEYS, name
        assert config["listeners"] and config["routes"] and config["upstreams"], name


def test_alerts_cover_the_wafproxy_metrics() -> None:
    doc = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yaml").read_text())
    rules = [rule for group in doc["groups"] for rule in group["rules"]]
    assert all({"alert", "expr"} <= set(rule) for rule in rules)
    exprs = " ".join(rule["expr"] for rule in rules)
    for metric in (
        "wafproxy_upstream_errors_total",
        'wafproxy_requests_total{action="block"}',
        'wafproxy_config_reloads_total{result="error"}',
    ):
        assert metric in exprs


def test_compose_runs_the_demo_behind_the_proxy() -> None:
    doc = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    app, waf = doc["services"]["app"], doc["services"]["waf"]
    assert app["command"][:1] == ["demo-upstream"]
    assert waf["command"] == ["run", "-c", "/etc/wafproxy/wafproxy.yaml"]
    config = yaml.safe_load((ROOT / "deploy" / "wafproxy.yaml").read_text())
    assert config["upstreams"]["app"]["targets"] == ["http://app:9000"]
    assert "token_file" in config["admin"]
