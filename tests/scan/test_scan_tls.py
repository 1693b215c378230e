"""The tls check against a real TLS server on loopback (trustme certificates)."""

from __future__ import annotations

import datetime
import ssl
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme
from aiohttp import web

from wafproxy.scan.osv import AdvisoryDB
from wafproxy.scan.runner import ScanPlan, ScanResult, ScanSettings, run_scan
from wafproxy.scan.target import Endpoint


def _old_protocols_possible() -> bool:
    """Whether this OpenSSL can still negotiate TLS 1.0 with itself at security level 0."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1
            context.set_ciphers("ALL:@SECLEVEL=0")
    except (ssl.SSLError, ValueError):
        return False
    return True


async def hello(request: web.Request) -> web.Response:
    return web.Response(text="hi")


async def serve_tls(context: ssl.SSLContext) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    yield f"https://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    await runner.cleanup()


async def tls_scan(url: str, ca_file: Path | None) -> ScanResult:
    settings = ScanSettings(rate=0, ports=(), checks=frozenset({"tls"}), tls_ca_file=ca_file)
    return await run_scan(ScanPlan(url, Endpoint(url)), settings, AdvisoryDB())


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


async def test_wrong_name_soon_expiring_and_untrusted_certificates(
    ca: trustme.CA, tmp_path: Path
) -> None:
    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=5)
    cert = ca.issue_cert("wafproxy-test.example", not_after=soon)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    async for url in serve_tls(server):
        trusted = await tls_scan(url, ca_file)
        untrusted = await tls_scan(url, None)
    subjects = {f.subject: f for f in trusted.findings}
    assert set(subjects) == {"tls:certificate:name", "tls:certificate:validity"}
    assert subjects["tls:certificate:name"].band.value == "high"
    assert subjects["tls:certificate:name"].details["names"] == ["wafproxy-test.example"]
    assert subjects["tls:certificate:validity"].title.startswith("Certificate expires in 4 days")
    assert subjects["tls:certificate:validity"].band.value == "high"
    trust = next(f for f in untrusted.findings if f.subject == "tls:certificate:trust")
    assert trust.band.value == "medium" and trust.details["verify_code"] in (19, 20, 21)


async def test_a_modern_server_with_the_right_certificate_has_no_tls_findings(
    ca: trustme.CA, tmp_path: Path
) -> None:
    cert = ca.issue_cert("127.0.0.1")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.minimum_version = ssl.TLSVersion.TLSv1_2
    cert.configure_cert(server)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    async for url in serve_tls(server):
        result = await tls_scan(url, ca_file)
    assert result.findings == () and "tls" in result.completed


@pytest.mark.skipif(not _old_protocols_possible(), reason="this OpenSSL cannot speak TLS 1.0")
async def test_tls_1_0_accepted_is_a_finding(ca: trustme.CA, tmp_path: Path) -> None:
    cert = ca.issue_cert("127.0.0.1")
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        server.minimum_version = ssl.TLSVersion.TLSv1
    server.set_ciphers("ALL:@SECLEVEL=0")
    cert.configure_cert(server)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    async for url in serve_tls(server):
        result = await tls_scan(url, ca_file)
    subjects = {f.subject for f in result.findings}
    assert "tls:protocol:TLSv1.0" in subjects and "tls:protocol:TLSv1.1" in subjects
