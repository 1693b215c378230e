"""The findings service and the scan scheduler, hung off the proxy's lifecycle.

``create_sidecars`` opens the findings store (off the event loop) before the admin app is
built, so the admin API can serve findings; ``start`` launches the scheduled scans once the
listeners are bound (the scan through the proxy needs the proxy's port). With several workers
only one runs the scheduler; every worker serves the findings API from the shared SQLite file.
The detect service (``detect:``) also lives here, one per worker: it needs the findings service
(without ``findings:`` it uses the same default store as the scanner) and the shared state for
its decisions; it stops before the findings service so its last findings are recorded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CollectorRegistry

from wafproxy.config.model import ServiceConfig
from wafproxy.config.runtime import Runtime
from wafproxy.findings import api as findings_api
from wafproxy.findings.config import FindingsConfig
from wafproxy.findings.service import FindingsService, build_service
from wafproxy.scan import api as scan_api
from wafproxy.scan.scheduler import ProxyAddress, ScanScheduler

if TYPE_CHECKING:
    from wafproxy.detect.service import DetectService
    from wafproxy.state import SharedState

log = logging.getLogger("wafproxy.scan")
Authorized = Callable[[web.Request], bool]


@dataclass
class Sidecars:
    findings: FindingsService | None = None
    scanner: ScanScheduler | None = None
    detect: DetectService | None = None

    def admin_routes(self, app: web.Application, authorized: Authorized) -> None:
        if self.findings is not None:
            findings_api.add_routes(app, self.findings, authorized)
        if self.scanner is not None:
            scan_api.add_routes(app, self.scanner, authorized)

    async def start(self) -> None:
        if self.findings is not None:
            await self.findings.start()
        if self.detect is not None:
            await self.detect.start()
        if self.scanner is not None:
            await self.scanner.start()

    async def stop_scans(self) -> None:
        """First thing at shutdown: no scan through a proxy that is closing."""
        if self.scanner is not None:
            await self.scanner.stop()

    async def stop(self) -> None:
        await self.stop_scans()
        if self.detect is not None:
            await self.detect.stop()
            self.detect = None
        if self.findings is not None:
            await self.findings.stop()
            self.findings = None


async def create_sidecars(
    config: ServiceConfig,
    runtime: Callable[[], Runtime],
    registry: CollectorRegistry | None,
    *,
    proxy_address: Callable[[], ProxyAddress | None],
    skip_ports: Callable[[], Sequence[int]],
    schedule: bool = True,
    state: SharedState | None = None,
) -> Sidecars:
    scan = config.scan
    findings_config = config.findings
    detect = config.detect if config.detect is not None and config.detect.enabled else None
    if findings_config is None and not scan.enabled and detect is None:
        return Sidecars()
    chosen = findings_config or FindingsConfig(store=_default_store(config))
    service = await asyncio.to_thread(build_service, chosen, registry)
    scanner = None
    if scan.enabled and schedule:
        scanner = ScanScheduler(
            runtime,
            scan,
            service,
            proxy_address=proxy_address,
            skip_ports=skip_ports,
            registry=registry,
        )
    detect_service = None
    if detect is not None:
        from wafproxy.detect.service import build_detect_service

        detect_service = await asyncio.to_thread(
            build_detect_service, detect, service, state, registry
        )
    return Sidecars(service, scanner, detect_service)


def _default_store(config: ServiceConfig) -> str:
    """``findings.db`` beside the config file; in memory without one (``run --upstream``)."""
    if config.path is None:
        return ":memory:"
    return str(config.path.parent / "findings.db")
