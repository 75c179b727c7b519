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
        HotPath("tf_float32_fused_bn", "train", "float32", "tensorflow",
                "Keras model.fit step, float32, BatchNorm by TensorFlow's fused kernel"),
        HotPath("tf_mixed_bfloat16_fused_bn", "train", "bfloat16", "tensorflow",
                "Keras model.fit step, mixed_bfloat16, BatchNorm by the fused kernel"),
        HotPath("tf_keras_original", "train", "float32", "tensorflow",
                "the paper's TV_UNET.py under tf-keras 2: its model.fit step, float32"),
        HotPath("tf_float32_xla", "train", "float32", "tensorflow",
                "Keras model.fit step, float32, jit_compile=True (XLA)"),
        HotPath("tf_mixed_bfloat16_xla", "train", "bfloat16", "tensorflow",
                "Keras model.fit step, mixed_bfloat16, jit_compile=True (XLA)"),
        HotPath("jax_float32", "train", "float32", "jax", "Keras model.fit step on JAX, float32"),
        HotPath("jax_mixed_bfloat16", "train", "bfloat16", "jax",
                "Keras model.fit step on JAX, mixed_bfloat16"),
        HotPath("keras_predict", "inference", "float32", "tensorflow",
                "Keras model.predict, float32 (the paper's way)", reference=True),
        HotPath("tf_keras_original_predict", "inference", "float32", "tensorflow",
                "the paper's TV_UNET.py under tf-keras 2: model.predict, float32"),
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
                "onnxruntime, static int8 QDQ (uint8 x int8), up-sampling as sub-pixel convs"),
        HotPath("onnxruntime_int8_float_upsampling", "inference", "int8", "tensorflow",
                "onnxruntime int8 as before: ConvTranspose left in float32"),
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


def train_step(
    path: HotPath, *, n_filters: int, x: np.ndarray, y: np.ndarray, original: dict | None = None
):
    """``(step, model)``: ``step()`` runs one training step on the batch (x, y), returns the loss.

    x: (B, 128, 128, 1) float32 slices, y: (B, 128, 128, 2) float32 masks. ``original``: the
    verified paper's code (``original.code.locate_code``), needed by the tf-keras path only.
    """
    from usecases.covid_ct.train import compile_model

    if path.name == "tf_keras_original":
        from usecases.covid_ct.original import inprocess

        return inprocess.train_step(_needs(original, path), n_filters=n_filters, x=x, y=y)

    policy = "mixed_bfloat16" if path.precision == "bfloat16" else "float32"
    model = build(n_filters, policy=policy)
    if path.name.endswith("_fused_bn"):
        from usecases.covid_ct.fused_batchnorm import use_batchnorm

        use_batchnorm(model, "fused")
    # JAX always compiles; TensorFlow without XLA unless the path says so
    jit = path.name.endswith("_xla") or ("auto" if path.backend == "jax" else False)
    compile_model(model, learning_rate=1e-3, jit_compile=jit)
    return (lambda: float(model.train_on_batch(x, y))), model


def inference(
    path: HotPath,
    *,
    model,
    workdir: Path,
    calibration: np.ndarray,
    original: dict | None = None,
) -> Callable[[np.ndarray], np.ndarray]:
    """``predict(x)``: the (B, 128, 128, 2) probabilities of ``model`` on (B, 128, 128, 1) x.

    ``model`` is a float32 TV-UNet; bfloat16, ONNX and tf-keras paths run copies of its
    weights (the ONNX files are written to ``workdir``; int8 ranges come from
    ``calibration`` slices; the tf-keras path needs ``original``, as ``train_step``).
    """
    name = path.name
    if name == "tf_keras_original_predict":
        from usecases.covid_ct.original import inprocess

        twin = inprocess.model(_needs(original, path), n_filters=_width(model))
        twin.set_weights(model.get_weights())
        return lambda x: twin.predict(x, batch_size=len(x), verbose=0)
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
        int8 = None if name == "onnxruntime_float32" else name.removeprefix("onnxruntime_int8")
        session = _onnx_session(model, workdir, int8=int8, calib=calibration)
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


def _onnx_session(model, workdir: Path, *, int8: str | None, calib: np.ndarray):
    """onnxruntime session of ``model`` exported to ``workdir`` (once); ``int8``: None for
    float32, "" for the default int8 recipe, "_float_upsampling" for the previous one."""
    from usecases.covid_ct.onnx.int8 import DEFAULT, PREVIOUS, quantize_int8
    from usecases.covid_ct.onnx.runtime import export_keras, ort_session

    f32 = workdir / f"tv_unet_n{_width(model)}.onnx"
    if not f32.is_file():
        export_keras(model, f32, opset=17)
    if int8 is None:
        return ort_session(f32)
    q = f32.with_suffix(f".int8{int8}.onnx")
    if not q.is_file():
        recipe = PREVIOUS if int8 == "_float_upsampling" else DEFAULT
        quantize_int8(f32, q, calibration=calib, recipe=recipe)
    return ort_session(q)


def _needs(original: dict | None, path: HotPath) -> dict:
    if original is None:
        raise ValueError(f"{path.name} runs the paper's code: pass original=locate_code(...)")
    return original


def _width(model) -> int:
    """n, the filter count of the first convolution."""
    return next(la.filters for la in model.layers if type(la).__name__ == "Conv2D")
