"""Request parameters, checked the way AWS checks them: a missing or out-of-range member is a
ValidationException in AWS's wording; a value of the wrong JSON type is a
SerializationException. Blob members arrive as bytes (the server decodes base64 first)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wafproxy.kms.errors import SERIALIZATION, TAG, VALIDATION, KmsError

MAX_CONTEXT_CHARS = 8192


def _member(name: str) -> str:
    return name[:1].lower() + name[1:]


def validation(name: str, value: object, constraint: str) -> KmsError:
    shown = "null" if value is None else f"'{value}'" if isinstance(value, (str, int)) else "..."
    return KmsError(
        VALIDATION,
        f"1 validation error detected: Value {shown} at '{_member(name)}' failed to satisfy "
        f"constraint: {constraint}",
    )


class Params:
    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw

    def _get(self, name: str, kind: type | tuple[type, ...], required: bool) -> Any:
        value = self.raw.get(name)
        if value is None:
            if required:
                raise validation(name, None, "Member must not be null")
            return None
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise KmsError(SERIALIZATION, f"Unexpected type for member {name}")
        return value

    def string(self, name: str, *, required: bool = False, max_len: int = 2048) -> str | None:
        value: str | None = self._get(name, str, required)
        if value is None:
            return None
        if len(value) < 1 and required:
            raise validation(name, value, "Member must have length greater than or equal to 1")
        if len(value) > max_len:
            raise validation(
                name, "...", f"Member must have length less than or equal to {max_len}"
            )
        return value

    def required(self, name: str, max_len: int = 2048) -> str:
        value = self.string(name, required=True, max_len=max_len)
        assert value is not None
        return value

    def blob(self, name: str, *, high: int, required: bool = True) -> bytes | None:
        value: bytes | None = self._get(name, (bytes, bytearray), required)
        if value is None:
            return None
        if len(value) < 1:
            raise validation(name, None, "Member must have length greater than or equal to 1")
        if len(value) > high:
            raise validation(name, None, f"Member must have length less than or equal to {high}")
        return bytes(value)

    def integer(self, name: str, low: int, high: int) -> int | None:
        value: int | None = self._get(name, int, False)
        if value is None:
            return None
        if value < low:
            raise validation(name, value, f"Member must have value greater than or equal to {low}")
        if value > high:
            raise validation(name, value, f"Member must have value less than or equal to {high}")
        return value

    def flag(self, name: str) -> bool:
        return bool(self._get(name, bool, False))

    def choice(self, name: str, choices: tuple[str, ...], default: str | None = None) -> str | None:
        value = self.string(name)
        if value is None:
            return default
        if value not in choices:
            raise validation(
                name, value, f"Member must satisfy enum value set: [{', '.join(choices)}]"
            )
        return value

    def context(self, name: str = "EncryptionContext") -> dict[str, str]:
        value = self._get(name, dict, False) or {}
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise KmsError(SERIALIZATION, f"{name} must map strings to strings")
        if sum(len(k) + len(v) for k, v in value.items()) > MAX_CONTEXT_CHARS:
            raise validation(name, None, f"Encryption context larger than {MAX_CONTEXT_CHARS}")
        return dict(value)

    def tags(self, name: str = "Tags", *, required: bool = False) -> list[tuple[str, str]]:
        value = self._get(name, list, required) or []
        out = []
        for item in value:
            if not isinstance(item, dict):
                raise KmsError(SERIALIZATION, "Tags must be a list of objects")
            key, text = item.get("TagKey"), item.get("TagValue")
            if not isinstance(key, str) or not isinstance(text, str):
                raise validation("TagKey", None, "Member must not be null")
            check_tag(key, text)
            out.append((key, text))
        return out

    def strings(self, name: str, *, required: bool = False) -> list[str]:
        value = self._get(name, list, required) or []
        if not all(isinstance(v, str) for v in value):
            raise KmsError(SERIALIZATION, f"{name} must be a list of strings")
        return list(value)


def check_tag(key: str, value: str) -> None:
    if not 1 <= len(key) <= 128 or len(value) > 256:
        raise KmsError(TAG, "Tag keys are 1 to 128 characters and values at most 256.")
    if key.lower().startswith("aws:"):
        raise KmsError(TAG, "Tag keys beginning with aws: are reserved.")
