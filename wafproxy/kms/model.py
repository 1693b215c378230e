"""The keystore's values: keys with their versions (key material), aliases and principals.

Records are frozen; a change builds a new record (``dataclasses.replace``) inside a keystore
transaction. Times are POSIX seconds (floats), as on the AWS JSON wire.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

DEFAULT_ACCOUNT = "111122223333"
DEFAULT_REGION = "us-east-1"
DAY = 86400.0
SYMMETRIC_DEFAULT = "SYMMETRIC_DEFAULT"
ENCRYPT_DECRYPT = "ENCRYPT_DECRYPT"


class KeyState(enum.Enum):
    ENABLED = "Enabled"
    DISABLED = "Disabled"
    PENDING_DELETION = "PendingDeletion"


class RotationType(enum.Enum):
    AUTOMATIC = "AUTOMATIC"
    ON_DEMAND = "ON_DEMAND"


@dataclass(frozen=True)
class KeyVersion:
    """One generation of a key's material. Version 1 is the material the key was created with;
    each rotation adds the next number. Every version is kept so old ciphertext decrypts."""

    number: int
    material: bytes = field(repr=False)
    created: float
    rotation_type: RotationType | None = None
    """None for the original material."""


@dataclass(frozen=True)
class KeyRecord:
    key_id: str
    created: float
    versions: tuple[KeyVersion, ...]
    description: str = ""
    state: KeyState = KeyState.ENABLED
    tags: tuple[tuple[str, str], ...] = ()
    policy: str = ""
    """The key policy document (JSON text); empty means the default policy."""
    deletion_date: float | None = None
    pending_window_days: int | None = None
    rotation_enabled: bool = False
    rotation_period_days: int | None = None
    next_rotation: float | None = None

    @property
    def current(self) -> KeyVersion:
        return self.versions[-1]

    def version(self, number: int) -> KeyVersion | None:
        if 1 <= number <= len(self.versions):
            found = self.versions[number - 1]
            return found if found.number == number else None
        return None

    @property
    def on_demand_rotations(self) -> int:
        return sum(1 for v in self.versions if v.rotation_type is RotationType.ON_DEMAND)


@dataclass(frozen=True)
class AliasRecord:
    name: str
    """Always with the ``alias/`` prefix."""
    target_key_id: str
    created: float
    updated: float


@dataclass(frozen=True)
class Principal:
    """A caller of the KMS server, authenticated by SigV4 with its access key pair.

    ``actions`` is its identity policy: the ``kms:`` actions it may call on any key whose key
    policy delegates to the account (the default key policy does), and on the account-level
    operations (CreateKey, ListKeys, ListAliases, GenerateRandom).
    """

    name: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    actions: tuple[str, ...] = ()
    created: float = 0.0
