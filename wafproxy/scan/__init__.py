"""Inspector-style assessment of the upstream apps. See docs/scan.md.

- ``registry``: CHECKS (name -> ``async def check(target) -> list[Finding]``), filled by
  importing ``wafproxy.scan.checks``;
- ``runner``: run_scan (directly and through the proxy), ScanPlan, ScanSettings;
- ``scheduler``: scheduled scans inside the proxy; ``sidecar``: the lifecycle wiring;
- ``report`` / ``html``: JSON, SARIF 2.1.0 and HTML reports; ``patches``: virtual patches;
- ``osv``: the offline OSV advisory database; ``config``: the ``scan:`` config section.

Nothing is imported here, so the config loader can parse ``scan:`` without the checks.
"""
