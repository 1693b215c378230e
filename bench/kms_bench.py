"""KMS and KMS-backed TLS: operations per second and TLS handshakes per second, as ratios.

1. Encrypt, Decrypt and GenerateDataKey per second in-process (the ``local`` backend's path,
   audit log on) and over ``wafproxy kms serve`` with boto3 (SigV4 signing and HTTP included).
2. TLS handshakes per second against the proxy's TLS listener whose key is a KMS
   envelope-encrypted file, as a ratio to a plain aiohttp TLS listener (uvloop, Python's
   default server context) that loads an unencrypted key file: same machine, same client, one
   new connection per handshake, no session resumption. Once loaded, the key is an ordinary
   in-memory key, so the ratio shows the cost of the proxy's TLS settings and SNI callback,
   not of KMS (KMS is used once per key at start and on rotation).

    python bench/kms_bench.py [--seconds 3] [--markdown]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import trustme
import yaml
from machine import machine_lines
from table import format_table

from wafproxy.kms.audit import AuditLog
from wafproxy.kms.backends import LocalBackend
from wafproxy.kms.config import KmsConfig
from wafproxy.kms.envelope import seal_envelope
from wafproxy.kms.keystore import KeyStore
from wafproxy.kms.principals import create_principal
from wafproxy.kms.rootkey import RootKeySource, RootKind
from wafproxy.kms.service import Kms
from wafproxy.kms.tls import tls_context

ROOT_ENV = "WAFPROXY_KMS_ROOT_KEY"
PLAIN_SERVER = textwrap.dedent(
    """
    import asyncio, ssl, sys
    import uvloop
    from aiohttp import web
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())  # as the proxy runs
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(sys.argv[1], sys.argv[2])
    app = web.Application()
    app.router.add_get("/", lambda r: web.Response(text="ok"))
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[3]), ssl_context=ctx, print=None)
    """
)


def rate(seconds: float, op: Callable[[], object]) -> float:
    op()
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        op()
        count += 1
    return count / elapsed


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


@contextlib.contextmanager
def process(cmd: list[str], port: int, env: dict[str, str], log: Path) -> Iterator[None]:
    with log.open("wb") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
    try:
        wait_port(port, proc)
        yield
    finally:
        proc.terminate()
        proc.wait(30)


def crypto_rows(kms: Kms, key: str, seconds: float, boto: Any) -> list[list[str]]:
    def local(op: str, **params: Any) -> Callable[[], object]:
        return lambda: kms.call(op, params, kms.new_call(op))

    ctx = {"purpose": "bench"}
    blob = kms.call(
        "Encrypt",
        {"KeyId": key, "Plaintext": b"x" * 64, "EncryptionContext": ctx},
        kms.new_call("Encrypt"),
    )["CiphertextBlob"]
    cases = [
        (
            "Encrypt (64 B)",
            local("Encrypt", KeyId=key, Plaintext=b"x" * 64, EncryptionContext=ctx),
            lambda: boto.encrypt(KeyId=key, Plaintext=b"x" * 64, EncryptionContext=ctx),
        ),
        (
            "Decrypt",
            local("Decrypt", CiphertextBlob=blob, EncryptionContext=ctx),
            lambda: boto.decrypt(CiphertextBlob=blob, EncryptionContext=ctx),
        ),
        (
            "GenerateDataKey",
            local("GenerateDataKey", KeyId=key, KeySpec="AES_256", EncryptionContext=ctx),
            lambda: boto.generate_data_key(KeyId=key, KeySpec="AES_256", EncryptionContext=ctx),
        ),
    ]
    rows = []
    for name, in_process, remote in cases:
        a, b = rate(seconds, in_process), rate(seconds, remote)
        rows.append([name, f"{a:,.0f}", f"{b:,.0f}", f"{b / a:.3f}"])
    return rows


def handshakes(port: int, context: ssl.SSLContext, seconds: float) -> float:
    def once() -> None:
        with (
            socket.create_connection(("127.0.0.1", port)) as raw,
            context.wrap_socket(raw, server_hostname="shop.example"),
        ):
            pass

    return rate(seconds, once)


def tls_rows(work: Path, store: Path, seconds: float, env: dict[str, str]) -> list[list[str]]:
    ca = trustme.CA()
    issued = ca.issue_cert("shop.example")
    chain, plain_key = work / "chain.pem", work / "plain.key"
    chain.write_bytes(b"".join(b.bytes() for b in issued.cert_chain_pems))
    plain_key.write_bytes(issued.private_key_pem.bytes())  # the baseline's plaintext key
    backend = LocalBackend(KmsConfig(store=store, root_key=RootKeySource(RootKind.ENV, ROOT_ENV)))
    envelope = asyncio.run(
        seal_envelope(backend, "alias/bench", issued.private_key_pem.bytes(), tls_context("bench"))
    )
    (work / "key.enc").write_bytes(envelope.dumps())
    proxy_port, plain_port, admin = free_port(), free_port(), free_port()
    config = {
        "listeners": [
            {
                "listen": f"127.0.0.1:{proxy_port}",
                "tls": {
                    "name": "bench",
                    "certificates": [{"cert": str(chain), "key": str(work / "key.enc")}],
                },
            }
        ],
        "routes": [{"upstream": "app"}],
        "upstreams": {"app": {"targets": [f"http://127.0.0.1:{free_port()}"]}},
        "admin": {"listen": f"127.0.0.1:{admin}"},
        "decision_log": {"destination": "off"},
        "kms": {"backend": "local", "store": str(store), "root_key": {"env": ROOT_ENV}},
    }
    (work / "proxy.yaml").write_text(yaml.safe_dump(config))
    client = ssl.create_default_context()
    ca.configure_trust(client)
    client.set_alpn_protocols(["http/1.1"])
    rows = []
    for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
        client.maximum_version = client.minimum_version = version
        with process(
            [sys.executable, "-m", "wafproxy", "run", "-c", str(work / "proxy.yaml")],
            proxy_port,
            env,
            work / "proxy.log",
        ):
            ours = handshakes(proxy_port, client, seconds)
        with process(
            [sys.executable, "-c", PLAIN_SERVER, str(chain), str(plain_key), str(plain_port)],
            plain_port,
            env,
            work / "plain.log",
        ):
            plain = handshakes(plain_port, client, seconds)
        rows.append(
            [version.name.replace("v", " "), f"{plain:,.0f}", f"{ours:,.0f}", f"{ours / plain:.2f}"]
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    os.environ[ROOT_ENV] = base64.b64encode(os.urandom(32)).decode()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with tempfile.TemporaryDirectory(prefix="kms-bench-") as tmp:
        work = Path(tmp)
        store = KeyStore.create(work / "kms", RootKeySource(RootKind.ENV, ROOT_ENV))
        kms = Kms(store, AuditLog(store.audit_path))
        key = kms.call("CreateKey", {}, kms.new_call("CreateKey"))["KeyMetadata"]["KeyId"]
        kms.call(
            "CreateAlias",
            {"AliasName": "alias/bench", "TargetKeyId": key},
            kms.new_call("CreateAlias"),
        )
        user = create_principal(store, "bench", ["kms:*"], time.time())
        port = free_port()
        serve = [
            sys.executable,
            "-m",
            "wafproxy",
            "kms",
            "serve",
            "--store",
            str(store.directory),
            "--listen",
            f"127.0.0.1:{port}",
        ]
        import boto3

        with process(serve, port, env, work / "serve.log"):
            boto = boto3.client(
                "kms",
                endpoint_url=f"http://127.0.0.1:{port}",
                region_name="us-east-1",
                aws_access_key_id=user.access_key_id,
                aws_secret_access_key=user.secret_access_key,
            )
            crypto = crypto_rows(kms, key, args.seconds, boto)
        tls = tls_rows(work, store.directory, args.seconds, env)
    for line in machine_lines():
        print(line)
    print()
    print(
        format_table(
            ["operation", "in-process ops/s", "kms serve ops/s", "serve / in-process"],
            crypto,
            args.markdown,
        )
    )
    print()
    print(
        format_table(
            ["TLS", "plain-key listener hs/s", "KMS-key proxy hs/s", "ratio"], tls, args.markdown
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
