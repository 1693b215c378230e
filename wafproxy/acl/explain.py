"""``wafproxy explain``: evaluate one request and print every step of it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import cast

from wafproxy.acl.compile import default_rule_files, load_rule_files
from wafproxy.acl.engine import evaluate
from wafproxy.acl.model import EvalContext, Rule, Verdict, WebAcl
from wafproxy.errors import WafProxyError
from wafproxy.rawhttp import build_request, parse_raw_request
from wafproxy.request import Header, WafRequest

MAX_SHOWN = 200


def explain_command(args: argparse.Namespace) -> int:
    rule_set = load_rule_files(args.rules or default_rule_files())
    acl = _pick(rule_set.acls, args.web_acl)
    req = _request(args)
    verdict = explain(acl, req, print)
    return 0 if not verdict.error else 1


def explain(acl: WebAcl, req: WafRequest, out: Callable[[str], None]) -> Verdict:
    out(f"request: {req.method} {req.uri_path}{'?' + req.query_string if req.query_string else ''}")
    out(f"web ACL: {acl.name} ({len(acl.rules)} rules, {len(acl.match_groups)} scan groups)")
    pending: list[str] = []
    ctx = EvalContext(acl=acl, geo=acl.geo)

    def trace(kind: str, data: object) -> None:
        if kind == "values":
            key, names, values = cast("tuple[str, tuple[str, ...], Sequence[str]]", data)
            chain = " -> ".join(names) if names else "(as sent)"
            line = f"      {key} {chain}: {_show(values)}"
            if line not in pending:  # a rule may look at the same values twice
                pending.append(line)
        elif kind == "atom":
            slot, atom, hit = cast("tuple[int, int, bool]", data)
            group = acl.match_groups[slot]
            patterns = acl.scan_inputs[slot].patterns
            pattern = patterns[atom] if 0 <= atom < len(patterns) else f"#{atom}"
            what = f"pattern {pattern!r}" if isinstance(pattern, str) else pattern.value
            verdict = "MATCH" if hit else "no match"
            pending.append(f"      {what} on {group.field_key}: {verdict}")
        elif kind == "rule":
            group_name, rule, matched = cast("tuple[str | None, Rule, bool]", data)
            _print_rule(out, group_name, rule, matched, pending)
            pending.clear()
        elif kind == "scope_down":
            skipped, _ = cast("tuple[Rule, bool]", data)
            out(f"  group {skipped.name}: scope-down statement did not match; group skipped")
            for line in pending:
                out(line)
            pending.clear()

    ctx.trace = trace
    verdict = evaluate(acl, req, ctx=ctx)
    out(f"labels: {', '.join(verdict.labels) or 'none'}")
    where = f" in group {verdict.terminating_group}" if verdict.terminating_group else ""
    out(f"verdict: {verdict.action.value.upper()} by {verdict.terminating_rule}{where}")
    if verdict.error:
        out(f"evaluation error: {verdict.error}")
    return verdict


def _print_rule(
    out: Callable[[str], None], group: str | None, rule: Rule, matched: bool, pending: list[str]
) -> None:
    name = f"{group}/{rule.name}" if group else rule.name
    action = rule.action.kind.value if rule.action else "-"
    out(f"  [{rule.priority}] {name} ({action}): {'MATCH' if matched else 'no match'}")
    for line in pending:
        out(line)
    if matched and rule.labels:
        out(f"      labels added: {', '.join(rule.labels)}")


def _show(values: Sequence[str]) -> str:
    items = list(values)
    shown = [repr(v if len(str(v)) <= MAX_SHOWN else str(v)[:MAX_SHOWN] + "…") for v in items[:20]]
    more = f" (+{len(items) - 20} more)" if len(items) > 20 else ""
    return "[" + ", ".join(shown) + "]" + more


def _pick(acls: Mapping[str, WebAcl], name: str | None) -> WebAcl:
    if name is not None:
        if name not in acls:
            raise WafProxyError(f"no web ACL named {name!r}; have {', '.join(acls)}")
        return acls[name]
    if len(acls) != 1:
        raise WafProxyError(f"several web ACLs ({', '.join(acls)}): choose one with --web-acl")
    return next(iter(acls.values()))


def _request(args: argparse.Namespace) -> WafRequest:
    if args.raw is not None:
        data = sys.stdin.buffer.read() if str(args.raw) == "-" else Path(args.raw).read_bytes()
        return parse_raw_request(data, client_ip=args.client_ip)
    if not args.url:
        raise WafProxyError("give the request with --raw FILE or --url URL")
    headers: list[Header] = []
    for text in args.header:
        name, sep, value = text.partition(":")
        if not sep:
            raise WafProxyError(f"a header is 'Name: value', got {text!r}")
        headers.append((name.strip(), value.strip()))
    body = b""
    if args.data is not None:
        body = Path(args.data[1:]).read_bytes() if args.data.startswith("@") else args.data.encode()
        if not any(n.lower() == "content-length" for n, _ in headers):
            headers.append(("Content-Length", str(len(body))))
    return build_request(args.method, args.url, headers, body, client_ip=args.client_ip)
