"""The keystore file: JSON whose secrets (key material, principals' secret keys) are each sealed
with AES-256-GCM under the root key, with AAD naming what they belong to -- so a sealed value
cannot be moved to another key, version or principal."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from wafproxy.kms.crypto import AuthenticationFailed, open_sealed, seal
from wafproxy.kms.errors import KeystoreError
from wafproxy.kms.model import (
    AliasRecord,
    KeyRecord,
    KeyState,
    KeyVersion,
    Principal,
    RotationType,
)
from wafproxy.kms.rootkey import ScryptParams

FORMAT = "wafproxy-kms-keystore/1"
ROOT_CHECK = b"wafproxy-kms root key check"


@dataclass
class StoreData:
    """Everything in the keystore, in memory, key material in the clear."""

    account: str
    region: str
    scrypt: ScryptParams | None = None
    generation: int = 0
    keys: dict[str, KeyRecord] = field(default_factory=dict)
    aliases: dict[str, AliasRecord] = field(default_factory=dict)
    principals: dict[str, Principal] = field(default_factory=dict)

    def copy(self) -> StoreData:
        return StoreData(
            self.account,
            self.region,
            self.scrypt,
            self.generation,
            dict(self.keys),
            dict(self.aliases),
            dict(self.principals),
        )


def dumps(data: StoreData, root: bytes) -> bytes:
    doc: dict[str, Any] = {
        "format": FORMAT,
        "generation": data.generation,
        "account": data.account,
        "region": data.region,
        "kdf": _scrypt_doc(data.scrypt),
        "root_check": _b64(seal(root, ROOT_CHECK, b"root-check")),
        "keys": {k: _key_doc(r, root) for k, r in data.keys.items()},
        "aliases": {n: _alias_doc(a) for n, a in data.aliases.items()},
        "principals": {n: _principal_doc(p, root) for n, p in data.principals.items()},
    }
    return json.dumps(doc, indent=1, sort_keys=True).encode("utf-8")


def read_kdf(raw: bytes) -> ScryptParams | None:
    """The KDF header alone: needed to derive a passphrase root key before opening the rest."""
    doc = _document(raw)
    kdf = doc.get("kdf")
    if kdf is None:
        return None
    return ScryptParams(_unb64(kdf["salt"]), int(kdf["n"]), int(kdf["r"]), int(kdf["p"]))


def loads(raw: bytes, root: bytes) -> StoreData:
    doc = _document(raw)
    try:
        open_sealed(root, _unb64(doc["root_check"]), b"root-check")
    except AuthenticationFailed:
        raise KeystoreError("the root key given does not open this keystore") from None
    try:
        return StoreData(
            account=str(doc["account"]),
            region=str(doc["region"]),
            scrypt=read_kdf(raw),
            generation=int(doc["generation"]),
            keys={k: _key(k, v, root) for k, v in doc["keys"].items()},
            aliases={n: _alias(n, v) for n, v in doc["aliases"].items()},
            principals={n: _principal(n, v, root) for n, v in doc["principals"].items()},
        )
    except (KeyError, TypeError, ValueError, AuthenticationFailed) as exc:
        raise KeystoreError(f"keystore file is damaged: {exc!r}") from exc


def _document(raw: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise KeystoreError(f"keystore file is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise KeystoreError(f"not a keystore file (format {FORMAT!r} expected)")
    return doc


def _scrypt_doc(params: ScryptParams | None) -> dict[str, Any] | None:
    if params is None:
        return None
    return {"salt": _b64(params.salt), "n": params.n, "r": params.r, "p": params.p}


def material_aad(key_id: str, number: int) -> bytes:
    return f"key/{key_id}/{number}".encode()


def _key_doc(record: KeyRecord, root: bytes) -> dict[str, Any]:
    versions = [
        {
            "number": v.number,
            "created": v.created,
            "rotation_type": v.rotation_type.value if v.rotation_type else None,
            "material": _b64(seal(root, v.material, material_aad(record.key_id, v.number))),
        }
        for v in record.versions
    ]
    return {
        "created": record.created,
        "description": record.description,
        "state": record.state.value,
        "tags": [list(t) for t in record.tags],
        "policy": record.policy,
        "deletion_date": record.deletion_date,
        "pending_window_days": record.pending_window_days,
        "rotation_enabled": record.rotation_enabled,
        "rotation_period_days": record.rotation_period_days,
        "next_rotation": record.next_rotation,
        "versions": versions,
    }


def _key(key_id: str, doc: dict[str, Any], root: bytes) -> KeyRecord:
    versions = tuple(
        KeyVersion(
            number=int(v["number"]),
            material=open_sealed(root, _unb64(v["material"]), material_aad(key_id, v["number"])),
            created=float(v["created"]),
            rotation_type=RotationType(v["rotation_type"]) if v["rotation_type"] else None,
        )
        for v in doc["versions"]
    )
    return KeyRecord(
        key_id=key_id,
        created=float(doc["created"]),
        versions=versions,
        description=str(doc["description"]),
        state=KeyState(doc["state"]),
        tags=tuple((str(k), str(v)) for k, v in doc["tags"]),
        policy=str(doc["policy"]),
        deletion_date=_opt_float(doc["deletion_date"]),
        pending_window_days=doc["pending_window_days"],
        rotation_enabled=bool(doc["rotation_enabled"]),
        rotation_period_days=doc["rotation_period_days"],
        next_rotation=_opt_float(doc["next_rotation"]),
    )


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _alias_doc(alias: AliasRecord) -> dict[str, Any]:
    return {"target": alias.target_key_id, "created": alias.created, "updated": alias.updated}


def _alias(name: str, doc: dict[str, Any]) -> AliasRecord:
    return AliasRecord(name, str(doc["target"]), float(doc["created"]), float(doc["updated"]))


def _principal_doc(p: Principal, root: bytes) -> dict[str, Any]:
    aad = principal_aad(p.name, p.access_key_id)
    return {
        "access_key_id": p.access_key_id,
        "secret": _b64(seal(root, p.secret_access_key.encode("utf-8"), aad)),
        "actions": list(p.actions),
        "created": p.created,
    }


def principal_aad(name: str, access_key_id: str) -> bytes:
    return f"principal/{name}/{access_key_id}".encode()


def _principal(name: str, doc: dict[str, Any], root: bytes) -> Principal:
    key_id = str(doc["access_key_id"])
    secret = open_sealed(root, _unb64(doc["secret"]), principal_aad(name, key_id))
    return Principal(
        name=name,
        access_key_id=key_id,
        secret_access_key=secret.decode("utf-8"),
        actions=tuple(str(a) for a in doc["actions"]),
        created=float(doc["created"]),
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)
