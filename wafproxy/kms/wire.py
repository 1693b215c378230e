"""AWS's JSON 1.1 protocol for KMS: blob members travel as base64, timestamps as POSIX seconds,
errors as ``{"__type": code, "message": text}``."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from wafproxy.kms.errors import SERIALIZATION, KmsError

CONTENT_TYPE = "application/x-amz-json-1.1"
TARGET_PREFIX = "TrentService."
BLOB_MEMBERS = frozenset({"Plaintext", "CiphertextBlob", "CiphertextForRecipient"})


def decode_request(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        params = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise KmsError(SERIALIZATION, "Request body is not valid JSON") from None
    if not isinstance(params, dict):
        raise KmsError(SERIALIZATION, "Request body must be a JSON object")
    for name in BLOB_MEMBERS & params.keys():
        params[name] = _unbase64(name, params[name])
    return params


def _unbase64(name: str, value: Any) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise KmsError(SERIALIZATION, f"{name} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise KmsError(SERIALIZATION, f"{name} is not valid base64") from None


def encode_response(result: Mapping[str, Any]) -> bytes:
    out = {
        k: base64.b64encode(v).decode("ascii") if isinstance(v, bytes) else v
        for k, v in result.items()
    }
    return json.dumps(out, separators=(",", ":")).encode("utf-8")


def encode_error(error: KmsError) -> bytes:
    return json.dumps({"__type": error.code, "message": error.message}).encode("utf-8")


def operation_from_target(target: str | None) -> str | None:
    if target is None or not target.startswith(TARGET_PREFIX):
        return None
    return target[len(TARGET_PREFIX) :]
