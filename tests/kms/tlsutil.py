"""Helpers for the TLS tests: a local keystore with alias/tls, certificates encrypted for a
listener without their plaintext keys ever touching disk, and TLS probes."""

from __future__ import annotations

import asyncio
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trustme
from cryptography import x509

from wafproxy.kms.audit import AuditLog
from wafproxy.kms.backends import LocalBackend
from wafproxy.kms.config import KmsConfig
from wafproxy.kms.envelope import seal_envelope
from wafproxy.kms.keystore import KeyStore
from wafproxy.kms.rootkey import RootKeySource, RootKind
from wafproxy.kms.service import Kms
from wafproxy.kms.tls import tls_context

from .conftest import ROOT_ENV, Client

LISTENER = "shop-tls"


@dataclass
class TlsSetup:
    directory: Path
    store: KeyStore
    ca: trustme.CA
    key_id: str

    @property
    def kms_section(self) -> dict[str, Any]:
        return {
            "backend": "local",
            "store": str(self.directory / "kms"),
            "root_key": {"env": ROOT_ENV},
        }

    @property
    def client(self) -> Client:
        return Client(
            Kms(
                KeyStore.open(self.directory / "kms", RootKeySource(RootKind.ENV, ROOT_ENV)),
                AuditLog(self.store.audit_path),
            )
        )

    async def write_pair(
        self, name: str, hosts: list[str], *, listener: str = LISTENER
    ) -> tuple[Path, Path, int]:
        """cert chain file + envelope-encrypted key file (replaced atomically); the serial."""
        issued = self.ca.issue_cert(*hosts)
        pem = issued.private_key_pem.bytes()
        backend = LocalBackend(
            KmsConfig(store=self.directory / "kms", root_key=RootKeySource(RootKind.ENV, ROOT_ENV))
        )
        envelope = await seal_envelope(backend, "alias/tls", pem, tls_context(listener))
        await backend.close()
        chain = b"".join(blob.bytes() for blob in issued.cert_chain_pems)
        cert_path, key_path = self.directory / f"{name}.pem", self.directory / f"{name}.key.enc"
        for path, data in ((cert_path, chain), (key_path, envelope.dumps())):
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        serial = x509.load_pem_x509_certificate(issued.cert_chain_pems[0].bytes()).serial_number
        return cert_path, key_path, serial

    def listener(self, certificates: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {
            "listen": "127.0.0.1:0",
            "tls": {
                "name": LISTENER,
                "certificates": certificates,
                "kms_key": "alias/tls",
                **extra,
            },
        }

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context


def make_setup(directory: Path, ca: trustme.CA) -> TlsSetup:
    store = KeyStore.create(directory / "kms", RootKeySource(RootKind.ENV, ROOT_ENV))
    client = Client(Kms(store, AuditLog(store.audit_path)))
    key_id = client.key(Description="tls keys")
    client("CreateAlias", AliasName="alias/tls", TargetKeyId=key_id)
    return TlsSetup(directory, store, ca, key_id)


async def peer_serial(port: int, context: ssl.SSLContext, server_name: str | None) -> int:
    _, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname=server_name or None
    )
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        return x509.load_der_x509_certificate(der).serial_number
    finally:
        writer.close()
