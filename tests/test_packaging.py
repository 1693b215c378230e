"""The package ships everything it imports: every subpackage is listed, and the console script
and the shipped rules are where the code expects them."""

from __future__ import annotations

import tomllib
from pathlib import Path

from wafproxy.acl.compile import default_rule_files, managed_rules_dir

ROOT = Path(__file__).resolve().parent.parent


def test_every_subpackage_is_listed_in_pyproject() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "wafproxy").rglob("__init__.py")
        if "__pycache__" not in p.parts
    }
    assert found <= listed
    assert config["package-dir"]["wafproxy.rules"] == "rules"


def test_console_script_points_at_main() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["wafproxy"] == "wafproxy.cli:main"


def test_shipped_rules_are_package_data() -> None:
    assert managed_rules_dir().resolve() == (ROOT / "rules").resolve()
    assert all(p.exists() for p in default_rule_files())
