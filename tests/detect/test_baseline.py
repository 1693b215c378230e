"""Online statistics: EWMA mean/variance with warm-up, interval buckets, leaky buckets and
exact event windows."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from wafproxy.detect.baseline import (
    DistinctBucket,
    EventWindow,
    Ewma,
    IntervalSeries,
    LeakyBucket,
    alpha_for_span,
)


def test_first_samples_are_an_exact_mean_and_population_variance() -> None:
    stats = Ewma()
    samples = [3.0, 5.0, 7.0, 9.0]
    for x in samples:
        stats.add(x, alpha=0.01)
    assert stats.n == 4
    assert stats.mean == pytest.approx(statistics.fmean(samples))
    assert stats.var == pytest.approx(statistics.pvariance(samples))


def test_ewma_follows_a_level_shift_at_its_span() -> None:
    stats = Ewma()
    for _ in range(200):
        stats.add(10.0, alpha_for_span(20))
    for _ in range(20):
        stats.add(20.0, alpha_for_span(20))
    assert 18.0 < stats.mean < 20.0  # 1 - (1 - 2/21)^20 of the way: about 86 %


def test_ewma_of_noise_estimates_its_spread() -> None:
    rng = random.Random(7)
    stats = Ewma()
    for _ in range(5000):
        stats.add(rng.gauss(100.0, 10.0), alpha_for_span(200))
    assert stats.mean == pytest.approx(100.0, abs=3.0)
    assert stats.std == pytest.approx(10.0, rel=0.25)
    assert stats.zscore(160.0) == pytest.approx(6.0, rel=0.3)


def test_zscore_of_a_flat_baseline() -> None:
    stats = Ewma()
    for _ in range(10):
        stats.add(5.0, 0.1)
    assert stats.std == 0.0
    assert stats.zscore(5.0) == 0.0
    assert stats.zscore(6.0) == math.inf


def test_threshold_takes_the_largest_of_sigma_ratio_and_minimum() -> None:
    stats = Ewma()
    for x in (8.0, 12.0) * 10:
        stats.add(x, 0.05)
    assert stats.threshold(sigma=6, min_ratio=1, minimum=0) == pytest.approx(10 + 6 * stats.std)
    assert stats.threshold(sigma=1, min_ratio=5, minimum=0) == pytest.approx(5 * stats.mean)
    assert stats.threshold(sigma=1, min_ratio=1, minimum=500) == 500


def test_interval_series_closes_intervals_into_samples() -> None:
    series = IntervalSeries(bucket=100)
    series.count = 7
    assert series.advance(100, 0.1, fill_gaps=0) == 0  # same interval: nothing closes
    assert series.advance(101, 0.1, fill_gaps=0) == 1
    assert (series.n, series.mean, series.count, series.bucket) == (1, 7.0, 0.0, 101)


def test_interval_series_fills_silent_intervals_with_zeros_up_to_a_limit() -> None:
    series = IntervalSeries(bucket=0)
    series.count = 10
    assert series.advance(4, 0.1, fill_gaps=100) == 4  # the closed one and three silent ones
    assert series.mean == pytest.approx(2.5)
    other = IntervalSeries(bucket=0)
    other.count = 10
    assert other.advance(1000, 0.1, fill_gaps=5) == 6


def test_interval_series_caps_the_closed_sample() -> None:
    series = IntervalSeries(bucket=0)
    series.count = 1_000_000
    series.advance(1, 0.1, fill_gaps=0, cap=50.0)
    assert series.mean == 50.0


def test_late_observations_do_not_reopen_old_intervals() -> None:
    series = IntervalSeries(bucket=10)
    assert series.advance(9, 0.1, fill_gaps=0) == 0
    assert series.bucket == 10


def test_leaky_bucket_drains_at_its_rate() -> None:
    bucket = LeakyBucket()
    assert bucket.fill(100.0, rate=1.0, amount=5) == 5
    assert bucket.fill(102.0, rate=1.0) == pytest.approx(4.0)
    assert bucket.drain(200.0, rate=1.0) == 0.0
    assert bucket.drain(150.0, rate=1.0) == 0.0  # an earlier time never refills


def test_distinct_bucket_counts_repeats_once() -> None:
    bucket = DistinctBucket()
    assert bucket.offer(0.0, "/a", rate=0.0, memory=4)
    assert not bucket.offer(0.0, "/a", rate=0.0, memory=4)
    assert bucket.offer(0.0, "/b", rate=0.0, memory=4)
    assert bucket.level == 2


def test_distinct_bucket_forgets_beyond_its_memory() -> None:
    bucket = DistinctBucket()
    for path in ("/a", "/b", "/c"):
        bucket.offer(0.0, path, rate=0.0, memory=2)
    assert len(bucket.recent) == 2
    assert bucket.offer(0.0, "/a", rate=0.0, memory=2)  # forgotten, so new again


def test_event_window_counts_exactly_within_the_window() -> None:
    window = EventWindow()
    counts = [window.add(t, window=10.0, keep=100) for t in (0.0, 1.0, 5.0, 10.0, 10.5)]
    assert counts == [1, 2, 3, 4, 4]  # at 10.5 the event at 0.0 is older than 10 s


def test_event_window_keeps_at_most_keep_times() -> None:
    window = EventWindow()
    for t in range(50):
        count = window.add(float(t) / 100, window=60.0, keep=5)
    assert count == 5
    assert len(window.times) == 5
