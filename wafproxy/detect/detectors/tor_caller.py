"""UnauthorizedAccess:HTTP/TorIPCaller: traffic from a Tor exit node."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from wafproxy.detect.detector import Report, register
from wafproxy.detect.detectors._lists import ListCaller, ListSettings, load_lists
from wafproxy.detect.settings import score
from wafproxy.detect.threatlist import ThreatList

TYPE = "UnauthorizedAccess:HTTP/TorIPCaller"
REPORT = Report(
    TYPE,
    "Request from a Tor exit node",
    "A client reached the site through the Tor network: its real address is hidden. Tor is "
    "also used for privacy, so this matters most together with other findings.",
    "If the site has no reason to serve Tor users on this route, challenge or block Tor exits "
    "(an IP set fed from the same exit list); otherwise watch the subject's other findings.",
)


@dataclass(frozen=True)
class TorCallerSettings(ListSettings):
    severity: float = score(5.0)


@register("tor_caller", TorCallerSettings)
class TorCaller(ListCaller):
    """Traffic from Tor exit nodes, with the exit list read at start-up from local files:
    the Tor Project's bulk exit list (one address per line) or its ``exit-addresses`` format
    (``ExitAddress 1.2.3.4 …`` lines), or any list format ``malicious_ip`` reads. Without
    ``files`` the detector is not built; refresh the file and reload to follow the network.

    ```yaml
    tor_caller: {files: [lists/tor-exit-addresses.txt], cooldown: 6h}
    ```
    """

    name = "tor_caller"
    finding_types: tuple[str, ...] = (TYPE,)

    def __init__(
        self,
        settings: TorCallerSettings,
        base: Path | None = None,
        lists: Sequence[ThreatList] | None = None,
    ) -> None:
        chosen = load_lists(settings.files, base) if lists is None else lists
        super().__init__(settings, chosen, REPORT)
