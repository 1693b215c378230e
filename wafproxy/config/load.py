"""Reading a service config: from a YAML file or text, or from ``wafproxy run``'s options.

``load_service_config`` reads the YAML with positions and collects every error it can into one
ConfigErrors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from wafproxy.config.collect import ErrorCollector
from wafproxy.config.model import (
    AdminConfig,
    ClientIpConfig,
    Limits,
    RequestIdConfig,
    Route,
    ServiceConfig,
    Upstream,
)
from wafproxy.config.optional_sections import Sections
from wafproxy.config.routing_sections import (
    declared_upstreams,
    parse_listener_tls,
    parse_listeners,
    parse_routes,
    parse_upstreams,
)
from wafproxy.config.scalars import parse_address, parse_target
from wafproxy.config.source import Node, load_file, parse
from wafproxy.decisionlog.config import DecisionLogConfig
from wafproxy.detect.config import parse_detect
from wafproxy.errors import ConfigError, ConfigErrors, Mark
from wafproxy.findings.config import parse_findings
from wafproxy.kms.config import parse_kms
from wafproxy.scan.config import ScanConfig, parse_scan
from wafproxy.state.config import StateConfig

TOP_KEYS = [
    "listeners", "routes", "upstreams", "rules", "limits", "client_ip", "request_id", "admin",
    "decision_log", "kms", "state", "findings", "scan", "detect",
]  # fmt: skip
REQUIRED_KEYS = ["listeners", "routes", "upstreams"]
OPTIONAL_KEYS = [k for k in TOP_KEYS if k not in REQUIRED_KEYS]


def load_service_config(path: Path) -> ServiceConfig:
    """Read and check a service config file. Raises ConfigErrors listing every problem found."""
    try:
        root = load_file(path)
    except ConfigError as exc:
        raise ConfigErrors([exc]) from exc
    return config_from_node(root, Path(path))


def parse_service_config(text: str, filename: str = "<string>") -> ServiceConfig:
    try:
        root = parse(text, filename)
    except ConfigError as exc:
        raise ConfigErrors([exc]) from exc
    return config_from_node(root, Path(filename))


def config_from_node(root: Node, path: Path) -> ServiceConfig:
    errors = ErrorCollector()
    no_nodes: dict[str, Node] = {}
    opts = errors.attempt(lambda: root.fields(REQUIRED_KEYS, OPTIONAL_KEYS), no_nodes)
    errors.raise_any()
    section = Sections(errors, path.parent)
    upstreams = parse_upstreams(opts["upstreams"], errors, path.parent)
    names = declared_upstreams(opts["upstreams"])
    config = ServiceConfig(
        listeners=tuple(errors.attempt(lambda: parse_listeners(opts["listeners"], errors), [])),
        routes=tuple(errors.attempt(lambda: parse_routes(opts["routes"], names, errors), [])),
        upstreams=upstreams,
        rules=errors.field(opts, "rules", section.rules, ()),
        limits=errors.field(opts, "limits", section.limits, Limits()),
        client_ip=errors.field(opts, "client_ip", section.client_ip, ClientIpConfig()),
        request_id=errors.field(opts, "request_id", section.request_id, RequestIdConfig()),
        admin=errors.field(opts, "admin", section.admin, AdminConfig()),
        decision_log=errors.field(opts, "decision_log", section.decision_log, DecisionLogConfig()),
        kms=errors.field(opts, "kms", lambda n: parse_kms(n, path.parent), None),
        listener_tls=errors.attempt(lambda: parse_listener_tls(opts, path.parent), {}),
        state=errors.field(opts, "state", section.state, StateConfig()),
        findings=errors.field(opts, "findings", lambda n: parse_findings(n, path.parent), None),
        scan=errors.field(opts, "scan", lambda n: parse_scan(n, path.parent), ScanConfig()),
        detect=errors.field(opts, "detect", lambda n: parse_detect(n, path.parent), None),
        path=path,
    )
    errors.raise_any()
    if config.findings is not None:  # a Redis findings store uses the state's connection
        config = replace(config, findings=config.findings.with_state(config.state))
    return config


def config_from_args(
    upstream: str,
    listen: str = "127.0.0.1:8080",
    admin: str = "127.0.0.1:9901",
    rules: Sequence[Path] = (),
) -> ServiceConfig:
    """``wafproxy run --upstream URL``: one listener, one route to one target, defaults else."""
    errors = ErrorCollector()
    target = errors.attempt(lambda: parse_target(_arg(upstream, "--upstream")), None)
    address = errors.attempt(lambda: parse_address(_arg(listen, "--listen")), None)
    admin_address = errors.attempt(lambda: parse_address(_arg(admin, "--admin")), None)
    if admin_address is not None and not admin_address.is_loopback:
        errors.items.append(ConfigError(None, "--admin", "a non-loopback admin needs a config file "
                                        "with admin.token"))  # fmt: skip
    errors.raise_any()
    assert target is not None and address is not None
    return ServiceConfig(
        listeners=(address,),
        routes=(Route(name="*/", upstream="app"),),
        upstreams={"app": Upstream("app", (target,))},
        rules=tuple(Path(p) for p in rules),
        admin=AdminConfig(listen=admin_address),
    )


def _arg(value: str, option: str) -> Node:
    return Node(value, Mark("<command line>", 1, 1), option)
