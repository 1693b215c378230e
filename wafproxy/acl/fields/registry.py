"""The FIELDS registry, and ``compile_field`` to build the field a ``field:`` key names."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from wafproxy.acl.model import Field
from wafproxy.config.source import Node
from wafproxy.registry import Registry
from wafproxy.request import WafRequest


class RequestField(Field, Protocol):
    """A field may also have ``arg_parts(req) -> Sequence[str] | None``: when its values are
    the values of ``name=value`` parts of one string (a query string's or a form's arguments),
    those raw parts, one per value and in the same order (None when they are not, for example
    a JSON body's arguments). The engine remembers answers per part: a part is cheaper to get
    than its value, and the value is a function of it."""

    def forced(self, req: WafRequest) -> bool | None: ...


FieldFactory = Callable[[Node], RequestField]
FIELDS: Registry[FieldFactory] = Registry("field")


def compile_field(node: Node) -> RequestField:
    """The field named by the value of a ``field:`` key: a bare name or a one-key mapping."""
    name, options = node.single_key("field")
    if name not in FIELDS:
        raise node.error(FIELDS.unknown(name))
    return FIELDS[name](options)
