"""Cryptographic operations: Encrypt, Decrypt, ReEncrypt, GenerateDataKey,
GenerateDataKeyWithoutPlaintext, GenerateRandom. The encryption context is bound to the blob as
AAD (crypto.py); decrypting with any other context is an InvalidCiphertextException."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from wafproxy.kms.audit import Call
from wafproxy.kms.crypto import (
    AuthenticationFailed,
    BlobError,
    BlobHeader,
    decrypt_blob,
    encrypt_blob,
    parse_blob,
)
from wafproxy.kms.errors import (
    DRY_RUN,
    INCORRECT_KEY,
    INVALID_CIPHERTEXT,
    INVALID_KEY_USAGE,
    KmsError,
)
from wafproxy.kms.model import SYMMETRIC_DEFAULT, KeyRecord
from wafproxy.kms.ops import operation
from wafproxy.kms.params import Params, validation
from wafproxy.kms.service import Kms

Result = dict[str, Any]
MAX_PLAINTEXT = 4096
MAX_CIPHERTEXT = 6144
ALGORITHMS = ("SYMMETRIC_DEFAULT", "RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "SM2PKE")
DATA_KEY_SPECS = {"AES_256": 32, "AES_128": 16}


def _algorithm(p: Params, name: str = "EncryptionAlgorithm") -> None:
    value = p.choice(name, ALGORITHMS, SYMMETRIC_DEFAULT)
    if value != SYMMETRIC_DEFAULT:
        raise KmsError(INVALID_KEY_USAGE, f"{value} is not supported by a symmetric key.")


def _dry_run(p: Params) -> None:
    if p.flag("DryRun"):
        raise KmsError(DRY_RUN, "The request would have succeeded, but the DryRun option is set.")


def _seal(record: KeyRecord, plaintext: bytes, context: Mapping[str, str]) -> bytes:
    version = record.current
    header = BlobHeader(record.key_id, version.number)
    return encrypt_blob(header, version.material, plaintext, context)


def _open(
    kms: Kms, call: Call, blob: bytes, context: Mapping[str, str], action: str, key_text: str | None
) -> tuple[KeyRecord, bytes]:
    try:
        header = parse_blob(blob)
    except BlobError:
        raise KmsError(INVALID_CIPHERTEXT, "") from None
    call.key_id = key_text
    if key_text is not None:
        named = kms.resolve(kms.store.data(), key_text, allow_alias=True)
        if named.key_id != header.key_id:
            raise KmsError(
                INCORRECT_KEY,
                "The key ID in the request does not identify a KMS key that can perform this "
                "operation.",
            )
    record = kms.use_key(
        call, header.key_id, action, allow_alias=False, context=context, record_key_id=False
    )
    version = record.version(header.version)
    if version is None:
        raise KmsError(INVALID_CIPHERTEXT, "")
    try:
        return record, decrypt_blob(blob, version.material, context)
    except AuthenticationFailed:
        raise KmsError(INVALID_CIPHERTEXT, "") from None


@operation("Encrypt")
def encrypt(kms: Kms, call: Call, p: Params) -> Result:
    plaintext = p.blob("Plaintext", high=MAX_PLAINTEXT)
    context = call.context = p.context()
    _algorithm(p)
    record = kms.use_key(
        call, p.required("KeyId"), "kms:Encrypt", allow_alias=True, context=context
    )
    _dry_run(p)
    assert plaintext is not None
    return {
        "CiphertextBlob": _seal(record, plaintext, context),
        "KeyId": kms.key_arn(record.key_id),
        "EncryptionAlgorithm": SYMMETRIC_DEFAULT,
    }


@operation("Decrypt")
def decrypt(kms: Kms, call: Call, p: Params) -> Result:
    blob = p.blob("CiphertextBlob", high=MAX_CIPHERTEXT)
    context = call.context = p.context()
    _algorithm(p)
    if p.raw.get("Recipient") is not None:
        raise KmsError(INVALID_KEY_USAGE, "Recipient (Nitro Enclaves) is not supported.")
    assert blob is not None
    record, plaintext = _open(kms, call, blob, context, "kms:Decrypt", p.string("KeyId"))
    _dry_run(p)
    return {
        "KeyId": kms.key_arn(record.key_id),
        "Plaintext": plaintext,
        "EncryptionAlgorithm": SYMMETRIC_DEFAULT,
    }


@operation("ReEncrypt")
def re_encrypt(kms: Kms, call: Call, p: Params) -> Result:
    blob = p.blob("CiphertextBlob", high=MAX_CIPHERTEXT)
    source_context = p.context("SourceEncryptionContext")
    target_context = p.context("DestinationEncryptionContext")
    _algorithm(p, "SourceEncryptionAlgorithm")
    _algorithm(p, "DestinationEncryptionAlgorithm")
    call.context = source_context
    call.parameters["destinationEncryptionContext"] = target_context
    assert blob is not None
    source, plaintext = _open(
        kms, call, blob, source_context, "kms:ReEncryptFrom", p.string("SourceKeyId")
    )
    target_text = p.required("DestinationKeyId")
    call.parameters["destinationKeyId"] = target_text
    target = kms.use_key(
        call,
        target_text,
        "kms:ReEncryptTo",
        allow_alias=True,
        context=target_context,
        record_key_id=False,
    )
    _dry_run(p)
    return {
        "CiphertextBlob": _seal(target, plaintext, target_context),
        "SourceKeyId": kms.key_arn(source.key_id),
        "KeyId": kms.key_arn(target.key_id),
        "SourceEncryptionAlgorithm": SYMMETRIC_DEFAULT,
        "DestinationEncryptionAlgorithm": SYMMETRIC_DEFAULT,
    }


def _data_key_size(call: Call, p: Params) -> int:
    spec = p.choice("KeySpec", tuple(DATA_KEY_SPECS))
    count = p.integer("NumberOfBytes", 1, 1024)
    if (spec is None) == (count is None):
        raise validation("KeySpec", None, "Specify either KeySpec or NumberOfBytes, not both.")
    call.parameters["keySpec" if spec else "numberOfBytes"] = spec or count
    return DATA_KEY_SPECS[spec] if spec else int(count or 0)


def _data_key(kms: Kms, call: Call, p: Params, action: str) -> tuple[KeyRecord, bytes, bytes]:
    size = _data_key_size(call, p)
    context = call.context = p.context()
    record = kms.use_key(call, p.required("KeyId"), action, allow_alias=True, context=context)
    _dry_run(p)
    plaintext = os.urandom(size)
    return record, plaintext, _seal(record, plaintext, context)


@operation("GenerateDataKey")
def generate_data_key(kms: Kms, call: Call, p: Params) -> Result:
    if p.raw.get("Recipient") is not None:
        raise KmsError(INVALID_KEY_USAGE, "Recipient (Nitro Enclaves) is not supported.")
    record, plaintext, blob = _data_key(kms, call, p, "kms:GenerateDataKey")
    return {"CiphertextBlob": blob, "Plaintext": plaintext, "KeyId": kms.key_arn(record.key_id)}


@operation("GenerateDataKeyWithoutPlaintext")
def generate_data_key_without_plaintext(kms: Kms, call: Call, p: Params) -> Result:
    record, _, blob = _data_key(kms, call, p, "kms:GenerateDataKeyWithoutPlaintext")
    return {"CiphertextBlob": blob, "KeyId": kms.key_arn(record.key_id)}


@operation("GenerateRandom")
def generate_random(kms: Kms, call: Call, p: Params) -> Result:
    count = p.integer("NumberOfBytes", 1, 1024)
    if count is None:
        raise validation("NumberOfBytes", None, "Member must not be null")
    if p.string("CustomKeyStoreId") is not None:
        raise KmsError("CustomKeyStoreNotFoundException", "Custom key stores are not supported.")
    kms.authorize_account(call, "kms:GenerateRandom")
    call.parameters["numberOfBytes"] = count
    return {"Plaintext": os.urandom(count)}
