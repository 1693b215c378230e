"""Exfiltration:HTTP/AnomalousResponseVolume: a client receiving far more bytes than usual."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from wafproxy.detect.detector import Report, make_finding, register
from wafproxy.detect.detectors._rates import KeyedRates, Spike, rate_rule
from wafproxy.detect.observation import Observation
from wafproxy.detect.settings import DetectorSettings, count, number, score, seconds
from wafproxy.findings.model import Finding

TYPE = "Exfiltration:HTTP/AnomalousResponseVolume"
MB = 1_000_000


@dataclass(frozen=True)
class ResponseVolumeSettings(DetectorSettings):
    severity: float = score(8.0)
    interval: float = seconds(60.0)
    span: float = number(30.0, low=2.0)
    warmup: int = count(5)
    sigma: float = number(6.0, low=1.0)
    min_ratio: float = number(5.0, low=1.0)
    min_bytes: int = count(20 * MB)
    """Bytes per interval below which no client is judged."""
    new_client_ceiling: int = count(200 * MB)
    cooldown: float = seconds(3600.0)


@register("response_volume", ResponseVolumeSettings)
class ResponseVolume:
    """A client downloading far more than it (or a typical client) usually does: scraping,
    a dump through an injection, an over-broad API query.

    Response bytes are summed per client per ``interval`` and judged like ``request_flood``:
    ``sigma`` deviations above the client's EWMA baseline, ``min_ratio`` times it, and at least
    ``min_bytes``; a new client against the site-wide per-client baseline, or
    ``new_client_ceiling`` until that is warm.

    ```yaml
    response_volume: {interval: 1m, min_bytes: 50000000, sigma: 6}
    ```
    """

    name = "response_volume"
    finding_types: tuple[str, ...] = (TYPE,)

    def __init__(self, settings: ResponseVolumeSettings, base: Path | None = None) -> None:
        self.settings = settings
        rule = rate_rule(
            settings,
            minimum=float(settings.min_bytes),
            ceiling=float(settings.new_client_ceiling),
        )
        self.rates = KeyedRates(rule, settings.max_keys, settings.cooldown)

    def observe(self, obs: Observation) -> Iterable[Finding]:
        _, spike = self.rates.add(obs.client_ip, obs.time, obs.bytes_out, obs.request_id)
        return () if spike is None else (self._finding(obs, spike),)

    def state_keys(self) -> int:
        return len(self.rates)

    def _finding(self, obs: Observation, spike: Spike) -> Finding:
        interval = self.settings.interval
        report = Report(
            TYPE,
            f"Unusual response volume to {obs.client_ip}",
            f"{obs.client_ip} received {spike.value / MB:.1f} MB in {interval:g} s, reaching its "
            f"limit of {spike.limit / MB:.1f} MB ({spike.basis.value}: mean "
            f"{spike.mean / MB:.2f} MB).",
            "Check what the client downloaded (the evidence request ids in the decision log): "
            "an export or dump it should not reach means an authorisation gap or an injection. "
            "Block the address while you look; cap response sizes or page large queries.",
        )
        details = {
            "bytes": int(spike.value),
            "interval_seconds": interval,
            "interval_start": spike.interval_start,
            "limit_bytes": int(spike.limit),
            "basis": spike.basis.name.lower(),
            "baseline_mean_bytes": round(spike.mean),
            "baseline_std_bytes": round(spike.std),
            "baseline_samples": spike.samples,
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
