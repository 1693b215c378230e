"""One module per detector; importing this package registers them all in ``DETECTORS``."""

from wafproxy.detect.detectors import (
    brute_force,
    compromise,
    credential_stuffing,
    malicious_ip,
    path_probe,
    request_flood,
    response_volume,
    scanner_user_agent,
    sensitive_files,
    tor_caller,
    traffic_volume,
    waf_block_spike,
)

__all__ = [
    "brute_force",
    "compromise",
    "credential_stuffing",
    "malicious_ip",
    "path_probe",
    "request_flood",
    "response_volume",
    "scanner_user_agent",
    "sensitive_files",
    "tor_caller",
    "traffic_volume",
    "waf_block_spike",
]
