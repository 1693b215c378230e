"""Limit/Marker pagination as the List* operations do it: the marker is opaque to clients (the
last item's sort key, base64-encoded), so pages stay stable while items are added or removed."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from wafproxy.kms.errors import INVALID_MARKER, KmsError
from wafproxy.kms.params import Params

T = TypeVar("T")


def page(
    items: Sequence[T], params: Params, sort_key: Callable[[T], str], list_name: str
) -> dict[str, Any]:
    """``items`` sorted by ``sort_key``; returns {list_name: [...], Truncated, NextMarker?}."""
    limit = params.integer("Limit", 1, 1000) or 100
    marker = params.string("Marker", max_len=1024)
    ordered = sorted(items, key=sort_key)
    if marker is not None:
        after = _decode(marker)
        ordered = [item for item in ordered if sort_key(item) > after]
    chosen = list(ordered[:limit])
    result: dict[str, Any] = {list_name: chosen, "Truncated": len(ordered) > limit}
    if result["Truncated"]:
        result["NextMarker"] = base64.urlsafe_b64encode(sort_key(chosen[-1]).encode()).decode()
    return result


def _decode(marker: str) -> str:
    try:
        raw = base64.b64decode(marker.encode("ascii"), altchars=b"-_", validate=True)
        return raw.decode("utf-8")
    except (binascii.Error, ValueError, UnicodeError):
        raise KmsError(INVALID_MARKER, "Invalid marker") from None
