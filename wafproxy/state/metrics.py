"""The shared state's Prometheus metrics, on the proxy's registry (labels are fixed sets or
config names, never request data)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

STATE_OPERATIONS = ("rate", "ip_sets")
ROUND_TRIP_BUCKETS = (
    1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0,
)  # fmt: skip


class StateMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        reg = registry if registry is not None else CollectorRegistry()
        self.errors = Counter(
            "wafproxy_state_errors",
            "Requests or operations that found the shared state unreachable (on_state_error "
            "decided for rate-based rules).",
            ["backend", "operation"],
            registry=reg,
        )
        self.up = Gauge(
            "wafproxy_state_up",
            "1 while the shared state answers, 0 during an incident.",
            ["backend"],
            multiprocess_mode="livemin",
            registry=reg,
        )
        self.evicted = Counter(
            "wafproxy_rate_keys_evicted",
            "Rate-based keys dropped because state.max_keys was reached (their counts are lost).",
            registry=reg,
        )
        self.keys = Gauge(
            "wafproxy_rate_keys",
            "Rate-based keys tracked in memory.",
            multiprocess_mode="livesum",
            registry=reg,
        )
        self.reevaluations = Counter(
            "wafproxy_rate_reevaluations",
            "Requests judged again because the shared counts put a key over its limit.",
            registry=reg,
        )
        self.round_trip = Histogram(
            "wafproxy_state_round_trip_seconds",
            "Time of the one state round trip of a request that touched rate-based rules.",
            buckets=ROUND_TRIP_BUCKETS,
            registry=reg,
        )
        self.ip_set_entries = Gauge(
            "wafproxy_ip_set_entries",
            "Live entries of each dynamic IP set.",
            ["ip_set"],
            multiprocess_mode="livemax",
            registry=reg,
        )
        for operation in STATE_OPERATIONS:
            for backend in ("memory", "redis"):
                self.errors.labels(backend, operation)
