"""The kms: section and listeners' tls: blocks in the service config."""

from __future__ import annotations

from pathlib import Path

import pytest

from wafproxy.config.load import parse_service_config
from wafproxy.config.model import Address
from wafproxy.errors import ConfigErrors
from wafproxy.kms.config import BackendKind
from wafproxy.kms.rootkey import RootKind

BASE = """
routes: [{upstream: app}]
upstreams: {app: {targets: ["http://127.0.0.1:9000"]}}
"""


def load(text: str) -> object:
    return parse_service_config(BASE + text, "/etc/wafproxy/wafproxy.yaml")


def test_a_tls_listener_and_a_local_kms() -> None:
    config = load("""
listeners:
  - listen: 127.0.0.1:8080
  - listen: 0.0.0.0:8443
    tls:
      kms_key: alias/tls
      certificates:
        - {cert: shop.pem, key: shop.key.enc, server_names: [Shop.Example, "*.shop.example"]}
kms: {backend: local, store: kms, root_key: {file: root.key}}
""")
    tls = config.listener_tls[Address("0.0.0.0", 8443)]  # type: ignore[attr-defined]
    assert (
        tls.listener == "0.0.0.0:8443" and tls.kms_key == "alias/tls" and tls.min_version == "1.2"
    )
    assert tls.certificates[0].cert == Path("/etc/wafproxy/shop.pem")
    assert tls.certificates[0].server_names == ("shop.example", "*.shop.example")
    assert Address("127.0.0.1", 8080) not in config.listener_tls  # type: ignore[attr-defined]
    kms = config.kms  # type: ignore[attr-defined]
    assert kms.backend is BackendKind.LOCAL and kms.store == Path("/etc/wafproxy/kms")
    assert kms.root_key.kind is RootKind.FILE and kms.root_key.ref == "/etc/wafproxy/root.key"


def test_an_aws_kms() -> None:
    config = load("""
listeners: ["127.0.0.1:8080"]
kms: {backend: aws, region: eu-west-1, endpoint: "https://kms.eu-west-1.amazonaws.com",
      credentials: {profile: proxy}}
""")
    kms = config.kms  # type: ignore[attr-defined]
    assert (kms.backend, kms.region, kms.credentials.profile) == (
        BackendKind.AWS,
        "eu-west-1",
        "proxy",
    )


LISTEN = "listeners: ['0.0.0.0:1']\n"
TLS = "listeners: [{listen: '0.0.0.0:8443', tls: {certificates: %s}}]\n"
LOCAL = "kms: {backend: local, store: x}"
PAIR = "[{cert: a, key: b}]"
CASES = [
    (TLS % PAIR, "listeners[0].tls: a TLS listener needs a kms: section"),
    (LISTEN + "kms: {backend: local}", "kms: backend local needs store:"),
    (LISTEN + "kms: {backend: azure}", "kms.backend: expected one of local, aws"),
    (LISTEN + "kms: {backend: aws, store: x}", "kms.store: only for backend: local"),
    (
        LISTEN + "kms: {backend: local, store: x, root_key: {passphrase: p}}",
        "kms.root_key: expected one of env, file, passphrase_env, passphrase_file",
    ),
    (TLS % "[]" + LOCAL, "listeners[0].tls.certificates: at least one certificate is required"),
    (TLS % (PAIR + ", min_version: '1.1'") + LOCAL, "expected one of 1.2, 1.3"),
]


@pytest.mark.parametrize(("text", "message"), CASES)
def test_errors_say_where_and_what(text: str, message: str) -> None:
    with pytest.raises(ConfigErrors) as caught:
        load(text)
    assert message in str(caught.value)
    assert "/etc/wafproxy/wafproxy.yaml:" in str(caught.value)
