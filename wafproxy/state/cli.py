"""``wafproxy ip-sets add|remove|list`` and ``wafproxy rate-based``: clients of the admin API
(wafproxy/admin/state_api.py) of a running proxy."""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import TYPE_CHECKING, Any, TypeAlias

from wafproxy.errors import WafProxyError

TOKEN_ENV = "WAFPROXY_ADMIN_TOKEN"
if TYPE_CHECKING:
    Sub: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--admin",
        default="http://127.0.0.1:9901",
        metavar="URL",
        help="the proxy's admin URL (default: %(default)s)",
    )
    p.add_argument(
        "--token",
        default=os.environ.get(TOKEN_ENV),
        help=f"the admin token (default: ${TOKEN_ENV})",
    )


def add_state_parsers(sub: Sub) -> None:
    p = sub.add_parser(
        "ip-sets",
        help="list, add or remove entries of dynamic IP sets of a running proxy",
        description="Change the entries of a dynamic IP set (ip_sets: {NAME: {dynamic: true}}) "
        "through a running proxy's admin API; changes reach every worker and host within a "
        "second and survive restarts.",
    )
    actions = p.add_subparsers(title="actions", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="the dynamic IP sets, or one set's entries")
    listing.add_argument("name", nargs="?", help="the IP set (default: list the sets)")
    _common(listing)
    listing.set_defaults(func=cmd_ip_sets_list)
    add = actions.add_parser("add", help="add (or renew) addresses")
    add.add_argument("name", help="the IP set")
    add.add_argument("addresses", nargs="+", metavar="ADDRESS", help="IP addresses or CIDRs")
    add.add_argument("--ttl", type=float, metavar="SECONDS", help="expire after this long")
    add.add_argument("--reason", default="", help="why (kept with the entry)")
    _common(add)
    add.set_defaults(func=cmd_ip_sets_add)
    remove = actions.add_parser("remove", help="remove addresses")
    remove.add_argument("name", help="the IP set")
    remove.add_argument("addresses", nargs="+", metavar="ADDRESS", help="IP addresses or CIDRs")
    _common(remove)
    remove.set_defaults(func=cmd_ip_sets_remove)

    rate = sub.add_parser(
        "rate-based",
        help="show the keys over each rate-based rule's limit on a running proxy",
        description="Without arguments: every rate-based rule and how many keys are over its "
        "limit. With WEB_ACL RULE: those keys (GetRateBasedStatementManagedKeys).",
    )
    rate.add_argument("web_acl", nargs="?", help="the web ACL")
    rate.add_argument("rule", nargs="?", help="the rate-based rule")
    rate.add_argument("--rule-group", default="", help="the rule group holding the rule")
    _common(rate)
    rate.set_defaults(func=cmd_rate_based)


def request(args: argparse.Namespace, method: str, path: str, body: object = None) -> Any:
    """One admin API call; raises WafProxyError with the API's error message."""
    url = args.admin.rstrip("/") + path
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if args.token:
        req.add_header("Authorization", f"Bearer {args.token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        raise WafProxyError(f"{method} {url}: {exc.code} {_message(exc)}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise WafProxyError(f"{method} {url}: {exc}") from exc


def _message(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(exc.read()).get("error", exc.reason))
    except (ValueError, AttributeError):
        return str(exc.reason)


def _quote(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def cmd_ip_sets_list(args: argparse.Namespace) -> int:
    if args.name is None:
        for item in request(args, "GET", "/api/ip-sets")["ip_sets"]:
            print(f"{item['name']}\t{item['entries']} entries")
        return 0
    for entry in request(args, "GET", f"/api/ip-sets/{_quote(args.name)}/entries")["entries"]:
        expires = "never" if entry["expires"] is None else f"{entry['expires']:.0f}"
        print(f"{entry['address']}\texpires={expires}\t{entry['reason']}")
    return 0


def cmd_ip_sets_add(args: argparse.Namespace) -> int:
    entries = [{"address": a, "ttl": args.ttl, "reason": args.reason} for a in args.addresses]
    result = request(
        args, "POST", f"/api/ip-sets/{_quote(args.name)}/entries", {"entries": entries}
    )
    for entry in result["added"]:
        print(f"added {entry['address']} to {args.name}")
    return 0


def cmd_ip_sets_remove(args: argparse.Namespace) -> int:
    missing = 0
    for address in args.addresses:
        query = urllib.parse.urlencode({"address": address})
        try:
            request(args, "DELETE", f"/api/ip-sets/{_quote(args.name)}/entries?{query}")
            print(f"removed {address} from {args.name}")
        except WafProxyError as exc:
            print(f"error: {exc}", file=sys.stderr)
            missing += 1
    return 1 if missing else 0


def cmd_rate_based(args: argparse.Namespace) -> int:
    if args.web_acl is None or args.rule is None:
        for rule in request(args, "GET", "/api/rate-based")["rules"]:
            where = f"{rule['web_acl']}/{rule['rule_group'] or ''}/{rule['rule']}"
            print(f"{where}\tlimit={rule['limit']}/{rule['evaluation_window_sec']}s\t"
                  f"{rule['keys_over_limit']} keys over the limit")  # fmt: skip
        return 0
    path = f"/api/rate-based/{_quote(args.web_acl)}/{_quote(args.rule)}"
    if args.rule_group:
        path += "?" + urllib.parse.urlencode({"rule_group": args.rule_group})
    for key in request(args, "GET", path)["keys"]:
        print(f"{key['count']}\t{key['key']}")
    return 0
