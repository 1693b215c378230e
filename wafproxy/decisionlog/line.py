"""``format_record`` written as one JSON line, in bytes, on the request path."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from wafproxy.acl.model import ActionKind, RuleMatch, Verdict
from wafproxy.decisionlog.config import DecisionLogConfig
from wafproxy.decisionlog.http_request import http_request_json
from wafproxy.decisionlog.record import verdict_fields
from wafproxy.request import Header, WafRequest


def _dumps_json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), default=str).encode()


try:  # orjson encodes several times faster; the stdlib is the fallback
    import orjson

    def _dumps_value(value: object) -> bytes:
        try:
            return orjson.dumps(value, default=str)
        except orjson.JSONEncodeError:  # undecodable request bytes (surrogates): escape them
            return _dumps_json(value)

except ImportError:  # pragma: no cover - orjson is a dependency
    _dumps_value = _dumps_json


LINE = (
    b'{"timestamp":%d,%s,"rateBasedRuleList":%s,"responseCodeSent":%d,"requestBodySize":%d,'
    b'"requestBodySizeInspectedByWAF":%d,"httpRequest":%s}\n'
)
VERDICT_CACHE_SIZE = 4096
_VerdictKey = tuple[str, str, ActionKind, str, str, tuple[RuleMatch, ...], tuple[Header, ...],
                    tuple[str, ...], tuple[str, ...]]  # fmt: skip
_verdict_json: dict[_VerdictKey, bytes] = {}


def format_line(
    req: WafRequest,
    verdict: Verdict,
    *,
    acl: str,
    status: int,
    config: DecisionLogConfig,
    country: str | None = None,
    rate_based: Sequence[Mapping[str, object]] = (),
    now: float,
    webacl_id_prefix: str = "",
) -> bytes:
    """``format_record`` as one JSON line. Why: building and encoding the whole mapping was the
    log's main cost; the verdict's part repeats from request to request (it depends on the
    configuration and the rules that matched, not on the request's bytes), so it is encoded
    once and kept."""
    rate = _dumps_value([dict(r) for r in rate_based]) if rate_based else b"[]"
    return LINE % (
        int(now * 1000),
        _verdict_part(webacl_id_prefix + acl, acl, verdict),
        rate,
        status,
        req.body_size,
        len(req.body),
        http_request_json(req, config.redaction, country, _dumps_value),
    )


_last: tuple[Verdict, str, str, bytes] | None = None


def _verdict_part(webacl_id: str, acl: str, verdict: Verdict) -> bytes:
    """Most requests get their web ACL's one default verdict object: asked first by identity."""
    global _last
    last = _last
    if last is not None and last[0] is verdict and last[1] == webacl_id and last[2] == acl:
        return last[3]
    part = _verdict_part_by_value(webacl_id, acl, verdict)
    _last = (verdict, webacl_id, acl, part)
    return part


def _verdict_part_by_value(webacl_id: str, acl: str, verdict: Verdict) -> bytes:
    key = (
        webacl_id,
        acl,
        verdict.action,
        verdict.terminating_rule,
        verdict.terminating_rule_type.value,
        verdict.matches,
        verdict.insert_headers,
        verdict.labels,
        verdict.oversize_fields,
    )
    part = _verdict_json.get(key)
    if part is None:
        if len(_verdict_json) >= VERDICT_CACHE_SIZE:
            _verdict_json.clear()
        part = _verdict_json[key] = _dumps_value(verdict_fields(webacl_id, acl, verdict))[1:-1]
    return part
