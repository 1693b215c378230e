"""KMS fixtures: a keystore in a temporary directory, the service over it, a real
``wafproxy kms serve`` process, and certificates made at test time."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme

from wafproxy.kms.audit import AuditLog, read_events
from wafproxy.kms.keystore import KeyStore
from wafproxy.kms.policy import Caller
from wafproxy.kms.principals import create_principal
from wafproxy.kms.rootkey import RootKeySource, RootKind
from wafproxy.kms.service import Kms

ROOT_ENV = "WAFPROXY_TEST_KMS_ROOT_KEY"
ROOT_KEY = base64.b64encode(bytes(range(32))).decode()


@pytest.fixture
def root_source(monkeypatch: pytest.MonkeyPatch) -> RootKeySource:
    monkeypatch.setenv(ROOT_ENV, ROOT_KEY)
    return RootKeySource(RootKind.ENV, ROOT_ENV)


@pytest.fixture
def store(tmp_path: Path, root_source: RootKeySource) -> KeyStore:
    return KeyStore.create(tmp_path / "kms", root_source)


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, days: float) -> None:
        self.now += days * 86400


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def kms(store: KeyStore, clock: Clock) -> Kms:
    return Kms(store, AuditLog(store.audit_path), clock=clock)


class Client:
    """Calls the service as one caller, the way the server and the backends do."""

    def __init__(self, kms: Kms, caller: Caller | None = None) -> None:
        self.kms = kms
        self.caller = caller or kms.root_caller()

    def __call__(self, operation: str, **params: Any) -> dict[str, Any]:
        return self.kms.call(operation, params, self.kms.new_call(operation, self.caller))

    def key(self, **params: Any) -> str:
        key_id: str = self("CreateKey", **params)["KeyMetadata"]["KeyId"]
        return key_id

    def events(self) -> list[dict[str, Any]]:
        return read_events(self.kms.store.audit_path)


@pytest.fixture
def client(kms: Kms) -> Client:
    return Client(kms)


# -- a real `wafproxy kms serve` -------------------------------------------------------------------
@dataclass
class KmsServer:
    process: subprocess.Popen[bytes]
    url: str
    store: Path
    env: dict[str, str]
    principals: dict[str, dict[str, str]]

    @property
    def audit_path(self) -> Path:
        return self.store / "audit.jsonl"

    def credentials(self, name: str) -> dict[str, str]:
        p = self.principals[name]
        return {
            "aws_access_key_id": p["AccessKeyId"],
            "aws_secret_access_key": p["SecretAccessKey"],
        }

    def boto3(self, name: str) -> Any:
        import boto3

        return boto3.client(
            "kms", endpoint_url=self.url, region_name="us-east-1", **self.credentials(name)
        )

    def events(self) -> list[dict[str, Any]]:
        return read_events(self.audit_path)


def wafproxy(
    *args: str, env: dict[str, str], stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "wafproxy", *args],
        env=env,
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )


PRINCIPALS = {
    "admin": ["kms:*"],
    "app": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*", "kms:DescribeKey"],
    "reader": ["kms:DescribeKey", "kms:ListKeys"],
}


def start_kms_server(directory: Path) -> KmsServer:
    os.environ["WAFPROXY_TEST_SERVER_ROOT"] = ROOT_KEY  # the same key: only tests read it
    env = {**os.environ, "WAFPROXY_KMS_ROOT_KEY": ROOT_KEY, "PYTHONUNBUFFERED": "1"}
    store = directory / "kms"
    keystore = KeyStore.create(store, RootKeySource(RootKind.ENV, "WAFPROXY_TEST_SERVER_ROOT"))
    principals = {}
    for name, actions in PRINCIPALS.items():
        p = create_principal(keystore, name, actions, time.time())
        principals[name] = {"AccessKeyId": p.access_key_id, "SecretAccessKey": p.secret_access_key}
    with (directory / "kms-serve.stderr").open("wb") as stderr:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "wafproxy",
                "kms",
                "serve",
                "--store",
                str(store),
                "--listen",
                "127.0.0.1:0",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        text = (directory / "kms-serve.stderr").read_text()
        if "listening on " in text:
            url = text.split("listening on ", 1)[1].split()[0]
            return KmsServer(process, url, store, env, principals)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"kms serve did not start: {(directory / 'kms-serve.stderr').read_text()}")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.fixture(scope="module")
def kms_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KmsServer]:
    server = start_kms_server(tmp_path_factory.mktemp("kms-server"))
    yield server
    stop_process(server.process)


# -- certificates ----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()
