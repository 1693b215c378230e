"""Principals: named callers of the KMS server with an AWS-style access key pair and an identity
policy (the ``kms:`` actions they may call where key policies delegate to the account)."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from dataclasses import replace

from wafproxy.errors import WafProxyError
from wafproxy.kms.glob import glob_match
from wafproxy.kms.keystore import KeyStore
from wafproxy.kms.model import Principal

NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+=,.@_-")


def new_access_key_id() -> str:
    return "AKIA" + base64.b32encode(secrets.token_bytes(10)).decode("ascii")[:16]


def new_secret_access_key() -> str:
    return secrets.token_urlsafe(30)


def check_actions(actions: Sequence[str]) -> tuple[str, ...]:
    for action in actions:
        if not action.lower().startswith("kms:") or glob_match("kms:*", action) is False:
            raise WafProxyError(f"action {action!r}: expected kms:<Operation> (wildcards allowed)")
    return tuple(actions)


def create_principal(store: KeyStore, name: str, actions: Sequence[str], now: float) -> Principal:
    if not name or len(name) > 64 or not set(name) <= NAME_CHARS:
        raise WafProxyError(f"principal name {name!r}: use 1-64 of letters, digits and +=,.@_-")
    principal = Principal(
        name, new_access_key_id(), new_secret_access_key(), check_actions(actions), now
    )
    with store.transaction() as data:
        if name in data.principals:
            raise WafProxyError(f"principal {name!r} already exists")
        data.principals[name] = principal
    return principal


def rotate_credentials(store: KeyStore, name: str) -> Principal:
    with store.transaction() as data:
        current = _get(data.principals, name)
        updated = replace(
            current, access_key_id=new_access_key_id(), secret_access_key=new_secret_access_key()
        )
        data.principals[name] = updated
    return updated


def set_actions(store: KeyStore, name: str, actions: Sequence[str]) -> Principal:
    with store.transaction() as data:
        updated = replace(_get(data.principals, name), actions=check_actions(actions))
        data.principals[name] = updated
    return updated


def delete_principal(store: KeyStore, name: str) -> None:
    with store.transaction() as data:
        _get(data.principals, name)
        del data.principals[name]


def _get(principals: dict[str, Principal], name: str) -> Principal:
    if name not in principals:
        raise WafProxyError(f"no principal named {name!r}")
    return principals[name]
