"""The ``onnx_parity`` check: onnx.checker, then onnxruntime against Keras on the test slices.

Probabilities must agree within ``tolerance`` (max absolute difference) and the pooled Dice at
every threshold within ``dice_tolerance`` (5e-4: equal to 3 decimals). A corrupt file, a failed
inference or a tolerance miss is a failed check with one line of detail; nothing here raises.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from usecases.covid_ct.onnx.runtime import (
    CHECK_TOOLS,
    PROVIDER,
    check_onnx_file,
    max_abs_diff,
    missing_tools,
    one_line,
    run_onnx,
    version_of,
)
from usecases.covid_ct.onnx.settings import OnnxSettings
from usecases.data.checksums import sha256_file
from usecases.records.checks import check_result, skipped_check

CHECK_NAME = "onnx_parity"
log = logging.getLogger(__name__)


def check_onnx_parity(
    path: Path,
    *,
    x: np.ndarray,
    y: np.ndarray,
    prob: np.ndarray,
    settings: OnnxSettings,
    thresholds: Sequence[float],
    batch_size: int = 16,
) -> tuple[dict, dict]:
    """onnx.checker (full) + onnxruntime on ``x`` + parity with the Keras ``prob``.

    Returns ``(check, metrics)``: the ``onnx_parity`` check entry (``passed``, ``max_abs_diff``,
    ``tolerance``, ``dice_max_abs_diff``, ``dice_tolerance``, ``detail`` one line) and what
    goes to ``metrics["onnx"]`` (``max_abs_diff``, ``dice_pooled`` per threshold key,
    ``dice_equal_3dp``, opset, sha256, versions). A corrupt or invalid file, a failed
    inference or a tolerance miss gives ``passed: false``; it never raises for those.
    """
    from usecases.covid_ct.evaluate import segmentation_metrics, threshold_key

    reason = missing_tools(tools=CHECK_TOOLS)
    if reason:
        return skipped(f"ONNX check needs onnx and onnxruntime; {reason}"), {}
    metrics: dict = {
        "file": Path(path).name,
        "onnx": version_of("onnx"),
        "onnxruntime": version_of("onnxruntime"),
        "provider": PROVIDER,
        "n_images": len(x),
        "tolerance": settings.tolerance,
        "dice_tolerance": settings.dice_tolerance,
    }
    try:
        metrics.update(check_onnx_file(path))
    except Exception as err:  # onnx raises several types for a bad file
        metrics["sha256"] = sha256_file(path) if Path(path).is_file() else None
        check = failed(f"onnx.checker rejected {Path(path).name}: {one_line(err)}", settings)
        return check, metrics
    try:
        onnx_prob = run_onnx(path, x, batch_size=batch_size)
        diff = max_abs_diff(prob, onnx_prob)
        keras_m = segmentation_metrics(y, prob, thresholds=tuple(thresholds))
        onnx_m = segmentation_metrics(y, onnx_prob, thresholds=tuple(thresholds))
    except Exception as err:  # onnxruntime errors have many types
        check = failed(f"onnxruntime failed on {Path(path).name}: {one_line(err)}", settings)
        return check, metrics
    keys = [threshold_key(t) for t in thresholds]
    dice = {k: onnx_m[k]["dice_pooled"] for k in keys}
    dice_diff = max(abs(dice[k] - keras_m[k]["dice_pooled"]) for k in keys)
    metrics.update(
        max_abs_diff=diff,
        dice_pooled=dice,
        dice_max_abs_diff=dice_diff,
        dice_equal_3dp=dice_diff < 5e-4,
    )
    passed = diff <= settings.tolerance and dice_diff <= settings.dice_tolerance
    detail = (
        f"onnxruntime vs Keras on {len(x)} test slices: max |dp| {diff:.1e} "
        f"{'<=' if diff <= settings.tolerance else '>'} {settings.tolerance:.0e}; "
        f"max |dDice| {dice_diff:.1e} {'<=' if dice_diff <= settings.dice_tolerance else '>'} "
        f"{settings.dice_tolerance:.0e} over {len(keys)} thresholds"
    )
    numbers = {"max_abs_diff": diff, "dice_max_abs_diff": dice_diff}
    numbers.update(opset=metrics["opset"], sha256=metrics["sha256"])
    return _check(passed, detail, settings, **numbers), metrics


def skipped(reason: str) -> dict:
    """The ``onnx_parity`` check that did not run, with the reason."""
    return skipped_check(CHECK_NAME, reason=reason)


def failed(detail: str, settings: OnnxSettings) -> dict:
    """A failed check entry with one line of detail (also warned on stderr)."""
    return _check(False, detail, settings, max_abs_diff=None)


def _check(passed: bool, detail: str, settings: OnnxSettings, **numbers) -> dict:
    """The ``onnx_parity`` entry with its tolerances; a failure is also warned on stderr."""
    if not passed:
        warn(f"{CHECK_NAME} failed: {detail}")
    tolerances = {"tolerance": settings.tolerance, "dice_tolerance": settings.dice_tolerance}
    return check_result(
        CHECK_NAME, passed=passed, detail=detail, skipped=False, **numbers, **tolerances
    )


def warn(line: str) -> None:
    """One warning line on stderr and in run.log."""
    log.warning("%s", line)
    print(f"warning: {line}", file=sys.stderr)
