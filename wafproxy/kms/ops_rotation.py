"""Rotation: EnableKeyRotation (with a period), DisableKeyRotation, GetKeyRotationStatus,
RotateKeyOnDemand, ListKeyRotations. Rotating adds a version of the key material; every version
is kept, new encryptions use the newest, decryption picks the version named in the blob."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from wafproxy.kms.audit import Call
from wafproxy.kms.errors import LIMIT_EXCEEDED, KmsError
from wafproxy.kms.model import DAY, RotationType
from wafproxy.kms.ops import operation
from wafproxy.kms.pages import page
from wafproxy.kms.params import Params
from wafproxy.kms.service import Kms, rotated

Result = dict[str, Any]
MIN_PERIOD, MAX_PERIOD, DEFAULT_PERIOD = 90, 2560, 365
MAX_ON_DEMAND = 25


@operation("EnableKeyRotation")
def enable_key_rotation(kms: Kms, call: Call, p: Params) -> Result:
    days = p.integer("RotationPeriodInDays", MIN_PERIOD, MAX_PERIOD) or DEFAULT_PERIOD
    call.parameters["rotationPeriodInDays"] = days
    with kms.store.transaction() as data:
        text = p.required("KeyId")
        record = kms.use_key(call, text, "kms:EnableKeyRotation", allow_alias=False, data=data)
        start = record.versions[-1].created if record.rotation_enabled else kms.clock()
        data.keys[record.key_id] = replace(
            record,
            rotation_enabled=True,
            rotation_period_days=days,
            next_rotation=max(start, kms.clock() - days * DAY) + days * DAY,
        )
    return {}


@operation("DisableKeyRotation")
def disable_key_rotation(kms: Kms, call: Call, p: Params) -> Result:
    with kms.store.transaction() as data:
        text = p.required("KeyId")
        record = kms.use_key(call, text, "kms:DisableKeyRotation", allow_alias=False, data=data)
        data.keys[record.key_id] = replace(
            record, rotation_enabled=False, rotation_period_days=None, next_rotation=None
        )
    return {}


@operation("GetKeyRotationStatus")
def get_key_rotation_status(kms: Kms, call: Call, p: Params) -> Result:
    text = p.required("KeyId")
    record = kms.use_key(call, text, "kms:GetKeyRotationStatus", allow_alias=False)
    result: Result = {
        "KeyId": kms.key_arn(record.key_id),
        "KeyRotationEnabled": record.rotation_enabled,
    }
    if record.rotation_enabled:
        result["RotationPeriodInDays"] = record.rotation_period_days
        result["NextRotationDate"] = record.next_rotation
    return result


@operation("RotateKeyOnDemand")
def rotate_key_on_demand(kms: Kms, call: Call, p: Params) -> Result:
    with kms.store.transaction() as data:
        text = p.required("KeyId")
        record = kms.use_key(call, text, "kms:RotateKeyOnDemand", allow_alias=False, data=data)
        if record.on_demand_rotations >= MAX_ON_DEMAND:
            raise KmsError(
                LIMIT_EXCEEDED,
                f"The key {kms.key_arn(record.key_id)} has reached the limit of "
                f"{MAX_ON_DEMAND} on-demand rotations.",
            )
        data.keys[record.key_id] = rotated(record, RotationType.ON_DEMAND, kms.clock())
    return {"KeyId": record.key_id}


@operation("ListKeyRotations")
def list_key_rotations(kms: Kms, call: Call, p: Params) -> Result:
    text = p.required("KeyId")
    record = kms.use_key(call, text, "kms:ListKeyRotations", allow_alias=False)
    rotations = [v for v in record.versions if v.rotation_type is not None]
    result = page(rotations, p, lambda v: f"{v.number:010d}", "Rotations")
    result["Rotations"] = [
        {
            "KeyId": kms.key_arn(record.key_id),
            "RotationDate": v.created,
            "RotationType": v.rotation_type.value if v.rotation_type else None,
        }
        for v in result["Rotations"]
    ]
    return result
