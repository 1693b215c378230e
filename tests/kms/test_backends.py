"""The two backends behind one Protocol, the envelope format, and the proxy using the ``aws``
backend against a real ``wafproxy kms serve`` (as it would use AWS KMS)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import trustme

from wafproxy.kms.backends import BACKENDS, AwsBackend, KeyService, LocalBackend
from wafproxy.kms.config import BackendKind, KmsConfig
from wafproxy.kms.envelope import Envelope, EnvelopeError, open_envelope, seal_envelope
from wafproxy.kms.errors import KmsError
from wafproxy.kms.keystore import KeyStore
from wafproxy.kms.rootkey import RootKeySource

from .conftest import Client, KmsServer
from .tlsutil import LISTENER, peer_serial


def local(store: KeyStore, root_source: RootKeySource) -> LocalBackend:
    return LocalBackend(KmsConfig(store=store.directory, root_key=root_source))


def aws(server: KmsServer, principal: str, monkeypatch: pytest.MonkeyPatch) -> AwsBackend:
    creds = server.credentials(principal)
    monkeypatch.setenv("T_AKID", creds["aws_access_key_id"])
    monkeypatch.setenv("T_SECRET", creds["aws_secret_access_key"])
    config = {
        "backend": "aws",
        "region": "us-east-1",
        "endpoint": server.url,
        "credentials": {"access_key_id_env": "T_AKID", "secret_access_key_env": "T_SECRET"},
    }
    from wafproxy.config.source import parse
    from wafproxy.kms.config import parse_kms

    return AwsBackend(parse_kms(parse(json.dumps(config)), Path(".")))


def test_registry_names_both_backends() -> None:
    assert BACKENDS.names() == [BackendKind.LOCAL.value, BackendKind.AWS.value]


async def round_trip(service: KeyService, key: str) -> None:
    ctx = {"purpose": "test"}
    sealed = await service.encrypt(key, b"payload", ctx)
    assert (await service.decrypt(sealed.ciphertext, ctx)).plaintext == b"payload"
    data_key = await service.generate_data_key(key, ctx)
    assert (await service.decrypt(data_key.ciphertext, ctx, key)).plaintext == data_key.plaintext
    description = await service.describe_key(key)
    assert description.state == "Enabled" and description.arn == data_key.key_id
    with pytest.raises(KmsError) as caught:
        await service.decrypt(sealed.ciphertext, {"purpose": "other"})
    assert caught.value.code == "InvalidCiphertextException"
    envelope = await seal_envelope(service, key, b"big payload" * 1000, ctx)
    again = Envelope.loads(envelope.dumps(), "file")
    assert await open_envelope(service, again, "file") == b"big payload" * 1000
    doc = json.loads(envelope.dumps())
    doc["encryption_context"] = {"purpose": "other"}
    with pytest.raises(KmsError):
        await open_envelope(service, Envelope.loads(json.dumps(doc).encode(), "f"), "f")
    doc = json.loads(envelope.dumps())
    body = bytearray(base64.b64decode(doc["ciphertext"]))
    body[20] ^= 1
    doc["ciphertext"] = base64.b64encode(bytes(body)).decode()
    with pytest.raises(EnvelopeError, match="modified"):
        await open_envelope(service, Envelope.loads(json.dumps(doc).encode(), "f"), "f")
    await service.close()


async def test_local_backend(store: KeyStore, root_source: RootKeySource, client: Client) -> None:
    await round_trip(local(store, root_source), client.key())
    events = client.events()
    assert {e["userAgent"] for e in events if e["eventName"] == "GenerateDataKey"} == {"wafproxy"}


async def test_aws_backend_against_kms_serve(
    kms_server: KmsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = kms_server.boto3("admin").create_key()["KeyMetadata"]["KeyId"]
    await round_trip(aws(kms_server, "app", monkeypatch), key)


async def test_aws_backend_errors(kms_server: KmsServer, monkeypatch: pytest.MonkeyPatch) -> None:
    service = aws(kms_server, "reader", monkeypatch)
    with pytest.raises(KmsError) as caught:
        await service.generate_data_key("alias/none", {})
    assert caught.value.code in ("AccessDeniedException", "NotFoundException")
    service.client.close()
    dead = AwsBackend(
        KmsConfig(backend=BackendKind.AWS, region="us-east-1", endpoint="http://127.0.0.1:9")
    )
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAX")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    with pytest.raises(KmsError, match=r"cannot reach http://127\.0\.0\.1:9"):
        await dead.describe_key("alias/x")
    await dead.close()


def test_garbage_is_not_an_envelope() -> None:
    with pytest.raises(EnvelopeError, match="not an envelope-encrypted file"):
        Envelope.loads(b"-----BEGIN PRIVATE KEY-----", "key.pem")


async def test_the_proxy_over_the_aws_backend(
    kms_server: KmsServer,
    monkeypatch: pytest.MonkeyPatch,
    start_proxy: Any,
    tmp_path: Path,
    ca: trustme.CA,
) -> None:
    """TLS keys decrypted through `kms serve` by a principal: the server's audit shows it."""
    admin = kms_server.boto3("admin")
    key = admin.create_key(Description="proxy tls")["KeyMetadata"]["KeyId"]
    admin.create_alias(AliasName="alias/proxy-tls", TargetKeyId=key)
    service = aws(kms_server, "app", monkeypatch)
    issued = ca.issue_cert("shop.example")
    envelope = await seal_envelope(
        service,
        "alias/proxy-tls",
        issued.private_key_pem.bytes(),
        {"purpose": "tls", "listener": LISTENER},
    )
    await service.close()
    key_path, cert_path = tmp_path / "k.enc", tmp_path / "c.pem"
    key_path.write_bytes(envelope.dumps())
    cert_path.write_bytes(b"".join(b.bytes() for b in issued.cert_chain_pems))
    kms = {
        "backend": "aws",
        "region": "us-east-1",
        "endpoint": kms_server.url,
        "credentials": {"access_key_id_env": "T_AKID", "secret_access_key_env": "T_SECRET"},
    }
    tls = {
        "name": LISTENER,
        "kms_key": "alias/proxy-tls",
        "certificates": [{"cert": str(cert_path), "key": str(key_path)}],
    }
    proxy = await start_proxy({"listeners": [{"listen": "127.0.0.1:0", "tls": tls}], "kms": kms})
    import ssl

    context = ssl.create_default_context()
    ca.configure_trust(context)
    assert await peer_serial(proxy.port, context, "shop.example") > 0
    event = [e for e in kms_server.events() if e["eventName"] == "Decrypt"][-1]
    assert event["userIdentity"]["userName"] == "app"
    assert event["additionalEventData"] == {"purpose": "tls"}
    assert event["requestParameters"]["keyId"] == "alias/proxy-tls"


async def test_rewrap_a_tls_key_from_the_keystore_to_a_kms_server(
    kms_server: KmsServer,
    store: KeyStore,
    root_source: RootKeySource,
    client: Client,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The migration path of docs/kms.md: local keystore -> AWS KMS (here: kms serve)."""
    import os

    from .conftest import ROOT_KEY, wafproxy

    local_key = client.key()
    service = local(store, root_source)
    original = await seal_envelope(
        service, local_key, b"PEM bytes", {"purpose": "tls", "listener": "x"}
    )
    await service.close()
    (tmp_path / "old.enc").write_bytes(original.dumps())
    admin = kms_server.boto3("admin")
    remote_key = admin.create_key()["KeyMetadata"]["Arn"]
    creds = kms_server.principals["app"]
    env = {
        **os.environ,
        "WAFPROXY_KMS_ROOT_KEY": ROOT_KEY,
        "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
    }
    args = [
        "--store",
        str(store.directory),
        "--in",
        str(tmp_path / "old.enc"),
        "--out",
        str(tmp_path / "new.enc"),
        "--key",
        remote_key,
        "--to-region",
        "us-east-1",
        "--to-endpoint-url",
        kms_server.url,
    ]
    done = wafproxy("kms", "rewrap-tls-key", *args, env=env)
    assert done.returncode == 0, done.stderr.decode()
    moved = Envelope.loads((tmp_path / "new.enc").read_bytes(), "new")
    assert moved.kms_key_id == remote_key and moved.context == original.context
    remote = aws(kms_server, "app", monkeypatch)
    assert await open_envelope(remote, moved, "new") == b"PEM bytes"
    await remote.close()
