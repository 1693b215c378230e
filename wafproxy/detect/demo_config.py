"""What ``wafproxy demo`` adds to its config so that ``wafproxy demo attack`` shows detection.

- ``detect:`` on, with the demo's login form as a login route, remediation on, the threat-list
  and Tor detectors reading files written here (documentation addresses that the attack
  generator then speaks as), and the site-wide baseline learning in seconds instead of minutes
  (a demo lasts one minute; production keeps the defaults);
- ``client_ip.trusted_proxies``: loopback, so the generator's X-Forwarded-For gives each
  scenario its own client address (a real deployment trusts its load balancer instead);
- ``findings:`` in memory (the demo leaves no files behind).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from wafproxy.config.model import ServiceConfig
from wafproxy.config.source import parse
from wafproxy.detect.config import parse_detect
from wafproxy.findings.config import FindingsConfig
from wafproxy.findings.store import MEMORY

THREAT_ADDRESS = "203.0.113.66"
TOR_ADDRESS = "203.0.113.99"
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
DEMO_DETECT = """\
login_routes:
  - {path: /login, username_field: username}      # the demo answers 401 to a bad password
detectors:
  malicious_ip: {files: [threats.txt, threats.stix.json]}
  tor_caller: {files: [tor-exit-addresses.txt]}
  traffic_volume: {interval: 2s, warmup: 5, min_requests: 100}
remediation: {enabled: true}
"""
THREATS_TEXT = f"""\
# the demo's custom threat list: one address or CIDR per line
{THREAT_ADDRESS}    demo: a known-bad caller
198.18.0.0/15       demo: a whole network
"""
TOR_EXITS = f"""\
ExitNode 0011BD2485AD45D984EC4159C88FC066E5E3300E
Published 2026-01-01 00:00:00
LastStatus 2026-01-01 01:00:00
ExitAddress {TOR_ADDRESS} 2026-01-01 01:01:01
"""


def stix_bundle() -> str:
    indicator = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": "indicator--6b6b7e4e-2c4f-4b1a-9d86-0f2b1c1d0e01",
        "created": "2026-01-01T00:00:00.000Z",
        "modified": "2026-01-01T00:00:00.000Z",
        "pattern": "[ipv4-addr:value = '203.0.113.77']",
        "pattern_type": "stix",
        "valid_from": "2026-01-01T00:00:00Z",
    }
    bundle = {"type": "bundle", "id": "bundle--0b7e8f7a-9a53-4f0c-8d8e-1b2c3d4e5f60"}
    return json.dumps({**bundle, "objects": [indicator]}, indent=2)


def write_lists(directory: Path) -> None:
    (directory / "threats.txt").write_text(THREATS_TEXT, encoding="utf-8")
    (directory / "threats.stix.json").write_text(stix_bundle(), encoding="utf-8")
    (directory / "tor-exit-addresses.txt").write_text(TOR_EXITS, encoding="utf-8")


@contextlib.contextmanager
def with_detection(config: ServiceConfig) -> Iterator[ServiceConfig]:
    """``config`` with detection on; the threat-list files live as long as the context."""
    with tempfile.TemporaryDirectory(prefix="wafproxy-demo-") as tmp:
        directory = Path(tmp)
        write_lists(directory)
        detect = parse_detect(parse(DEMO_DETECT, "<demo detect config>"), directory)
        client_ip = replace(config.client_ip, trusted_proxies=LOOPBACK)
        yield replace(
            config, detect=detect, findings=FindingsConfig(store=MEMORY), client_ip=client_ip
        )
