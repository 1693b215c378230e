"""Header and cookie fields: names and/or values of the visible pairs a name pattern picks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

from wafproxy.acl.fields.limits import visible_cookies, visible_headers
from wafproxy.acl.fields.options import Scope, empty, join, options, oversize, scope
from wafproxy.acl.fields.registry import FIELDS, RequestField
from wafproxy.acl.model import Oversize
from wafproxy.config.source import Node
from wafproxy.request import Header, WafRequest


@dataclass(frozen=True)
class NamePattern:
    """AWS's match pattern for headers / cookies: all, or included / excluded names."""

    mode: Literal["all", "included", "excluded"]
    names: frozenset[str] = frozenset()

    @property
    def key(self) -> str:
        return "all" if self.mode == "all" else f"{self.mode}={join(self.names)}"

    def pick(self, pairs: Sequence[Header], names: Sequence[str]) -> Sequence[Header]:
        """The pairs an included / excluded pattern keeps; ``names`` are the pairs' names as
        compared (headers' lower-cased)."""
        keep = self.mode == "included"
        chosen = self.names
        if keep and chosen.isdisjoint(names):
            return ()  # the usual answer for a few named headers
        return [pair for pair, n in zip(pairs, names, strict=True) if (n in chosen) is keep]


_VISIBLE = {"headers": visible_headers, "cookies": visible_cookies}


@dataclass(frozen=True)
class Pairs:
    """headers or cookies: names and/or values of the visible ones the pattern picks."""

    kind: Literal["headers", "cookies"]
    pattern: NamePattern
    scope: Scope
    handling: Oversize

    @cached_property
    def key(self) -> str:
        return (
            f"{self.kind}:{self.pattern.key}:scope={self.scope.value}"
            f":oversize={self.handling.value}"
        )

    def oversize(self, req: WafRequest) -> Oversize | None:
        return self.handling if _VISIBLE[self.kind](req).oversize else None

    def forced(self, req: WafRequest) -> bool | None:
        return None

    @cached_property
    def _takes(self) -> tuple[bool, bool]:
        """(names, values), read per request without an Enum member lookup (see attacks._XSS)."""
        return self.scope is not Scope.VALUE, self.scope is not Scope.KEY

    @cached_property
    def _included_headers(self) -> frozenset[str] | None:
        """The names of an ``included_headers`` pattern: most requests send none of them, which
        the header map tells without the visible headers and their names."""
        wanted = self.kind == "headers" and self.pattern.mode == "included"
        return self.pattern.names if wanted else None

    def extract(self, req: WafRequest) -> tuple[str, ...]:
        included = self._included_headers
        if included is not None and included.isdisjoint(req.header_map):
            return ()
        picked: Sequence[Header] = _VISIBLE[self.kind](req).pairs
        if self.pattern.mode != "all":
            if self.kind == "cookies":
                names: Sequence[str] = [n for n, _ in picked]
            else:  # the visible headers are the first ones sent, whole or cut short
                names = req.folded_names[: len(picked)]
            picked = self.pattern.pick(picked, names)
            if not picked:
                return ()
        keys, values = self._takes
        if not values:
            return tuple([n for n, _ in picked])
        if not keys:
            return tuple([v for _, v in picked])
        return tuple([item for pair in picked for item in pair])


def _name_pattern(node: Node, what: str, fold_case: bool) -> NamePattern:
    included, excluded = f"included_{what}", f"excluded_{what}"
    items = node.fields(optional=["all", included, excluded])
    if len(items) != 1:
        raise node.expected(f"exactly one of all, {included}, {excluded}")
    ((which, child),) = items.items()
    if which == "all":
        empty(child)
        return NamePattern("all")
    names: list[str] = child.str_list()  # annotated: Node.str shadows str in source.py
    if not names:
        raise child.expected(f"at least one name in {which}")
    folded = frozenset(n.lower() if fold_case else n for n in names)
    return NamePattern("included" if which == included else "excluded", folded)


def _pairs(node: Node, kind: Literal["headers", "cookies"]) -> RequestField:
    opts = options(node, ["match_pattern", "match_scope", "oversize_handling"])
    pattern = _name_pattern(opts["match_pattern"], kind, fold_case=kind == "headers")
    return Pairs(kind, pattern, scope(opts["match_scope"]), oversize(opts))


@FIELDS.register("headers")
def headers(node: Node) -> RequestField:
    """Header names and/or values (names matched ignoring case). Only the first 200 headers and
    8 KB of names and values are inspected; more is oversize.

    ```yaml
    field:
      headers:
        match_pattern: {excluded_headers: [cookie, authorization]}
        match_scope: all
        oversize_handling: no_match
    ```
    """
    return _pairs(node, "headers")


@FIELDS.register("cookies")
def cookies(node: Node) -> RequestField:
    """Cookie names and/or values (names matched exactly). Only the first 200 cookies and 8 KB
    of names and values are inspected; more is oversize.

    ```yaml
    field:
      cookies:
        match_pattern: {included_cookies: [session, token]}
        match_scope: value
        oversize_handling: continue
    ```
    """
    return _pairs(node, "cookies")
