"""``run()``: what ``wafproxy run`` calls -- one serving process, or supervised workers."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from wafproxy.config.model import ServiceConfig
from wafproxy.config.runtime import build_runtime
from wafproxy.proxy_server import ExtraApp, run_loop, serve
from wafproxy.state import workers_notice
from wafproxy.supervisor import Supervisor

log = logging.getLogger("wafproxy")


def run(
    config: ServiceConfig,
    *,
    config_path: Path | None,
    workers: int = 1,
    extra_apps: Sequence[ExtraApp] = (),
) -> int:
    """Blocking. Compiles the rules first (raising ConfigErrors), then serves under uvloop;
    ``workers > 1`` forks that many processes sharing the listeners (SO_REUSEPORT)."""
    runtime = build_runtime(config)
    notice = workers_notice(config.state, workers)
    if notice is not None:
        log.warning("%s", notice)
    if workers <= 1:
        return run_loop(
            serve(
                config,
                config_path=config_path,
                runtime=runtime,
                extra_apps=extra_apps,
                tune_gc=True,
            )
        )
    return Supervisor(config, config_path, runtime, workers, extra_apps).run()
