"""Envelope-encrypted files: a data key from KMS encrypts the payload; the KMS-encrypted copy of
the data key travels in the file. Opening one costs one KMS Decrypt (audited) and never writes
the plaintext anywhere.

The file is JSON::

    {"format": "wafproxy-envelope/1", "kms_key_id": "<key ARN>", "algorithm": "AES_256_GCM",
     "encryption_context": {"purpose": "tls", "listener": "..."},
     "encrypted_data_key": "<base64 KMS ciphertext>", "ciphertext": "<base64 nonce+data+tag>"}

The encryption context is bound twice: KMS binds it to the encrypted data key, and the payload's
AAD covers it with the other header fields, so no header field can be changed undetected.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wafproxy.errors import WafProxyError
from wafproxy.kms.backends import KeyService
from wafproxy.kms.crypto import AuthenticationFailed, encode_context, open_sealed, seal

FORMAT = "wafproxy-envelope/1"
ALGORITHM = "AES_256_GCM"


class EnvelopeError(WafProxyError):
    pass


@dataclass(frozen=True)
class Envelope:
    kms_key_id: str
    context: Mapping[str, str]
    encrypted_data_key: bytes
    ciphertext: bytes

    def aad(self) -> bytes:
        header = {"format": FORMAT, "algorithm": ALGORITHM, "kms_key_id": self.kms_key_id}
        return encode_context(header) + encode_context(self.context)

    def dumps(self) -> bytes:
        doc = {
            "format": FORMAT,
            "algorithm": ALGORITHM,
            "kms_key_id": self.kms_key_id,
            "encryption_context": dict(self.context),
            "encrypted_data_key": base64.b64encode(self.encrypted_data_key).decode("ascii"),
            "ciphertext": base64.b64encode(self.ciphertext).decode("ascii"),
        }
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")

    @classmethod
    def loads(cls, raw: bytes, where: str) -> Envelope:
        try:
            doc = json.loads(raw)
            if doc.get("format") != FORMAT or doc.get("algorithm") != ALGORITHM:
                raise ValueError(f"format {FORMAT!r} expected")
            context = doc["encryption_context"]
            if not isinstance(context, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in context.items()
            ):
                raise ValueError("encryption_context must map strings to strings")
            return cls(
                kms_key_id=str(doc["kms_key_id"]),
                context=context,
                encrypted_data_key=_unb64(doc["encrypted_data_key"]),
                ciphertext=_unb64(doc["ciphertext"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
            raise EnvelopeError(f"{where}: not an envelope-encrypted file ({exc})") from None


def _unb64(value: Any) -> bytes:
    if not isinstance(value, str):
        raise ValueError("base64 string expected")
    return base64.b64decode(value, validate=True)


async def seal_envelope(
    service: KeyService, key_id: str, plaintext: bytes, context: Mapping[str, str]
) -> Envelope:
    data_key = await service.generate_data_key(key_id, context)
    draft = Envelope(data_key.key_id, dict(context), data_key.ciphertext, b"")
    ciphertext = seal(data_key.plaintext, plaintext, draft.aad())
    return Envelope(data_key.key_id, dict(context), data_key.ciphertext, ciphertext)


async def open_envelope(
    service: KeyService, envelope: Envelope, where: str, key_id: str | None = None
) -> bytes:
    """The payload. ``key_id`` (id, ARN or alias): KMS refuses a data key made under another
    key (IncorrectKeyException). KmsError propagates (a disabled key, a denied principal)."""
    data_key = await service.decrypt(
        envelope.encrypted_data_key, envelope.context, key_id or envelope.kms_key_id
    )
    try:
        return open_sealed(data_key.plaintext, envelope.ciphertext, envelope.aad())
    except AuthenticationFailed:
        raise EnvelopeError(f"{where}: the encrypted file was modified") from None
