"""``wafproxy test``: run YAML rule test files and print failures with file:line."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from wafproxy.acl.testcases import discover, load_test_file, run_test
from wafproxy.errors import ConfigError, ConfigErrors


def run_paths(paths: Sequence[Path], *, verbose: bool = False) -> int:
    files = discover(paths)
    if not files:
        print("no *.tests.yaml files found")
        return 1
    passed = failed = 0
    for path in files:
        try:
            tf = load_test_file(path)
        except (ConfigErrors, ConfigError) as exc:
            errors = exc.errors if isinstance(exc, ConfigErrors) else (exc,)
            for error in errors:
                print(f"ERROR {error}")
            failed += 1
            continue
        for test in tf.tests:
            problems = run_test(tf, test)
            if problems:
                failed += 1
                print(f"FAIL {test.mark} {test.name}")
                for problem in problems:
                    print(f"     {problem}")
            else:
                passed += 1
                if verbose:
                    print(f"ok   {test.mark} {test.name}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0
