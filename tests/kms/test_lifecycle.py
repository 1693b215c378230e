"""The key state machine: every key operation in every key state gives AWS's answer (the
expected table is written out from AWS's "Key states of AWS KMS keys", independently of
wafproxy/kms/states.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from wafproxy.kms.errors import KmsError
from wafproxy.kms.ops import OPERATIONS

from .conftest import Client

OK = "ok"
DIS = "DisabledException"
INV = "KMSInvalidStateException"
STATES = ("Enabled", "Disabled", "PendingDeletion")

EXPECTED: dict[str, tuple[str, str, str]] = {
    "DescribeKey": (OK, OK, OK),
    "EnableKey": (OK, OK, INV),
    "DisableKey": (OK, OK, INV),
    "ScheduleKeyDeletion": (OK, OK, INV),
    "CancelKeyDeletion": (INV, INV, OK),
    "UpdateKeyDescription": (OK, OK, INV),
    "CreateAlias": (OK, OK, INV),
    "UpdateAlias": (OK, OK, INV),
    "DeleteAlias": (OK, OK, OK),
    "ListAliases": (OK, OK, OK),
    "EnableKeyRotation": (OK, DIS, INV),
    "DisableKeyRotation": (OK, DIS, INV),
    "GetKeyRotationStatus": (OK, OK, INV),
    "RotateKeyOnDemand": (OK, DIS, INV),
    "ListKeyRotations": (OK, OK, OK),
    "Encrypt": (OK, DIS, INV),
    "Decrypt": (OK, DIS, INV),
    "ReEncrypt": (OK, DIS, INV),
    "GenerateDataKey": (OK, DIS, INV),
    "GenerateDataKeyWithoutPlaintext": (OK, DIS, INV),
    "TagResource": (OK, OK, INV),
    "UntagResource": (OK, OK, INV),
    "ListResourceTags": (OK, OK, OK),
    "GetKeyPolicy": (OK, OK, OK),
    "PutKeyPolicy": (OK, OK, INV),
}
ACCOUNT_LEVEL = {"CreateKey", "ListKeys", "GenerateRandom"}


class Fixture:
    """A key (``key``) prepared while enabled, plus what the operations need."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.key = client.key(Description="subject")
        self.other = client.key(Description="other")
        self.blob = client("Encrypt", KeyId=self.key, Plaintext=b"x")["CiphertextBlob"]
        client("CreateAlias", AliasName="alias/mine", TargetKeyId=self.key)
        client("CreateAlias", AliasName="alias/other", TargetKeyId=self.other)
        client("TagResource", KeyId=self.key, Tags=[{"TagKey": "t", "TagValue": "v"}])

    def into(self, state: str) -> None:
        if state == "Disabled":
            self.client("DisableKey", KeyId=self.key)
        elif state == "PendingDeletion":
            self.client("ScheduleKeyDeletion", KeyId=self.key, PendingWindowInDays=7)

    def params(self, operation: str) -> dict[str, Any]:
        policy = self.client("GetKeyPolicy", KeyId=self.other)["Policy"]
        special: dict[str, Callable[[], dict[str, Any]]] = {
            "CreateAlias": lambda: {"AliasName": "alias/new", "TargetKeyId": self.key},
            "UpdateAlias": lambda: {"AliasName": "alias/other", "TargetKeyId": self.key},
            "DeleteAlias": lambda: {"AliasName": "alias/mine"},
            "Encrypt": lambda: {"KeyId": self.key, "Plaintext": b"data"},
            "Decrypt": lambda: {"CiphertextBlob": self.blob},
            "ReEncrypt": lambda: {"CiphertextBlob": self.blob, "DestinationKeyId": self.other},
            "GenerateDataKey": lambda: {"KeyId": self.key, "KeySpec": "AES_256"},
            "GenerateDataKeyWithoutPlaintext": lambda: {"KeyId": self.key, "NumberOfBytes": 16},
            "TagResource": lambda: {"KeyId": self.key, "Tags": [{"TagKey": "a", "TagValue": "b"}]},
            "UntagResource": lambda: {"KeyId": self.key, "TagKeys": ["t"]},
            "UpdateKeyDescription": lambda: {"KeyId": self.key, "Description": "new"},
            "PutKeyPolicy": lambda: {"KeyId": self.key, "Policy": policy},
        }
        return special.get(operation, lambda: {"KeyId": self.key})()


def test_the_table_covers_every_key_operation() -> None:
    assert set(EXPECTED) | ACCOUNT_LEVEL == set(OPERATIONS.names())


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("operation", sorted(EXPECTED))
def test_operation_in_state(client: Client, operation: str, state: str) -> None:
    fixture = Fixture(client)
    fixture.into(state)
    assert client("DescribeKey", KeyId=fixture.key)["KeyMetadata"]["KeyState"] == state
    expected = EXPECTED[operation][STATES.index(state)]
    try:
        client(operation, **fixture.params(operation))
        outcome = OK
    except KmsError as exc:
        outcome = exc.code
    assert outcome == expected
    last = client.events()[-1]
    assert last["eventName"] == operation
    assert last.get("errorCode") == (None if expected == OK else expected)


def test_transitions(client: Client) -> None:
    key = client.key()
    state = lambda: client("DescribeKey", KeyId=key)["KeyMetadata"]  # noqa: E731
    client("DisableKey", KeyId=key)
    assert (state()["KeyState"], state()["Enabled"]) == ("Disabled", False)
    client("EnableKey", KeyId=key)
    assert (state()["KeyState"], state()["Enabled"]) == ("Enabled", True)
    out = client("ScheduleKeyDeletion", KeyId=key, PendingWindowInDays=7)
    assert out["KeyState"] == "PendingDeletion" and out["PendingWindowInDays"] == 7
    assert state()["DeletionDate"] == out["DeletionDate"]
    client("CancelKeyDeletion", KeyId=key)
    assert state()["KeyState"] == "Disabled" and "DeletionDate" not in state()


@pytest.mark.parametrize("days", [6, 31])
def test_the_pending_window_is_7_to_30_days(client: Client, days: int) -> None:
    key = client.key()
    with pytest.raises(KmsError) as caught:
        client("ScheduleKeyDeletion", KeyId=key, PendingWindowInDays=days)
    assert caught.value.code == "ValidationException"


def test_a_key_is_deleted_when_its_window_ends(client: Client, clock: Any) -> None:
    key = client.key()
    client("CreateAlias", AliasName="alias/doomed", TargetKeyId=key)
    blob = client("Encrypt", KeyId=key, Plaintext=b"x")["CiphertextBlob"]
    client("ScheduleKeyDeletion", KeyId=key, PendingWindowInDays=7)
    clock.advance(6.9)
    assert client("DescribeKey", KeyId=key)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    clock.advance(0.2)
    for operation, params in [
        ("DescribeKey", {"KeyId": key}),
        ("Decrypt", {"CiphertextBlob": blob}),
        ("DescribeKey", {"KeyId": "alias/doomed"}),
    ]:
        with pytest.raises(KmsError) as caught:
            client(operation, **params)
        assert caught.value.code == "NotFoundException"
    assert client("ListAliases")["Aliases"] == []
    assert client("ListKeys")["Keys"] == []
