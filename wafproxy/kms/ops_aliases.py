"""Aliases: CreateAlias, UpdateAlias, DeleteAlias, ListAliases. An alias is ``alias/<name>`` and
points at one key; keys can have many aliases; ``alias/aws/`` is reserved, as in AWS."""

from __future__ import annotations

from typing import Any

from wafproxy.kms.audit import Call
from wafproxy.kms.errors import ALREADY_EXISTS, INVALID_ALIAS, NOT_FOUND, KmsError
from wafproxy.kms.model import AliasRecord
from wafproxy.kms.ops import operation
from wafproxy.kms.pages import page
from wafproxy.kms.params import Params
from wafproxy.kms.service import Kms

Result = dict[str, Any]
ALIAS_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:/_-")


def check_alias_name(name: str) -> None:
    body = name.removeprefix("alias/")
    if not name.startswith("alias/") or not body or len(name) > 256:
        raise KmsError(INVALID_ALIAS, f'Alias must start with the prefix "alias/": {name}')
    if not set(body) <= ALIAS_CHARS:
        raise KmsError(INVALID_ALIAS, f"Alias contains invalid characters: {name}")
    if name.startswith("alias/aws/"):
        raise KmsError(INVALID_ALIAS, "Aliases beginning with alias/aws/ are reserved.")


def _alias_name(call: Call, p: Params) -> str:
    name = p.required("AliasName", max_len=256)
    call.alias = name
    call.parameters["aliasName"] = name
    check_alias_name(name)
    return name


@operation("CreateAlias")
def create_alias(kms: Kms, call: Call, p: Params) -> Result:
    name = _alias_name(call, p)
    target = p.required("TargetKeyId")
    with kms.store.transaction() as data:
        if name in data.aliases:
            raise KmsError(
                ALREADY_EXISTS, f"An alias with the name {kms.alias_arn(name)} already exists"
            )
        record = kms.use_key(call, target, "kms:CreateAlias", allow_alias=False, data=data)
        now = kms.clock()
        data.aliases[name] = AliasRecord(name, record.key_id, now, now)
    return {}


@operation("UpdateAlias")
def update_alias(kms: Kms, call: Call, p: Params) -> Result:
    name = _alias_name(call, p)
    target = p.required("TargetKeyId")
    with kms.store.transaction() as data:
        current = data.aliases.get(name)
        if current is None:
            raise KmsError(NOT_FOUND, f"Alias {kms.alias_arn(name)} is not found.")
        old = kms.resolve(data, current.target_key_id, allow_alias=False)
        kms.authorize(call, old, "kms:UpdateAlias", {})
        record = kms.use_key(call, target, "kms:UpdateAlias", allow_alias=False, data=data)
        data.aliases[name] = AliasRecord(name, record.key_id, current.created, kms.clock())
    return {}


@operation("DeleteAlias")
def delete_alias(kms: Kms, call: Call, p: Params) -> Result:
    name = _alias_name(call, p)
    with kms.store.transaction() as data:
        current = data.aliases.get(name)
        if current is None:
            raise KmsError(NOT_FOUND, f"Alias {kms.alias_arn(name)} is not found.")
        kms.use_key(
            call,
            current.target_key_id,
            "kms:DeleteAlias",
            allow_alias=False,
            data=data,
            record_key_id=False,
        )
        del data.aliases[name]
    return {}


@operation("ListAliases")
def list_aliases(kms: Kms, call: Call, p: Params) -> Result:
    kms.authorize_account(call, "kms:ListAliases")
    data = kms.store.data()
    aliases = list(data.aliases.values())
    key_text = p.string("KeyId")
    if key_text is not None:
        call.key_id = key_text
        record = kms.resolve(data, key_text, allow_alias=False)
        aliases = [a for a in aliases if a.target_key_id == record.key_id]
    result = page(aliases, p, lambda a: a.name, "Aliases")
    result["Aliases"] = [
        {
            "AliasName": a.name,
            "AliasArn": kms.alias_arn(a.name),
            "TargetKeyId": a.target_key_id,
            "CreationDate": a.created,
            "LastUpdatedDate": a.updated,
        }
        for a in result["Aliases"]
    ]
    return result
