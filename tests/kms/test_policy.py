"""Access control: identity policies, key policies (Allow, Deny, delegation to the account,
conditions on the encryption context), the lockout safety check, and denials in the audit log."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from wafproxy.kms.errors import KmsError
from wafproxy.kms.glob import glob_match
from wafproxy.kms.policy import Caller, KeyPolicy
from wafproxy.kms.principals import create_principal
from wafproxy.kms.service import Kms

from .conftest import Client

ACCOUNT = "111122223333"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"


def user(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:user/{name}"


def principal(kms: Kms, name: str, *actions: str) -> Client:
    p = create_principal(kms.store, name, actions, time.time())
    return Client(kms, Caller.principal(kms.account, name, p.actions, p.access_key_id))


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(who: str, *actions: str, **extra: Any) -> dict[str, Any]:
    return {
        "Effect": "Allow",
        "Principal": {"AWS": who},
        "Action": list(actions),
        "Resource": "*",
        **extra,
    }


def deny(who: str, *actions: str, **extra: Any) -> dict[str, Any]:
    return {**allow(who, *actions, **extra), "Effect": "Deny"}


def denied(client: Client, operation: str, **params: Any) -> str:
    with pytest.raises(KmsError) as caught:
        client(operation, **params)
    assert caught.value.code == "AccessDeniedException"
    return caught.value.message


def test_identity_policy_governs_keys_with_the_default_policy(kms: Kms, client: Client) -> None:
    key = client.key()
    app = principal(kms, "app", "kms:Encrypt", "kms:Decrypt")
    blob = app("Encrypt", KeyId=key, Plaintext=b"x")["CiphertextBlob"]
    assert app("Decrypt", CiphertextBlob=blob)["Plaintext"] == b"x"
    message = denied(app, "DisableKey", KeyId=key)
    assert message.startswith(f"User: {user('app')} is not authorized to perform: kms:DisableKey")
    denied(app, "CreateKey")
    denied(app, "ListKeys")


def test_a_denial_is_audited_with_the_principal(kms: Kms, client: Client) -> None:
    key = client.key()
    app = principal(kms, "app", "kms:Encrypt")
    denied(app, "GenerateDataKey", KeyId=key, KeySpec="AES_256", EncryptionContext={"purpose": "x"})
    event = client.events()[-1]
    assert event["eventName"] == "GenerateDataKey"
    assert event["errorCode"] == "AccessDeniedException" and event["outcome"] == "failure"
    assert event["userIdentity"]["arn"] == user("app")
    assert event["requestParameters"]["encryptionContext"] == {"purpose": "x"}
    assert event["resources"][0]["ARN"].endswith(key)


def test_a_key_policy_can_grant_a_principal_directly(kms: Kms, client: Client) -> None:
    key = client.key(Policy=policy(allow(ROOT, "kms:*"), allow(user("ops"), "kms:Encrypt")))
    ops = principal(kms, "ops")  # no identity policy at all
    ops("Encrypt", KeyId=key, Plaintext=b"x")
    denied(
        ops,
        "Decrypt",
        CiphertextBlob=client("Encrypt", KeyId=key, Plaintext=b"y")["CiphertextBlob"],
    )


def test_without_the_account_statement_identity_policies_do_not_count(
    kms: Kms, client: Client
) -> None:
    key = client.key(Policy=policy(allow(ROOT, "kms:PutKeyPolicy", "kms:DescribeKey")))
    admin = principal(kms, "admin", "kms:*")
    admin("DescribeKey", KeyId=key)
    denied(admin, "Encrypt", KeyId=key, Plaintext=b"x")


def test_explicit_deny_wins(kms: Kms, client: Client) -> None:
    key = client.key(Policy=policy(allow(ROOT, "kms:*"), deny(user("app"), "kms:Decrypt")))
    app = principal(kms, "app", "kms:*")
    blob = app("Encrypt", KeyId=key, Plaintext=b"x")["CiphertextBlob"]
    assert "explicit deny" in denied(app, "Decrypt", CiphertextBlob=blob)
    assert client("Decrypt", CiphertextBlob=blob)["Plaintext"] == b"x"


def test_conditions_on_the_encryption_context(kms: Kms, client: Client) -> None:
    tls_only = {"StringEquals": {"kms:EncryptionContext:purpose": "tls"}}
    key = client.key(
        Policy=policy(allow(ROOT, "kms:*"), allow(user("proxy"), "kms:Decrypt", Condition=tls_only))
    )
    proxy = principal(kms, "proxy")
    tls_blob = client("Encrypt", KeyId=key, Plaintext=b"k", EncryptionContext={"purpose": "tls"})[
        "CiphertextBlob"
    ]
    other = client("Encrypt", KeyId=key, Plaintext=b"k", EncryptionContext={"purpose": "db"})[
        "CiphertextBlob"
    ]
    proxy("Decrypt", CiphertextBlob=tls_blob, EncryptionContext={"purpose": "tls"})
    denied(proxy, "Decrypt", CiphertextBlob=other, EncryptionContext={"purpose": "db"})


def test_the_lockout_safety_check(kms: Kms, client: Client) -> None:
    locked = policy(allow(user("nobody"), "kms:Encrypt"))
    with pytest.raises(KmsError) as caught:
        client.key(Policy=locked)
    assert caught.value.code == "MalformedPolicyDocumentException"
    key = client.key(Policy=locked, BypassPolicyLockoutSafetyCheck=True)
    with pytest.raises(KmsError) as caught:
        client("DescribeKey", KeyId=key)
    assert caught.value.code == "AccessDeniedException"


def test_put_and_get_key_policy(client: Client) -> None:
    key = client.key()
    default = json.loads(client("GetKeyPolicy", KeyId=key)["Policy"])
    assert default["Statement"][0]["Principal"] == {"AWS": ROOT}
    new = policy(allow(ROOT, "kms:*"), allow(user("x"), "kms:Encrypt"))
    client("PutKeyPolicy", KeyId=key, Policy=new)
    assert client("GetKeyPolicy", KeyId=key)["Policy"] == new


@pytest.mark.parametrize(
    "document",
    [
        "not json",
        json.dumps({"Statement": []}),
        policy({"Effect": "Maybe", "Principal": "*", "Action": "kms:*"}),
        policy(
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
                "Action": "kms:*",
            }
        ),
        policy({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}),
        policy({"Effect": "Allow", "Principal": "*", "NotAction": "kms:Decrypt"}),
        policy(allow("*", "kms:*", Condition={"NumericEquals": {"kms:CallerAccount": "1"}})),
        policy(allow("*", "kms:*", Condition={"StringEquals": {"aws:SourceIp": "1.2.3.4"}})),
    ],
    ids=[
        "json",
        "empty",
        "effect",
        "foreign-account",
        "action",
        "notaction",
        "operator",
        "cond-key",
    ],
)
def test_malformed_policies(document: str) -> None:
    with pytest.raises(KmsError) as caught:
        KeyPolicy.parse(document, ACCOUNT)
    assert caught.value.code == "MalformedPolicyDocumentException"


def test_wildcards_in_actions() -> None:
    doc = KeyPolicy.parse(policy(allow("*", "kms:Generate*", "kms:?ncrypt")), ACCOUNT)
    caller = Caller.principal(ACCOUNT, "x", (), None)
    arn = "arn:aws:kms:us-east-1:111122223333:key/k"
    for action, verdict in [
        ("kms:GenerateDataKey", "allow"),
        ("kms:Encrypt", "allow"),
        ("kms:Decrypt", "implicit deny"),
    ]:
        assert doc.evaluate(caller, action, arn, {}) == verdict


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("*", "", True),
        ("a*c", "abbbc", True),
        ("a?c", "abc", True),
        ("a?c", "ac", False),
        ("*x*", "yyy", False),
        ("kms:*", "kms:Encrypt", True),
        ("a*b*c", "a_b_b_c", True),
        ("[a]", "a", False),
    ],
)
def test_glob(pattern: str, text: str, expected: bool) -> None:
    assert glob_match(pattern, text) is expected
