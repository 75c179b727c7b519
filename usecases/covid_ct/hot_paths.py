"""The covid_ct hot paths as ready-to-time callables: training steps and inference.

Each path is one way to run the same TV-UNet. The reference ways are the paper's: a float32
Keras training step as ``model.fit`` runs it (``train_on_batch`` calls the same compiled
step, without XLA as Keras 2 ran it) and float32 ``model.predict``. The others run the same
weights faster: XLA compilation, a compiled ``tf.function`` and onnxruntime float32 change
only the kernels; mixed bfloat16 and static int8 quantization also change the arithmetic, so
their Dice is checked against float32 (use case checks, benchmark ``--weights``). Every
callable returns numpy (or a Python float), so timing it waits for the device. The benchmark
suite (tests/benchmarks) times these.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from usecases.covid_ct.flops import TRAIN_FACTOR, forward_flops_per_image


@dataclass(frozen=True)
class HotPath:
    """One way to run a step: kind "train" or "inference", the precision its math runs in."""

    name: str
    kind: str
    precision: str
    backend: str
    description: str
    reference: bool = False


PATHS = {
    p.name: p
    for p in (
        HotPath("tf_float32", "train", "float32", "tensorflow",
                "Keras model.fit step, float32 (the paper's way)", reference=True),
        HotPath("tf_mixed_bfloat16", "train", "bfloat16", "tensorflow",
                "Keras model.fit step, mixed_bfloat16 policy"),
        HotPath("tf_float32_xla", "train", "float32", "tensorflow",
                "Keras model.fit step, float32, jit_compile=True (XLA)"),
        HotPath("tf_mixed_bfloat16_xla", "train", "bfloat16", "tensorflow",
                "Keras model.fit step, mixed_bfloat16, jit_compile=True (XLA)"),
        HotPath("jax_float32", "train", "float32", "jax", "Keras model.fit step on JAX, float32"),
        HotPath("jax_mixed_bfloat16", "train", "bfloat16", "jax",
                "Keras model.fit step on JAX, mixed_bfloat16"),
        HotPath("keras_predict", "inference", "float32", "tensorflow",
                "Keras model.predict, float32 (the paper's way)", reference=True),
        HotPath("keras_predict_on_batch", "inference", "float32", "tensorflow",
                "Keras predict_on_batch, float32"),
        HotPath("tf_function", "inference", "float32", "tensorflow",
                "compiled tf.function of the model, float32"),
        HotPath("tf_function_xla", "inference", "float32", "tensorflow",
                "compiled tf.function, jit_compile=True (XLA), float32"),
        HotPath("keras_bfloat16", "inference", "bfloat16", "tensorflow",
                "Keras predict_on_batch, mixed_bfloat16 copy of the weights"),
        HotPath("onnxruntime_float32", "inference", "float32", "tensorflow",
                "tf2onnx export run by onnxruntime (CPU), float32"),
        HotPath("onnxruntime_int8", "inference", "int8", "tensorflow",
                "onnxruntime, static int8 QDQ quantization (uint8 x int8)"),
        HotPath("jax_predict", "inference", "float32", "jax", "Keras model.predict on JAX, float32",
                reference=True),
        HotPath("jax_predict_on_batch", "inference", "float32", "jax",
                "Keras predict_on_batch on JAX, float32"),
    )
}  # fmt: skip


def build(n_filters: int, *, policy: str = "float32", seed: int = 0):
    """A TV-UNet of width ``n_filters`` under the Keras dtype ``policy`` (global one restored).

    Under TensorFlow its predict runs without XLA (Keras 3 would turn XLA on by itself where
    a GPU is visible); XLA is a path of its own here.
    """
    import keras

    from usecases.covid_ct.model import build_tv_unet

    previous = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy(policy)
    try:
        keras.utils.set_random_seed(seed)
        model = build_tv_unet(n_filters=n_filters)
    finally:
        keras.mixed_precision.set_dtype_policy(previous)
    if keras.backend.backend() == "tensorflow":
        model.jit_compile = False
    return model


def flops_per_image(model, kind: str) -> int:
    """FLOPs per image of one forward pass ("inference") or training step ("train")."""
    forward = forward_flops_per_image(model)
    return forward * TRAIN_FACTOR if kind == "train" else forward


def train_step(path: HotPath, *, n_filters: int, x: np.ndarray, y: np.ndarray):
    """``(step, model)``: ``step()`` runs one training step on the batch (x, y), returns the loss.

    x: (B, 128, 128, 1) float32 slices, y: (B, 128, 128, 2) float32 masks.
    """
    from usecases.covid_ct.train import compile_model

    policy = "mixed_bfloat16" if path.precision == "bfloat16" else "float32"
    model = build(n_filters, policy=policy)
    # JAX always compiles; TensorFlow without XLA unless the path says so
    jit = path.name.endswith("_xla") or ("auto" if path.backend == "jax" else False)
    compile_model(model, learning_rate=1e-3, jit_compile=jit)
    return (lambda: float(model.train_on_batch(x, y))), model


def inference(
    path: HotPath, *, model, workdir: Path, calibration: np.ndarray
) -> Callable[[np.ndarray], np.ndarray]:
    """``predict(x)``: the (B, 128, 128, 2) probabilities of ``model`` on (B, 128, 128, 1) x.

    ``model`` is a float32 TV-UNet; bfloat16 and ONNX paths run copies of its weights (the
    ONNX files are written to ``workdir``; int8 ranges come from ``calibration`` slices).
    """
    name = path.name
    if name in ("keras_predict", "jax_predict"):
        return lambda x: model.predict(x, batch_size=len(x), verbose=0)
    if name in ("keras_predict_on_batch", "jax_predict_on_batch"):
        return lambda x: np.asarray(model.predict_on_batch(x))
    if name.startswith("tf_function"):
        import tensorflow as tf

        fn = tf.function(lambda t: model(t, training=False), jit_compile=name.endswith("_xla"))
        return lambda x: fn(tf.constant(x)).numpy()
    if name == "keras_bfloat16":
        twin = build(_width(model), policy="mixed_bfloat16")
        twin.set_weights(model.get_weights())
        return lambda x: np.asarray(twin.predict_on_batch(x))
    if name.startswith("onnxruntime"):
        session = _onnx_session(model, workdir, int8=name.endswith("int8"), calib=calibration)
        input_name = session.get_inputs()[0].name
        return lambda x: session.run(None, {input_name: x})[0]
    raise ValueError(f"unknown inference path {name!r}")


def predict_all(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, *, batch_size: int):
    """``predict`` over all of ``x`` in batches of ``batch_size``; (N, 128, 128, 2) float32."""
    parts = [
        np.asarray(predict(np.ascontiguousarray(x[i : i + batch_size], dtype=np.float32)))
        for i in range(0, len(x), batch_size)
    ]
    return np.concatenate(parts).astype(np.float32, copy=False)


def _onnx_session(model, workdir: Path, *, int8: bool, calib: np.ndarray):
    """onnxruntime session of ``model`` exported to ``workdir`` (once), optionally int8."""
    from usecases.covid_ct.onnx.runtime import export_keras, ort_session, quantize_int8

    f32 = workdir / f"tv_unet_n{_width(model)}.onnx"
    if not f32.is_file():
        export_keras(model, f32, opset=17)
    if not int8:
        return ort_session(f32)
    q = f32.with_suffix(".int8.onnx")
    if not q.is_file():
        quantize_int8(f32, q, calibration=calib)
    return ort_session(q)


def _width(model) -> int:
    """n, the filter count of the first convolution."""
    import keras

    return next(la.filters for la in model.layers if isinstance(la, keras.layers.Conv2D))
