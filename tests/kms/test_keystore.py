"""The keystore at rest: sealed under the root key, private permissions, atomic writes that
survive SIGKILL at any moment, and several processes writing at once."""

from __future__ import annotations

import base64
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from wafproxy.kms.errors import KeystoreError
from wafproxy.kms.keystore import KeyStore
from wafproxy.kms.rootkey import RootKeySource, RootKind

from .conftest import ROOT_ENV, ROOT_KEY, Client

WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from wafproxy.kms.keystore import KeyStore
    from wafproxy.kms.rootkey import RootKeySource, RootKind
    from wafproxy.kms.service import Kms
    store = KeyStore.open(Path(sys.argv[1]), RootKeySource(RootKind.ENV, "{env}"))
    kms = Kms(store)
    for _ in range(int(sys.argv[2])):
        out = kms.call("CreateKey", {{}}, kms.new_call("CreateKey"))
        print(out["KeyMetadata"]["KeyId"], flush=True)
    """
).format(env=ROOT_ENV)


def writer(store: Path, count: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(store), str(count)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, ROOT_ENV: ROOT_KEY},
    )


def test_material_is_sealed_under_the_root_key(store: KeyStore, client: Client) -> None:
    key = client.key()
    material = store.data().keys[key].current.material
    raw = store.path.read_bytes()
    assert material not in raw and base64.b64encode(material) not in raw
    doc = json.loads(raw)
    assert set(doc["keys"][key]["versions"][0]) == {
        "number",
        "created",
        "rotation_type",
        "material",
    }


def test_a_wrong_root_key_is_refused_clearly(
    store: KeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTHER_ROOT", base64.b64encode(os.urandom(32)).decode())
    with pytest.raises(KeystoreError, match="does not open this keystore"):
        KeyStore.open(store.directory, RootKeySource(RootKind.ENV, "OTHER_ROOT"))


def test_a_missing_root_key_variable_is_named(
    store: KeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ROOT_ENV)
    with pytest.raises(KeystoreError, match=ROOT_ENV):
        KeyStore.open(store.directory, RootKeySource(RootKind.ENV, ROOT_ENV))


@pytest.mark.parametrize("target", ["keystore.json", "."])
def test_readable_by_others_is_refused(
    store: KeyStore, root_source: RootKeySource, target: str
) -> None:
    path = store.directory / target
    path.chmod(0o755 if target == "." else 0o644)
    with pytest.raises(KeystoreError, match="chmod"):
        KeyStore.open(store.directory, root_source)


def test_root_key_file_and_passphrase(tmp_path: Path) -> None:
    key_file = tmp_path / "root.key"
    key_file.write_text(ROOT_KEY)
    key_file.chmod(0o644)
    source = RootKeySource(RootKind.FILE, str(key_file))
    with pytest.raises(KeystoreError, match="chmod 600"):
        KeyStore.create(tmp_path / "a", source)
    key_file.chmod(0o600)
    KeyStore.create(tmp_path / "a", source)
    assert KeyStore.open(tmp_path / "a", source).data().keys == {}
    phrase = RootKeySource(RootKind.PASSPHRASE, "correct horse battery")
    KeyStore.create(tmp_path / "b", phrase)
    assert json.loads((tmp_path / "b" / "keystore.json").read_text())["kdf"]["n"] == 2**15
    with pytest.raises(KeystoreError, match="does not open"):
        KeyStore.open(tmp_path / "b", RootKeySource(RootKind.PASSPHRASE, "wrong horse battery"))
    with pytest.raises(KeystoreError, match="passphrase"):
        KeyStore.open(tmp_path / "b", source)


def test_rewrap_under_a_new_root_key(
    store: KeyStore, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = client.key()
    blob = client("Encrypt", KeyId=key, Plaintext=b"kept")["CiphertextBlob"]
    monkeypatch.setenv("NEW_ROOT", base64.b64encode(os.urandom(32)).decode())
    new = RootKeySource(RootKind.ENV, "NEW_ROOT")
    store.rewrap(new)
    with pytest.raises(KeystoreError):
        KeyStore.open(store.directory, RootKeySource(RootKind.ENV, ROOT_ENV))
    reopened = Client(type(client.kms)(KeyStore.open(store.directory, new)))
    assert reopened("Decrypt", CiphertextBlob=blob)["Plaintext"] == b"kept"


def test_another_process_sees_changes(store: KeyStore, client: Client) -> None:
    done = writer(store.directory, 2)
    created = done.communicate(timeout=30)[0].split()
    assert done.returncode == 0
    assert set(created) <= set(store.data().keys)
    assert {k["KeyId"] for k in client("ListKeys")["Keys"]} == set(created)


def test_concurrent_writers_lose_nothing(store: KeyStore) -> None:
    procs = [writer(store.directory, 15) for _ in range(3)]
    created = [key for p in procs for key in p.communicate(timeout=60)[0].split()]
    assert all(p.returncode == 0 for p in procs)
    assert len(created) == 45
    assert set(store.data().keys) == set(created)


def test_sigkill_mid_write_never_corrupts_the_store(store: KeyStore, client: Client) -> None:
    """Writers are killed at random moments, many of them inside a write of a ~150 KB store;
    after each kill the store opens, holds every key whose creation was reported, and at most
    one more per kill (a write that completed just before its report)."""
    for _ in range(18):  # a bigger file: each write takes longer, more kills land inside one
        client.key(Description="x" * 8000)
    before = set(store.data().keys)
    reported: set[str] = set()
    rng = random.Random(1234)
    for kill in range(1, 6):
        proc = writer(store.directory, 1000)
        time.sleep(0.5 + rng.random() * 0.3)  # past interpreter start-up, into the writes
        proc.send_signal(signal.SIGKILL)
        reported |= set(proc.communicate(timeout=10)[0].split())
        reopened = KeyStore.open(store.directory, RootKeySource(RootKind.ENV, ROOT_ENV))
        keys = set(reopened.data().keys)
        assert before | reported <= keys
        assert len(keys - before - reported) <= kill
    assert len(reported) > 5, "the writers never got going"
    client.key()  # the next writer clears the temporaries a killed one left behind
    assert not list(store.directory.glob(".keystore.json.tmp-*"))
