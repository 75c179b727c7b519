"""covid_ct int8 step: quantize the exported float32 ONNX model and check its Dice on the test set.

Static quantization with onnxruntime's tools (``usecases.covid_ct.onnx.int8``),
calibrated on validation slices spread over all its patients. The check ``onnx_int8_dice``
passes when the int8 model's pooled Dice is at most ``int8_dice_drop`` below the Keras float32
Dice at the operating threshold ``int8_dice_at`` (0.3, the paper's headline Dice). The drop at
every threshold and the largest one are recorded too: where the Dice curve is steep (a
threshold that many probabilities sit near), a shift of a few hundredths in the probabilities
moves the Dice more than the precision does at the operating point.
Like the ONNX step it never ends the run: a failure is a failed check with one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from usecases.covid_ct.onnx.int8 import quantize_int8, spread_subset
from usecases.covid_ct.onnx.parity import warn
from usecases.covid_ct.onnx.runtime import one_line, run_onnx
from usecases.covid_ct.onnx.settings import OnnxSettings
from usecases.data.checksums import sha256_file

CHECK_NAME = "onnx_int8_dice"
INT8_FILE = "model.int8.onnx"


def quantize_and_check(
    onnx_path: Path,
    *,
    x: np.ndarray,
    y: np.ndarray,
    calibration: np.ndarray,
    keras_dice: dict[str, float],
    settings: OnnxSettings,
    thresholds: Sequence[float],
    batch_size: int = 16,
) -> tuple[dict, dict, dict]:
    """Quantize ``onnx_path`` to int8 beside it and compare its test Dice with Keras's.

    Args:
        x, y: test slices (N, H, W, 1) float32 and masks (N, H, W, 2).
        calibration: validation slices (M, H, W, 1) float32; ``settings.calibration_images``
            of them, evenly spread over the set (so over its patients), are used.
        keras_dice: pooled Dice of the Keras model per threshold key ("0.1" ...).

    Returns ``(check, metrics, artifacts)``: the check entry, ``metrics["onnx_int8"]``
    (``dice_pooled`` and ``dice_drop`` per threshold, ``dice_drop_at`` / ``dice_at`` (the
    check's), ``dice_max_drop`` over thresholds, ``max_abs_diff`` to float32 ONNX
    probabilities, quantization settings, sha256) and ``{"onnx_int8": file}``.
    """
    from usecases.covid_ct.evaluate import segmentation_metrics, threshold_key

    out = Path(onnx_path).with_name(INT8_FILE)
    limit = settings.int8_dice_drop
    try:
        calib = spread_subset(calibration, n=settings.calibration_images)
        info = quantize_int8(onnx_path, out, calibration=calib)
        prob = run_onnx(out, x, batch_size=batch_size)
        prob_f32 = run_onnx(onnx_path, x, batch_size=batch_size)
        m = segmentation_metrics(y, prob, thresholds=tuple(thresholds))
    except Exception as err:  # quantizer and runtime raise many types
        out.unlink(missing_ok=True)
        return _failed(f"int8 quantization failed: {one_line(err)}", limit), {}, {}
    keys = [threshold_key(t) for t in thresholds]
    dice = {k: m[k]["dice_pooled"] for k in keys}
    drops = {k: keras_dice[k] - dice[k] for k in keys}
    worst = max(keys, key=drops.__getitem__)
    at = threshold_key(settings.int8_dice_at)
    drop = drops[at]
    metrics = {
        **info,
        "file": out.name,
        "bytes": out.stat().st_size,
        "sha256": sha256_file(out),
        "dice_pooled": dice,
        "dice_drop": drops,
        "dice_at": at,
        "dice_drop_at": drop,
        "dice_max_drop": drops[worst],
        "dice_drop_limit": limit,
        "max_abs_diff": float(np.max(np.abs(prob - prob_f32))),
    }
    passed = drop <= limit
    detail = (
        f"int8 ONNX vs Keras float32 on {len(x)} test slices: Dice drop {drop:+.4f} at "
        f"threshold {at} {'<=' if passed else '>'} {limit} (largest over thresholds "
        f"{drops[worst]:+.4f} at {worst})"
    )
    if not passed:
        warn(f"{CHECK_NAME} failed: {detail}")
    check = {
        "name": CHECK_NAME,
        "passed": passed,
        "skipped": False,
        "dice_at": at,
        "dice_drop_at": drop,
        "dice_drop_limit": limit,
        "detail": detail,
    }
    return check, metrics, {"onnx_int8": out.name}


def skipped_int8(reason: str) -> dict:
    """The ``onnx_int8_dice`` entry of a run whose int8 step could not run, with the reason."""
    return {"name": CHECK_NAME, "passed": False, "skipped": True, "detail": reason}


def _failed(detail: str, limit: float) -> dict:
    warn(f"{CHECK_NAME} failed: {detail}")
    return {
        "name": CHECK_NAME,
        "passed": False,
        "skipped": False,
        "dice_drop_at": None,
        "dice_drop_limit": limit,
        "detail": detail,
    }
