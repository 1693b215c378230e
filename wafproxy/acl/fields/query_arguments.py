"""Query argument fields: single_query_argument, all_query_arguments."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from wafproxy.acl import bodies
from wafproxy.acl.bodies import memo
from wafproxy.acl.fields.options import esc, excluded_arguments, excluded_key, name, options
from wafproxy.acl.fields.registry import FIELDS, RequestField
from wafproxy.acl.fields.whole import Whole
from wafproxy.config.source import Node
from wafproxy.request import Header, WafRequest, split_arg_parts


def query_names(req: WafRequest) -> tuple[Header, ...]:
    """Query arguments as (URL-decoded lower-cased name, raw value)."""
    return memo(req, "_wafproxy_query_names", _query_names)


def _query_names(req: WafRequest) -> tuple[Header, ...]:
    return bodies.fold_names(req.query_args)


@dataclass(frozen=True)
class SingleQueryArgument(Whole):
    name: str
    """Lower-cased."""

    @cached_property
    def key(self) -> str:
        return f"single_query_argument:{esc(self.name)}"

    def extract(self, req: WafRequest) -> tuple[str, ...]:
        return tuple([v for n, v in query_names(req) if n == self.name])


@dataclass(frozen=True)
class AllQueryArguments(Whole):
    excluded: frozenset[str] = frozenset()
    """Lower-cased names (compared URL-decoded) whose values are left out."""

    @cached_property
    def key(self) -> str:
        return "all_query_arguments" + excluded_key(self.excluded)

    def extract(self, req: WafRequest) -> tuple[str, ...]:
        if self.excluded:
            return tuple([v for n, v in query_names(req) if n not in self.excluded])
        return tuple([v for _, v in req.query_args])

    def arg_parts(self, req: WafRequest) -> list[str] | None:
        """The raw ``name=value`` part of each value (see RequestField)."""
        if self.excluded:
            return None
        return memo(req, "_wafproxy_query_parts", _query_parts) if req.query_string else []


def _query_parts(req: WafRequest) -> list[str]:
    return split_arg_parts(req.query_string)


@FIELDS.register("single_query_argument")
def single_query_argument(node: Node) -> RequestField:
    """The raw values of the query arguments with this name (compared URL-decoded, ignoring case).

    ```yaml
    field: {single_query_argument: {name: id}}
    ```
    """
    return SingleQueryArgument(name(options(node, ["name"])["name"]))


@FIELDS.register("all_query_arguments")
def all_query_arguments(node: Node) -> RequestField:
    """The raw values of every query argument.

    ```yaml
    field: all_query_arguments
    ```

    ```yaml
    field: {all_query_arguments: {excluded_arguments: [comment]}}
    ```

    Extension: ``excluded_arguments`` leaves out the arguments with these names (compared
    URL-decoded, ignoring case), so a rule can inspect every argument but one.
    """
    opts = options(node, optional=["excluded_arguments"])
    return AllQueryArguments(excluded_arguments(opts))
