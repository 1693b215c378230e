"""The ``detect:`` section: defaults, every key, and the error text (file:line:col) for mistakes."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from wafproxy.config.load import parse_service_config
from wafproxy.detect.config import (
    DecisionAction,
    DetectConfig,
    Escalation,
    LoginFailure,
    LoginRoute,
    Policy,
    RemediationConfig,
)
from wafproxy.errors import ConfigErrors
from wafproxy.findings.model import Severity

BASE = """\
listeners: [{listen: "127.0.0.1:0"}]
routes: [{host: "*", upstream: app}]
upstreams: {app: {targets: ["http://127.0.0.1:9000"]}}
"""


def load(detect: str) -> DetectConfig | None:
    return parse_service_config(BASE + detect, "/etc/wafproxy/wafproxy.yaml").detect


def error(detect: str) -> str:
    with pytest.raises(ConfigErrors) as info:
        load(detect)
    return str(info.value)


def test_no_section_no_detection() -> None:
    assert load("") is None


def test_an_empty_section_turns_detection_on_with_defaults() -> None:
    config = load("detect:\n")
    assert config == DetectConfig(base=Path("/etc/wafproxy"))
    assert config.enabled and config.queue_size == 10_000 and config.remediation.enabled
    assert load("detect: {}\n") == config


def test_every_key() -> None:
    config = load(
        """\
detect:
  enabled: true
  queue_size: 500
  trusted_ips: [10.0.0.0/8, "2001:db8::1"]
  login_routes:
    - path: /login
    - path: /api/auth/*
      method: put
      username_field: email
      failure: {status: [401, 422], marker: "Invalid password", location: /login?error}
  detectors:
    scanner_user_agent: {severity: 8}
  remediation:
    enabled: true
    block_set: my-block
    count_set: my-count
    escalation: {factor: 3, max_ttl: 2d, remember: 10, forget_after: 12h}
    policies:
      - {type: "Recon:HTTP/*", min_severity: medium, action: count, ttl: 15m}
      - {type: "Impact:HTTP/RequestFlood", action: block}
"""
    )
    assert config is not None
    assert config.queue_size == 500
    assert config.trusted_ips == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("2001:db8::1/128"),
    )
    assert config.login_routes == (
        LoginRoute("/login"),
        LoginRoute(
            "/api/auth/",
            prefix=True,
            method="PUT",
            username_field="email",
            failure=LoginFailure(frozenset({401, 422}), b"Invalid password", "/login?error"),
        ),
    )
    assert getattr(config.detectors["scanner_user_agent"], "severity", None) == 8.0
    assert config.remediation == RemediationConfig(
        enabled=True,
        block_set="my-block",
        count_set="my-count",
        escalation=Escalation(factor=3.0, max_ttl=172_800.0, remember=10, forget_after=43_200.0),
        policies=(
            Policy("Recon:HTTP/*", Severity.MEDIUM, DecisionAction.COUNT, 900.0),
            Policy("Impact:HTTP/RequestFlood", Severity.HIGH, DecisionAction.BLOCK, 900.0),
        ),
    )


def test_disabled() -> None:
    config = load("detect: {enabled: false}\n")
    assert config is not None and not config.enabled


@pytest.mark.parametrize(
    ("detect", "expected"),
    [
        (
            "detect:\n  queue_sise: 10\n",
            "/etc/wafproxy/wafproxy.yaml:5:3: detect.queue_sise: unknown key 'queue_sise'; "
            "expected one of enabled, queue_size, trusted_ips, login_routes, detectors, "
            "remediation; did you mean 'queue_size'?",
        ),
        (
            "detect:\n  queue_size: 0\n",
            "/etc/wafproxy/wafproxy.yaml:5:15: detect.queue_size: expected an integer from 1 "
            "to 10000000; got 0",
        ),
        (
            "detect:\n  trusted_ips: [10.0.0.0/8, office]\n",
            "/etc/wafproxy/wafproxy.yaml:5:29: detect.trusted_ips[1]: expected an IP address "
            "or CIDR block; got 'office'",
        ),
        (
            "detect:\n  login_routes:\n    - {path: login}\n",
            "/etc/wafproxy/wafproxy.yaml:6:14: detect.login_routes[0].path: expected a path "
            "starting with / (a trailing * makes it a prefix); got 'login'",
        ),
        (
            "detect:\n  login_routes:\n    - {path: /login, failure: {status: [700]}}\n",
            "/etc/wafproxy/wafproxy.yaml:6:41: detect.login_routes[0].failure.status[0]: "
            "expected an integer from 100 to 599; got 700",
        ),
        (
            "detect:\n  remediation:\n    policies:\n      - {type: 'Recon:*', action: ban}\n",
            "/etc/wafproxy/wafproxy.yaml:7:35: detect.remediation.policies[0].action: "
            "expected one of block, count; got 'ban'",
        ),
        (
            "detect:\n  remediation:\n    escalation: {max_ttl: soon}\n",
            "/etc/wafproxy/wafproxy.yaml:6:27: detect.remediation.escalation.max_ttl: "
            "expected a duration like 90, 30s, 15m, 6h or 1d; got 'soon'",
        ),
        (
            "detect:\n  remediation: {block_set: same, count_set: same}\n",
            "/etc/wafproxy/wafproxy.yaml:5:16: detect.remediation: block_set and count_set "
            "must name different IP sets",
        ),
        (
            "detect:\n  detectors:\n    scaner_user_agent: {}\n",
            "/etc/wafproxy/wafproxy.yaml:6:5: detect.detectors.scaner_user_agent: unknown "
            "detector 'scaner_user_agent'; did you mean 'scanner_user_agent'?",
        ),
    ],
)
def test_error_text(detect: str, expected: str) -> None:
    assert error(detect) == expected
