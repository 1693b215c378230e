"""Every detector, with its default settings, over hours of ordinary traffic: not one finding.

The stream is simulated on its own clock: browsing sessions starting at a rate that ramps from
night to a daytime peak and back, pages with their assets, a few broken links and a missing
favicon, logins with the odd mistyped password, an office of many users behind one address,
a search engine crawling steadily, occasional WAF false positives and large downloads. The
site-wide volume detector is made far more sensitive than its default (min_requests 30) so its
statistics, not its floor, are what keep it quiet.
"""

from __future__ import annotations

import functools
import heapq
import math
import random
from collections.abc import Iterator
from pathlib import Path

from wafproxy.detect import DETECTORS, build_detectors
from wafproxy.detect.detectors.malicious_ip import MaliciousIpSettings
from wafproxy.detect.detectors.tor_caller import TorCallerSettings
from wafproxy.detect.detectors.traffic_volume import TrafficVolumeSettings
from wafproxy.detect.observation import Observation
from wafproxy.detect.sample import BROWSER_AGENT, request

T0 = 1_700_000_000.0
HOURS = 3
AGENTS = (
    BROWSER_AGENT,
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "python-requests/2.32.3",
    "curl/8.5.0",
)
PAGES = ["/", "/products", "/cart", "/account", "/search", "/about", "/blog"]
ASSETS = ["/static/app.js", "/static/style.css", "/img/logo.png", "/static/font.woff2"]
OFFICE = "198.51.100.200"
CRAWLER = "66.249.66.1"


class Stream:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.heap: list[tuple[float, int, Observation]] = []
        self.n = 0

    def add(self, ip: str, t: float, path: str, **fields: object) -> None:
        self.n += 1
        obs = request(ip, t, self.n, path, **fields)
        heapq.heappush(self.heap, (t, self.n, obs))

    def drain(self) -> Iterator[Observation]:
        while self.heap:
            yield heapq.heappop(self.heap)[2]


def session_rate(t: float) -> float:
    """Sessions per second: 0.01 at night, 0.08 at the peak, a triangle over the run."""
    phase = (t - T0) / (HOURS * 3600)
    return 0.01 + 0.07 * (1 - abs(2 * phase - 1))


def session(s: Stream, ip: str, start: float, office_user: int | None = None) -> None:
    rng = s.rng
    agent = rng.choice(AGENTS)
    t = start
    for page_no in range(rng.randint(3, 20)):
        page = rng.choice(PAGES) if page_no else "/"
        if page == "/products":
            page = f"/products/{rng.randrange(500)}"
        status, size = (404, 800) if rng.random() < 0.02 else (200, rng.randint(2_000, 60_000))
        blocked = rng.random() < 0.004
        if blocked:
            rule, labels = "SQLi_QUERYARGUMENTS", ("wafproxy:attack:sqli",)
            s.add(ip, t, page, status=403, action="BLOCK", user_agent=agent,
                  terminating_rule=rule, labels=labels)  # fmt: skip
        else:
            s.add(ip, t, page, status=status, bytes_out=size, user_agent=agent)
        for asset in rng.sample(ASSETS, rng.randint(0, 4) if page_no < 2 else 0):
            s.add(ip, t + rng.uniform(0.05, 0.5), asset, bytes_out=rng.randint(5_000, 300_000))
        if page_no == 0 and rng.random() < 0.3:
            s.add(ip, t + 0.2, "/favicon.ico", status=404, bytes_out=200)
        if rng.random() < 0.01:
            s.add(ip, t + 1, "/downloads/catalogue.pdf", bytes_out=rng.randint(2, 8) * 1_000_000)
        if page == "/account":
            t = login(s, ip, t, office_user)
        t += rng.uniform(3.0, 40.0)


def login(s: Stream, ip: str, t: float, office_user: int | None) -> float:
    rng = s.rng
    user = f"staff{office_user}" if office_user is not None else f"user{rng.randrange(10**6)}"
    for _ in range(rng.choice((0, 0, 0, 1, 1, 2))):
        t += rng.uniform(2.0, 8.0)
        s.add(ip, t, "/login", method="POST", status=401, username=user, login_failed=True)
    t += rng.uniform(2.0, 8.0)
    s.add(ip, t, "/login", method="POST", status=302, username=user, login_failed=False)
    return t


def crawler(s: Stream) -> None:
    agent = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
    t = T0
    while t < T0 + HOURS * 3600:
        broken = s.rng.random() < 0.05
        path = (
            f"/old-link/{s.rng.randrange(10**6)}" if broken else f"/products/{s.rng.randrange(500)}"
        )
        s.add(CRAWLER, t, path, status=404 if broken else 200, user_agent=agent)
        t += s.rng.uniform(1.0, 5.0)


@functools.cache
def benign_stream(seed: int = 11) -> tuple[Observation, ...]:
    s = Stream(seed)
    t = T0
    end = T0 + HOURS * 3600
    while t < end:
        t += s.rng.expovariate(session_rate(t))
        if s.rng.random() < 0.1:
            session(s, OFFICE, t, office_user=s.rng.randrange(40))
        else:
            session(s, f"10.{s.rng.randrange(4)}.{s.rng.randrange(256)}.{s.rng.randrange(256)}", t)
    crawler(s)
    return tuple(s.drain())


def test_the_stream_is_long_and_varied() -> None:
    stream = benign_stream()
    assert len(stream) > 10_000
    assert stream[-1].time - stream[0].time > (HOURS - 0.5) * 3600
    assert len({o.client_ip for o in stream}) > 300
    assert sum(o.status == 404 for o in stream) > 300
    assert sum(o.login_failed is True for o in stream) > 20
    assert sum(o.blocked for o in stream) > 5
    per_hour = [sum(1 for o in stream if T0 + h * 3600 <= o.time < T0 + (h + 1) * 3600)
                for h in range(HOURS)]  # fmt: skip
    assert per_hour[1] > 1.5 * per_hour[0]  # the daytime ramp


def test_no_detector_raises_anything_on_ordinary_traffic(tmp_path: Path) -> None:
    (tmp_path / "bad.txt").write_text("203.0.113.0/24\n")
    settings: dict[str, object] = {
        "traffic_volume": TrafficVolumeSettings(min_requests=30),
        "malicious_ip": MaliciousIpSettings(files=("bad.txt",)),
    }
    detectors = build_detectors(settings, tmp_path)
    assert {d.name for d in detectors} == set(DETECTORS) - {"tor_caller"}
    findings = [f for obs in benign_stream() for d in detectors for f in d.observe(obs)]
    assert findings == [], [(f.type, f.subject, f.details) for f in findings[:5]]


def test_the_volume_detector_did_learn_the_ramp() -> None:
    """Guard against a vacuous pass: the site baseline was warm and followed the traffic."""
    (detector,) = build_detectors(
        {n: DETECTORS[n].settings(enabled=(n == "traffic_volume")) for n in DETECTORS}, Path(".")
    )
    stream = benign_stream()
    peak = T0 + HOURS * 1800
    for obs in stream:
        if obs.time > peak:
            break
        detector.observe(obs)
    state = detector.rates.table.peek("shop.example")  # type: ignore[attr-defined]
    assert state is not None and state.n > 500
    assert math.isfinite(state.limit) and state.mean > 5


def test_attacks_hidden_in_ordinary_traffic_are_each_found(tmp_path: Path) -> None:
    """The same stream with every sample attack mixed in at the daytime peak: each detector
    raises its finding about its attacker, and still nothing about anyone else."""
    from wafproxy.detect.sample import attack_traffic

    (tmp_path / "bad.txt").write_text("192.0.2.0/26\n")
    (tmp_path / "tor.txt").write_text("192.0.2.64/26\n")
    settings: dict[str, object] = {
        "malicious_ip": MaliciousIpSettings(files=("bad.txt",)),
        "tor_caller": TorCallerSettings(files=("tor.txt",)),
    }
    detectors = build_detectors(settings, tmp_path)
    attacks: list[Observation] = []
    for index, name in enumerate(DETECTORS):
        attacker = f"192.0.2.{index * 5 + 1 + (64 if name == 'tor_caller' else 0)}"
        attacks += attack_traffic(name, attacker, T0 + HOURS * 1800 + index * 120)
    stream = sorted([*benign_stream(), *attacks], key=lambda o: o.time)
    findings = [f for obs in stream for d in detectors for f in d.observe(obs)]
    assert {f.type for f in findings} == {t for n in DETECTORS for t in DETECTORS[n].finding_types}
    strangers = [f for f in findings if not (f.subject.startswith("192.0.2.")
                                             or f.subject in ("admin", "*"))]  # fmt: skip
    assert strangers == []
