"""Key lifecycle: CreateKey, DescribeKey, ListKeys, EnableKey, DisableKey, ScheduleKeyDeletion,
CancelKeyDeletion, UpdateKeyDescription, tags and key policies."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from wafproxy.kms.audit import Call
from wafproxy.kms.crypto import new_key_material
from wafproxy.kms.errors import (
    LIMIT_EXCEEDED,
    MALFORMED_POLICY,
    NOT_FOUND,
    UNSUPPORTED,
    KmsError,
)
from wafproxy.kms.model import (
    DAY,
    ENCRYPT_DECRYPT,
    SYMMETRIC_DEFAULT,
    KeyRecord,
    KeyState,
    KeyVersion,
)
from wafproxy.kms.ops import operation
from wafproxy.kms.pages import page
from wafproxy.kms.params import Params
from wafproxy.kms.policy import KeyPolicy, Verdict
from wafproxy.kms.service import Kms, new_key_id

Result = dict[str, Any]
MAX_TAGS = 50
MAX_DESCRIPTION = 8192


def key_metadata(kms: Kms, record: KeyRecord) -> Result:
    meta: Result = {
        "AWSAccountId": kms.account,
        "KeyId": record.key_id,
        "Arn": kms.key_arn(record.key_id),
        "CreationDate": record.created,
        "Enabled": record.state is KeyState.ENABLED,
        "Description": record.description,
        "KeyUsage": ENCRYPT_DECRYPT,
        "KeyState": record.state.value,
        "Origin": "AWS_KMS",
        "KeyManager": "CUSTOMER",
        "CustomerMasterKeySpec": SYMMETRIC_DEFAULT,
        "KeySpec": SYMMETRIC_DEFAULT,
        "EncryptionAlgorithms": [SYMMETRIC_DEFAULT],
        "MultiRegion": False,
    }
    if record.deletion_date is not None:
        meta["DeletionDate"] = record.deletion_date
        meta["PendingDeletionWindowInDays"] = record.pending_window_days
    return meta


@operation("CreateKey")
def create_key(kms: Kms, call: Call, p: Params) -> Result:
    kms.authorize_account(call, "kms:CreateKey")
    description = p.string("Description", max_len=MAX_DESCRIPTION) or ""
    _only(p, "KeyUsage", ENCRYPT_DECRYPT)
    _only(p, "KeySpec", SYMMETRIC_DEFAULT)
    _only(p, "CustomerMasterKeySpec", SYMMETRIC_DEFAULT)
    _only(p, "Origin", "AWS_KMS")
    if p.flag("MultiRegion") or p.string("CustomKeyStoreId") or p.string("XksKeyId"):
        raise KmsError(UNSUPPORTED, "Multi-Region keys and custom key stores are not supported.")
    tags = _dedupe(p.tags())
    policy = p.string("Policy", max_len=32768) or ""
    key_id = new_key_id()
    if policy:
        _check_policy(kms, call, policy, key_id, p.flag("BypassPolicyLockoutSafetyCheck"))
    now = kms.clock()
    record = KeyRecord(
        key_id=key_id,
        created=now,
        versions=(KeyVersion(1, new_key_material(), now),),
        description=description,
        tags=tuple(tags),
        policy=policy,
    )
    with kms.store.transaction() as data:
        data.keys[key_id] = record
    call.resources.append(kms.key_arn(key_id))
    call.parameters["description"] = description
    return {"KeyMetadata": key_metadata(kms, record)}


def _only(p: Params, name: str, supported: str) -> None:
    value = p.string(name)
    if value is not None and value != supported:
        raise KmsError(UNSUPPORTED, f"{name} {value} is not supported; only {supported}.")


def _dedupe(tags: list[tuple[str, str]]) -> list[tuple[str, str]]:
    merged = dict(tags)
    if len(merged) > MAX_TAGS:
        raise KmsError(LIMIT_EXCEEDED, f"A key can have at most {MAX_TAGS} tags.")
    return sorted(merged.items())


def _check_policy(kms: Kms, call: Call, text: str, key_id: str, bypass: bool) -> None:
    """Parse, and refuse a policy that would lock the caller out (AWS's lockout safety check)."""
    policy = KeyPolicy.parse(text, kms.account)
    if bypass:
        return
    verdict = policy.evaluate(call.caller, "kms:PutKeyPolicy", kms.key_arn(key_id), {})
    if verdict != Verdict.ALLOW:
        raise KmsError(
            MALFORMED_POLICY,
            "The new key policy will not allow you to update the key policy in the future.",
        )


@operation("DescribeKey")
def describe_key(kms: Kms, call: Call, p: Params) -> Result:
    record = kms.use_key(call, p.required("KeyId"), "kms:DescribeKey", allow_alias=True)
    return {"KeyMetadata": key_metadata(kms, record)}


@operation("ListKeys")
def list_keys(kms: Kms, call: Call, p: Params) -> Result:
    kms.authorize_account(call, "kms:ListKeys")
    keys = list(kms.store.data().keys)
    result = page(keys, p, lambda k: k, "Keys")
    result["Keys"] = [{"KeyId": k, "KeyArn": kms.key_arn(k)} for k in result["Keys"]]
    return result


def _change(kms: Kms, call: Call, p: Params, action: str, **changes: Any) -> KeyRecord:
    with kms.store.transaction() as data:
        record = kms.use_key(call, p.required("KeyId"), action, allow_alias=False, data=data)
        updated = replace(record, **changes) if changes else record
        data.keys[record.key_id] = updated
    return updated


@operation("EnableKey")
def enable_key(kms: Kms, call: Call, p: Params) -> Result:
    _change(kms, call, p, "kms:EnableKey", state=KeyState.ENABLED)
    return {}


@operation("DisableKey")
def disable_key(kms: Kms, call: Call, p: Params) -> Result:
    _change(kms, call, p, "kms:DisableKey", state=KeyState.DISABLED)
    return {}


@operation("ScheduleKeyDeletion")
def schedule_key_deletion(kms: Kms, call: Call, p: Params) -> Result:
    days = p.integer("PendingWindowInDays", 7, 30) or 30
    when = kms.clock() + days * DAY
    record = _change(
        kms,
        call,
        p,
        "kms:ScheduleKeyDeletion",
        state=KeyState.PENDING_DELETION,
        deletion_date=when,
        pending_window_days=days,
    )
    call.parameters["pendingWindowInDays"] = days
    return {
        "KeyId": kms.key_arn(record.key_id),
        "DeletionDate": when,
        "KeyState": KeyState.PENDING_DELETION.value,
        "PendingWindowInDays": days,
    }


@operation("CancelKeyDeletion")
def cancel_key_deletion(kms: Kms, call: Call, p: Params) -> Result:
    record = _change(
        kms,
        call,
        p,
        "kms:CancelKeyDeletion",
        state=KeyState.DISABLED,
        deletion_date=None,
        pending_window_days=None,
    )
    return {"KeyId": kms.key_arn(record.key_id)}


@operation("UpdateKeyDescription")
def update_key_description(kms: Kms, call: Call, p: Params) -> Result:
    description = p.string("Description", required=True, max_len=MAX_DESCRIPTION) or ""
    _change(kms, call, p, "kms:UpdateKeyDescription", description=description)
    return {}


@operation("TagResource")
def tag_resource(kms: Kms, call: Call, p: Params) -> Result:
    tags = p.tags(required=True)
    with kms.store.transaction() as data:
        record = kms.use_key(
            call, p.required("KeyId"), "kms:TagResource", allow_alias=False, data=data
        )
        merged = _dedupe([*record.tags, *tags])
        data.keys[record.key_id] = replace(record, tags=tuple(merged))
    return {}


@operation("UntagResource")
def untag_resource(kms: Kms, call: Call, p: Params) -> Result:
    names = set(p.strings("TagKeys", required=True))
    with kms.store.transaction() as data:
        text = p.required("KeyId")
        record = kms.use_key(call, text, "kms:UntagResource", allow_alias=False, data=data)
        kept = tuple(t for t in record.tags if t[0] not in names)
        data.keys[record.key_id] = replace(record, tags=kept)
    return {}


@operation("ListResourceTags")
def list_resource_tags(kms: Kms, call: Call, p: Params) -> Result:
    record = kms.use_key(call, p.required("KeyId"), "kms:ListResourceTags", allow_alias=False)
    result = page(list(record.tags), p, lambda t: t[0], "Tags")
    result["Tags"] = [{"TagKey": k, "TagValue": v} for k, v in result["Tags"]]
    return result


@operation("GetKeyPolicy")
def get_key_policy(kms: Kms, call: Call, p: Params) -> Result:
    name = p.string("PolicyName") or "default"
    record = kms.use_key(call, p.required("KeyId"), "kms:GetKeyPolicy", allow_alias=False)
    if name != "default":
        raise KmsError(NOT_FOUND, f"No such policy exists: {name}")
    return {"Policy": kms.policy_text(record), "PolicyName": "default"}


@operation("PutKeyPolicy")
def put_key_policy(kms: Kms, call: Call, p: Params) -> Result:
    name = p.string("PolicyName") or "default"
    text = p.required("Policy", max_len=32768)
    bypass = p.flag("BypassPolicyLockoutSafetyCheck")
    if name != "default":
        raise KmsError(NOT_FOUND, f"No such policy exists: {name}")
    with kms.store.transaction() as data:
        record = kms.use_key(
            call, p.required("KeyId"), "kms:PutKeyPolicy", allow_alias=False, data=data
        )
        _check_policy(kms, call, text, record.key_id, bypass)
        data.keys[record.key_id] = replace(record, policy=text)
    return {}
