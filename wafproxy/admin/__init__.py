"""The admin API: /metrics, /healthz, /readyz (bound to loopback unless a token is set)."""
