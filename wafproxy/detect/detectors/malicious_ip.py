"""UnauthorizedAccess:HTTP/MaliciousIPCaller.Custom: traffic from an address on a threat list."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from wafproxy.detect.detector import Report, register
from wafproxy.detect.detectors._lists import ListCaller, ListSettings, load_lists
from wafproxy.detect.settings import score
from wafproxy.detect.threatlist import ThreatList

TYPE = "UnauthorizedAccess:HTTP/MaliciousIPCaller.Custom"
REPORT = Report(
    TYPE,
    "Request from an address on a threat list",
    "A client whose address is on one of your threat lists sent requests to the site.",
    "Block the address (a managed IP set fed from the same list stops it at the ACL); look at "
    "what it requested and whether any of it succeeded.",
)


@dataclass(frozen=True)
class MaliciousIpSettings(ListSettings):
    severity: float = score(5.0)


@register("malicious_ip", MaliciousIpSettings)
class MaliciousIpCaller(ListCaller):
    """Traffic from addresses on your own threat lists (a feed you subscribe to, addresses from
    an incident), read at start-up from local files: plain text (one address or CIDR per line,
    ``#`` comments), CSV with an address column, or STIX 2.1 JSON bundles of indicators.
    Without ``files`` the detector is not built.

    ```yaml
    malicious_ip: {files: [lists/feodo.csv, lists/incident-42.txt, lists/intel.json]}
    ```
    """

    name = "malicious_ip"
    finding_types: tuple[str, ...] = (TYPE,)

    def __init__(
        self,
        settings: MaliciousIpSettings,
        base: Path | None = None,
        lists: Sequence[ThreatList] | None = None,
    ) -> None:
        chosen = load_lists(settings.files, base) if lists is None else lists
        super().__init__(settings, chosen, REPORT)
