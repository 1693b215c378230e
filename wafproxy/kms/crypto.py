"""AES-256-GCM and the ciphertext blob format.

A ciphertext blob (what Encrypt and GenerateDataKey return) is self-describing and versioned::

    offset  size  field
    0       4     magic  b"WKMS"
    4       1     format version (1)
    5       16    key id (the key's UUID, as bytes)
    21      4     key version number (big-endian), i.e. which rotation of the key's material
    25      12    GCM nonce (random)
    37      n+16  AES-256-GCM ciphertext and tag

The AAD is the 25-byte header followed by the encoded encryption context, so changing any byte
of the blob, or decrypting with a different context, fails authentication: the blob is
tamper-evident and the context is bound to it.
"""

from __future__ import annotations

import os
import struct
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"WKMS"
FORMAT_VERSION = 1
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
_HEADER = struct.Struct(">4sB16sI")
HEADER_BYTES = _HEADER.size
MIN_BLOB = HEADER_BYTES + NONCE_BYTES + TAG_BYTES


class BlobError(ValueError):
    """Not a ciphertext blob this service made (wrong magic, version or length)."""


class AuthenticationFailed(ValueError):
    """The GCM tag did not verify: wrong key, wrong context, or tampered data."""


@dataclass(frozen=True)
class BlobHeader:
    key_id: str
    version: int

    def encode(self) -> bytes:
        return _HEADER.pack(MAGIC, FORMAT_VERSION, uuid.UUID(self.key_id).bytes, self.version)


def new_key_material() -> bytes:
    return os.urandom(KEY_BYTES)


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """nonce || ciphertext || tag."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    if len(sealed) < NONCE_BYTES + TAG_BYTES:
        raise AuthenticationFailed("too short")
    try:
        return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
    except InvalidTag as exc:
        raise AuthenticationFailed("authentication failed") from exc


def encode_context(context: Mapping[str, str]) -> bytes:
    """Canonical bytes of an encryption context: pairs sorted by key, each length-prefixed, so
    no two different contexts encode the same."""
    out = [struct.pack(">H", len(context))]
    for name in sorted(context):
        for text in (name, context[name]):
            raw = text.encode("utf-8")
            out.append(struct.pack(">I", len(raw)) + raw)
    return b"".join(out)


def encrypt_blob(
    header: BlobHeader, key: bytes, plaintext: bytes, context: Mapping[str, str]
) -> bytes:
    head = header.encode()
    return head + seal(key, plaintext, head + encode_context(context))


def parse_blob(blob: bytes) -> BlobHeader:
    if len(blob) < MIN_BLOB:
        raise BlobError("ciphertext too short")
    magic, fmt, raw_id, version = _HEADER.unpack_from(blob)
    if magic != MAGIC or fmt != FORMAT_VERSION or version < 1:
        raise BlobError("not a ciphertext blob of a known format")
    return BlobHeader(str(uuid.UUID(bytes=raw_id)), version)


def decrypt_blob(blob: bytes, key: bytes, context: Mapping[str, str]) -> bytes:
    head = blob[:HEADER_BYTES]
    return open_sealed(key, blob[HEADER_BYTES:], head + encode_context(context))
