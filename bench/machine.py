"""What the numbers were measured on: for the head of every report and RESULTS.md."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path

from reqshapes import BENCH_DIR


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_commit() -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(BENCH_DIR), "describe", "--always", "--dirty"],
            capture_output=True, text=True, timeout=10, check=True,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip()


def machine_lines() -> list[str]:
    return [
        f"date: {datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"cpu: {cpu_model()}, nproc {os.cpu_count()}",
        f"python: {platform.python_implementation()} {platform.python_version()}",
        f"wafproxy commit: {git_commit()}",
    ]
