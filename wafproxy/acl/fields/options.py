"""A field's options: read from its YAML node, and written back into its key."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence

from wafproxy.acl.model import Oversize
from wafproxy.config.source import Node


class Scope(enum.Enum):
    ALL = "all"
    KEY = "key"
    VALUE = "value"


# -- keys --------------------------------------------------------------------------------------
def esc(text: str) -> str:
    """Key-safe text: the separators of keys escaped."""
    for char, code in (("%", "%25"), (",", "%2C"), (":", "%3A"), ("=", "%3D")):
        text = text.replace(char, code)
    return text


def join(names: Iterable[str]) -> str:
    return ",".join(sorted(esc(n) for n in names))


def excluded_key(names: frozenset[str]) -> str:
    return f":excluded={join(names)}" if names else ""


# -- options -----------------------------------------------------------------------------------
def options(
    node: Node, required: Sequence[str] = (), optional: Sequence[str] = ()
) -> dict[str, Node]:
    if node.value is None:
        if required:
            raise node.error(f"missing required key {required[0]!r}")
        return {}
    if not required and not optional:
        empty(node, "no options")
        return {}
    return node.fields(required, optional)


def oversize(opts: dict[str, Node]) -> Oversize:
    node = opts.get("oversize_handling")
    return Oversize.CONTINUE if node is None else Oversize(node.one_of(_ONE_OF_OVERSIZE))


_ONE_OF_OVERSIZE = [o.value for o in Oversize]


def name(node: Node) -> str:
    name = node.str()
    if not name.strip():
        raise node.expected("a non-empty name")
    return name.lower()


def excluded_arguments(opts: dict[str, Node]) -> frozenset[str]:
    node = opts.get("excluded_arguments")
    if node is None:
        return frozenset()
    items = node.seq()
    if not items:
        raise node.expected("at least one argument name")
    return frozenset(name(item) for item in items)


def scope(node: Node) -> Scope:
    return Scope(node.one_of([s.value for s in Scope]))


def empty(node: Node, what: str = "an empty mapping {}") -> None:
    if node.value is not None and node.value != {}:
        raise node.expected(what)
