"""The fresh TensorFlow process that exports a model trained on another Keras backend.

jax2onnx's MaxPool output is rejected by onnxruntime, so a JAX-trained TV-UNet is exported by
loading its saved weights into the TensorFlow-backend model in a new process:
``python -m usecases.covid_ct.onnx.child --weights W --n-filters N --out model.onnx`` prints
the export info as one JSON line, or one ``error:`` line and a non-zero exit.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from usecases import paths
from usecases.covid_ct.onnx.runtime import export_keras, one_line
from usecases.covid_ct.onnx.settings import ModelSpec, OnnxSettings


def export_in_fresh_process(
    *, weights: Path, out: Path, spec: ModelSpec, opset: int, timeout_s: float
) -> dict:
    """Run ``python -m usecases.covid_ct.onnx.child`` with KERAS_BACKEND=tensorflow on the CPU.

    Returns the export info the child prints (``opset``, ``exporter``, ``export_s`` ...);
    raises RuntimeError with the child's one-line error when it fails.
    """
    cmd = [
        sys.executable,
        "-m",
        "usecases.covid_ct.onnx.child",
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


def export_from_weights(
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


def main(argv: list[str] | None = None) -> int:
    """CLI: TV-UNet weights (.weights.h5, any backend) -> ONNX; prints the export info as JSON."""
    parser = argparse.ArgumentParser(
        prog="python -m usecases.covid_ct.onnx.child", description=main.__doc__
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
