"""Student-t intervals over seeds: of one mean, of one more run, and of differences of means.

Samples are sequences of floats (one value per seed), at least two each. The difference
functions return ``(difference, low, high)`` of mean(a) - mean(b) at ``confidence`` (e.g. 0.95).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class SeedSummary:
    """Mean and sample sd of ``n`` runs, the t interval of the mean (``ci``) and the t
    prediction interval of one more run (``pi``: mean +- t * sd * sqrt(1 + 1/n))."""

    n: int
    mean: float
    sd: float
    ci: tuple[float, float]
    pi: tuple[float, float]
    confidence: float


def seed_summary(values: Sequence[float], *, confidence: float) -> SeedSummary:
    """SeedSummary of ``values`` (df = n - 1); ValueError for fewer than two values."""
    if len(values) < 2:
        raise ValueError(f"an interval needs at least two runs, got {len(values)}")
    n, mean, sd = len(values), statistics.fmean(values), statistics.stdev(values)
    _, low, high = _interval(mean, sd / math.sqrt(n), n - 1, confidence)
    _, p_low, p_high = _interval(mean, sd * math.sqrt(1 + 1 / n), n - 1, confidence)
    return SeedSummary(n, mean, sd, (low, high), (p_low, p_high), confidence)


def paired_interval(
    a: Sequence[float], b: Sequence[float], *, confidence: float
) -> tuple[float, float, float]:
    """Mean of the per-seed differences a[i] - b[i] with its t interval (df = n - 1)."""
    d = [x - y for x, y in zip(a, b, strict=True)]
    se = statistics.stdev(d) / math.sqrt(len(d))
    return _interval(statistics.fmean(d), se, len(d) - 1, confidence)


def welch_interval(
    a: Sequence[float], b: Sequence[float], *, confidence: float
) -> tuple[float, float, float]:
    """mean(a) - mean(b) with Welch's t interval (unequal variances, Satterthwaite df)."""
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    se = math.sqrt(va + vb)
    # no spread in either sample: the interval is the point (df is then irrelevant)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1)) if se > 0 else 1.0
    return _interval(statistics.fmean(a) - statistics.fmean(b), se, df, confidence)


def _interval(diff: float, se: float, df: float, confidence: float) -> tuple[float, float, float]:
    from scipy import stats

    half = stats.t.ppf(0.5 + confidence / 2, df) * se
    return diff, diff - half, diff + half
