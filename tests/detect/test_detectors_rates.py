"""Impact:HTTP/RequestFlood, Exfiltration:HTTP/AnomalousResponseVolume and
Behavior:HTTP/TrafficVolumeUnusual: rates against learned baselines, on a synthetic clock."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator

from wafproxy.detect.detectors._rates import POPULATION_WARMUP
from wafproxy.detect.detectors.request_flood import RequestFlood, RequestFloodSettings
from wafproxy.detect.detectors.response_volume import ResponseVolume, ResponseVolumeSettings
from wafproxy.detect.detectors.traffic_volume import TrafficVolume, TrafficVolumeSettings
from wafproxy.detect.observation import Observation
from wafproxy.detect.sample import request
from wafproxy.findings.model import Finding, Severity

T0 = 1_700_000_400.0  # a multiple of 10 and of 60: intervals start on it
IP = "203.0.113.30"
Detector = RequestFlood | ResponseVolume | TrafficVolume


def run(detector: Detector, stream: Iterable[Observation]) -> list[Finding]:
    return [f for obs in stream for f in detector.observe(obs)]


def burst(ip: str, start: float, count: int, first: int = 0, span: float = 9.0,
          **fields: object) -> Iterator[Observation]:  # fmt: skip
    for n in range(count):
        yield request(ip, start + n * span / max(count, 1), first + n, "/", **fields)


def history(ip: str, counts: Iterable[int], interval: float = 10.0) -> list[Observation]:
    out: list[Observation] = []
    for i, count in enumerate(counts):
        out += burst(ip, T0 + i * interval, count, first=len(out))
    return out


# -- request flood -------------------------------------------------------------------------------
def flood_detector(**overrides: object) -> RequestFlood:
    settings: dict[str, object] = {"interval": 10.0, "warmup": 6, "sigma": 6.0,
                                   "min_ratio": 3.0, "min_requests": 50}  # fmt: skip
    settings.update(overrides)
    return RequestFlood(RequestFloodSettings(**settings))  # type: ignore[arg-type]


def test_flood_against_the_clients_own_baseline() -> None:
    detector = flood_detector()
    assert run(detector, history(IP, [15, 25] * 5)) == []
    (finding,) = run(detector, burst(IP, T0 + 100, 80, first=1000))
    assert finding.type == "Impact:HTTP/RequestFlood"
    assert finding.subject == IP and finding.band is Severity.HIGH
    # mean 20, std 5: 6 sigma is 50, 3x the mean is 60, the floor 50: the limit is 60
    assert finding.details["limit"] == 60.0
    assert finding.details["requests"] == 60
    assert finding.details["basis"] == "own"
    assert finding.evidence == (f"sample-{IP}-1000", f"sample-{IP}-1059")


def test_flood_just_below_the_limit_is_quiet() -> None:
    detector = flood_detector()
    run(detector, history(IP, [15, 25] * 5))
    assert run(detector, burst(IP, T0 + 100, 59, first=1000)) == []


def test_a_flooding_interval_does_not_teach_the_baseline() -> None:
    detector = flood_detector(cooldown=10.0)
    run(detector, history(IP, [15, 25] * 5))
    assert len(run(detector, burst(IP, T0 + 100, 500))) == 1
    (again,) = run(detector, burst(IP, T0 + 120, 500))
    assert again.details["limit"] < 150  # the 500 was learnt as 60 (the limit then)
    state = detector.rates.table.peek(IP)
    assert state is not None and state.mean < 30


def test_flood_once_per_cooldown() -> None:
    detector = flood_detector(cooldown=600.0)
    run(detector, history(IP, [15, 25] * 5))
    findings = run(detector, (o for i in range(10) for o in burst(IP, T0 + 100 + 10 * i, 200)))
    assert len(findings) == 1


def test_a_new_client_is_judged_against_the_site_wide_per_client_baseline() -> None:
    detector = flood_detector(min_requests=200, new_client_ceiling=1000)
    clients = [f"198.51.100.{n}" for n in range(POPULATION_WARMUP + 10)]
    for i in range(2):
        run(detector, (o for ip in clients for o in burst(ip, T0 + 10 * i, 10)))
    assert detector.rates.population.n >= POPULATION_WARMUP
    assert run(detector, burst(IP, T0 + 30, 199)) == []
    (finding,) = run(detector, burst("203.0.113.31", T0 + 40, 250))
    assert finding.details["basis"] == "population"
    assert finding.details["requests"] == 200
    assert finding.details["baseline_mean"] == 10.0


def test_a_new_client_before_any_baseline_meets_the_ceiling() -> None:
    detector = flood_detector(min_requests=200, new_client_ceiling=1000)
    assert run(detector, burst(IP, T0, 999)) == []
    (finding,) = run(detector, burst("203.0.113.32", T0 + 10, 1000))
    assert finding.details["basis"] == "ceiling"
    assert finding.details["limit"] == 1000.0


def test_flood_state_is_bounded() -> None:
    detector = flood_detector(max_keys=500)
    for n in range(20_000):
        detector.observe(request(f"10.{n >> 16}.{n >> 8 & 255}.{n & 255}", T0 + n / 100, n))
    assert detector.state_keys() == 500


# -- response volume -----------------------------------------------------------------------------
MB = 1_000_000


def test_response_volume_against_the_clients_baseline() -> None:
    detector = ResponseVolume(ResponseVolumeSettings(min_bytes=20 * MB, min_ratio=5.0))
    normal = [o for i in range(6) for o in burst(IP, T0 + 60 * i, 10, first=10 * i, span=50,
                                                   bytes_out=500_000)]  # fmt: skip
    assert run(detector, normal) == []  # 5 MB a minute
    dump = burst(IP, T0 + 360, 30, first=100, span=50, bytes_out=2 * MB)
    (finding,) = run(detector, dump)
    assert finding.type == "Exfiltration:HTTP/AnomalousResponseVolume"
    assert finding.subject == IP and finding.band is Severity.HIGH
    # the limit is max(5 x 5 MB, 20 MB) = 25 MB; 2 MB responses cross it at 26 MB
    assert finding.details["bytes"] == 26 * MB
    assert finding.details["limit_bytes"] == 25 * MB
    assert finding.details["basis"] == "own"
    assert finding.evidence == (f"sample-{IP}-100", f"sample-{IP}-112")


def test_response_volume_below_the_absolute_floor_is_quiet() -> None:
    detector = ResponseVolume(ResponseVolumeSettings(min_bytes=20 * MB))
    small = [o for i in range(6) for o in burst(IP, T0 + 60 * i, 10, span=50, bytes_out=1000)]
    run(detector, small)
    assert run(detector, burst(IP, T0 + 360, 19, span=50, bytes_out=MB)) == []


# -- site traffic volume -------------------------------------------------------------------------
def site_traffic(start: float, intervals: int, mean: int, rng: random.Random,
                 first: int = 0) -> list[Observation]:  # fmt: skip
    out: list[Observation] = []
    for i in range(intervals):
        count = max(0, int(rng.gauss(mean, mean**0.5)))
        for n in range(count):
            ip = f"198.51.100.{rng.randrange(200)}"
            out.append(request(ip, start + 10 * i + n * 9.0 / count, first + len(out)))
    return out


def volume_detector(**overrides: object) -> TrafficVolume:
    settings: dict[str, object] = {"min_requests": 100, "warmup": 30}
    settings.update(overrides)
    return TrafficVolume(TrafficVolumeSettings(**settings))  # type: ignore[arg-type]


def test_traffic_volume_surge_names_the_heaviest_clients() -> None:
    rng = random.Random(1)
    detector = volume_detector()
    assert run(detector, site_traffic(T0, 40, 50, rng)) == []
    surge = [request(IP, T0 + 400 + n * 0.02, 10_000 + n) for n in range(400)]
    (finding,) = run(detector, surge)
    assert finding.type == "Behavior:HTTP/TrafficVolumeUnusual"
    assert finding.resource == "shop.example" and finding.subject == "*"
    assert finding.band is Severity.MEDIUM
    assert finding.details["requests"] >= finding.details["limit"]
    assert finding.details["limit"] >= 3 * finding.details["baseline_mean"] - 0.1  # rounded
    assert finding.details["top_clients"][0] == IP
    assert 40 <= finding.details["baseline_mean"] <= 60


def test_traffic_volume_is_not_judged_while_warming_up() -> None:
    detector = volume_detector(warmup=30)
    rng = random.Random(2)
    stream = site_traffic(T0, 5, 50, rng)
    stream += [request(IP, T0 + 50 + n * 0.01, 5000 + n) for n in range(800)]
    assert run(detector, stream) == []


def test_traffic_volume_slow_ramp_is_quiet() -> None:
    """Ten times the traffic, reached over an hour, is growth, not a surge."""
    detector = volume_detector(min_requests=30)
    rng = random.Random(3)
    stream: list[Observation] = []
    for i in range(360):
        stream += site_traffic(T0 + 10 * i, 1, 10 + i // 4, rng, first=len(stream))
    assert run(detector, stream) == []


def test_traffic_volume_after_a_silent_night_is_judged_with_zeros() -> None:
    detector = volume_detector(min_requests=100)
    rng = random.Random(4)
    run(detector, site_traffic(T0, 40, 50, rng))
    morning = T0 + 400 + 3600
    assert run(detector, site_traffic(morning, 1, 50, rng, first=100_000)) == []
    state = detector.rates.table.peek("shop.example")
    assert state is not None and state.mean < 50  # the silent hour pulled the mean down


def test_traffic_volume_hosts_are_separate_and_bounded() -> None:
    detector = volume_detector(max_keys=10)
    for n in range(100):
        detector.observe(request(IP, T0 + n, n, host=f"h{n}.example"))
    assert detector.state_keys() == 10
    assert len(detector.tops) <= 11
