"""The audit log: an event per call, success or failure, and no secret in it ever."""

from __future__ import annotations

import base64
import contextlib

from wafproxy.kms.errors import KmsError

from .conftest import Client


def test_every_call_is_audited_and_no_secret_is_logged(client: Client) -> None:
    key = client.key()
    secret = b"the plaintext that must never be logged"
    blob = client("Encrypt", KeyId=key, Plaintext=secret, EncryptionContext={"purpose": "tls"})[
        "CiphertextBlob"
    ]
    data_key = client("GenerateDataKey", KeyId=key, KeySpec="AES_256")
    random = client("GenerateRandom", NumberOfBytes=32)["Plaintext"]
    client("Decrypt", CiphertextBlob=blob, EncryptionContext={"purpose": "tls"})
    with contextlib.suppress(KmsError):
        client("Decrypt", CiphertextBlob=blob)
    events = client.events()
    assert [e["eventName"] for e in events] == [
        "CreateKey", "Encrypt", "GenerateDataKey", "GenerateRandom", "Decrypt", "Decrypt",
    ]  # fmt: skip
    assert [e["outcome"] for e in events][-2:] == ["success", "failure"]
    assert events[-1]["errorCode"] == "InvalidCiphertextException"
    assert events[1]["additionalEventData"] == {"purpose": "tls"}
    assert len({e["requestID"] for e in events}) == len(events)
    text = client.kms.store.audit_path.read_bytes()
    material = client.kms.store.data().keys[key].current.material
    for value in (
        secret,
        blob,
        data_key["Plaintext"],
        data_key["CiphertextBlob"],
        random,
        material,
    ):
        assert value not in text and base64.b64encode(value) not in text
    assert client.kms.store.audit_path.stat().st_mode & 0o777 == 0o600
