"""The ``wafproxy kms`` commands (parser in cli.py)."""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime
import getpass
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from wafproxy.errors import WafProxyError
from wafproxy.kms.config import BackendKind, KmsConfig
from wafproxy.kms.rootkey import DEFAULT_ENV, RootKeySource, RootKind

Client = Callable[[str, dict[str, Any]], dict[str, Any]]


# -- sources -------------------------------------------------------------------------------------
def root_source(args: argparse.Namespace, prefix: str = "") -> RootKeySource:
    def get(name: str) -> Any:
        return getattr(args, prefix + name, None)

    if get("root_key_file"):
        return RootKeySource(RootKind.FILE, str(get("root_key_file")))
    if get("passphrase_env"):
        return RootKeySource(RootKind.PASSPHRASE_ENV, get("passphrase_env"))
    if get("passphrase_file"):
        return RootKeySource(RootKind.PASSPHRASE_FILE, str(get("passphrase_file")))
    if get("passphrase_prompt"):
        return RootKeySource(RootKind.PASSPHRASE, getpass.getpass("KMS passphrase: "))
    return RootKeySource(RootKind.ENV, get("root_key_env") or DEFAULT_ENV)


def _store_dir(args: argparse.Namespace) -> Path:
    store: Path | None = args.store or (
        Path(os.environ["WAFPROXY_KMS_STORE"]) if os.environ.get("WAFPROXY_KMS_STORE") else None
    )
    if store is None:
        raise WafProxyError("give --store DIR (or set WAFPROXY_KMS_STORE)")
    return store


def _open_store(args: argparse.Namespace) -> Any:
    from wafproxy.kms.keystore import KeyStore

    return KeyStore.open(_store_dir(args), root_source(args))


def kms_config(args: argparse.Namespace) -> KmsConfig:
    if getattr(args, "config", None) is not None:
        from wafproxy.config.load import load_service_config

        config = load_service_config(args.config).kms
        if config is None:
            raise WafProxyError(f"{args.config} has no kms: section")
        return config
    if getattr(args, "endpoint_url", None):
        return KmsConfig(backend=BackendKind.AWS, endpoint=args.endpoint_url, region=args.region)
    return KmsConfig(store=_store_dir(args), root_key=root_source(args))


def client(args: argparse.Namespace) -> Client:
    config = kms_config(args)
    if config.backend is BackendKind.AWS:
        from wafproxy.kms.backends import AwsBackend

        return AwsBackend(config)._aws_call
    from wafproxy.kms.audit import AuditLog
    from wafproxy.kms.keystore import KeyStore
    from wafproxy.kms.service import Kms

    assert config.store is not None
    store = KeyStore.open(config.store, config.root_key)
    kms = Kms(store, AuditLog(config.audit_log or store.audit_path))

    def call(operation: str, params: dict[str, Any]) -> dict[str, Any]:
        record = kms.new_call(operation, user_agent="wafproxy-cli", source_ip="local")
        return kms.call(operation, params, record)

    return call


# -- output --------------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _print(result: dict[str, Any]) -> int:
    if result:
        print(json.dumps(_plain(result), indent=2))
    return 0


def _pairs(items: Sequence[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name:
            raise WafProxyError(f"{what} {item!r}: expected NAME=VALUE")
        out[name] = value
    return out


def _read_input(path: Path) -> bytes:
    return sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()


# -- store commands ------------------------------------------------------------------------------
def init(args: argparse.Namespace) -> int:
    from wafproxy.kms.keystore import KeyStore

    store = KeyStore.create(
        _store_dir(args), root_source(args), account=args.account, region=args.region
    )
    print(f"created keystore {store.path}", file=sys.stderr)
    return 0


def generate_root_key(args: argparse.Namespace) -> int:
    from wafproxy.kms.rootkey import generate_root_key as make

    key = make()
    if args.out is None:
        print(key)
        return 0
    fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def rotate_root_key(args: argparse.Namespace) -> int:
    store = _open_store(args)
    store.rewrap(root_source(args, prefix="new_"))
    print(f"keystore {store.path} re-sealed under the new root key", file=sys.stderr)
    return 0


def serve(args: argparse.Namespace) -> int:
    from wafproxy.cli import _host_port
    from wafproxy.kms.audit import AuditLog
    from wafproxy.kms.server import ServeOptions
    from wafproxy.kms.server import serve as serve_kms
    from wafproxy.kms.service import Kms
    from wafproxy.proxy_server import run_loop

    host, port = _host_port(args.listen)
    store = _open_store(args)
    kms = Kms(store, AuditLog(args.audit_log or store.audit_path))
    return run_loop(serve_kms(kms, ServeOptions(host, port)))


# -- key commands --------------------------------------------------------------------------------
def simple(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {}
    if getattr(args, "key", None) is not None:
        params["TargetKeyId" if hasattr(args, "alias") else "KeyId"] = args.key
    if getattr(args, "alias", None) is not None:
        params["AliasName"] = args.alias
    result = client(args)(args.operation, params)
    if args.operation == "GetKeyPolicy":
        print(result["Policy"])
        return 0
    return _print(result)


def create_key(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"Description": args.description}
    tags = _pairs(args.tag, "--tag")
    if tags:
        params["Tags"] = [{"TagKey": k, "TagValue": v} for k, v in tags.items()]
    if args.policy is not None:
        params["Policy"] = args.policy.read_text("utf-8")
    if args.bypass_policy_lockout_safety_check:
        params["BypassPolicyLockoutSafetyCheck"] = True
    return _print(client(args)("CreateKey", params))


def schedule_key_deletion(args: argparse.Namespace) -> int:
    params = {"KeyId": args.key, "PendingWindowInDays": args.pending_window_in_days}
    return _print(client(args)("ScheduleKeyDeletion", params))


def enable_key_rotation(args: argparse.Namespace) -> int:
    params = {"KeyId": args.key, "RotationPeriodInDays": args.rotation_period_in_days}
    return _print(client(args)("EnableKeyRotation", params))


def list_aliases(args: argparse.Namespace) -> int:
    params = {"KeyId": args.key_id} if args.key_id else {}
    return _print(client(args)("ListAliases", params))


def tag_resource(args: argparse.Namespace) -> int:
    tags = [{"TagKey": k, "TagValue": v} for k, v in _pairs(args.tags, "tag").items()]
    return _print(client(args)("TagResource", {"KeyId": args.key, "Tags": tags}))


def untag_resource(args: argparse.Namespace) -> int:
    return _print(client(args)("UntagResource", {"KeyId": args.key, "TagKeys": args.tag_keys}))


def put_key_policy(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {
        "KeyId": args.key,
        "PolicyName": "default",
        "Policy": args.policy.read_text("utf-8"),
    }
    if args.bypass_policy_lockout_safety_check:
        params["BypassPolicyLockoutSafetyCheck"] = True
    return _print(client(args)("PutKeyPolicy", params))


# -- crypto commands -----------------------------------------------------------------------------
def encrypt(args: argparse.Namespace) -> int:
    params = {
        "KeyId": args.key_id,
        "Plaintext": _read_input(args.input),
        "EncryptionContext": _pairs(args.context, "--context"),
    }
    result = client(args)("Encrypt", params)
    print(base64.b64encode(result["CiphertextBlob"]).decode("ascii"))
    return 0


def decrypt(args: argparse.Namespace) -> int:
    blob = base64.b64decode(_read_input(args.input).strip())
    params: dict[str, Any] = {
        "CiphertextBlob": blob,
        "EncryptionContext": _pairs(args.context, "--context"),
    }
    if args.key_id:
        params["KeyId"] = args.key_id
    result = client(args)("Decrypt", params)
    sys.stdout.buffer.write(result["Plaintext"])
    sys.stdout.buffer.flush()
    return 0


def generate_random(args: argparse.Namespace) -> int:
    result = client(args)("GenerateRandom", {"NumberOfBytes": args.count})
    print(base64.b64encode(result["Plaintext"]).decode("ascii"))
    return 0


def encrypt_tls_key(args: argparse.Namespace) -> int:
    from wafproxy.kms.backends import build_backend
    from wafproxy.kms.envelope import seal_envelope
    from wafproxy.kms.fsutil import atomic_write
    from wafproxy.kms.tls import tls_context
    from wafproxy.kms.tlscontext import _reencrypt

    pem = _read_input(args.input)
    _reencrypt(pem, b"check-only")  # refuses anything but an unencrypted PEM private key
    service = build_backend(kms_config(args))

    async def seal() -> bytes:
        try:
            envelope = await seal_envelope(service, args.key, pem, tls_context(args.listener))
        finally:
            await service.close()
        return envelope.dumps()

    atomic_write(args.out, asyncio.run(seal()))
    print(f"wrote {args.out} (listener {args.listener!r})", file=sys.stderr)
    return 0


def rewrap_tls_key(args: argparse.Namespace) -> int:
    from wafproxy.config.load import load_service_config
    from wafproxy.kms.backends import build_backend
    from wafproxy.kms.envelope import Envelope, open_envelope, seal_envelope
    from wafproxy.kms.fsutil import atomic_write

    if args.to_config is not None:
        target_config = load_service_config(args.to_config).kms
        if target_config is None:
            raise WafProxyError(f"{args.to_config} has no kms: section")
    else:
        target_config = KmsConfig(
            backend=BackendKind.AWS, region=args.to_region, endpoint=args.to_endpoint_url
        )
    envelope = Envelope.loads(args.input.read_bytes(), str(args.input))
    source, target = build_backend(kms_config(args)), build_backend(target_config)

    async def rewrap() -> bytes:
        try:
            payload = await open_envelope(source, envelope, str(args.input))
            return (await seal_envelope(target, args.key, payload, envelope.context)).dumps()
        finally:
            await source.close()
            await target.close()

    atomic_write(args.out, asyncio.run(rewrap()))
    print(f"wrote {args.out} (under {args.key})", file=sys.stderr)
    return 0
