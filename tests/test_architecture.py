"""The dependency rules of DESIGN.md §2 and the hot-path rule, checked on the source: the rule
engine (wafproxy/acl/) imports nothing from aiohttp or asyncio and never the stdlib ``re``."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import wafproxy.acl

ACL_DIR = Path(wafproxy.acl.__file__).parent
ACL_MODULES = sorted(ACL_DIR.rglob("*.py"))  # subpackages too (acl/transforms/)
FORBIDDEN_IN_ACL = ("aiohttp", "asyncio")


def module_name(path: Path) -> str:
    parts = path.relative_to(ACL_DIR).with_suffix("").parts
    return ".".join(("wafproxy.acl", *(p for p in parts if p != "__init__")))


def imported_modules(path: Path) -> set[str]:
    """Every module an ``import`` or ``from ... import`` names, wherever it appears (functions,
    ``if TYPE_CHECKING:`` blocks, try/except) -- absolute names only."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, (ast.Attribute, ast.Name))
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value)
    return names


PATTERN_READERS = {"required_chars.py": {"re._parser", "re._constants"}}
"""Modules that read the rules' patterns (at load time, never request data) with Python's
regular-expression parser: they may import the parser and its constants, not ``re`` itself."""


def top_level(name: str) -> str:
    return name.split(".", 1)[0]


def test_the_acl_package_has_modules() -> None:
    assert {p.name for p in ACL_MODULES} >= {"engine.py", "compile.py", "statements.py"}


@pytest.mark.parametrize("path", ACL_MODULES, ids=[module_name(p) for p in ACL_MODULES])
def test_acl_modules_do_not_import_aiohttp_or_asyncio(path: Path) -> None:
    bad = {n for n in imported_modules(path) if top_level(n) in FORBIDDEN_IN_ACL}
    assert not bad, f"{path.name} imports {sorted(bad)}"


@pytest.mark.parametrize("path", ACL_MODULES, ids=[module_name(p) for p in ACL_MODULES])
def test_acl_modules_do_not_import_the_stdlib_re(path: Path) -> None:
    """Request data is matched by Hyperscan / RE2 only (ReDoS-proof)."""
    allowed = PATTERN_READERS.get(path.name, set())
    bad = {n for n in imported_modules(path) if top_level(n) == "re" and n not in allowed}
    assert not bad, f"{path.name} imports {sorted(bad)}"


def test_the_checker_sees_what_it_must(tmp_path: Path) -> None:
    """The AST walk finds the import forms the rules are about."""
    source = (
        "import re\nimport asyncio.events as ev\nfrom aiohttp import web\n"
        "def f():\n    import importlib\n    importlib.import_module('asyncio')\n"
        "from . import sibling\nimport re2\n"
    )
    probe = tmp_path / "probe.py"
    probe.write_text(source)
    names = imported_modules(probe)
    assert {top_level(n) for n in names} == {"re", "asyncio", "aiohttp", "importlib", "re2"}


def test_importing_the_engine_loads_neither_aiohttp_nor_asyncio() -> None:
    """Transitively too: nothing the engine imports from wafproxy pulls the edge in."""
    modules = [module_name(p) for p in ACL_MODULES]
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in modules)
        + "print(sorted(m for m in sys.modules if m.split('.')[0] in ('aiohttp', 'asyncio')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
