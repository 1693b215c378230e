"""FIELDS: the parts of a request a statement inspects (AWS WAF's FieldToMatch).

A field is a frozen value with four members:

- ``key``: canonical text naming the field and all its options (options at their default left
  out, so a plain body is ``body``). Equal configurations give equal keys: the engine caches
  extracted values and groups match atoms by key.
- ``extract(req)``: the strings to inspect, a tuple (maybe empty). Never raises on any request.
- ``oversize(req)``: None when the component was inspected whole, else the configured
  OversizeHandling (body, json_body, headers, cookies, header_order, body arguments).
- ``forced(req)``: None to inspect the values normally; True / False for a forced match / no match.
  Only json_body forces, for an invalid body with ``invalid_fallback_behavior: match / no_match``.

The engine applies oversize handling first (MATCH / NO_MATCH decide without looking further),
then ``forced``, then matches the extracted values.

One module per family of fields; importing this package registers them all. They register in
import order, which is the order docs/reference.md lists them in, so the imports below are kept
in that order rather than sorted.
"""

# isort: off
from wafproxy.acl.fields.registry import FIELDS, FieldFactory, RequestField, compile_field
from wafproxy.acl.fields.limits import (
    MAX_BYTES,
    MAX_ITEMS,
    Visible,
    limit_pairs,
    visible_cookies,
    visible_headers,
)
from wafproxy.acl.fields.options import Scope
from wafproxy.acl.fields.whole import Attribute, SingleHeader, Whole
from wafproxy.acl.fields.whole import Whole as _Whole
from wafproxy.acl.fields.query_arguments import AllQueryArguments, SingleQueryArgument, query_names
from wafproxy.acl.fields.body import Body, BodyBased, Fallback, JsonBody
from wafproxy.acl.fields.pairs import NamePattern, Pairs
from wafproxy.acl.fields.header_order import HeaderOrder
from wafproxy.acl.fields.body_arguments import AllBodyArguments, SingleBodyArgument
from wafproxy.acl.fields import (
    body,
    body_arguments,
    header_order,
    limits,
    options,
    pairs,
    query_arguments,
    registry,
    whole,
)
# isort: on

__all__ = [
    "FIELDS",
    "MAX_BYTES",
    "MAX_ITEMS",
    "AllBodyArguments",
    "AllQueryArguments",
    "Attribute",
    "Body",
    "BodyBased",
    "Fallback",
    "FieldFactory",
    "HeaderOrder",
    "JsonBody",
    "NamePattern",
    "Pairs",
    "RequestField",
    "Scope",
    "SingleBodyArgument",
    "SingleHeader",
    "SingleQueryArgument",
    "Visible",
    "Whole",
    "_Whole",
    "body",
    "body_arguments",
    "compile_field",
    "header_order",
    "limit_pairs",
    "limits",
    "options",
    "pairs",
    "query_arguments",
    "query_names",
    "registry",
    "visible_cookies",
    "visible_headers",
    "whole",
]
