"""Static int8 quantization of the float32 ONNX TV-UNet with onnxruntime's tools, by recipe.

A recipe (``Int8Recipe``) names the choices that set the int8 model's speed and Dice:
- ``upsampling``: "subpixel" rewrites the ConvTranspose layers as Conv + DepthToSpace first
  (``subpixel.subpixel_convtranspose``), so they run in int8 too; "float" leaves them to
  onnxruntime, which has no int8 ConvTranspose on CPU and runs them in float32.
- ``calibration``: how activation ranges are set from the calibration slices: "minmax",
  "entropy" (KL divergence over a 2048-bin histogram, 128 quantized bins, as TensorRT's int8
  calibration; onnxruntime's ``quantize_static`` would build its entropy calibrator with 128
  bins, where only the full range is a candidate, i.e. MinMax, so the ranges are computed
  here and handed over as a calibration cache) or "percentile" (``percentile`` of |x|).
- ``float_nodes``: parts kept in float32: "head" (the 1x1 output convolution and its sigmoid),
  "first" (the convolution that reads the slice).
Weights are int8 per output channel, activations uint8 per tensor (the u8s8 pair onnxruntime's
x86 kernels run with VNNI), QDQ format. ``DEFAULT`` is what every run uses; docs/performance.md
has the side-by-side study of the others (``python -m usecases.bench.int8``).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

UPSAMPLING = ("subpixel", "float")
ENTROPY_BINS, ENTROPY_QUANTIZED_BINS = 2048, 128
CALIBRATION = ("minmax", "entropy", "percentile")
FLOAT_NODES = ("head", "first")


@dataclass(frozen=True)
class Int8Recipe:
    """How a float32 ONNX model is quantized (see the module docstring for each field)."""

    upsampling: str = "subpixel"
    calibration: str = "minmax"
    percentile: float = 99.999
    float_nodes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.upsampling not in UPSAMPLING:
            raise ValueError(f"upsampling {self.upsampling!r} is not one of {UPSAMPLING}")
        if self.calibration not in CALIBRATION:
            raise ValueError(f"calibration {self.calibration!r} is not one of {CALIBRATION}")
        unknown = set(self.float_nodes) - set(FLOAT_NODES)
        if unknown:
            raise ValueError(f"float_nodes {sorted(unknown)} not in {FLOAT_NODES}")

    @property
    def label(self) -> str:
        """Short name, e.g. "subpixel+minmax" or "float-upsampling+entropy+float head"."""
        parts = ["subpixel" if self.upsampling == "subpixel" else "float-upsampling"]
        method = self.calibration
        parts.append(f"percentile {self.percentile:g}" if method == "percentile" else method)
        parts += [f"float {name}" for name in self.float_nodes]
        return "+".join(parts)


DEFAULT = Int8Recipe()
PREVIOUS = Int8Recipe(upsampling="float")  # the recipe of runs before the sub-pixel rewrite


def spread_subset(x: np.ndarray, *, n: int) -> np.ndarray:
    """``n`` items of ``x`` (N, ...) evenly spaced from the first to the last (all when n >= N).

    Calibration sets are slices sorted by patient; the first ``n`` would cover one or two
    patients, an even spread covers them all.
    """
    if n >= len(x):
        return x
    return x[np.linspace(0, len(x) - 1, n).round().astype(int)]


def quantize_int8(
    src: Path, out: Path, *, calibration: np.ndarray, recipe: Int8Recipe = DEFAULT
) -> dict:
    """Static int8 quantization of the float32 ONNX model ``src`` to ``out`` by ``recipe``.

    ``calibration``: (N, ...) float32 model inputs for the activation ranges; use training or
    validation data, never the test set. Returns ``{"recipe", "format", "weights",
    "activations", "upsampling", "calibration", "float_nodes", "calibration_images",
    "quantize_s"}`` (seconds). Intermediate files live beside ``out`` and are removed.
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from usecases.covid_ct.onnx.subpixel import subpixel_convtranspose

    class _Reader(CalibrationDataReader):
        def __init__(self, name: str, x: np.ndarray) -> None:
            self._batches = iter([{name: x[i : i + 1]} for i in range(len(x))])

        def get_next(self):
            return next(self._batches, None)

    out = Path(out)
    start = time.perf_counter()
    model = onnx.load(str(src))
    name = model.graph.input[0].name
    rewritten = 0
    if recipe.upsampling == "subpixel":
        model, rewritten = subpixel_convtranspose(model)
    method = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }[recipe.calibration]
    rewritten_file, pre = out.with_suffix(".rewritten.onnx"), out.with_suffix(".pre.onnx")
    cache = out.with_suffix(".ranges.json")
    reader = _Reader(name, np.asarray(calibration, dtype=np.float32))
    try:
        onnx.save(model, str(rewritten_file))
        quant_pre_process(str(rewritten_file), str(pre), skip_symbolic_shape=True)
        excluded = _float_nodes(onnx.load(str(pre)), recipe.float_nodes)
        if recipe.calibration == "entropy":
            _entropy_ranges(pre, reader, cache=cache)
            reader = None
        quantize_static(
            str(pre),
            str(out),
            reader,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=method,
            nodes_to_exclude=excluded,
            extra_options={"CalibPercentile": recipe.percentile},
            calibration_cache_path=str(cache) if reader is None else None,
        )
    finally:
        for file in (rewritten_file, pre, cache):
            file.unlink(missing_ok=True)
    return {
        "recipe": {**asdict(recipe), "float_nodes": list(recipe.float_nodes)},
        "format": "QDQ",
        "weights": "int8 per channel",
        "activations": "uint8 per tensor",
        "upsampling": f"{rewritten} ConvTranspose as sub-pixel Conv + DepthToSpace (int8)"
        if recipe.upsampling == "subpixel"
        else "ConvTranspose in float32 (no int8 kernel in onnxruntime's CPU provider)",
        "calibration": {
            "minmax": "MinMax",
            "entropy": f"Entropy ({ENTROPY_BINS} bins, {ENTROPY_QUANTIZED_BINS} quantized)",
            "percentile": f"Percentile {recipe.percentile:g}",
        }[recipe.calibration],
        "float_nodes": excluded,
        "calibration_images": len(calibration),
        "quantize_s": time.perf_counter() - start,
    }


def _entropy_ranges(model: Path, reader, *, cache: Path) -> None:
    """Activation ranges of ``model`` by KL divergence (``ENTROPY_BINS`` histogram bins,
    ``ENTROPY_QUANTIZED_BINS`` quantized), written to ``cache`` for ``quantize_static``."""
    import tempfile

    from onnxruntime.quantization.calibrate import (
        CalibrationMethod,
        create_calibrator,
        save_tensors_data,
    )

    with tempfile.TemporaryDirectory(prefix="entropy-", dir=cache.parent) as tmp:
        calibrator = create_calibrator(
            model,
            augmented_model_path=str(Path(tmp) / "augmented.onnx"),
            calibrate_method=CalibrationMethod.Entropy,
            extra_options={"num_bins": ENTROPY_BINS, "num_quantized_bins": ENTROPY_QUANTIZED_BINS},
        )
        calibrator.collect_data(reader)
        save_tensors_data(calibrator.compute_data(), cache)


def _float_nodes(model, parts: tuple[str, ...]) -> list[str]:
    """Names of the nodes of ``parts`` ("head": the last Conv and what follows it; "first": the
    first Conv) in the pre-processed ``model``; ValueError when one is not found."""
    nodes = list(model.graph.node)
    convs = [i for i, n in enumerate(nodes) if n.op_type == "Conv"]
    if parts and not convs:
        raise ValueError("the model has no Conv node to keep in float")
    names: list[str] = []
    if "first" in parts:
        names.append(nodes[convs[0]].name)
    if "head" in parts:
        names += [n.name for n in nodes[convs[-1] :] if n.op_type in ("Conv", "Sigmoid")]
    return names
