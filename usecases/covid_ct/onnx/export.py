"""covid_ct ONNX step: export the trained TV-UNet, check it on the test slices; and its CLI.

A TensorFlow-backend run exports in-process with tf2onnx. A JAX-backend run loads its saved
weights into the TensorFlow-backend TV-UNet in a fresh process
(``python -m usecases.covid_ct.onnx.export --weights W --n-filters N --out model.onnx``), because
jax2onnx's MaxPool output is rejected by onnxruntime. The check (``onnx_parity``) runs
onnx.checker (full check), then onnxruntime on the test slices, and compares its probabilities
and its pooled Dice at every threshold with Keras's. Nothing here ends the run: a failed export
or a parity miss is a failed check, missing TensorFlow a skipped one.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from usecases import paths
from usecases.covid_ct.onnx.runtime import (
    CHECK_TOOLS,
    EXPORT_TOOLS,
    MIN_OPSET,
    PROVIDER,
    check_onnx_file,
    export_keras,
    max_abs_diff,
    missing_tools,
    one_line,
    run_onnx,
    version_of,
)
from usecases.data.checksums import sha256_file
from usecases.errors import ConfigError

CHECK_NAME = "onnx_parity"
ONNX_FILE = "model.onnx"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OnnxSettings:
    """``usecase.export`` of the config: on/off, opset and the parity tolerances.

    ``tolerance`` bounds max |p_onnx - p_keras| of the float32 probabilities (absolute);
    ``dice_tolerance`` bounds |Dice_onnx - Dice_keras| per threshold (5e-4: equal to 3
    decimals); ``timeout_s`` limits the fresh export process of a JAX run (seconds).
    ``int8`` adds a statically quantized copy (check ``onnx_int8_dice``: its pooled Dice may
    drop at most ``int8_dice_drop`` below Keras's at the threshold ``int8_dice_at``),
    calibrated on ``calibration_images`` validation slices spread evenly over the set.
    """

    onnx: bool = True
    opset: int = 17
    tolerance: float = 1e-4
    dice_tolerance: float = 5e-4
    timeout_s: int = 900
    int8: bool = True
    int8_dice_drop: float = 0.01
    int8_dice_at: float = 0.3
    calibration_images: int = 32

    @classmethod
    def from_config(cls, export: Mapping | None) -> OnnxSettings:
        """Settings from ``usecase.export`` (None: defaults); ConfigError for a bad value."""
        values = dict(export or {})
        unknown = sorted(set(values) - set(cls.__dataclass_fields__))
        if unknown:
            raise ConfigError(
                f"usecase.export has unknown key(s) {', '.join(unknown)}; known: "
                f"{', '.join(cls.__dataclass_fields__)}."
            )
        settings = cls(**values)
        for key in ("onnx", "int8"):
            if not isinstance(getattr(settings, key), bool):
                raise ConfigError(
                    f"usecase.export.{key}={getattr(settings, key)} must be true or false."
                )
        for key, low in (("opset", MIN_OPSET), ("calibration_images", 1)):
            value = getattr(settings, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"usecase.export.{key}={value} must be an integer >= {low}.")
        for key in (
            "tolerance",
            "dice_tolerance",
            "timeout_s",
            "int8_dice_drop",
            "int8_dice_at",
        ):
            value = getattr(settings, key)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ConfigError(f"usecase.export.{key}={value} must be a positive number.")
        return settings


@dataclass
class OnnxOutcome:
    """What the ONNX step adds to the record: one check, ``metrics["onnx"]``, artifacts."""

    check: dict
    metrics: dict = field(default_factory=dict)
    artifacts: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ModelSpec:
    """How to rebuild the TV-UNet in a fresh process: width n, dropout, slice size (pixels)."""

    n_filters: int
    dropout: float = 0.2
    size: int = 128


def skipped_check(reason: str) -> dict:
    """A check entry that did not run: ``passed`` false, ``skipped`` true, the reason."""
    return {"name": CHECK_NAME, "passed": False, "skipped": True, "detail": reason}


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
        return OnnxOutcome(skipped_check("disabled by usecase.export.onnx=false"))
    reason = missing_tools()
    if reason:
        warn(f"{CHECK_NAME} skipped: {reason}")
        needs = ", ".join(EXPORT_TOOLS)
        return OnnxOutcome(skipped_check(f"ONNX export and check need {needs}; {reason}"))

    out = run_dir / ONNX_FILE
    backend = keras.backend.backend()
    try:
        if backend == "tensorflow":
            info = {**export_keras(model, out, opset=settings.opset), "via": "in-process"}
        else:
            info = _export_from_weights(model, out=out, weights=weights, spec=spec, s=settings)
    except Exception as err:  # any exporter failure is a failed check, not a failed run
        check = _failed(f"export failed: {one_line(err)}", settings)
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
        return skipped_check(f"ONNX check needs onnx and onnxruntime; {reason}"), {}
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
        check = _failed(f"onnx.checker rejected {Path(path).name}: {one_line(err)}", settings)
        return check, metrics
    try:
        onnx_prob = run_onnx(path, x, batch_size=batch_size)
        diff = max_abs_diff(prob, onnx_prob)
        keras_m = segmentation_metrics(y, prob, thresholds=tuple(thresholds))
        onnx_m = segmentation_metrics(y, onnx_prob, thresholds=tuple(thresholds))
    except Exception as err:  # onnxruntime errors have many types
        check = _failed(f"onnxruntime failed on {Path(path).name}: {one_line(err)}", settings)
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
    if not passed:
        warn(f"{CHECK_NAME} failed: {detail}")
    check = {
        "name": CHECK_NAME,
        "passed": passed,
        "skipped": False,
        "max_abs_diff": diff,
        "tolerance": settings.tolerance,
        "dice_max_abs_diff": dice_diff,
        "dice_tolerance": settings.dice_tolerance,
        "opset": metrics["opset"],
        "sha256": metrics["sha256"],
        "detail": detail,
    }
    return check, metrics


def export_in_fresh_process(
    *, weights: Path, out: Path, spec: ModelSpec, opset: int, timeout_s: float
) -> dict:
    """Run ``python -m usecases.covid_ct.onnx.export`` with KERAS_BACKEND=tensorflow on the CPU.

    Returns the export info the child prints (``opset``, ``exporter``, ``export_s`` ...);
    raises RuntimeError with the child's one-line error when it fails.
    """
    cmd = [
        sys.executable,
        "-m",
        "usecases.covid_ct.onnx.export",
        f"--weights={weights}",
        f"--n-filters={spec.n_filters}",
        f"--dropout={spec.dropout}",
        f"--size={spec.size}",
        f"--opset={opset}",
        f"--out={out}",
    ]
    path = os.pathsep.join(p for p in (str(paths.source_root()), os.environ.get("PYTHONPATH")) if p)
    env = {
        **os.environ,
        "KERAS_BACKEND": "tensorflow",
        "CUDA_VISIBLE_DEVICES": "",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONPATH": path,
    }
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            env=env,
            cwd=paths.source_root(),
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        raise RuntimeError(
            f"fresh TensorFlow export process timed out after {timeout_s} s "
            "(usecase.export.timeout_s)"
        ) from err
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("error:")]
        last = (errors or lines or [f"exit code {proc.returncode}"])[-1]
        raise RuntimeError(f"fresh TensorFlow export process failed: {last}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _export_from_weights(
    model, *, out: Path, weights: Path | None, spec: ModelSpec, s: OnnxSettings
) -> dict:
    """Export a non-TensorFlow model via its weights in a fresh TensorFlow process."""
    if weights is not None and Path(weights).is_file():
        info = export_in_fresh_process(
            weights=weights, out=out, spec=spec, opset=s.opset, timeout_s=s.timeout_s
        )
    else:
        with tempfile.TemporaryDirectory() as tmp:
            saved = Path(tmp) / "model.weights.h5"
            model.save_weights(saved)
            info = export_in_fresh_process(
                weights=saved, out=out, spec=spec, opset=s.opset, timeout_s=s.timeout_s
            )
    return {**info, "via": "fresh TensorFlow process"}


def _failed(detail: str, settings: OnnxSettings) -> dict:
    """A failed check entry with one line of detail (also warned on stderr)."""
    warn(f"{CHECK_NAME} failed: {detail}")
    return {
        "name": CHECK_NAME,
        "passed": False,
        "skipped": False,
        "max_abs_diff": None,
        "tolerance": settings.tolerance,
        "dice_tolerance": settings.dice_tolerance,
        "detail": detail,
    }


def _artifacts(out: Path) -> dict:
    """``{"onnx": "model.onnx"}`` when the file exists."""
    return {"onnx": out.name} if out.is_file() else {}


def warn(line: str) -> None:
    """One warning line on stderr and in run.log."""
    log.warning("%s", line)
    print(f"warning: {line}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """CLI: TV-UNet weights (.weights.h5, any backend) -> ONNX; prints the export info as JSON."""
    parser = argparse.ArgumentParser(
        prog="python -m usecases.covid_ct.onnx.export", description=main.__doc__
    )
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--n-filters", type=int, required=True)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--opset", type=int, default=17)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if "keras" in sys.modules and os.environ.get("KERAS_BACKEND") != "tensorflow":
        print("error: keras is already loaded with another backend", file=sys.stderr)
        return 2
    os.environ["KERAS_BACKEND"] = "tensorflow"
    if not args.weights.is_file():
        print(f"error: weights file {args.weights} does not exist", file=sys.stderr)
        return 2
    try:
        from usecases.covid_ct.model import build_tv_unet

        model = build_tv_unet(n_filters=args.n_filters, dropout=args.dropout, size=args.size)
        model.load_weights(args.weights)
        info = export_keras(model, args.out, opset=args.opset)
    except Exception as err:  # one line for the parent process
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 1
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
