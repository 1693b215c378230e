"""Fixtures for the scanner tests: the weak and the good app on 127.0.0.1, an extra open TCP
port, a closed one, and the shipped advisory database."""

from __future__ import annotations

import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from apps import Served, good_app, open_port, serve, weak_app

from wafproxy.scan.osv import AdvisoryDB


@pytest.fixture(scope="session")
def advisories() -> AdvisoryDB:
    return AdvisoryDB.load()


@pytest.fixture
async def weak(tmp_path: Path) -> AsyncIterator[Served]:
    static = tmp_path / "static"
    static.mkdir()
    async with serve(weak_app(static)) as served:
        yield served


@pytest.fixture
async def good() -> AsyncIterator[Served]:
    async with serve(good_app()) as served:
        yield served


@pytest.fixture
async def extra_port() -> AsyncIterator[int]:
    async with open_port() as port:
        yield port


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
