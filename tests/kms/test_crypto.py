"""The ciphertext blob format: self-describing, versioned, tamper-evident, context-bound."""

from __future__ import annotations

import uuid

import pytest

from wafproxy.kms.crypto import (
    HEADER_BYTES,
    AuthenticationFailed,
    BlobError,
    BlobHeader,
    decrypt_blob,
    encode_context,
    encrypt_blob,
    new_key_material,
    parse_blob,
)

KEY_ID = str(uuid.uuid4())


def test_a_blob_names_its_key_and_version_and_round_trips() -> None:
    key = new_key_material()
    blob = encrypt_blob(BlobHeader(KEY_ID, 7), key, b"hello", {"a": "1"})
    assert blob[:4] == b"WKMS" and blob[4] == 1
    assert parse_blob(blob) == BlobHeader(KEY_ID, 7)
    assert decrypt_blob(blob, key, {"a": "1"}) == b"hello"
    assert len(blob) == HEADER_BYTES + 12 + len(b"hello") + 16


def test_every_single_byte_change_is_detected() -> None:
    key = new_key_material()
    blob = encrypt_blob(BlobHeader(KEY_ID, 1), key, b"attack at dawn", {"p": "x"})
    for index in range(len(blob)):
        tampered = bytearray(blob)
        tampered[index] ^= 0x01
        with pytest.raises((AuthenticationFailed, BlobError)):
            parse_blob(bytes(tampered))
            decrypt_blob(bytes(tampered), key, {"p": "x"})


@pytest.mark.parametrize(
    "other",
    [{}, {"p": "y"}, {"p": "x", "q": "1"}, {"P": "x"}],
    ids=["none", "value", "extra", "case"],
)
def test_a_different_encryption_context_fails(other: dict[str, str]) -> None:
    key = new_key_material()
    blob = encrypt_blob(BlobHeader(KEY_ID, 1), key, b"secret", {"p": "x"})
    with pytest.raises(AuthenticationFailed):
        decrypt_blob(blob, key, other)


def test_context_encoding_is_canonical_and_unambiguous() -> None:
    assert encode_context({"a": "1", "b": "2"}) == encode_context({"b": "2", "a": "1"})
    assert encode_context({"ab": "c"}) != encode_context({"a": "bc"})
    assert encode_context({"a": ""}) != encode_context({})


@pytest.mark.parametrize(
    "blob",
    [b"", b"WKMS", b"XKMS" + bytes(60), b"WKMS\x02" + bytes(60)],
    ids=["empty", "short", "magic", "format"],
)
def test_foreign_blobs_are_refused(blob: bytes) -> None:
    with pytest.raises(BlobError):
        parse_blob(blob)
