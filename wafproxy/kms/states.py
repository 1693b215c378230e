"""Which operations a key's state allows, from AWS's "Key states of AWS KMS keys" table.

An operation missing from ``BLOCKED`` works in every state. Otherwise the entry says which
error each state answers with: ``DisabledException`` for a disabled key in the cryptographic and
rotation operations, ``KMSInvalidStateException`` elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping

from wafproxy.kms.errors import DISABLED, INVALID_STATE, KmsError
from wafproxy.kms.model import KeyRecord, KeyState

_E, _D, _P = KeyState.ENABLED, KeyState.DISABLED, KeyState.PENDING_DELETION
_CRYPTO = {_D: DISABLED, _P: INVALID_STATE}
_MANAGE = {_P: INVALID_STATE}

BLOCKED: Mapping[str, Mapping[KeyState, str]] = {
    "Encrypt": _CRYPTO,
    "Decrypt": _CRYPTO,
    "ReEncrypt": _CRYPTO,
    "GenerateDataKey": _CRYPTO,
    "GenerateDataKeyWithoutPlaintext": _CRYPTO,
    "EnableKeyRotation": _CRYPTO,
    "DisableKeyRotation": _CRYPTO,
    "RotateKeyOnDemand": _CRYPTO,
    "GetKeyRotationStatus": _MANAGE,
    "EnableKey": _MANAGE,
    "DisableKey": _MANAGE,
    "ScheduleKeyDeletion": _MANAGE,
    "CreateAlias": _MANAGE,
    "UpdateAlias": _MANAGE,
    "TagResource": _MANAGE,
    "UntagResource": _MANAGE,
    "UpdateKeyDescription": _MANAGE,
    "PutKeyPolicy": _MANAGE,
    "CancelKeyDeletion": {_E: INVALID_STATE, _D: INVALID_STATE},
}


def check_state(operation: str, key: KeyRecord, arn: str) -> None:
    code = BLOCKED.get(operation, {}).get(key.state)
    if code is None:
        return
    if code == DISABLED:
        raise KmsError(DISABLED, f"{arn} is disabled.")
    if operation == "CancelKeyDeletion":
        raise KmsError(INVALID_STATE, f"{arn} is not pending deletion.")
    raise KmsError(INVALID_STATE, f"{arn} is {_describe(key.state)}.")


def _describe(state: KeyState) -> str:
    return {
        KeyState.ENABLED: "enabled",
        KeyState.DISABLED: "disabled",
        KeyState.PENDING_DELETION: "pending deletion",
    }[state]
