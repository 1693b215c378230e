"""wafproxy/gctune.py: the serving process tunes its collector; everything else keeps CPython's
defaults. Each case runs in a fresh interpreter, so this test process's collector is untouched."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def test_tune_raises_the_young_threshold_and_freezes_what_is_alive() -> None:
    out = _python(
        """
        import gc
        from wafproxy import gctune
        keep = [[i] for i in range(1000)]
        gctune.tune()
        print(gc.get_threshold()[0], gc.get_freeze_count() >= 1000, gc.is_tracked(keep))
        """
    )
    assert out == "20000 True True"


def test_settle_does_nothing_unless_the_process_tuned() -> None:
    out = _python(
        """
        import gc
        from wafproxy import gctune
        gctune.settle()
        print(gc.get_threshold()[0], gc.get_freeze_count())
        """
    )
    assert out == "700 0"


def test_settle_after_a_reload_reclaims_a_replaced_configurations_cycles() -> None:
    out = _python(
        """
        import gc, weakref
        from wafproxy import gctune

        class Config:
            pass

        old = Config()
        old.me = old  # a cycle: only the collector can free it
        ref = weakref.ref(old)
        gctune.tune()  # start-up: the old configuration is frozen
        del old
        gc.collect()
        frozen_survives = ref() is not None
        gctune.settle()  # the reload
        print(frozen_survives, ref() is None)
        """
    )
    assert out == "True True"
