"""The systems under test of the throughput benchmark and how to start each one.

Every wafproxy variant runs one worker. The two ``wafproxy run --upstream`` variants write their
decision log to stdout (the default), which the harness sends to a file; the ``-c`` variants set
``decision_log.destination`` to ``off`` or to a file, so the log's own cost shows.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml
from body_floor import body_scan_acl
from procs import free_port
from reqshapes import BENCH_DIR

EMPTY_ACL = {"web_acl": "empty", "default_action": "allow", "rules": []}
EMPTY_TARGET = 0.90
DEFAULT_TARGET = 0.80


@dataclass(frozen=True)
class Context:
    upstream_url: str
    work_dir: Path
    """A temp dir for rule files, service configs and decision logs."""


@dataclass(frozen=True)
class Launch:
    cmd: list[str]
    port: int
    stdout: Path | None = None
    """Where the process's stdout goes; None: with its stderr into the log."""
    decision_log: Path | None = None
    """The file the decision log goes to, if any (counted after the run as a sanity check)."""


@dataclass(frozen=True)
class System:
    name: str
    what: str
    target: float | None
    """The least acceptable requests/s ratio to the bare proxy, if there is one."""
    launch: Callable[[Context], Launch] | None
    """None for the upstream itself, which is already running."""


def bare(ctx: Context) -> Launch:
    port = free_port()
    script = str(BENCH_DIR / "bare_proxy.py")
    cmd = [sys.executable, script, "--upstream", ctx.upstream_url, "--port", str(port)]
    return Launch(cmd, port)


def wafproxy_cli(
    name: str, acl: Callable[[Context], Path] | None, program: list[str] | None = None
) -> Callable[[Context], Launch]:
    """``acl``: writes the web ACL file to run; None for the shipped default rules.
    ``program``: the command before ``--upstream`` (``wafproxy run`` unless given)."""

    def launch(ctx: Context) -> Launch:
        port, admin = free_port(), free_port()
        cmd = [
            *(program or wafproxy_cmd()), "--upstream", ctx.upstream_url,
            "--listen", f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{admin}",
        ]  # fmt: skip
        if acl is not None:
            cmd += ["--rules", str(acl(ctx))]
        log = ctx.work_dir / f"cli-{name}.decisions.log"
        return Launch(cmd, port, stdout=log, decision_log=log)

    return launch


def wafproxy_config(empty: bool, log: bool) -> Callable[[Context], Launch]:
    def launch(ctx: Context) -> Launch:
        port, admin = free_port(), free_port()
        name = f"{'empty' if empty else 'default'}-{'logfile' if log else 'logoff'}"
        log_file = ctx.work_dir / f"{name}.decisions.log" if log else None
        destination = "off" if log_file is None else str(log_file)
        config: dict[str, object] = {
            "listeners": [f"127.0.0.1:{port}"],
            "upstreams": {"app": {"targets": [ctx.upstream_url]}},
            "routes": [{"upstream": "app"}],
            "admin": {"listen": f"127.0.0.1:{admin}"},
            "decision_log": {"destination": destination},
        }
        if empty:
            config["rules"] = [str(empty_acl_file(ctx))]
        path = ctx.work_dir / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        return Launch([*wafproxy_cmd(), "-c", str(path)], port, decision_log=log_file)

    return launch


def wafproxy_cmd() -> list[str]:
    return [sys.executable, "-m", "wafproxy", "run"]


def empty_acl_file(ctx: Context) -> Path:
    return acl_file(ctx, "empty-acl.yaml", EMPTY_ACL)


def body_scan_acl_file(ctx: Context) -> Path:
    return acl_file(ctx, "body-scan-acl.yaml", body_scan_acl())


def acl_file(ctx: Context, name: str, acl: dict[str, object]) -> Path:
    path = ctx.work_dir / name
    path.write_text(yaml.safe_dump(acl, sort_keys=False), encoding="utf-8")
    return path


SYSTEMS = (
    System("upstream", "the upstream direct (shares core 1 with wrk)", None, None),
    System("bare", "bare aiohttp+uvloop pass-through proxy (baseline)", None, bare),
    System(
        "waf-empty", "wafproxy run --rules <empty ACL>; decision log: stdout to a file",
        EMPTY_TARGET, wafproxy_cli("empty", empty_acl_file),
    ),
    System(
        "waf-default", "wafproxy run (shipped default rules); decision log: stdout to a file",
        DEFAULT_TARGET, wafproxy_cli("default", None),
    ),
    System(
        "waf-bodyscan",
        "wafproxy run --rules <only the default web ACL's whole-body scans> (bench/body_floor.py)",
        None, wafproxy_cli("bodyscan", body_scan_acl_file),
    ),
    System(
        "waf-noscan",
        "wafproxy run (shipped default rules), every Hyperscan scan finding nothing (noscan.py)",
        None, wafproxy_cli("noscan", None, [sys.executable, str(BENCH_DIR / "noscan.py"), "run"]),
    ),
    System(
        "waf-empty-logoff", "wafproxy run -c: empty ACL, decision_log.destination: off",
        EMPTY_TARGET, wafproxy_config(empty=True, log=False),
    ),
    System(
        "waf-default-logoff", "wafproxy run -c: default rules, decision_log.destination: off",
        DEFAULT_TARGET, wafproxy_config(empty=False, log=False),
    ),
    System(
        "waf-empty-logfile", "wafproxy run -c: empty ACL, decision_log.destination: FILE",
        EMPTY_TARGET, wafproxy_config(empty=True, log=True),
    ),
    System(
        "waf-default-logfile", "wafproxy run -c: default rules, decision_log.destination: FILE",
        DEFAULT_TARGET, wafproxy_config(empty=False, log=True),
    ),
)  # fmt: skip
SYSTEM_NAMES = tuple(s.name for s in SYSTEMS)
