"""The Hyperscan database cache: a second compile of the same set loads instead of compiling,
a changed set never reuses an old database, and refusals are remembered."""

from __future__ import annotations

from pathlib import Path

import pytest

from wafproxy.acl import hscache
from wafproxy.acl.matchers import HYPERSCAN_AVAILABLE, Atom, build_group

pytestmark = pytest.mark.skipif(not HYPERSCAN_AVAILABLE, reason="hyperscan not installed")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("WAFPROXY_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(hscache, "_memory", {})
    return tmp_path / "hyperscan"


def test_a_compiled_set_is_stored_and_loaded_again(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    atoms = [Atom(0, "(?i)union\\s+select"), Atom(1, "(?i)onerror\\s*=")]  # no rare character:
    # one database (one with a rare character would add a lean one: matchers._LeanMatcher)
    first = build_group(0, "f", (), atoms)
    assert first.scan(["1 UNION  SELECT 2"]) == {0}
    assert len(list(cache.iterdir())) == 1
    monkeypatch.setattr(hscache, "_memory", {})
    compiled: list[str] = []
    real = hscache.cached_database

    def spy(key, compile_db, dump, load):  # type: ignore[no-untyped-def]
        return real(key, lambda: compiled.append(key) or compile_db(), dump, load)

    monkeypatch.setattr("wafproxy.acl.matchers.cached_database", spy)
    again = build_group(0, "f", (), atoms)
    assert compiled == []  # loaded from disk, not compiled
    assert again.scan(["x ONERROR ="]) == {1}
    changed = build_group(0, "f", (), [Atom(0, "(?i)union\\s+all")])
    assert len(compiled) == 1  # a different set compiles anew
    assert changed.scan(["1 UNION  SELECT 2"]) == frozenset()


def test_a_damaged_cache_file_is_compiled_again(cache: Path) -> None:
    atoms = [Atom(0, "abc")]
    build_group(0, "f", (), atoms)
    (entry,) = cache.iterdir()
    entry.write_bytes(b"not a database")
    hscache._memory.clear()
    assert build_group(0, "f", (), atoms).scan(["xabcx"]) == {0}


def test_a_shared_cache_directory_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WAFPROXY_CACHE_DIR", str(tmp_path))
    (tmp_path / "hyperscan").mkdir(mode=0o777)
    (tmp_path / "hyperscan").chmod(0o777)
    assert hscache.cache_dir() is None
    monkeypatch.setenv("WAFPROXY_CACHE_DIR", "off")
    assert hscache.cache_dir() is None
