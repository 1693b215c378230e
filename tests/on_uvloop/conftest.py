"""Tests here run on uvloop's event loop, as ``wafproxy run`` serves: this directory's
``pytest_asyncio_loop_factories`` hook gives its tests (and only them) uvloop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import pytest
import uvloop
from kms.conftest import ca, root_source

__all__ = ["ca", "root_source"]


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    return {"uvloop": uvloop.new_event_loop}
