"""The TRANSFORMS registry, ``chain`` to look a list of names up in it, and ``apply_chain``."""

from __future__ import annotations

from collections.abc import Sequence

from wafproxy.acl.model import Transform
from wafproxy.registry import Registry

TRANSFORMS: Registry[Transform] = Registry("text transformation")


def chain(names: Sequence[str]) -> tuple[Transform, ...]:
    """The transformations called ``names``, in order; KeyError (with a hint) for an unknown one."""
    fns: list[Transform] = []
    for name in names:
        if name not in TRANSFORMS:
            raise KeyError(TRANSFORMS.unknown(name))
        fns.append(TRANSFORMS[name])
    return tuple(fns)


def apply_chain(value: str, fns: Sequence[Transform]) -> str:
    """``value`` through each transformation of a chain, in order."""
    for fn in fns:
        value = fn(value)
    return value
