"""``wafproxy kms ...`` against a local keystore, as an operator runs it."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import trustme

from wafproxy.kms.envelope import Envelope

from .conftest import ROOT_KEY, wafproxy


def env(store: Path) -> dict[str, str]:
    return {**os.environ, "WAFPROXY_KMS_ROOT_KEY": ROOT_KEY, "WAFPROXY_KMS_STORE": str(store)}


def run(store: Path, *args: str, stdin: bytes | None = None) -> str:
    done = wafproxy("kms", *args, env=env(store), stdin=stdin)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


def test_operator_workflow(tmp_path: Path, ca: trustme.CA) -> None:
    store = tmp_path / "kms"
    run(store, "init")
    assert (store / "keystore.json").stat().st_mode & 0o777 == 0o600
    key = json.loads(run(store, "create-key", "--description", "tls", "--tag", "team=edge"))[
        "KeyMetadata"
    ]["KeyId"]
    run(store, "create-alias", "alias/tls", key)
    assert json.loads(run(store, "list-aliases"))["Aliases"][0]["TargetKeyId"] == key
    blob = run(
        store, "encrypt", "--key-id", "alias/tls", "--in", "-", "--context", "a=b", stdin=b"hi"
    )
    assert run(store, "decrypt", "--in", "-", "--context", "a=b", stdin=blob.encode()) == "hi"
    pem = ca.issue_cert("shop.example").private_key_pem.bytes()
    out = tmp_path / "shop.key.enc"
    run(
        store,
        "encrypt-tls-key",
        "--key",
        "alias/tls",
        "--in",
        "-",
        "--out",
        str(out),
        "--listener",
        "edge",
        stdin=pem,
    )
    envelope = Envelope.loads(out.read_bytes(), str(out))
    assert envelope.context == {"purpose": "tls", "listener": "edge"}
    assert pem not in out.read_bytes() and base64.b64encode(pem) not in out.read_bytes()
    run(store, "disable-key", key)
    failed = wafproxy("kms", "encrypt", "--key-id", key, "--in", "-", env=env(store), stdin=b"x")
    assert failed.returncode == 1 and b"DisabledException" in failed.stderr
    principal = json.loads(run(store, "principals", "create", "ci", "--allow", "kms:Encrypt"))
    assert principal["AccessKeyId"].startswith("AKIA") and len(principal["SecretAccessKey"]) >= 40
    listed = run(store, "principals", "list")
    assert "ci" in listed and principal["SecretAccessKey"] not in listed
    assert principal["SecretAccessKey"] not in (store / "keystore.json").read_text()


def test_encrypt_tls_key_refuses_what_is_not_a_private_key(tmp_path: Path) -> None:
    store = tmp_path / "kms"
    run(store, "init")
    args = ["--key", "alias/x", "--in", "-", "--out", str(tmp_path / "o"), "--listener", "l"]
    done = wafproxy("kms", "encrypt-tls-key", *args, env=env(store), stdin=b"not a key")
    assert done.returncode != 0 and not (tmp_path / "o").exists()


def test_errors_are_clear(tmp_path: Path) -> None:
    done = wafproxy(
        "kms", "list-keys", "--store", str(tmp_path / "none"), env=env(tmp_path / "none")
    )
    assert done.returncode == 1 and b"no keystore in" in done.stderr
    store = tmp_path / "kms"
    run(store, "init")
    bad = {**env(store), "WAFPROXY_KMS_ROOT_KEY": base64.b64encode(b"x" * 32).decode()}
    done = wafproxy("kms", "list-keys", env=bad)
    assert done.returncode == 1 and b"does not open this keystore" in done.stderr
