"""GEMM ceilings: the matrix-product throughput this machine reaches at a given precision.

A hot path's efficiency is its achieved FLOP/s divided by the ceiling of its own precision,
measured on the same machine in the same process: float32 and bfloat16 with the Keras
backend's own matmul (TensorFlow/oneDNN or JAX/XLA), int8 with onnxruntime's MatMulInteger
(uint8 x int8 -> int32, the kernel its quantized convolutions use). One n x n x n product
costs 2 n^3 FLOPs (or integer ops).
"""

from __future__ import annotations

import platform
import tempfile
from pathlib import Path

import numpy as np

from usecases.measure.timing import summarize, time_call

PRECISIONS = ("float32", "bfloat16", "int8")


def gemm_ceiling(
    precision: str, *, backend: str, cpu: bool = False, n: int = 2048, repeats: int = 7
) -> dict:
    """Median GFLOP/s of an ``n`` x ``n`` x ``n`` matrix product at ``precision``.

    ``backend`` is "tensorflow" or "jax" (ignored for int8); it runs on the backend's default
    device (a GPU where one is visible) unless ``cpu`` is true (int8 always runs on the CPU,
    as onnxruntime here does). Warm-up (compilation) excluded,
    the output synchronised. Returns ``{"precision", "gflops", "library", "matrix_size", "n"
    (timed calls), "median_s", "iqr_s", ...}``; ValueError for an unknown precision.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision == "int8":
        fn, library = _ort_int8_matmul(n)
    elif backend == "jax":
        fn, library = _jax_matmul(n, precision, cpu=cpu)
    else:
        fn, library = _tf_matmul(n, precision, cpu=cpu)
    stats = summarize(time_call(fn, repeats=repeats, warmup=2))
    return {
        "precision": precision,
        "gflops": 2 * n**3 / stats["median_s"] / 1e9,
        "library": library,
        "matrix_size": n,
        "machine": platform.machine(),
        **stats,
    }


def _tf_matmul(n: int, precision: str, *, cpu: bool):
    import tensorflow as tf

    dtype = tf.bfloat16 if precision == "bfloat16" else tf.float32
    device = "CPU" if cpu or not tf.config.list_physical_devices("GPU") else "GPU"
    rng = np.random.default_rng(0)
    with tf.device(f"/{device}:0"):
        a = tf.constant(rng.standard_normal((n, n), dtype=np.float32), dtype=dtype)
        b = tf.constant(rng.standard_normal((n, n), dtype=np.float32), dtype=dtype)

    @tf.function
    def matmul():
        with tf.device(f"/{device}:0"):
            return tf.matmul(a, b)[0, 0]

    return (lambda: matmul().numpy()), f"tensorflow {tf.__version__} matmul ({device})"


def _jax_matmul(n: int, precision: str, *, cpu: bool):
    import jax
    import jax.numpy as jnp

    dtype = jnp.bfloat16 if precision == "bfloat16" else jnp.float32
    device = jax.devices("cpu")[0] if cpu else jax.devices()[0]
    key_a, key_b = jax.random.split(jax.random.PRNGKey(0))
    a = jax.device_put(jax.random.normal(key_a, (n, n), dtype), device)
    b = jax.device_put(jax.random.normal(key_b, (n, n), dtype), device)
    matmul = jax.jit(jnp.matmul)
    return (lambda: matmul(a, b).block_until_ready()), f"jax {jax.__version__} ({device.platform})"


def _ort_int8_matmul(n: int):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = rng.integers(-128, 128, (n, n), dtype=np.int8)
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b"], ["c"])],
        "int8_gemm",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [n, n])],
        [helper.make_tensor_value_info("c", TensorProto.INT32, [n, n])],
        initializer=[numpy_helper.from_array(weights, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "int8_gemm.onnx"
        onnx.save(model, str(path))
        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    a = rng.integers(0, 256, (n, n), dtype=np.uint8)
    return (lambda: session.run(None, {"a": a})[0]), (
        f"onnxruntime {ort.__version__} MatMulInteger u8s8 (CPU)"
    )
