"""Body argument fields (extensions): all_body_arguments, single_body_argument."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from wafproxy.acl import bodies
from wafproxy.acl.fields.body import BodyBased
from wafproxy.acl.fields.options import (
    esc,
    excluded_arguments,
    excluded_key,
    name,
    options,
    oversize,
)
from wafproxy.acl.fields.registry import FIELDS, RequestField
from wafproxy.config.source import Node
from wafproxy.request import WafRequest


@dataclass(frozen=True)
class AllBodyArguments(BodyBased):
    excluded: frozenset[str] = frozenset()
    """Lower-cased names (urlencoded ones compared URL-decoded) whose values are left out."""

    @cached_property
    def key(self) -> str:
        return f"all_body_arguments{excluded_key(self.excluded)}{self.suffix}"

    def extract(self, req: WafRequest) -> tuple[str, ...]:
        if not req.body:
            return ()
        if self.excluded:
            named = bodies.named_body_arguments(req)
            return tuple([v for n, v in named if n not in self.excluded])
        return bodies.body_argument_values(req)

    def arg_parts(self, req: WafRequest) -> list[str] | None:
        """The raw ``name=value`` part of each value of a form (see RequestField)."""
        return None if self.excluded else bodies.form_parts(req)


@dataclass(frozen=True)
class SingleBodyArgument(BodyBased):
    name: str
    """Lower-cased."""

    @cached_property
    def key(self) -> str:
        return f"single_body_argument:{esc(self.name)}{self.suffix}"

    def extract(self, req: WafRequest) -> tuple[str, ...]:
        return tuple([v for n, v in bodies.named_body_arguments(req) if n == self.name])


@FIELDS.register("all_body_arguments")
def all_body_arguments(node: Node) -> RequestField:
    """Extension: the body's argument values, by Content-Type: urlencoded fields (raw),
    multipart fields (file parts give their file name), JSON scalars.

    ```yaml
    field: all_body_arguments
    ```

    ```yaml
    field: {all_body_arguments: {excluded_arguments: [body]}}
    ```

    ``excluded_arguments`` leaves out the arguments with these names (ignoring case; urlencoded
    names compared URL-decoded; JSON: members with that name at any depth).
    """
    opts = options(node, optional=["oversize_handling", "excluded_arguments"])
    return AllBodyArguments(oversize(opts), excluded_arguments(opts))


@FIELDS.register("single_body_argument")
def single_body_argument(node: Node) -> RequestField:
    """Extension: the values of the body arguments with this name (ignoring case; urlencoded
    names compared URL-decoded). JSON: scalars of members with that name at any depth.

    ```yaml
    field: {single_body_argument: {name: password}}
    ```
    """
    opts = options(node, ["name"], ["oversize_handling"])
    return SingleBodyArgument(oversize(opts), name(opts["name"]))
