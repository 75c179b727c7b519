"""Timing helpers: repeated, synchronised measurements summarised by median and spread."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any


def summarize(samples_s: Sequence[float]) -> dict:
    """Median, interquartile range, min, max and count of durations in seconds."""
    xs = sorted(float(s) for s in samples_s)
    if not xs:
        return {"n": 0}
    q = statistics.quantiles(xs, n=4, method="inclusive") if len(xs) > 1 else [xs[0]] * 3
    return {
        "n": len(xs),
        "median_s": statistics.median(xs),
        "iqr_s": q[2] - q[0],
        "min_s": xs[0],
        "max_s": xs[-1],
        "mean_s": statistics.fmean(xs),
    }


def time_call(
    fn: Callable[[], Any],
    *,
    repeats: int,
    warmup: int = 1,
    sync: Callable[[Any], Any] = lambda out: out,
) -> list[float]:
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` timed runs (seconds each).

    ``sync(out)`` must block until the device has finished (for example by converting the
    output to numpy); it is inside the timed region.
    """
    for _ in range(warmup):
        sync(fn())
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sync(fn())
        samples.append(time.perf_counter() - t0)
    return samples
