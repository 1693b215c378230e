"""The operations' AWS semantics: rotation keeps every version, aliases, data keys, re-encrypt,
key id forms, validation, pagination, tags."""

from __future__ import annotations

from typing import Any

import pytest

from wafproxy.kms.crypto import parse_blob
from wafproxy.kms.errors import KmsError

from .conftest import Client, Clock


def code(client: Client, operation: str, **params: Any) -> str:
    with pytest.raises(KmsError) as caught:
        client(operation, **params)
    return caught.value.code


def test_on_demand_rotation_keeps_old_versions_and_encrypts_with_the_newest(client: Client) -> None:
    key = client.key()
    blobs = [client("Encrypt", KeyId=key, Plaintext=b"v1")["CiphertextBlob"]]
    for n in (2, 3):
        assert client("RotateKeyOnDemand", KeyId=key) == {"KeyId": key}
        blobs.append(client("Encrypt", KeyId=key, Plaintext=f"v{n}".encode())["CiphertextBlob"])
    assert [parse_blob(b).version for b in blobs] == [1, 2, 3]
    for n, blob in enumerate(blobs, 1):
        assert client("Decrypt", CiphertextBlob=blob)["Plaintext"] == f"v{n}".encode()
    rotations = client("ListKeyRotations", KeyId=key)["Rotations"]
    assert [r["RotationType"] for r in rotations] == ["ON_DEMAND", "ON_DEMAND"]


def test_automatic_rotation_follows_its_period(client: Client, clock: Clock) -> None:
    key = client.key()
    old = client("Encrypt", KeyId=key, Plaintext=b"old")["CiphertextBlob"]
    client("EnableKeyRotation", KeyId=key, RotationPeriodInDays=90)
    status = client("GetKeyRotationStatus", KeyId=key)
    assert status["KeyRotationEnabled"] and status["RotationPeriodInDays"] == 90
    assert status["NextRotationDate"] == pytest.approx(clock.now + 90 * 86400)
    clock.advance(89)
    assert parse_blob(client("Encrypt", KeyId=key, Plaintext=b"x")["CiphertextBlob"]).version == 1
    clock.advance(2)
    new = client("Encrypt", KeyId=key, Plaintext=b"new")["CiphertextBlob"]
    assert parse_blob(new).version == 2
    assert client("Decrypt", CiphertextBlob=old)["Plaintext"] == b"old"
    assert client("ListKeyRotations", KeyId=key)["Rotations"][0]["RotationType"] == "AUTOMATIC"
    next_date = client("GetKeyRotationStatus", KeyId=key)["NextRotationDate"]
    assert next_date == pytest.approx(clock.now + 90 * 86400)
    client("DisableKeyRotation", KeyId=key)
    assert client("GetKeyRotationStatus", KeyId=key) == {
        "KeyId": client("DescribeKey", KeyId=key)["KeyMetadata"]["Arn"],
        "KeyRotationEnabled": False,
    }


@pytest.mark.parametrize("days", [89, 2561])
def test_rotation_period_bounds(client: Client, days: int) -> None:
    assert (
        code(client, "EnableKeyRotation", KeyId=client.key(), RotationPeriodInDays=days)
        == "ValidationException"
    )


def test_on_demand_rotations_are_limited(client: Client) -> None:
    key = client.key()
    for _ in range(25):
        client("RotateKeyOnDemand", KeyId=key)
    assert code(client, "RotateKeyOnDemand", KeyId=key) == "LimitExceededException"


def test_aliases(client: Client) -> None:
    a, b = client.key(), client.key()
    client("CreateAlias", AliasName="alias/app", TargetKeyId=a)
    assert (
        code(client, "CreateAlias", AliasName="alias/app", TargetKeyId=b)
        == "AlreadyExistsException"
    )
    assert client("DescribeKey", KeyId="alias/app")["KeyMetadata"]["KeyId"] == a
    arn = client("ListAliases")["Aliases"][0]["AliasArn"]
    assert client("Encrypt", KeyId=arn, Plaintext=b"x")["KeyId"].endswith(a)
    client("UpdateAlias", AliasName="alias/app", TargetKeyId=b)
    assert client("DescribeKey", KeyId="alias/app")["KeyMetadata"]["KeyId"] == b
    assert [x["AliasName"] for x in client("ListAliases", KeyId=b)["Aliases"]] == ["alias/app"]
    assert client("ListAliases", KeyId=a)["Aliases"] == []
    client("DeleteAlias", AliasName="alias/app")
    assert code(client, "DeleteAlias", AliasName="alias/app") == "NotFoundException"
    assert code(client, "DescribeKey", KeyId="alias/app") == "NotFoundException"


@pytest.mark.parametrize("name", ["app", "alias/", "alias/bad name", "alias/aws/reserved"])
def test_bad_alias_names(client: Client, name: str) -> None:
    assert (
        code(client, "CreateAlias", AliasName=name, TargetKeyId=client.key())
        == "InvalidAliasNameException"
    )


def test_operations_that_take_only_key_ids_refuse_aliases(client: Client) -> None:
    key = client.key()
    client("CreateAlias", AliasName="alias/k", TargetKeyId=key)
    assert code(client, "DisableKey", KeyId="alias/k") == "NotFoundException"
    assert (
        code(client, "CreateAlias", AliasName="alias/k2", TargetKeyId="alias/k")
        == "NotFoundException"
    )


def test_key_id_forms(client: Client, kms: Any) -> None:
    key = client.key()
    arn = kms.key_arn(key)
    for form in (key, arn):
        assert client("DescribeKey", KeyId=form)["KeyMetadata"]["Arn"] == arn
    assert code(client, "DescribeKey", KeyId="not-a-key") == "NotFoundException"
    missing = "00000000-0000-0000-0000-000000000000"
    assert code(client, "DescribeKey", KeyId=missing) == "NotFoundException"
    assert (
        code(client, "DescribeKey", KeyId=arn.replace("us-east-1", "eu-west-1"))
        == "NotFoundException"
    )
    assert code(client, "DescribeKey", KeyId="arn:aws:s3:::bucket") == "InvalidArnException"


def test_data_keys(client: Client) -> None:
    key = client.key()
    ctx = {"purpose": "test"}
    out = client("GenerateDataKey", KeyId=key, KeySpec="AES_256", EncryptionContext=ctx)
    assert len(out["Plaintext"]) == 32
    again = client("Decrypt", CiphertextBlob=out["CiphertextBlob"], EncryptionContext=ctx)
    assert again["Plaintext"] == out["Plaintext"]
    small = client("GenerateDataKey", KeyId=key, KeySpec="AES_128")
    assert len(small["Plaintext"]) == 16
    bare = client("GenerateDataKeyWithoutPlaintext", KeyId=key, NumberOfBytes=64)
    assert "Plaintext" not in bare
    assert len(client("Decrypt", CiphertextBlob=bare["CiphertextBlob"])["Plaintext"]) == 64
    assert code(client, "GenerateDataKey", KeyId=key) == "ValidationException"
    assert (
        code(client, "GenerateDataKey", KeyId=key, KeySpec="AES_256", NumberOfBytes=32)
        == "ValidationException"
    )
    assert code(client, "GenerateDataKey", KeyId=key, NumberOfBytes=1025) == "ValidationException"


def test_re_encrypt_moves_ciphertext_between_keys_and_contexts(client: Client) -> None:
    a, b = client.key(), client.key()
    blob = client("Encrypt", KeyId=a, Plaintext=b"move me", EncryptionContext={"x": "1"})[
        "CiphertextBlob"
    ]
    out = client(
        "ReEncrypt",
        CiphertextBlob=blob,
        SourceEncryptionContext={"x": "1"},
        DestinationKeyId=b,
        DestinationEncryptionContext={"y": "2"},
    )
    assert out["SourceKeyId"].endswith(a) and out["KeyId"].endswith(b)
    plain = client("Decrypt", CiphertextBlob=out["CiphertextBlob"], EncryptionContext={"y": "2"})
    assert plain["Plaintext"] == b"move me"
    assert (
        code(client, "ReEncrypt", CiphertextBlob=blob, DestinationKeyId=b)
        == "InvalidCiphertextException"
    )


def test_decrypt_checks(client: Client) -> None:
    a, b = client.key(), client.key()
    blob = client("Encrypt", KeyId=a, Plaintext=b"p", EncryptionContext={"k": "v"})[
        "CiphertextBlob"
    ]
    assert code(client, "Decrypt", CiphertextBlob=blob) == "InvalidCiphertextException"
    assert (
        code(client, "Decrypt", CiphertextBlob=blob, EncryptionContext={"k": "w"})
        == "InvalidCiphertextException"
    )
    assert (
        code(client, "Decrypt", CiphertextBlob=blob, EncryptionContext={"k": "v"}, KeyId=b)
        == "IncorrectKeyException"
    )
    tampered = bytearray(blob)
    tampered[-1] ^= 1
    assert (
        code(client, "Decrypt", CiphertextBlob=bytes(tampered), EncryptionContext={"k": "v"})
        == "InvalidCiphertextException"
    )
    wrong_version = bytearray(blob)
    wrong_version[24] = 9
    assert (
        code(client, "Decrypt", CiphertextBlob=bytes(wrong_version), EncryptionContext={"k": "v"})
        == "InvalidCiphertextException"
    )
    assert code(client, "Decrypt", CiphertextBlob=b"garbage") == "InvalidCiphertextException"


def test_encrypt_limits_and_dry_run(client: Client) -> None:
    key = client.key()
    assert code(client, "Encrypt", KeyId=key, Plaintext=b"x" * 4097) == "ValidationException"
    assert code(client, "Encrypt", KeyId=key) == "ValidationException"
    assert (
        code(client, "Encrypt", KeyId=key, Plaintext=b"x", EncryptionAlgorithm="RSAES_OAEP_SHA_1")
        == "InvalidKeyUsageException"
    )
    assert (
        code(client, "Encrypt", KeyId=key, Plaintext=b"x", DryRun=True)
        == "DryRunOperationException"
    )
    assert code(client, "Encrypt", KeyId=key, Plaintext="not bytes") == "SerializationException"


def test_generate_random(client: Client) -> None:
    assert len(client("GenerateRandom", NumberOfBytes=1024)["Plaintext"]) == 1024
    assert code(client, "GenerateRandom", NumberOfBytes=0) == "ValidationException"


def test_create_key_refuses_what_it_does_not_support(client: Client) -> None:
    assert code(client, "CreateKey", KeySpec="RSA_2048") == "UnsupportedOperationException"
    assert code(client, "CreateKey", KeyUsage="SIGN_VERIFY") == "UnsupportedOperationException"
    assert code(client, "CreateKey", Tags=[{"TagKey": "aws:x", "TagValue": "y"}]) == "TagException"


def test_tags(client: Client) -> None:
    key = client.key(Tags=[{"TagKey": "team", "TagValue": "edge"}])
    client(
        "TagResource",
        KeyId=key,
        Tags=[{"TagKey": "env", "TagValue": "prod"}, {"TagKey": "team", "TagValue": "sec"}],
    )
    tags = client("ListResourceTags", KeyId=key)["Tags"]
    assert tags == [{"TagKey": "env", "TagValue": "prod"}, {"TagKey": "team", "TagValue": "sec"}]
    client("UntagResource", KeyId=key, TagKeys=["env"])
    assert client("ListResourceTags", KeyId=key)["Tags"] == [{"TagKey": "team", "TagValue": "sec"}]


def test_pagination(client: Client) -> None:
    keys = {client.key() for _ in range(5)}
    seen: list[str] = []
    marker = None
    pages = 0
    while True:
        params: dict[str, Any] = {"Limit": 2}
        if marker:
            params["Marker"] = marker
        out = client("ListKeys", **params)
        seen += [k["KeyId"] for k in out["Keys"]]
        pages += 1
        if not out["Truncated"]:
            break
        marker = out["NextMarker"]
    assert set(seen) == keys and len(seen) == 5 and pages == 3
    assert code(client, "ListKeys", Marker="!!!") == "InvalidMarkerException"
    assert code(client, "ListKeys", Limit=0) == "ValidationException"


def test_unknown_operation(client: Client) -> None:
    assert code(client, "Sign", KeyId="x") == "UnknownOperationException"
