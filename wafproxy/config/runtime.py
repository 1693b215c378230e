"""The Runtime: a service config with its rule files compiled and every route bound to its web
ACL and upstream.

The proxy only ever sees a finished Runtime: a reload builds a new one and swaps one reference.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from wafproxy.acl.compile import RuleSet, load_rule_files
from wafproxy.acl.model import WebAcl
from wafproxy.config.model import Route, ServiceConfig, Upstream
from wafproxy.errors import ConfigError, ConfigErrors


@dataclass(frozen=True)
class BoundRoute:
    route: Route
    acl: WebAcl
    upstream: Upstream


@dataclass(frozen=True)
class Runtime:
    """A config with its rules compiled: everything a request needs, immutable."""

    config: ServiceConfig
    rule_set: RuleSet
    routes: tuple[BoundRoute, ...]

    def route_for(self, host: str, path: str) -> BoundRoute | None:
        """First match wins. ``host`` may carry a port; ``path`` is the decoded request path."""
        name = host_name(host)
        clean = routing_path(path)
        for bound in self.routes:
            if bound.route.matches(name, clean):
                return bound
        return None


def host_name(host: str) -> str:
    """The Host header without its port, lower case (``[::1]:80`` → ``[::1]``)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def routing_path(path: str) -> str:
    """Dot segments resolved and slashes collapsed, so ``/api/../admin`` cannot pick the /api
    route (and its ACL) for a request the upstream serves as /admin."""
    clean = posixpath.normpath("/" + path.lstrip("/"))
    clean = "/" + clean.lstrip("/")
    if path.endswith("/") and clean != "/":
        clean += "/"
    return clean


def build_runtime(config: ServiceConfig) -> Runtime:
    """Compile the rule files and bind every route to its web ACL. Raises ConfigErrors."""
    rule_set = load_rule_files(list(config.rule_files))
    errors: list[ConfigError] = []
    bound: list[BoundRoute] = []
    for index, route in enumerate(config.routes):
        acl = _route_acl(route, rule_set, index, errors)
        if acl is not None:
            bound.append(BoundRoute(route, acl, config.upstreams[route.upstream]))
    if errors:
        raise ConfigErrors(errors)
    return Runtime(config=config, rule_set=rule_set, routes=tuple(bound))


def _route_acl(
    route: Route, rule_set: RuleSet, index: int, errors: list[ConfigError]
) -> WebAcl | None:
    acls = rule_set.acls
    known = ", ".join(sorted(acls)) or "none"
    path = f"routes[{index}].web_acl"
    if route.web_acl is None:
        if len(acls) == 1:
            return next(iter(acls.values()))
        if "default" in acls:
            return acls["default"]
        errors.append(ConfigError(route.mark, path, f"several web ACLs loaded ({known}); name one"))
        return None
    if route.web_acl not in acls:
        errors.append(ConfigError(route.mark, path, f"unknown web ACL {route.web_acl!r}; "
                                  f"loaded: {known}"))  # fmt: skip
        return None
    return acls[route.web_acl]
