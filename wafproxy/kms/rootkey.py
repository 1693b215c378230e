"""The root of trust: the 256-bit root key that wraps every key's material in the keystore.

It comes from an environment variable, a file (private permissions required), or a passphrase
(from an environment variable, a file, or typed in) stretched with scrypt; a passphrase store
keeps the scrypt salt and cost in its header. Raw keys are base64 or hex text (a file may also
hold the 32 raw bytes). ``wafproxy kms generate-root-key`` makes one.
"""

from __future__ import annotations

import base64
import binascii
import enum
import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from wafproxy.kms.crypto import KEY_BYTES
from wafproxy.kms.errors import KeystoreError
from wafproxy.kms.fsutil import check_private

DEFAULT_ENV = "WAFPROXY_KMS_ROOT_KEY"
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1


class RootKind(enum.Enum):
    ENV = "env"
    FILE = "file"
    PASSPHRASE_ENV = "passphrase_env"
    PASSPHRASE_FILE = "passphrase_file"
    PASSPHRASE = "passphrase"
    """A passphrase given directly (typed at a prompt); never from a config file."""

    @property
    def is_passphrase(self) -> bool:
        return self in (RootKind.PASSPHRASE_ENV, RootKind.PASSPHRASE_FILE, RootKind.PASSPHRASE)


@dataclass(frozen=True)
class ScryptParams:
    salt: bytes
    n: int = SCRYPT_N
    r: int = SCRYPT_R
    p: int = SCRYPT_P

    @classmethod
    def fresh(cls) -> ScryptParams:
        return cls(os.urandom(16))

    def derive(self, passphrase: bytes) -> bytes:
        kdf = Scrypt(salt=self.salt, length=KEY_BYTES, n=self.n, r=self.r, p=self.p)
        return kdf.derive(passphrase)


@dataclass(frozen=True)
class RootKeySource:
    kind: RootKind
    ref: str = field(repr=False)
    """The variable name, the file path, or (PASSPHRASE) the passphrase itself."""

    @classmethod
    def default(cls) -> RootKeySource:
        return cls(RootKind.ENV, DEFAULT_ENV)

    def describe(self) -> str:
        if self.kind is RootKind.PASSPHRASE:
            return "the passphrase given"
        return f"{self.kind.value} {self.ref}"

    def key(self, scrypt: ScryptParams | None) -> bytes:
        """The 32-byte root key. ``scrypt`` is the store's KDF header (passphrase stores)."""
        if self.kind.is_passphrase:
            if scrypt is None:
                raise KeystoreError("this keystore uses a raw root key, not a passphrase")
            return scrypt.derive(self._passphrase())
        if scrypt is not None:
            raise KeystoreError("this keystore is protected by a passphrase, not a raw root key")
        return self._raw_key()

    def _passphrase(self) -> bytes:
        if self.kind is RootKind.PASSPHRASE:
            value = self.ref.encode("utf-8")
        elif self.kind is RootKind.PASSPHRASE_ENV:
            value = _env(self.ref).encode("utf-8")
        else:
            value = _read_private(Path(self.ref)).rstrip(b"\r\n")
        if len(value) < 8:
            raise KeystoreError(f"passphrase from {self.describe()} is shorter than 8 characters")
        return value

    def _raw_key(self) -> bytes:
        if self.kind is RootKind.ENV:
            return parse_root_key(_env(self.ref).encode("ascii", "replace"), self.describe())
        data = _read_private(Path(self.ref))
        if len(data) == KEY_BYTES:
            return data
        return parse_root_key(data, self.describe())


def parse_root_key(text: bytes, where: str) -> bytes:
    text = text.strip()
    for decode in (_hex, _b64):
        value = decode(text)
        if value is not None and len(value) == KEY_BYTES:
            return value
    raise KeystoreError(
        f"root key from {where} is not 32 bytes in base64 or hex "
        "(make one with `wafproxy kms generate-root-key`)"
    )


def generate_root_key() -> str:
    return base64.b64encode(os.urandom(KEY_BYTES)).decode("ascii")


def _hex(text: bytes) -> bytes | None:
    try:
        return bytes.fromhex(text.decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        return None


def _b64(text: bytes) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise KeystoreError(f"environment variable {name} (the KMS root key) is not set")
    return value


def _read_private(path: Path) -> bytes:
    check_private(path)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise KeystoreError(f"cannot read {path}: {exc.strerror or exc}") from exc
