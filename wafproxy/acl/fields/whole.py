"""Fields that are always inspected whole: uri_path, query_string, method, single_header."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Literal

from wafproxy.acl.fields.options import esc, name, options
from wafproxy.acl.fields.registry import FIELDS, RequestField
from wafproxy.acl.model import Oversize
from wafproxy.config.source import Node
from wafproxy.request import WafRequest


@dataclass(frozen=True)
class Whole:
    """A field that is always inspected whole and never forced."""

    def oversize(self, req: WafRequest) -> Oversize | None:
        return None

    def forced(self, req: WafRequest) -> bool | None:
        return None


@dataclass(frozen=True)
class Attribute(Whole):
    """uri_path, query_string, method: one request attribute."""

    attribute: Literal["uri_path", "query_string", "method"]

    @cached_property
    def key(self) -> str:
        return self.attribute

    def extract(self, req: WafRequest) -> tuple[str, ...]:
        value: str = getattr(req, self.attribute)
        return (value,)


@dataclass(frozen=True)
class SingleHeader(Whole):
    name: str
    """Lower-cased."""

    @property
    def single_header(self) -> str:
        """Read by ``WebAcl.hit_plan``: the engine takes this field's values from the header
        map directly (``extract`` without the call)."""
        return self.name

    @cached_property
    def key(self) -> str:
        return f"single_header:{esc(self.name)}"

    def extract(self, req: WafRequest) -> tuple[str, ...]:
        return req.header_map.get(self.name, ())


@FIELDS.register("uri_path")
def uri_path(node: Node) -> RequestField:
    """The URI path as sent (still percent-encoded), without the query string.

    ```yaml
    field: uri_path
    ```
    """
    options(node)
    return Attribute("uri_path")


@FIELDS.register("query_string")
def query_string(node: Node) -> RequestField:
    """The raw query string, without the leading '?'.

    ```yaml
    field: query_string
    ```
    """
    options(node)
    return Attribute("query_string")


@FIELDS.register("method")
def method(node: Node) -> RequestField:
    """The HTTP method as sent.

    ```yaml
    field: method
    ```
    """
    options(node)
    return Attribute("method")


@FIELDS.register("single_header")
def single_header(node: Node) -> RequestField:
    """The values of one header (name case-insensitive), every occurrence; none if missing.

    ```yaml
    field: {single_header: {name: user-agent}}
    ```
    """
    return SingleHeader(name(options(node, ["name"])["name"]))
