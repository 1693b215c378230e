"""Behavior:HTTP/TrafficVolumeUnusual: the whole site's request rate far above its baseline."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from wafproxy.detect.detector import Report, make_finding, register
from wafproxy.detect.detectors._rates import KeyedRates, Spike, rate_rule
from wafproxy.detect.observation import Observation
from wafproxy.detect.settings import DetectorSettings, count, number, score, seconds
from wafproxy.findings.model import Finding

TYPE = "Behavior:HTTP/TrafficVolumeUnusual"
TOP = 5
"""Heavy hitters tracked per interval (Misra-Gries counters), named in the finding."""
SITE = "*"


@dataclass(frozen=True)
class TrafficVolumeSettings(DetectorSettings):
    severity: float = score(5.0)
    max_keys: int = count(1000)
    """Sites (Host values) tracked; the header is the client's, so it is bounded too."""
    interval: float = seconds(10.0)
    span: float = number(90.0, low=2.0)
    warmup: int = count(30)
    sigma: float = number(6.0, low=1.0)
    min_ratio: float = number(3.0, low=1.0)
    min_requests: int = count(300)
    fill_gaps: int = count(360, low=0)
    """Silent intervals counted as zero samples after a pause (at most this many)."""
    cooldown: float = seconds(600.0)


@register("traffic_volume", TrafficVolumeSettings)
class TrafficVolume:
    """A site (a Host) receiving far more requests than it has learned to expect: a
    distributed flood that no single client's rate gives away, or a crawl gone wild.

    Requests per ``interval`` feed an EWMA baseline per site, silent intervals counting as zero;
    daily ramps are slow against the baseline's span, so only a sudden surge passes ``sigma``
    deviations, ``min_ratio`` times the mean and ``min_requests`` at once. Nothing is judged
    during the first ``warmup`` intervals. The finding names the heaviest clients of the
    interval.

    ```yaml
    traffic_volume: {interval: 10s, warmup: 30, sigma: 6, min_requests: 300}
    ```
    """

    name = "traffic_volume"
    finding_types: tuple[str, ...] = (TYPE,)

    def __init__(self, settings: TrafficVolumeSettings, base: Path | None = None) -> None:
        self.settings = settings
        rule = rate_rule(
            settings,
            minimum=float(settings.min_requests),
            ceiling=0.0,
            fill_gaps=settings.fill_gaps,
            population=False,
        )
        self.rates = KeyedRates(rule, settings.max_keys, settings.cooldown)
        self.tops: dict[str, HeavyHitters] = {}

    def observe(self, obs: Observation) -> Iterable[Finding]:
        site = obs.host.lower()
        state, spike = self.rates.add(site, obs.time, 1.0, obs.request_id)
        top = self._top(site, state.bucket)
        top.count(obs.client_ip)
        return () if spike is None else (self._finding(obs, site, spike, top),)

    def state_keys(self) -> int:
        return len(self.rates)

    def _top(self, site: str, bucket: int) -> HeavyHitters:
        top = self.tops.get(site)
        if top is None or top.bucket != bucket:
            if top is None and len(self.tops) >= self.settings.max_keys:
                self.tops.clear()  # many Host values at once: forget this interval's tops
            top = self.tops[site] = HeavyHitters(bucket)
        return top

    def _finding(self, obs: Observation, site: str, spike: Spike, top: HeavyHitters) -> Finding:
        interval = self.settings.interval
        report = Report(
            TYPE,
            f"Unusual traffic volume on {site or 'the site'}",
            f"{spike.value:.0f} requests in {interval:g} s against a baseline of "
            f"{spike.mean:.1f} (standard deviation {spike.std:.1f}); limit {spike.limit:.0f}.",
            "Look at the heaviest clients and routes: a distributed flood calls for rate-based "
            "rules per client and per route (or upstream capacity); a launch or a campaign "
            "needs nothing but a note.",
        )
        details = {
            "requests": int(spike.value),
            "interval_seconds": interval,
            "interval_start": spike.interval_start,
            "limit": round(spike.limit, 1),
            "baseline_mean": round(spike.mean, 2),
            "baseline_std": round(spike.std, 2),
            "baseline_samples": spike.samples,
            "top_clients": top.heaviest(),
        }
        return make_finding(
            self.name,
            report,
            obs,
            subject=SITE,
            severity=self.settings.severity,
            evidence=(spike.first_id, obs.request_id),
            details=details,
            resource=site or "*",
        )


class HeavyHitters:
    """Misra-Gries counters for one interval: any client sending more than 1/(TOP+1) of the
    interval's requests is among them, in O(TOP) memory."""

    __slots__ = ("bucket", "counts")

    def __init__(self, bucket: int) -> None:
        self.bucket = bucket
        self.counts: dict[str, int] = {}

    def count(self, key: str) -> None:
        counts = self.counts
        if key in counts:
            counts[key] += 1
        elif len(counts) < TOP:
            counts[key] = 1
        else:
            for other in list(counts):
                counts[other] -= 1
                if not counts[other]:
                    del counts[other]

    def heaviest(self) -> list[str]:
        return sorted(self.counts, key=self.counts.__getitem__, reverse=True)
