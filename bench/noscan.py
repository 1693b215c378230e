"""``wafproxy`` with every Hyperscan scan answering "nothing found": a diagnostic, not a product
configuration (the rules still compile and load; no pattern can match).

Why: with the shipped rules R2 (a 2 KB form) stays far below its 0.8 target. ``waf-bodyscan``
shows what the body's scans cost with nothing else; this shows the other side: what the request
path costs with everything but the scans, i.e. the ratio that cheaper or fewer patterns alone
could reach at best. Run as ``python bench/noscan.py run …`` with ``wafproxy run``'s options.
"""

from __future__ import annotations

import runpy
import sys

from wafproxy.acl import matchers


def _found_nothing(self: object, data: bytes, found: set[int]) -> None:
    return None


if __name__ == "__main__":
    matchers._HyperscanMatcher.scan_into = _found_nothing  # type: ignore[method-assign]
    sys.argv[0] = "wafproxy"
    runpy.run_module("wafproxy", run_name="__main__", alter_sys=True)
