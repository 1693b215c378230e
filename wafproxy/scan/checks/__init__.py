"""The registered checks. Import order is run order: known_vulnerabilities comes last so it
sees the versions in every response the other checks fetched."""

from wafproxy.scan.checks import disclosure, headers, methods, network, paths, tls, vulns

__all__ = ["disclosure", "headers", "methods", "network", "paths", "tls", "vulns"]
