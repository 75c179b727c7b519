"""Floating-point operations of the TV-UNet, counted from the built Keras model.

A multiply-add counts as 2 FLOPs. Only convolutions (incl. transposed) are counted; they are
more than 99 % of the work. One training step costs about 3x the forward pass (forward,
gradient w.r.t. activations, gradient w.r.t. weights).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras

TRAIN_FACTOR = 3


def forward_flops_per_image(model: keras.Model) -> int:
    """FLOPs of one forward pass of one image through every Conv2D / Conv2DTranspose.

    Layers are told by class name, so a Keras 2 (tf-keras) model, such as the paper's own
    code builds, is counted the same way as a Keras 3 one.
    """
    total = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Conv2DTranspose":
            # every input pixel scatters a k x k x C_out patch
            _, h, w, c_in = layer.input.shape
            kh, kw = layer.kernel_size
            total += 2 * h * w * kh * kw * c_in * layer.filters
        elif kind == "Conv2D":
            _, h, w, _ = layer.output.shape
            kh, kw = layer.kernel_size
            c_in = layer.input.shape[-1]
            total += 2 * h * w * kh * kw * c_in * layer.filters
    return int(total)


def annotate_efficiency(
    timings: dict, *, forward_flops: int, policy: str, backend: str, on_gpu: bool
) -> dict:
    """Add achieved GFLOP/s and the GEMM ceiling of its precision to each images/s timing.

    ``timings`` entries with ``images_per_s`` get ``gflops_per_s``, ``ceiling_gflops_per_s``
    and ``ceiling`` (in place): ``train_step`` counts TRAIN_FACTOR x ``forward_flops`` per
    image, inference entries ``forward_flops``. Keras entries run in ``policy``'s compute
    precision on the run's device, ``onnx_*`` in float32 and ``onnx_int8_*`` in int8 on the
    CPU (onnxruntime's CPU provider), so with ``on_gpu`` they get CPU ceilings. Ceilings are
    measured now, on this machine (usecases.measure.ceilings); returns them by name
    ("float32", "bfloat16", "int8", "float32 (CPU)").
    """
    from usecases.measure.ceilings import gemm_ceiling

    keras_precision = "bfloat16" if "bfloat16" in policy else "float32"
    ceilings: dict[str, dict] = {}
    for key, entry in timings.items():
        if not isinstance(entry, dict) or not entry.get("images_per_s"):
            continue
        on_cpu = key.startswith("onnx_") and on_gpu
        if key.startswith("onnx_int8_"):
            precision = "int8"
        elif key.startswith("onnx_"):
            precision = "float32"
        else:
            precision = keras_precision
        name = f"{precision} (CPU)" if on_cpu and precision != "int8" else precision
        if name not in ceilings:
            ceilings[name] = gemm_ceiling(precision, backend=backend, cpu=on_cpu)
        flops = forward_flops * (TRAIN_FACTOR if key == "train_step" else 1)
        entry["gflops_per_s"] = entry["images_per_s"] * flops / 1e9
        entry["ceiling_gflops_per_s"] = ceilings[name]["gflops"]
        entry["ceiling"] = f"{name} GEMM, {ceilings[name]['library']}"
    return ceilings
