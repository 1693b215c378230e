"""Admin API over the shared state: dynamic IP set entries and the keys over each rate-based
rule's limit (AWS's GetRateBasedStatementManagedKeys).

- ``GET /api/ip-sets`` — the dynamic IP sets of the running config and their entry counts
- ``GET /api/ip-sets/{name}/entries`` — live entries
- ``POST /api/ip-sets/{name}/entries`` — ``{"address": "192.0.2.7", "ttl": 3600, "reason": ".."}``
  (``ttl`` null: until removed), or ``{"entries": [...]}`` for several
- ``DELETE /api/ip-sets/{name}/entries?address=192.0.2.7`` — remove one entry
- ``GET /api/rate-based`` — every rate-based rule with its number of keys over the limit
- ``GET /api/rate-based/{web_acl}/{rule}[?rule_group=NAME]`` — the keys over the limit

Reading follows /metrics (the token when one is set). Changing an IP set always needs the
token: without ``admin.token`` the POST and DELETE endpoints answer 403, so nothing that can
reach a loopback port (a server-side request forgery in the upstream app) can unblock itself.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from aiohttp import web

from wafproxy.acl.ratelimit import RateBased, decode_key, rate_statements
from wafproxy.reload import RuntimeRef
from wafproxy.state import SharedState, StateUnavailable, clock

MAX_BATCH = 1000
Authorize = Callable[[web.Request], bool]


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


class StateApi:
    def __init__(self, ref: RuntimeRef, state: SharedState, authorized: Authorize) -> None:
        self.ref = ref
        self.state = state
        self.authorized = authorized

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/ip-sets", self.list_sets),
            web.get("/api/ip-sets/{name}/entries", self.list_entries),
            web.post("/api/ip-sets/{name}/entries", self.add_entries),
            web.delete("/api/ip-sets/{name}/entries", self.remove_entry),
            web.get("/api/rate-based", self.list_rules),
            web.get("/api/rate-based/{web_acl}/{rule}", self.managed_keys),
        ]

    # -- access ------------------------------------------------------------------------------------
    def _denied(self, request: web.Request, *, change: bool) -> web.Response | None:
        if change and not self.ref.current.config.admin.token:
            return _error(403, "set admin.token to change IP sets through the admin API")
        if not self.authorized(request):
            return web.json_response(
                {"error": "unauthorized"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="wafproxy"'},
            )
        return None

    def _dynamic_set(self, request: web.Request) -> str | None:
        name = request.match_info["name"]
        return name if name in self.ref.current.runtime.rule_set.dynamic_ip_sets else None

    # -- IP sets -----------------------------------------------------------------------------------
    async def list_sets(self, request: web.Request) -> web.StreamResponse:
        if (denied := self._denied(request, change=False)) is not None:
            return denied
        names = sorted(self.ref.current.runtime.rule_set.dynamic_ip_sets)
        sets = []
        for name in names:
            entries = await self.state.ip_entries(name)
            sets.append({"name": name, "entries": len(entries)})
        return web.json_response({"backend": self.state.backend, "ip_sets": sets})

    async def list_entries(self, request: web.Request) -> web.StreamResponse:
        if (denied := self._denied(request, change=False)) is not None:
            return denied
        name = self._dynamic_set(request)
        if name is None:
            return _error(404, "no dynamic IP set of that name in the running config")
        entries = await self.state.ip_entries(name)
        return web.json_response({"ip_set": name, "entries": [e.as_json() for e in entries]})

    async def add_entries(self, request: web.Request) -> web.StreamResponse:
        if (denied := self._denied(request, change=True)) is not None:
            return denied
        name = self._dynamic_set(request)
        if name is None:
            return _error(404, "no dynamic IP set of that name in the running config")
        try:
            body = await request.json()
            items = _entries(body)
        except ValueError as exc:
            return _error(400, str(exc))
        now = clock(None)
        added = []
        try:
            for address, ttl, reason in items:
                entry = await self.state.block_ip(name, address, ttl, reason, now=now)
                added.append(entry.as_json())
        except ValueError as exc:
            return _error(400, str(exc))
        except StateUnavailable as exc:
            return _error(503, f"the shared state is unavailable: {exc}")
        return web.json_response({"ip_set": name, "added": added}, status=201)

    async def remove_entry(self, request: web.Request) -> web.StreamResponse:
        if (denied := self._denied(request, change=True)) is not None:
            return denied
        name = self._dynamic_set(request)
        if name is None:
            return _error(404, "no dynamic IP set of that name in the running config")
        address = request.query.get("address", "")
        try:
            removed = await self.state.unblock_ip(name, address)
        except ValueError:
            return _error(400, f"not an IP address or CIDR: {address!r}")
        except StateUnavailable as exc:
            return _error(503, f"the shared state is unavailable: {exc}")
        if not removed:
            return _error(404, f"{address} is not in IP set {name!r}")
        return web.json_response({"ip_set": name, "removed": address})

    # -- rate-based rules --------------------------------------------------------------------------
    def _statements(self) -> list[RateBased]:
        acls = self.ref.current.runtime.rule_set.acls
        return [s for name in sorted(acls) for s in rate_statements(acls[name])]

    async def list_rules(self, request: web.Request) -> web.StreamResponse:
        if (denied := self._denied(request, change=False)) is not None:
            return denied
        now = clock(None)
        rules = []
        try:
            for statement in self._statements():
                keys = await self.state.over_limit(statement.rule, now)
                rules.append({**self._describe(statement), "keys_over_limit": len(keys)})
        except StateUnavailable as exc:
            return _error(503, f"the shared state is unavailable: {exc}")
        return web.json_response({"backend": self.state.backend, "rules": rules})

    async def managed_keys(self, request: web.Request) -> web.StreamResponse:
        if (denied := self._denied(request, change=False)) is not None:
            return denied
        acl, rule = request.match_info["web_acl"], request.match_info["rule"]
        group = request.query.get("rule_group", "")
        found = [
            s
            for s in self._statements()
            if (s.rule.acl, s.rule.group, s.rule.name) == (acl, group, rule)
        ]
        if not found:
            return _error(404, "no rate-based rule of that web ACL, rule group and name")
        statement = found[0]
        try:
            keys = await self.state.over_limit(statement.rule, clock(None))
        except StateUnavailable as exc:
            return _error(503, f"the shared state is unavailable: {exc}")
        out: dict[str, Any] = self._describe(statement)
        out.update(_addresses(statement, [k.key for k in keys]))
        out["keys"] = [
            {"key": k.key, "count": k.count, "components": decode_key(statement, k.key)}
            for k in keys
        ]
        return web.json_response(out)

    def _describe(self, statement: RateBased) -> dict[str, Any]:
        rule = statement.rule
        return {
            "web_acl": rule.acl,
            "rule_group": rule.group or None,
            "rule": rule.name,
            "limit": rule.limit,
            "enforced_limit": self.state.enforced_limit(rule),
            "evaluation_window_sec": rule.window,
            "aggregate_key_type": rule.key_type,
        }


def _addresses(statement: RateBased, keys: list[str]) -> dict[str, Any]:
    """AWS's ManagedKeysIPV4 / ManagedKeysIPV6 (IP and forwarded IP rules)."""
    v4: list[str] = []
    v6: list[str] = []
    if statement.rule.key_type in ("IP", "FORWARDED_IP"):
        for key in keys:
            try:
                addr = ipaddress.ip_address(key)
            except ValueError:
                continue
            (v4 if addr.version == 4 else v6).append(f"{addr}/{addr.max_prefixlen}")
    return {
        "managed_keys_ipv4": {"ip_address_version": "IPV4", "addresses": v4},
        "managed_keys_ipv6": {"ip_address_version": "IPV6", "addresses": v6},
    }


def _entries(body: object) -> list[tuple[str, float | None, str]]:
    """(address, ttl, reason) from one entry or ``{"entries": [...]}``. Raises ValueError."""
    if isinstance(body, dict) and "entries" in body:
        items = body["entries"]
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
            raise ValueError(f"entries must be a list of 1 to {MAX_BATCH} entries")
    else:
        items = [body]
    return [_entry(item) for item in items]


def _entry(item: object) -> tuple[str, float | None, str]:
    if not isinstance(item, dict) or not isinstance(item.get("address"), str):
        raise ValueError('each entry needs "address" (an IP address or CIDR)')
    unknown = set(item) - {"address", "ttl", "reason"}
    if unknown:
        raise ValueError(f"unknown entry fields: {', '.join(sorted(unknown))}")
    ttl = item.get("ttl")
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, (int, float))):
        raise ValueError('"ttl" must be a number of seconds or null')
    reason = item.get("reason", "")
    if not isinstance(reason, str):
        raise ValueError('"reason" must be a string')
    return item["address"], None if ttl is None else float(ttl), reason
