"""Export a Keras model to ONNX with tf2onnx and check the file: onnx.checker, onnxruntime, parity.

Shared by the use cases. tf2onnx needs the TensorFlow backend of Keras; ``missing_tools`` says in
one line which packages are absent so a caller can record its check as skipped, not crash.
Every framework is imported inside the function that needs it.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import time
from pathlib import Path

import numpy as np

from usecases.data.checksums import sha256_file

MIN_OPSET = 15
EXPORT_TOOLS = ("tensorflow", "tf2onnx", "onnx", "onnxruntime")
CHECK_TOOLS = ("onnx", "onnxruntime")
PROVIDER = "CPUExecutionProvider"


def missing_tools(*, tools: tuple[str, ...] = EXPORT_TOOLS) -> str | None:
    """One line naming the packages of ``tools`` that are not installed, or None if all are."""
    absent = [name for name in tools if importlib.util.find_spec(name) is None]
    return f"not installed here: {', '.join(absent)}" if absent else None


def version_of(package: str) -> str | None:
    """Installed distribution version of ``package`` (e.g. "1.17.0"), or None."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def export_keras(model, out: Path, *, opset: int) -> dict:
    """Convert a Keras 3 model on the TensorFlow backend to ONNX at ``out`` (tf2onnx).

    The batch dimension is left dynamic. Returns ``{"opset", "exporter", "input", "output",
    "export_s"}`` (export_s in seconds). Raises ValueError for an opset below ``MIN_OPSET``
    and RuntimeError when Keras runs on another backend.
    """
    import keras

    if opset < MIN_OPSET:
        raise ValueError(f"opset {opset} is below the minimum {MIN_OPSET}")
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(
            f"tf2onnx needs the tensorflow Keras backend, this process runs "
            f"{keras.backend.backend()}; export from a fresh process"
        )
    import tensorflow as tf
    import tf2onnx

    signature = tuple(
        tf.TensorSpec((None, *t.shape[1:]), t.dtype, name=t.name.split(":")[0])
        for t in model.inputs
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    proto, _ = tf2onnx.convert.from_keras(
        model, input_signature=signature, opset=opset, output_path=str(out)
    )
    return {
        "opset": _default_opset(proto),
        "exporter": f"tf2onnx {tf2onnx.__version__}",
        "input": [i.name for i in proto.graph.input],
        "output": [o.name for o in proto.graph.output],
        "export_s": time.perf_counter() - start,
    }


def check_onnx_file(path: Path) -> dict:
    """Load ``path`` and run ``onnx.checker.check_model(full_check=True)`` on it.

    Returns ``{"opset", "ir_version", "bytes", "sha256"}``; raises whatever onnx raises for a
    corrupt or invalid file (DecodeError, ValidationError, InferenceError, OSError).
    """
    import onnx

    onnx.checker.check_model(str(path), full_check=True)
    proto = onnx.load(str(path))
    return {
        "opset": _default_opset(proto),
        "ir_version": int(proto.ir_version),
        "bytes": Path(path).stat().st_size,
        "sha256": sha256_file(path),
    }


def run_onnx(path: Path, x: np.ndarray, *, batch_size: int = 16) -> np.ndarray:
    """onnxruntime (CPU) output of the single-input model at ``path`` on ``x``, in batches.

    ``x`` is (N, ...) float32 as the model's input; returns the first output, (N, ...) float32.
    """
    session = ort_session(path)
    name = session.get_inputs()[0].name
    x = np.asarray(x, dtype=np.float32)
    parts = [
        session.run(None, {name: np.ascontiguousarray(x[i : i + batch_size])})[0]
        for i in range(0, len(x), batch_size)
    ]
    return np.concatenate(parts).astype(np.float32, copy=False)


def ort_session(path: Path, *, threads: int | None = None):
    """An onnxruntime CPU InferenceSession for ``path`` (``threads``: intra-op threads)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), sess_options=options, providers=[PROVIDER])


def _input_name(path: Path) -> str:
    import onnx

    return onnx.load(str(path), load_external_data=False).graph.input[0].name


def max_abs_diff(reference: np.ndarray, candidate: np.ndarray) -> float:
    """max |reference - candidate| over all elements (same units as the arrays).

    Raises ValueError when the shapes differ; NaN anywhere gives ``inf``.
    """
    reference, candidate = np.asarray(reference), np.asarray(candidate)
    if reference.shape != candidate.shape:
        raise ValueError(f"output shape {candidate.shape} differs from Keras {reference.shape}")
    diff = np.abs(reference.astype(np.float64) - candidate.astype(np.float64))
    return float("inf") if np.isnan(diff).any() else float(diff.max())


def one_line(err: BaseException, *, limit: int = 300) -> str:
    """``"Type: message"`` on one line, cut to ``limit`` characters."""
    text = f"{type(err).__name__}: {' '.join(str(err).split())}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _default_opset(proto) -> int | None:
    """Opset of the default ONNX domain of a ModelProto."""
    return next((int(o.version) for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
