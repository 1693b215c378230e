"""The service config: loading, defaults, cross checks, the runtime, and error wording."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from wafproxy.config.load import config_from_args, load_service_config, parse_service_config
from wafproxy.config.model import HOST_PASS, Address, IpPosition, Limits, Route, Target
from wafproxy.config.runtime import build_runtime, host_name, routing_path
from wafproxy.errors import ConfigErrors

GOLDEN = Path(__file__).parent / "golden"
EXAMPLE = Path(__file__).parents[2] / "examples" / "wafproxy.yaml"

MINIMAL = """\
listeners: [{listen: "127.0.0.1:8080"}]
routes: [{upstream: app}]
upstreams:
  app: {targets: ["http://127.0.0.1:9000"]}
"""

FULL = """\
listeners:
  - listen: 0.0.0.0:8080
  - "[::1]:8081"
routes:
  - {host: API.Example.com, path_prefix: /v1/, upstream: api, web_acl: default,
     host_header: upstream, name: api}
  - {host: "*.shop.example", upstream: app, host_header: internal.test}
  - {upstream: app}
upstreams:
  app: {targets: ["http://127.0.0.1:9000", "https://[::1]"], max_fails: 5, fail_timeout: 2.5,
        connect_timeout: 1, read_timeout: 2, total_timeout: 3, pool_size: 7}
  api: {targets: ["http://10.0.0.1:8000/"]}
rules: [rules/a.yaml, /abs/b.yaml]
limits: {max_body_bytes: 1000, inspect_body_bytes: 100, max_header_bytes: 2048, max_headers: 9,
         header_read_timeout: 1.5, keepalive_timeout: 30, body_read_timeout: 20}
client_ip: {header: X-Real-IP, trusted_proxies: [10.0.0.0/8, "2001:db8::1"], position: first}
request_id: {header: X-Trace, trust_incoming: true}
admin: {listen: "0.0.0.0:9901", token: s3cret}
decision_log: {destination: logs/waf.jsonl, max_bytes: 10, backup_count: 1,
               redact_headers: [x-a], redact_cookies: [sid], redact_query_args: [t],
               actions: [block, COUNT], queue_size: 5}
"""


def test_minimal_config_gets_the_defaults() -> None:
    config = parse_service_config(MINIMAL, "/etc/wafproxy/wafproxy.yaml")
    assert config.listeners == (Address("127.0.0.1", 8080),)
    assert config.routes == (Route(name="*/", upstream="app"),)
    upstream = config.upstreams["app"]
    assert upstream.targets == (Target("http", "127.0.0.1", 9000),)
    assert (upstream.max_fails, upstream.fail_timeout, upstream.pool_size) == (3, 10.0, 100)
    assert (upstream.connect_timeout, upstream.read_timeout, upstream.total_timeout) == (5, 60, 300)
    assert config.limits == Limits()
    assert config.limits.max_body_bytes == 10 * 1024 * 1024
    assert config.client_ip.trusted_proxies == ()
    assert config.client_ip.position is IpPosition.LAST_UNTRUSTED
    assert (config.request_id.header, config.request_id.trust_incoming) == ("X-Request-Id", False)
    assert config.admin.listen == Address("127.0.0.1", 9901)
    assert config.admin.token is None
    assert config.decision_log.destination == "stdout"
    assert config.decision_log.actions == frozenset({"ALLOW", "BLOCK", "COUNT"})
    assert config.rules == ()
    assert config.watched_files() == (Path("/etc/wafproxy/wafproxy.yaml"),)


def test_every_key_is_read() -> None:
    config = parse_service_config(FULL, "/etc/wafproxy/wafproxy.yaml")
    assert config.listeners == (Address("0.0.0.0", 8080), Address("::1", 8081))
    api, shop, default = config.routes
    assert (api.name, api.host, api.path_prefix, api.web_acl) == (
        "api",
        "api.example.com",
        "/v1/",
        "default",
    )
    assert api.host_header == "upstream"
    assert (shop.host, shop.host_header, shop.name) == (
        "*.shop.example",
        "internal.test",
        "*.shop.example/",
    )
    assert (default.host, default.host_header, default.web_acl) == ("*", HOST_PASS, None)
    app = config.upstreams["app"]
    assert app.targets == (Target("http", "127.0.0.1", 9000), Target("https", "::1", 443))
    assert (app.max_fails, app.fail_timeout, app.pool_size) == (5, 2.5, 7)
    assert (app.connect_timeout, app.read_timeout, app.total_timeout) == (1, 2, 3)
    assert config.rules == (Path("/etc/wafproxy/rules/a.yaml"), Path("/abs/b.yaml"))
    assert config.limits == Limits(1000, 100, 2048, 9, 1.5, 30, 20)
    assert config.client_ip.header == "X-Real-IP"
    assert config.client_ip.trusted_proxies == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("2001:db8::1/128"),
    )
    assert config.client_ip.position is IpPosition.FIRST
    assert (config.request_id.header, config.request_id.trust_incoming) == ("X-Trace", True)
    assert (config.admin.listen, config.admin.token) == (Address("0.0.0.0", 9901), "s3cret")
    log = config.decision_log
    assert log.destination == "/etc/wafproxy/logs/waf.jsonl"
    assert (log.max_bytes, log.backup_count, log.queue_size) == (10, 1, 5)
    assert (log.redact_headers, log.redact_cookies, log.redact_query_args) == (
        ("x-a",),
        ("sid",),
        ("t",),
    )
    assert log.actions == frozenset({"BLOCK", "COUNT"})
    assert config.watched_files()[1:] == config.rules


def test_token_file_is_read_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("from-file\n")
    path = tmp_path / "wafproxy.yaml"
    path.write_text(MINIMAL + 'admin: {listen: "0.0.0.0:9901", token_file: token}\n')
    config = load_service_config(path)
    assert config.admin.token == "from-file"
    assert config.admin.token_file == tmp_path / "token"


def test_admin_can_be_disabled() -> None:
    config = parse_service_config(MINIMAL + "admin: {listen: null}\n")
    assert config.admin.listen is None


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("0.0.0.0:80", Address("0.0.0.0", 80)),
        ("[::]:8080", Address("::", 8080)),
        ("localhost:0", Address("localhost", 0)),
    ],
)
def test_listen_addresses(text: str, address: Address) -> None:
    config = parse_service_config(MINIMAL.replace("127.0.0.1:8080", text))
    assert config.listeners == (address,)
    assert str(address).endswith(text.rpartition(":")[2])


@pytest.mark.parametrize("text", ["8080", "::1:80", "[nope]:80", "host:http", "host:70000"])
def test_bad_listen_addresses(text: str) -> None:
    with pytest.raises(ConfigErrors) as info:
        parse_service_config(MINIMAL.replace("127.0.0.1:8080", text))
    assert "listeners[0].listen" in str(info.value)


def test_loopback_detection() -> None:
    assert Address("127.0.0.2", 1).is_loopback
    assert Address("::1", 1).is_loopback
    assert Address("localhost", 1).is_loopback
    assert not Address("0.0.0.0", 1).is_loopback
    assert not Address("admin.internal", 1).is_loopback


# -- the no-config-file mode -----------------------------------------------------------------------
def test_config_from_args() -> None:
    config = config_from_args("http://127.0.0.1:9000", "0.0.0.0:8080", rules=[Path("r.yaml")])
    assert config.listeners == (Address("0.0.0.0", 8080),)
    assert config.upstreams["app"].targets == (Target("http", "127.0.0.1", 9000),)
    assert config.routes == (Route(name="*/", upstream="app"),)
    assert config.rules == (Path("r.yaml"),)
    assert config.admin.listen == Address("127.0.0.1", 9901)
    assert config.path is None and config.watched_files() == (Path("r.yaml"),)


def test_config_from_args_errors() -> None:
    with pytest.raises(ConfigErrors) as info:
        config_from_args("ftp://x", "nowhere", "0.0.0.0:9901")
    text = str(info.value)
    assert "--upstream" in text and "--listen" in text and "--admin" in text


# -- the runtime -----------------------------------------------------------------------------------
def test_runtime_with_the_shipped_default_acl() -> None:
    runtime = build_runtime(parse_service_config(MINIMAL))
    [bound] = runtime.routes
    assert bound.acl.name == "default"
    assert bound.upstream.name == "app"


def two_acls(tmp_path: Path) -> Path:
    for name in ("one", "two"):
        (tmp_path / f"{name}.yaml").write_text(
            f"web_acl: {name}\ndefault_action: allow\nrules: []\n"
        )
    return tmp_path


def test_routes_bind_their_acls_and_match_in_order(tmp_path: Path) -> None:
    two_acls(tmp_path)
    path = tmp_path / "wafproxy.yaml"
    path.write_text(
        MINIMAL.replace(
            "routes: [{upstream: app}]",
            "routes:\n"
            "  - {host: a.test, upstream: app, web_acl: one}\n"
            "  - {host: '*.b.test', upstream: app, web_acl: two}\n"
            "  - {path_prefix: /two/, upstream: app, web_acl: two}\n"
            "  - {upstream: app, web_acl: one}\n",
        )
        + "rules: [one.yaml, two.yaml]\n"
    )
    runtime = build_runtime(load_service_config(path))

    def acl(host: str, path: str) -> str:
        bound = runtime.route_for(host, path)
        assert bound is not None
        return bound.acl.name

    assert acl("A.TEST:8080", "/two/x") == "one"
    assert acl("x.b.test", "/") == "two"
    assert acl("b.test", "/") == "one"
    assert acl("c.test", "/two/x") == "two"
    assert acl("c.test", "/two/../x") == "one"
    assert acl("c.test", "/x/../two/y") == "two"
    assert acl("c.test", "//two//y") == "two"


def test_a_route_without_web_acl_needs_a_single_or_default_acl(tmp_path: Path) -> None:
    two_acls(tmp_path)
    path = tmp_path / "wafproxy.yaml"
    path.write_text(MINIMAL + "rules: [one.yaml, two.yaml]\n")
    with pytest.raises(ConfigErrors) as info:
        build_runtime(load_service_config(path))
    assert "routes[0].web_acl: several web ACLs loaded (one, two); name one" in str(info.value)
    path.write_text(MINIMAL + "rules: [two.yaml]\n")
    assert build_runtime(load_service_config(path)).routes[0].acl.name == "two"


def test_rule_file_errors_come_through(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("web_acl: bad\ndefault_action: maybe\nrules: []\n")
    path = tmp_path / "wafproxy.yaml"
    path.write_text(MINIMAL + "rules: [bad.yaml]\n")
    with pytest.raises(ConfigErrors) as info:
        build_runtime(load_service_config(path))
    assert f"{tmp_path / 'bad.yaml'}:2:" in str(info.value)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("/", "/"),
        ("", "/"),
        ("/a/b", "/a/b"),
        ("/a/b/", "/a/b/"),
        ("/a/../b", "/b"),
        ("/../../etc", "/etc"),
        ("//a//b", "/a/b"),
        ("/a/./b/.", "/a/b"),
    ],
)
def test_routing_path(raw: str, clean: str) -> None:
    assert routing_path(raw) == clean


def test_host_name() -> None:
    assert host_name("Shop.Example:8080") == "shop.example"
    assert host_name("[::1]:80") == "[::1]"
    assert host_name("shop.example") == "shop.example"


# -- the shipped example and error wording ---------------------------------------------------------
@pytest.mark.skipif(not EXAMPLE.exists(), reason="examples/wafproxy.yaml not written yet")
def test_the_example_config_loads_and_builds() -> None:
    runtime = build_runtime(load_service_config(EXAMPLE))
    assert runtime.routes[0].acl.name == "default"


@pytest.mark.parametrize("case", sorted(p.stem for p in GOLDEN.glob("*.yaml")))
def test_golden_error_messages(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(GOLDEN)
    with pytest.raises(ConfigErrors) as info:
        build_runtime(load_service_config(Path(f"{case}.yaml")))
    assert str(info.value) + "\n" == (GOLDEN / f"{case}.txt").read_text()
