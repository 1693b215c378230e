"""The real redis-server of tests/state/conftest.py, shared with the findings tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "state_conftest", Path(__file__).parent.parent / "state" / "conftest.py"
)
assert _spec is not None and _spec.loader is not None
_state = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _state
_spec.loader.exec_module(_state)

RedisServer = _state.RedisServer
redis_server = _state.redis_server
