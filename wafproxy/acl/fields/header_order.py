"""The header_order field: the visible header names as sent, in order, as one value."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from wafproxy.acl.fields.limits import visible_headers
from wafproxy.acl.fields.options import options, oversize
from wafproxy.acl.fields.registry import FIELDS, RequestField
from wafproxy.acl.model import Oversize
from wafproxy.config.source import Node
from wafproxy.request import WafRequest


@dataclass(frozen=True)
class HeaderOrder:
    handling: Oversize

    @cached_property
    def key(self) -> str:
        return f"header_order:oversize={self.handling.value}"

    def oversize(self, req: WafRequest) -> Oversize | None:
        return self.handling if visible_headers(req).oversize else None

    def forced(self, req: WafRequest) -> bool | None:
        return None

    def extract(self, req: WafRequest) -> tuple[str, ...]:
        return (":".join([n for n, _ in visible_headers(req).pairs]),)


@FIELDS.register("header_order")
def header_order(node: Node) -> RequestField:
    """One value: the header names as sent, in order, joined by ':' (``Host:User-Agent:Accept``).

    ```yaml
    field: {header_order: {oversize_handling: match}}
    ```
    """
    return HeaderOrder(oversize(options(node, ["oversize_handling"])))
