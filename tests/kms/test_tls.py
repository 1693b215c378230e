"""The proxy terminating TLS with KMS-protected keys: real handshakes (aiohttp client and
``openssl s_client``), SNI, rotation without restart, a disabled key, and the audit trail."""

from __future__ import annotations

import asyncio
import shutil
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme
from cryptography import x509

from wafproxy.kms.audit import read_events
from wafproxy.kms.tls import TlsLoadError

from .tlsutil import LISTENER, TlsSetup, make_setup, peer_serial


@pytest.fixture
async def tls_setup(tmp_path: Path, ca: trustme.CA, root_source: Any) -> TlsSetup:
    return make_setup(tmp_path / "tls", ca)


async def start(
    start_proxy: Any, setup: TlsSetup, certificates: list[dict[str, Any]], **extra: Any
) -> Any:
    return await start_proxy(
        {"listeners": [setup.listener(certificates, **extra)], "kms": setup.kms_section}
    )


def pair(cert: Path, key: Path, *names: str) -> dict[str, Any]:
    return {"cert": str(cert), "key": str(key), "server_names": list(names)}


async def test_aiohttp_client_over_tls_with_an_encrypted_key(
    start_proxy: Any, tls_setup: TlsSetup
) -> None:
    cert, key, serial = await tls_setup.write_pair("shop", ["shop.example"])
    proxy = await start(start_proxy, tls_setup, [pair(cert, key, "shop.example")])
    context = tls_setup.client_context()
    async with aiohttp.ClientSession() as session:
        url = f"https://127.0.0.1:{proxy.port}/"
        async with session.get(
            url, ssl=context, server_hostname="shop.example", headers={"Host": "shop.example"}
        ) as response:
            assert response.status == 200
            assert response.url.scheme == "https"
            assert response.headers["X-Request-Id"]  # answered through the proxy
    assert await peer_serial(proxy.port, context, "shop.example") == serial
    assert proxy.server.tls.listeners  # one listener, loaded once
    decrypts = [e for e in read_events(tls_setup.store.audit_path) if e["eventName"] == "Decrypt"]
    assert len(decrypts) == 1
    assert decrypts[0]["additionalEventData"] == {"purpose": "tls"}
    assert decrypts[0]["requestParameters"]["encryptionContext"] == {
        "purpose": "tls",
        "listener": LISTENER,
    }
    assert decrypts[0]["outcome"] == "success" and decrypts[0]["resources"][0]["ARN"].endswith(
        tls_setup.key_id
    )


async def test_old_tls_versions_are_refused_and_h2_is_not_offered(
    start_proxy: Any, tls_setup: TlsSetup
) -> None:
    cert, key, _ = await tls_setup.write_pair("shop", ["shop.example"])
    proxy = await start(start_proxy, tls_setup, [pair(cert, key)])
    tls12 = tls_setup.client_context()
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    _, writer = await asyncio.open_connection(
        "127.0.0.1", proxy.port, ssl=tls12, server_hostname="shop.example"
    )
    assert writer.get_extra_info("ssl_object").version() == "TLSv1.2"
    assert "GCM" in writer.get_extra_info("ssl_object").cipher()[0]
    writer.close()
    weak = tls_setup.client_context()
    weak.maximum_version = ssl.TLSVersion.TLSv1_2
    weak.set_ciphers("AES128-SHA:ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA")  # CBC, SHA-1
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await peer_serial(proxy.port, weak, "shop.example")
    alpn = tls_setup.client_context()
    alpn.set_alpn_protocols(["h2", "http/1.1"])
    _, writer = await asyncio.open_connection(
        "127.0.0.1", proxy.port, ssl=alpn, server_hostname="shop.example"
    )
    assert writer.get_extra_info("ssl_object").selected_alpn_protocol() == "http/1.1"
    writer.close()


async def openssl(port: int, ca_file: Path, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        "openssl",
        "s_client",
        "-connect",
        f"127.0.0.1:{port}",
        "-CAfile",
        str(ca_file),
        "-verify_return_error",
        "-alpn",
        "http/1.1",
        "-ign_eof",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    request = b"GET / HTTP/1.1\r\nHost: shop.example\r\nConnection: close\r\n\r\n"
    out, _ = await asyncio.wait_for(process.communicate(request), 30)
    return out.decode("utf-8", "replace")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
async def test_openssl_s_client_and_sni(
    start_proxy: Any, tls_setup: TlsSetup, tmp_path: Path
) -> None:
    shop_cert, shop_key, _ = await tls_setup.write_pair("shop", ["shop.example"])
    api_cert, api_key, _ = await tls_setup.write_pair("api", ["api.example", "*.api.example"])
    proxy = await start(
        start_proxy,
        tls_setup,
        [
            pair(shop_cert, shop_key, "shop.example"),
            pair(api_cert, api_key, "api.example", "*.api.example"),
        ],
    )
    ca_file = tmp_path / "ca.pem"
    tls_setup.ca.cert_pem.write_to_path(str(ca_file))
    out = await openssl(proxy.port, ca_file, "-servername", "shop.example")
    assert "Verify return code: 0 (ok)" in out
    assert "ALPN protocol: http/1.1" in out
    assert "HTTP/1.1 200" in out
    assert "New, TLSv1.3, Cipher is TLS_" in out
    for name, expected in [
        ("shop.example", "shop.example"),
        ("api.example", "api.example"),
        ("v2.api.example", "api.example"),
        ("other.example", "shop.example"),
    ]:
        assert await san(proxy.port, tls_setup, name) == expected
    no_sni = await openssl(proxy.port, ca_file, "-noservername")
    assert "HTTP/1.1 200" in no_sni
    bad = await openssl(proxy.port, ca_file, "-servername", "shop.example", "-tls1_1")
    assert "HTTP/1.1 200" not in bad


async def san(port: int, setup: TlsSetup, server_name: str) -> str:
    """The first DNS name of the certificate served for ``server_name`` (no hostname check)."""
    context = setup.client_context()
    context.check_hostname = False
    _, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname=server_name
    )
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.close()
    names = x509.load_der_x509_certificate(der).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    return str(names.value.get_values_for_type(x509.DNSName)[0])


async def wait_for(predicate: Any, timeout: float = 8.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(0.1)
    return False


async def test_rotation_without_restart(start_proxy: Any, tls_setup: TlsSetup) -> None:
    cert, key, old_serial = await tls_setup.write_pair("shop", ["shop.example"])
    proxy = await start(start_proxy, tls_setup, [pair(cert, key, "shop.example")])
    context = tls_setup.client_context()
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", proxy.port, ssl=context, server_hostname="shop.example"
    )
    _, _, new_serial = await tls_setup.write_pair("shop", ["shop.example"])

    async def rotated() -> bool:
        return await peer_serial(proxy.port, context, "shop.example") == new_serial

    assert await wait_for(rotated)
    # the connection made before the rotation still works, on the old certificate
    writer.write(b"GET / HTTP/1.1\r\nHost: shop.example\r\nConnection: close\r\n\r\n")
    assert (await reader.read()).startswith(b"HTTP/1.1 200")
    old_der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    assert x509.load_der_x509_certificate(old_der).serial_number == old_serial
    writer.close()
    decrypts = [e for e in read_events(tls_setup.store.audit_path) if e["eventName"] == "Decrypt"]
    assert len(decrypts) == 2 and all(
        e["additionalEventData"]["purpose"] == "tls" for e in decrypts
    )


async def test_a_disabled_key_fails_the_next_load_but_not_the_service(
    start_proxy: Any, tls_setup: TlsSetup
) -> None:
    cert, key, old_serial = await tls_setup.write_pair("shop", ["shop.example"])
    proxy = await start(start_proxy, tls_setup, [pair(cert, key, "shop.example")])
    context = tls_setup.client_context()
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", proxy.port, ssl=context, server_hostname="shop.example"
    )
    staged = await tls_setup.write_pair("staged", ["shop.example"])
    tls_setup.client("DisableKey", KeyId=tls_setup.key_id)
    for source, target in ((staged[0], cert), (staged[1], key)):
        source.replace(target)
    listener = next(iter(proxy.server.tls.listeners.values()))

    async def failed() -> bool:
        return listener.failures > 0

    assert await wait_for(failed)
    assert "DisabledException" in (listener.last_error or "") and str(key) in (
        listener.last_error or ""
    )
    assert await peer_serial(proxy.port, context, "shop.example") == old_serial
    writer.write(b"GET / HTTP/1.1\r\nHost: shop.example\r\nConnection: close\r\n\r\n")
    assert (await reader.read()).startswith(b"HTTP/1.1 200")
    writer.close()
    refused = [
        e
        for e in read_events(tls_setup.store.audit_path)
        if e.get("errorCode") == "DisabledException"
    ]
    assert refused and refused[-1]["additionalEventData"] == {"purpose": "tls"}
    with pytest.raises(
        TlsLoadError,
        match=r"KMS refused to decrypt .*DisabledException: arn:aws:kms:.* is disabled",
    ):
        await start(start_proxy, tls_setup, [pair(cert, key, "shop.example")])


async def test_a_key_file_for_another_listener_is_refused(
    start_proxy: Any, tls_setup: TlsSetup
) -> None:
    cert, key, _ = await tls_setup.write_pair("shop", ["shop.example"], listener="admin-tls")
    with pytest.raises(TlsLoadError, match=r"encrypted for .*admin-tls"):
        await start(start_proxy, tls_setup, [pair(cert, key)])


async def test_a_key_under_another_kms_key_is_refused(
    start_proxy: Any, tls_setup: TlsSetup
) -> None:
    cert, key, _ = await tls_setup.write_pair("shop", ["shop.example"])
    other = tls_setup.client.key()
    tls_setup.client("CreateAlias", AliasName="alias/other", TargetKeyId=other)
    with pytest.raises(TlsLoadError, match="IncorrectKeyException"):
        await start_proxy(
            {
                "listeners": [
                    {
                        "listen": "127.0.0.1:0",
                        "tls": {
                            "name": LISTENER,
                            "certificates": [pair(cert, key)],
                            "kms_key": "alias/other",
                        },
                    }
                ],
                "kms": tls_setup.kms_section,
            }
        )


async def test_a_handshake_never_finished_is_cut_at_the_header_deadline(
    start_proxy: Any, tls_setup: TlsSetup
) -> None:
    cert, key, _ = await tls_setup.write_pair("shop", ["shop.example"])
    proxy = await start_proxy({
        "listeners": [tls_setup.listener([pair(cert, key, "shop.example")])],
        "kms": tls_setup.kms_section, "limits": {"header_read_timeout": 0.5},
    })  # fmt: skip
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    started = asyncio.get_running_loop().time()
    async with asyncio.timeout(5.0):
        assert await reader.read() == b""  # no ClientHello ever sent: closed
    assert asyncio.get_running_loop().time() - started < 2.0  # asyncio's default is 60 s
    writer.close()


async def test_a_websocket_over_tls(start_proxy: Any, tls_setup: TlsSetup) -> None:
    cert, key, _ = await tls_setup.write_pair("shop", ["shop.example"])
    proxy = await start(start_proxy, tls_setup, [pair(cert, key, "shop.example")])
    context = tls_setup.client_context()
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(
            f"wss://127.0.0.1:{proxy.port}/ws", ssl=context, server_hostname="shop.example",
            headers={"Host": "shop.example"},
        ) as ws,
    ):  # fmt: skip
        for n in range(3):
            await ws.send_str(f"over tls {n}")
            assert await ws.receive_str(timeout=5) == f"over tls {n}"
        payload = bytes(range(256)) * 4096  # 1 MB: more than one TLS record, flow control
        await ws.send_bytes(payload)
        assert await ws.receive_bytes(timeout=10) == payload
