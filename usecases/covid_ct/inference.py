"""Inference timings of the trained TV-UNet: Keras (either implementation) and onnxruntime.

Each entry is the median and spread of one batch's forward pass (warm-up excluded, the output
converted to numpy so the device has finished), with images/s and the method that was timed.
Framework-free: the paper's own code under tf-keras is timed by the same functions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from usecases.measure.timing import summarize, time_call


def inference_timings(
    predict: Callable[[np.ndarray], object],
    x: np.ndarray,
    *,
    batch_sizes: Sequence[int],
    repeats: int,
    warmup: int,
    method: str,
    prefix: str = "inference",
) -> dict:
    """``{f"{prefix}_batch{bs}": stats}`` of ``predict(batch)`` for each batch size."""
    return {
        f"{prefix}_batch{bs}": timed(
            predict, _batch(x, bs), repeats=repeats, warmup=warmup, method=method
        )
        for bs in batch_sizes
    }


def onnx_timings(
    files: dict, run_dir: Path, x: np.ndarray, *, batch_sizes: Sequence[int], **options
) -> dict:
    """Images/s of onnxruntime (CPU) per exported file (``onnx``, ``onnx_int8``) and batch size."""
    from usecases.covid_ct.onnx.runtime import ort_session

    out = {}
    for key, label in (
        ("onnx", "float32"),
        ("onnx_int8", "int8 QDQ (recipe: metrics.onnx_int8.recipe)"),
    ):
        if key not in files:
            continue
        session = ort_session(run_dir / files[key])
        name = session.get_inputs()[0].name
        out.update(
            inference_timings(
                lambda b, s=session, n=name: s.run(None, {n: b})[0],
                x,
                batch_sizes=batch_sizes,
                method=f"onnxruntime CPU, {label}",
                prefix=f"{key}_inference",
                **options,
            )
        )
    return out


def timed(fn: Callable, batch: np.ndarray, *, repeats: int, warmup: int, method: str) -> dict:
    """Median and spread of ``fn(batch)`` in seconds, images/s, batch size and method."""
    samples = time_call(lambda: fn(batch), repeats=repeats, warmup=warmup, sync=np.asarray)
    stats = summarize(samples)
    return {
        **stats,
        "batch_size": len(batch),
        "images_per_s": len(batch) / stats["median_s"],
        "method": method,
    }


def _batch(x: np.ndarray, bs: int) -> np.ndarray:
    """The first ``bs`` slices (repeated when there are fewer), contiguous float32."""
    batch = x[:bs] if len(x) >= bs else np.resize(x, (bs, *x.shape[1:]))
    return np.ascontiguousarray(batch, dtype=np.float32)
