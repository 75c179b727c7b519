"""covid_ct's ONNX step: export the trained TV-UNet and check it on the test slices.

A TensorFlow-backend run exports in-process with tf2onnx; a JAX-backend run exports from its
saved weights in a fresh TensorFlow process (``child``). The ``onnx_parity`` check (``parity``)
follows. Nothing here ends the run: a failed export or a parity miss is a failed check,
missing TensorFlow a skipped one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from usecases.covid_ct.onnx.child import export_from_weights
from usecases.covid_ct.onnx.parity import CHECK_NAME, check_onnx_parity, failed, skipped, warn
from usecases.covid_ct.onnx.runtime import EXPORT_TOOLS, export_keras, missing_tools, one_line
from usecases.covid_ct.onnx.settings import ModelSpec, OnnxSettings

ONNX_FILE = "model.onnx"


@dataclass
class OnnxOutcome:
    """What the ONNX step adds to the record: one check, ``metrics["onnx"]``, artifacts."""

    check: dict
    metrics: dict = field(default_factory=dict)
    artifacts: dict = field(default_factory=dict)


def export_and_check(
    model,
    *,
    x: np.ndarray,
    y: np.ndarray,
    prob: np.ndarray,
    run_dir: Path,
    settings: OnnxSettings,
    spec: ModelSpec,
    weights: Path | None = None,
    thresholds: Sequence[float],
    batch_size: int = 16,
) -> OnnxOutcome:
    """Export ``model`` to ``run_dir/model.onnx`` and check it against Keras on the test slices.

    Args:
        model: the trained Keras TV-UNet (any backend).
        x, y: test slices (N, H, W, 1) float32 0..255 and masks (N, H, W, 2).
        prob: Keras probabilities on ``x``, (N, H, W, 2) float32.
        weights: saved weights of ``model`` (used by a non-TensorFlow backend; None: saved
            to a temporary file when needed).
        thresholds: the Dice thresholds of the run.

    Never raises for an export or parity problem: it becomes a failed check with one line of
    detail and a one-line warning on stderr. Missing TensorFlow/tf2onnx/onnx/onnxruntime
    gives a skipped check.
    """
    import keras

    if not settings.onnx:
        return OnnxOutcome(skipped("disabled by usecase.export.onnx=false"))
    reason = missing_tools()
    if reason:
        warn(f"{CHECK_NAME} skipped: {reason}")
        needs = ", ".join(EXPORT_TOOLS)
        return OnnxOutcome(skipped(f"ONNX export and check need {needs}; {reason}"))

    out = run_dir / ONNX_FILE
    backend = keras.backend.backend()
    try:
        if backend == "tensorflow":
            info = {**export_keras(model, out, opset=settings.opset), "via": "in-process"}
        else:
            info = export_from_weights(model, out=out, weights=weights, spec=spec, s=settings)
    except Exception as err:  # any exporter failure is a failed check, not a failed run
        check = failed(f"export failed: {one_line(err)}", settings)
        return OnnxOutcome(check, artifacts=_artifacts(out))
    info["trained_backend"] = backend
    check, metrics = check_onnx_parity(
        out,
        x=x,
        y=y,
        prob=prob,
        settings=settings,
        thresholds=thresholds,
        batch_size=batch_size,
    )
    metrics = {"export": info, **metrics}
    return OnnxOutcome(check, metrics=metrics, artifacts=_artifacts(out))


def _artifacts(out: Path) -> dict:
    """``{"onnx": "model.onnx"}`` when the file exists."""
    return {"onnx": out.name} if out.is_file() else {}
