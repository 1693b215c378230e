"""Findings shared by the scanner (scan/) and the detectors (detect/). See docs/findings.md.

- ``model``: Finding, Severity, Status, finding_id (pure values);
- ``store``: FindingStore (SQLite), FindingQuery, Retention;
- ``suppress``: SuppressionRule;
- ``sinks``: JsonLinesSink, WebhookSink, FindingsMetrics;
- ``service``: FindingsService (store + sinks + metrics), build_service;
- ``config``: the ``findings:`` config section; ``api``: the admin endpoints.

The values are re-exported here; the async parts (service, sinks) are imported on use, so the
config loader can parse the ``findings:`` section without pulling in the HTTP client.
"""

from wafproxy.findings.model import Finding, Severity, Status, finding_id
from wafproxy.findings.store import FindingQuery, FindingStore, Recorded, Retention
from wafproxy.findings.suppress import SuppressionRule

__all__ = [
    "Finding",
    "FindingQuery",
    "FindingStore",
    "Recorded",
    "Retention",
    "Severity",
    "Status",
    "SuppressionRule",
    "finding_id",
]
