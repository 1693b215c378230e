"""``wafproxy kms serve`` with unmodified AWS clients: boto3 and the AWS CLI against a real server
process on loopback, and requests signed by botocore's own SigV4 signer, tampered with."""

from __future__ import annotations

import base64
import datetime
import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from .conftest import KmsServer


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_boto3_round_trip(kms_server: KmsServer) -> None:
    kms = kms_server.boto3("admin")
    meta = kms.create_key(Description="boto3", Tags=[{"TagKey": "t", "TagValue": "v"}])[
        "KeyMetadata"
    ]
    key = meta["KeyId"]
    assert meta["KeyState"] == "Enabled" and isinstance(meta["CreationDate"], datetime.datetime)
    kms.create_alias(AliasName="alias/boto3", TargetKeyId=key)
    ctx = {"purpose": "test", "tenant": "a"}
    blob = kms.encrypt(KeyId="alias/boto3", Plaintext=b"hello", EncryptionContext=ctx)[
        "CiphertextBlob"
    ]
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx)["Plaintext"] == b"hello"
    data_key = kms.generate_data_key(KeyId=key, KeySpec="AES_256", EncryptionContext=ctx)
    assert len(data_key["Plaintext"]) == 32
    assert (
        kms.decrypt(CiphertextBlob=data_key["CiphertextBlob"], EncryptionContext=ctx)["Plaintext"]
        == data_key["Plaintext"]
    )
    assert "Plaintext" not in kms.generate_data_key_without_plaintext(KeyId=key, NumberOfBytes=16)
    kms.rotate_key_on_demand(KeyId=key)
    assert kms.list_key_rotations(KeyId=key)["Rotations"][0]["RotationType"] == "ON_DEMAND"
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx)["Plaintext"] == b"hello"
    moved = kms.re_encrypt(CiphertextBlob=blob, SourceEncryptionContext=ctx, DestinationKeyId=key)
    assert kms.decrypt(CiphertextBlob=moved["CiphertextBlob"])["Plaintext"] == b"hello"
    kms.enable_key_rotation(KeyId=key, RotationPeriodInDays=180)
    status = kms.get_key_rotation_status(KeyId=key)
    assert status["KeyRotationEnabled"] and isinstance(
        status["NextRotationDate"], datetime.datetime
    )
    kms.tag_resource(KeyId=key, Tags=[{"TagKey": "u", "TagValue": "w"}])
    assert [t["TagKey"] for t in kms.list_resource_tags(KeyId=key)["Tags"]] == ["t", "u"]
    assert key in [k["KeyId"] for k in kms.list_keys()["Keys"]]
    assert "alias/boto3" in [a["AliasName"] for a in kms.list_aliases()["Aliases"]]
    assert len(kms.generate_random(NumberOfBytes=64)["Plaintext"]) == 64
    kms.update_alias(AliasName="alias/boto3", TargetKeyId=kms.create_key()["KeyMetadata"]["KeyId"])
    kms.delete_alias(AliasName="alias/boto3")
    out = kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    assert out["KeyState"] == "PendingDeletion" and isinstance(
        out["DeletionDate"], datetime.datetime
    )
    kms.cancel_key_deletion(KeyId=key)
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Disabled"


def test_boto3_sees_aws_error_codes(kms_server: KmsServer) -> None:
    kms = kms_server.boto3("admin")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key, Plaintext=b"x", EncryptionContext={"a": "1"})["CiphertextBlob"]
    with pytest.raises(kms.exceptions.NotFoundException):
        kms.describe_key(KeyId="alias/missing")
    with pytest.raises(kms.exceptions.InvalidCiphertextException):
        kms.decrypt(CiphertextBlob=blob, EncryptionContext={"a": "2"})
    with pytest.raises(ClientError) as caught:
        kms.enable_key_rotation(KeyId=key, RotationPeriodInDays=5000)
    assert error_code(caught) == "ValidationException"
    kms.disable_key(KeyId=key)
    with pytest.raises(kms.exceptions.DisabledException):
        kms.encrypt(KeyId=key, Plaintext=b"x")
    kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    with pytest.raises(kms.exceptions.KMSInvalidStateException):
        kms.decrypt(CiphertextBlob=blob, EncryptionContext={"a": "1"})
    with pytest.raises(kms.exceptions.AlreadyExistsException):
        kms.create_alias(
            AliasName="alias/dup", TargetKeyId=kms.create_key()["KeyMetadata"]["KeyId"]
        )
        kms.create_alias(
            AliasName="alias/dup", TargetKeyId=kms.create_key()["KeyMetadata"]["KeyId"]
        )


def test_a_principal_without_permission_is_refused_and_audited(kms_server: KmsServer) -> None:
    key = kms_server.boto3("admin").create_key()["KeyMetadata"]["KeyId"]
    app, reader = kms_server.boto3("app"), kms_server.boto3("reader")
    blob = app.encrypt(KeyId=key, Plaintext=b"x")["CiphertextBlob"]
    with pytest.raises(ClientError) as caught:
        reader.decrypt(CiphertextBlob=blob)
    assert error_code(caught) == "AccessDeniedException"
    assert "user/reader is not authorized to perform: kms:Decrypt" in str(caught.value)
    with pytest.raises(ClientError) as caught:
        app.create_key()
    assert error_code(caught) == "AccessDeniedException"
    event = [e for e in kms_server.events() if e["eventName"] == "Decrypt"][-1]
    assert event["errorCode"] == "AccessDeniedException"
    assert event["userIdentity"]["userName"] == "reader"
    assert event["userIdentity"]["accessKeyId"] == kms_server.principals["reader"]["AccessKeyId"]


# -- signatures ------------------------------------------------------------------------------------
def signed(
    server: KmsServer,
    target: str,
    body: dict[str, Any],
    *,
    secret: str | None = None,
    key: str | None = None,
    when: datetime.datetime | None = None,
    region: str = "us-east-1",
) -> tuple[dict[str, str], bytes]:
    """Headers and body signed by botocore's SigV4 signer, at ``when`` if given."""
    admin = server.principals["admin"]
    data = json.dumps(body).encode()
    request = AWSRequest(
        method="POST",
        url=server.url + "/",
        data=data,
        headers={
            "X-Amz-Target": f"TrentService.{target}",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    auth = SigV4Auth(
        Credentials(key or admin["AccessKeyId"], secret or admin["SecretAccessKey"]), "kms", region
    )
    moment = when or datetime.datetime.now(datetime.UTC)
    request.context["timestamp"] = moment.strftime("%Y%m%dT%H%M%SZ")
    auth._modify_request_before_signing(request)
    canonical = auth.canonical_request(request)
    auth._inject_signature_to_request(
        request, auth.signature(auth.string_to_sign(request, canonical), request)
    )
    return dict(request.headers.items()), data


def send(server: KmsServer, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(server.url + "/", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_a_correctly_signed_raw_request_is_served(kms_server: KmsServer) -> None:
    status, body = send(kms_server, *signed(kms_server, "GenerateRandom", {"NumberOfBytes": 8}))
    assert status == 200 and len(base64.b64decode(body["Plaintext"])) == 8


def test_a_tampered_body_fails_the_signature(kms_server: KmsServer) -> None:
    headers, _ = signed(kms_server, "GenerateRandom", {"NumberOfBytes": 8})
    status, body = send(kms_server, headers, json.dumps({"NumberOfBytes": 9}).encode())
    assert (status, body["__type"]) == (400, "InvalidSignatureException")


def test_a_wrong_secret_is_refused(kms_server: KmsServer) -> None:
    status, body = send(kms_server, *signed(kms_server, "ListKeys", {}, secret="not-the-secret"))
    assert (status, body["__type"]) == (400, "InvalidSignatureException")
    assert "signature we calculated does not match" in body["message"]


def test_an_unknown_access_key_is_refused(kms_server: KmsServer) -> None:
    status, body = send(kms_server, *signed(kms_server, "ListKeys", {}, key="AKIAUNKNOWNUNKNOWN00"))
    assert (status, body["__type"]) == (400, "UnrecognizedClientException")


@pytest.mark.parametrize("minutes", [-6, 6], ids=["stale", "future"])
def test_a_timestamp_outside_five_minutes_is_refused(kms_server: KmsServer, minutes: int) -> None:
    when = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=minutes)
    headers, body = signed(kms_server, "ListKeys", {}, when=when)
    status, answer = send(kms_server, headers, body)
    assert (status, answer["__type"]) == (400, "InvalidSignatureException")
    assert "Signature expired" in answer["message"] or "not yet current" in answer["message"]
    inside = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=minutes * 0.6)
    assert send(kms_server, *signed(kms_server, "ListKeys", {}, when=inside))[0] == 200


def test_a_request_signed_for_another_region_is_refused(kms_server: KmsServer) -> None:
    status, body = send(kms_server, *signed(kms_server, "ListKeys", {}, region="eu-west-1"))
    assert (status, body["__type"]) == (400, "InvalidSignatureException")


def test_unsigned_and_unknown_requests(kms_server: KmsServer) -> None:
    status, body = send(kms_server, {"X-Amz-Target": "TrentService.ListKeys"}, b"{}")
    assert (status, body["__type"]) == (403, "MissingAuthenticationTokenException")
    status, body = send(kms_server, *signed(kms_server, "Sign", {"KeyId": "x"}))
    assert (status, body["__type"]) == (400, "UnknownOperationException")
    failures = [
        e
        for e in kms_server.events()
        if e.get("errorCode") == "MissingAuthenticationTokenException"
    ]
    assert failures and failures[-1]["userIdentity"]["principalId"] == "anonymous"


# -- the AWS CLI -----------------------------------------------------------------------------------
def aws(
    server: KmsServer, principal: str, tmp: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    creds = server.principals[principal]
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp),
        "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "none"),
        "AWS_PAGER": "",
    }
    return subprocess.run(
        ["aws", "kms", *args, "--endpoint-url", server.url, "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.skipif(shutil.which("aws") is None, reason="the AWS CLI is not installed")
def test_aws_cli_round_trip(kms_server: KmsServer, tmp_path: Path) -> None:
    created = aws(kms_server, "admin", tmp_path, "create-key", "--description", "from the cli")
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)["KeyMetadata"]["KeyId"]
    assert (
        aws(
            kms_server,
            "admin",
            tmp_path,
            "create-alias",
            "--alias-name",
            "alias/cli",
            "--target-key-id",
            key,
        ).returncode
        == 0
    )
    (tmp_path / "plain.bin").write_bytes(b"cli secret")
    out = aws(
        kms_server,
        "app",
        tmp_path,
        "encrypt",
        "--key-id",
        "alias/cli",
        "--plaintext",
        f"fileb://{tmp_path / 'plain.bin'}",
        "--encryption-context",
        "purpose=cli",
    )
    assert out.returncode == 0, out.stderr
    (tmp_path / "blob.bin").write_bytes(base64.b64decode(json.loads(out.stdout)["CiphertextBlob"]))
    blob = f"fileb://{tmp_path / 'blob.bin'}"
    out = aws(
        kms_server,
        "app",
        tmp_path,
        "decrypt",
        "--ciphertext-blob",
        blob,
        "--encryption-context",
        "purpose=cli",
    )
    assert out.returncode == 0, out.stderr
    assert base64.b64decode(json.loads(out.stdout)["Plaintext"]) == b"cli secret"
    wrong = aws(
        kms_server,
        "app",
        tmp_path,
        "decrypt",
        "--ciphertext-blob",
        blob,
        "--encryption-context",
        "purpose=other",
    )
    assert wrong.returncode != 0 and "InvalidCiphertextException" in wrong.stderr
    denied = aws(
        kms_server,
        "reader",
        tmp_path,
        "decrypt",
        "--ciphertext-blob",
        blob,
        "--encryption-context",
        "purpose=cli",
    )
    assert denied.returncode != 0 and "AccessDeniedException" in denied.stderr
    assert aws(kms_server, "admin", tmp_path, "disable-key", "--key-id", key).returncode == 0
    disabled = aws(
        kms_server,
        "app",
        tmp_path,
        "decrypt",
        "--ciphertext-blob",
        blob,
        "--encryption-context",
        "purpose=cli",
    )
    assert disabled.returncode != 0 and "DisabledException" in disabled.stderr
