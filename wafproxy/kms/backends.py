"""The key service the proxy talks to, and its two backends.

``KeyService`` is the small Protocol the TLS code needs. ``local`` runs the keystore in-process
(``Kms``); ``aws`` is a boto3 KMS client with a region and an optional endpoint, so the same
code talks to AWS KMS or to ``wafproxy kms serve``. Both raise KmsError with AWS's error codes,
and both keep blocking work (file locks, scrypt, HTTP) off the event loop with
``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from wafproxy.errors import WafProxyError
from wafproxy.kms.config import BackendKind, KmsConfig
from wafproxy.kms.errors import KmsError
from wafproxy.registry import Registry

DEPENDENCY = "DependencyTimeoutException"


@dataclass(frozen=True)
class DataKey:
    key_id: str
    """The ARN of the KMS key that encrypted it."""
    plaintext: bytes
    ciphertext: bytes


@dataclass(frozen=True)
class Decrypted:
    key_id: str
    plaintext: bytes


@dataclass(frozen=True)
class Encrypted:
    key_id: str
    ciphertext: bytes


@dataclass(frozen=True)
class KeyDescription:
    key_id: str
    arn: str
    state: str
    description: str


class KeyService(Protocol):
    name: str

    async def encrypt(
        self, key_id: str, plaintext: bytes, context: Mapping[str, str]
    ) -> Encrypted: ...

    async def decrypt(
        self, ciphertext: bytes, context: Mapping[str, str], key_id: str | None = None
    ) -> Decrypted: ...

    async def generate_data_key(
        self, key_id: str, context: Mapping[str, str], key_spec: str = "AES_256"
    ) -> DataKey: ...

    async def describe_key(self, key_id: str) -> KeyDescription: ...

    async def close(self) -> None: ...


Call = Callable[[str, dict[str, Any]], dict[str, Any]]
"""A synchronous KMS call: operation name and AWS-shaped parameters -> AWS-shaped result."""


class _Backend:
    """The typed operations over one synchronous ``call`` run on a worker thread."""

    name = "backend"

    def __init__(self, call: Call) -> None:
        self._call = call

    async def _run(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        return await asyncio.to_thread(self._call, operation, params)

    async def encrypt(self, key_id: str, plaintext: bytes, context: Mapping[str, str]) -> Encrypted:
        params = {"KeyId": key_id, "Plaintext": plaintext, "EncryptionContext": dict(context)}
        out = await self._run("Encrypt", params)
        return Encrypted(out["KeyId"], out["CiphertextBlob"])

    async def decrypt(
        self, ciphertext: bytes, context: Mapping[str, str], key_id: str | None = None
    ) -> Decrypted:
        params: dict[str, Any] = {"CiphertextBlob": ciphertext, "EncryptionContext": dict(context)}
        if key_id is not None:
            params["KeyId"] = key_id
        out = await self._run("Decrypt", params)
        return Decrypted(out["KeyId"], out["Plaintext"])

    async def generate_data_key(
        self, key_id: str, context: Mapping[str, str], key_spec: str = "AES_256"
    ) -> DataKey:
        params = {"KeyId": key_id, "KeySpec": key_spec, "EncryptionContext": dict(context)}
        out = await self._run("GenerateDataKey", params)
        return DataKey(out["KeyId"], out["Plaintext"], out["CiphertextBlob"])

    async def describe_key(self, key_id: str) -> KeyDescription:
        meta = (await self._run("DescribeKey", {"KeyId": key_id}))["KeyMetadata"]
        return KeyDescription(
            meta["KeyId"], meta["Arn"], meta["KeyState"], meta.get("Description", "")
        )

    async def close(self) -> None:
        return None


class LocalBackend(_Backend):
    name = "local"

    def __init__(self, config: KmsConfig) -> None:
        from wafproxy.kms.audit import AuditLog
        from wafproxy.kms.keystore import KeyStore
        from wafproxy.kms.service import Kms

        if config.store is None:
            raise WafProxyError("kms: backend local needs a store directory")
        store = KeyStore.open(config.store, config.root_key)
        self.kms = Kms(store, AuditLog(config.audit_log or store.audit_path))
        self.caller = self._caller(config.principal)
        super().__init__(self._local_call)

    def _caller(self, name: str | None) -> Any:
        from wafproxy.kms.policy import Caller

        if name is None:
            return self.kms.root_caller()
        principal = self.kms.store.data().principals.get(name)
        if principal is None:
            raise WafProxyError(f"kms: no principal named {name!r} in {self.kms.store.directory}")
        return Caller.principal(self.kms.account, name, principal.actions, None)

    def _local_call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        call = self.kms.new_call(operation, self.caller, user_agent="wafproxy", source_ip="local")
        return self.kms.call(operation, params, call)

    async def close(self) -> None:
        self.kms.audit.close()


class AwsBackend(_Backend):
    name = "aws"

    def __init__(self, config: KmsConfig) -> None:
        try:
            import boto3
            from botocore.config import Config
        except ImportError as exc:
            raise WafProxyError(
                "kms: backend aws needs boto3 (pip install 'wafproxy[aws]')"
            ) from exc
        creds = config.credentials
        keys: dict[str, str] = {}
        if creds.access_key_id_env and creds.secret_access_key_env:
            keys = {
                "aws_access_key_id": _env(creds.access_key_id_env),
                "aws_secret_access_key": _env(creds.secret_access_key_env),
            }
        session = boto3.session.Session(profile_name=creds.profile, region_name=config.region)
        self.endpoint = config.endpoint
        self.client = session.client(
            "kms",
            endpoint_url=config.endpoint,
            config=Config(
                retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=10
            ),
            **keys,
        )
        super().__init__(self._aws_call)

    def _aws_call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        method = getattr(self.client, _snake(operation))
        try:
            result: dict[str, Any] = method(**params)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise KmsError(
                str(error.get("Code", "KMSInternalException")), str(error.get("Message", ""))
            ) from None
        except BotoCoreError as exc:
            where = self.endpoint or "AWS KMS"
            raise KmsError(DEPENDENCY, f"cannot reach {where}: {exc}") from None
        return result

    async def close(self) -> None:
        await asyncio.to_thread(self.client.close)


def _snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i:
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise WafProxyError(f"kms: environment variable {name} is not set")
    return value


BACKENDS: Registry[Callable[[KmsConfig], KeyService]] = Registry("KMS backend")
BACKENDS.add(BackendKind.LOCAL.value, LocalBackend)
BACKENDS.add(BackendKind.AWS.value, AwsBackend)


def build_backend(config: KmsConfig) -> KeyService:
    """Blocking (opens the keystore, may run scrypt): call it off the event loop."""
    return BACKENDS[config.backend.value](config)
