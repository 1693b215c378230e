"""Impact:HTTP/RequestFlood: one client's request rate far above its learned baseline."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from wafproxy.detect.detector import Report, make_finding, register
from wafproxy.detect.detectors._rates import KeyedRates, Spike, rate_rule
from wafproxy.detect.observation import Observation
from wafproxy.detect.settings import DetectorSettings, count, number, score, seconds
from wafproxy.findings.model import Finding

TYPE = "Impact:HTTP/RequestFlood"


@dataclass(frozen=True)
class RequestFloodSettings(DetectorSettings):
    severity: float = score(7.0)
    interval: float = seconds(10.0)
    span: float = number(60.0, low=2.0)
    """Intervals the baseline averages over (EWMA span)."""
    warmup: int = count(6)
    """A client's own baseline judges it after this many active intervals."""
    sigma: float = number(6.0, low=1.0)
    min_ratio: float = number(3.0, low=1.0)
    min_requests: int = count(200)
    """Requests per interval below which no client is judged a flood."""
    new_client_ceiling: int = count(1000)
    """Requests per interval for a new client before any baseline is warm."""
    cooldown: float = seconds(600.0)


@register("request_flood", RequestFloodSettings)
class RequestFlood:
    """A client sending requests far faster than it (or, for a new client, a typical client of
    this site) usually does.

    Requests are counted per client per ``interval``; finished intervals in which the client
    was active feed its EWMA baseline (idle intervals are not counted: a browser that loads a
    page and goes quiet is not a slow client). The interval in progress alarms when it passes
    ``sigma`` standard deviations above the mean, ``min_ratio`` times the mean and
    ``min_requests``, all three. A new client is judged against the site-wide per-client
    baseline, or ``new_client_ceiling`` until that is warm.

    ```yaml
    request_flood: {interval: 10s, sigma: 6, min_requests: 200, new_client_ceiling: 1000}
    ```
    """

    name = "request_flood"
    finding_types: tuple[str, ...] = (TYPE,)

    def __init__(self, settings: RequestFloodSettings, base: Path | None = None) -> None:
        self.settings = settings
        rule = rate_rule(
            settings,
            minimum=float(settings.min_requests),
            ceiling=float(settings.new_client_ceiling),
        )
        self.rates = KeyedRates(rule, settings.max_keys, settings.cooldown)

    def observe(self, obs: Observation) -> Iterable[Finding]:
        _, spike = self.rates.add(obs.client_ip, obs.time, 1.0, obs.request_id)
        return () if spike is None else (self._finding(obs, spike),)

    def state_keys(self) -> int:
        return len(self.rates)

    def _finding(self, obs: Observation, spike: Spike) -> Finding:
        interval = self.settings.interval
        report = Report(
            TYPE,
            f"Request flood from {obs.client_ip}",
            f"{obs.client_ip} sent {spike.value:.0f} requests in {interval:g} s, reaching its "
            f"limit of {spike.limit:.0f} ({spike.basis.value}: mean {spike.mean:.1f}, "
            f"standard deviation {spike.std:.1f}).",
            "Rate-limit or block the address (a rate_based rule keyed on the client IP); if it is "
            "a known partner or crawler, give it its own allowance instead.",
        )
        details = {
            "requests": int(spike.value),
            "interval_seconds": interval,
            "interval_start": spike.interval_start,
            "limit": round(spike.limit, 1),
            "basis": spike.basis.name.lower(),
            "baseline_mean": round(spike.mean, 2),
            "baseline_std": round(spike.std, 2),
            "baseline_samples": spike.samples,
            "sigma": self.settings.sigma,
        }
        return make_finding(
            self.name,
            report,
            obs,
            subject=obs.client_ip,
            severity=self.settings.severity,
            evidence=(spike.first_id, obs.request_id),
            details=details,
        )
