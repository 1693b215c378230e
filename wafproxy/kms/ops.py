"""The operation registry: AWS operation name -> handler. Handlers live in ``ops_*.py``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from wafproxy.registry import Registry

if TYPE_CHECKING:
    from wafproxy.kms.audit import Call
    from wafproxy.kms.params import Params
    from wafproxy.kms.service import Kms

Handler = Callable[["Kms", "Call", "Params"], dict[str, Any]]
OPERATIONS: Registry[Handler] = Registry("KMS operation")


def operation(name: str) -> Callable[[Handler], Handler]:
    return OPERATIONS.register(name)


def load() -> None:
    """Import the handler modules (they register themselves)."""
    from wafproxy.kms import ops_aliases, ops_crypto, ops_keys, ops_rotation  # noqa: F401
