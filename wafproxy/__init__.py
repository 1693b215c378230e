"""wafproxy: a reverse-proxy web application firewall with AWS WAF semantics."""

__version__ = "0.1.0"
