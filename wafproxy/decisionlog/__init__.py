"""The decision log: one JSON line per request, in AWS WAF log field names.

- ``config``: DecisionLogConfig (destination, rotation, redaction, the action filter);
- ``record``: format_record, the record as a mapping, and the verdict's fields;
- ``http_request``: the record's ``httpRequest`` field, redacted and size-bounded;
- ``line``: format_line, the same record as one JSON line, written fast;
- ``sinks``: stdout and the size-rotated file;
- ``writer``: DecisionLog, the bounded buffer and the thread that writes it.
"""

from wafproxy.decisionlog.config import DecisionLogConfig
from wafproxy.decisionlog.line import format_line
from wafproxy.decisionlog.record import format_record
from wafproxy.decisionlog.writer import DecisionLog

__all__ = ["DecisionLog", "DecisionLogConfig", "format_line", "format_record"]
