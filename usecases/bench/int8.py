"""int8 recipes side by side: onnxruntime speed and Dice against Keras float32, in one run.

For trained TV-UNet weights: the float32 model is exported to ONNX once and quantized by each
recipe (``usecases.covid_ct.onnx.int8``) on the same calibration slices (validation slices
spread over all patients, never test slices). In one process, rounds interleaved so that load
hits every path alike, it times Keras ``model.predict`` (the reference), onnxruntime float32
and every int8 model at one batch size (two untimed calls each first; images/s from the median
round) and measures each model's pooled Dice on all test slices at every threshold against
Keras float32. Writes ``OUT/int8.json`` and prints the table.

    python -m usecases.bench.int8 --weights RUN/model.weights.h5 \
        --data ../shared/data/covid_semiseg --out OUT
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from usecases.covid_ct.onnx.int8 import DEFAULT, PREVIOUS, Int8Recipe
from usecases.errors import ConfigError
from usecases.runner.devices import configure_process

RECIPES = {
    "previous": PREVIOUS,
    "default": DEFAULT,
    "subpixel+entropy": Int8Recipe(calibration="entropy"),
    "subpixel+percentile": Int8Recipe(calibration="percentile"),
    "subpixel+float-head": Int8Recipe(float_nodes=("head",)),
    "subpixel+float-first-head": Int8Recipe(float_nodes=("first", "head")),
    "subpixel+entropy+float-head": Int8Recipe(calibration="entropy", float_nodes=("head",)),
    "float-upsampling+float-head": Int8Recipe(upsampling="float", float_nodes=("head",)),
}  # fmt: skip


def compare(
    *, weights: Path, data: Path, width: int, batch: int, rounds: int, calibration_images: int,
    recipes: dict[str, Int8Recipe], workdir: Path,
) -> dict:  # fmt: skip
    """Quantize by each recipe, then time and score every path; returns the result dict.

    Per path: ``images_per_s`` (batch / median round), ``rounds_s``, ``speedup`` over Keras
    ``model.predict``, ``dice_pooled`` per threshold, ``dice_drop`` (Keras float32 minus the
    path), ``dice_max_drop``; int8 paths add their quantization info and file size.
    """
    import keras

    from usecases.covid_ct import hot_paths
    from usecases.covid_ct.data.covid_semiseg import load_covid_semiseg
    from usecases.covid_ct.evaluate import THRESHOLDS, segmentation_metrics, threshold_key
    from usecases.covid_ct.onnx.int8 import quantize_int8, spread_subset
    from usecases.covid_ct.onnx.runtime import export_keras, one_line, ort_session
    from usecases.paths import cache_base

    ds = load_covid_semiseg(root=data, cache_dir=cache_base() / "prepared", size=128)
    model = hot_paths.build(width)
    try:
        model.load_weights(weights)
    except (ValueError, OSError) as err:
        raise ConfigError(
            f"--weights {weights} is not a TV-UNet of width {width} ({one_line(err, limit=160)}); "
            "give --width of the run that saved it"
        ) from None
    f32 = workdir / "model.onnx"
    export_keras(model, f32, opset=17)
    calib = spread_subset(ds.x_valid, n=calibration_images)
    paths: dict[str, dict] = {
        "keras_predict": {"run": lambda x: model.predict(x, batch_size=len(x), verbose=0)},
        "onnxruntime_float32": {"run": _ort(ort_session(f32))},
    }
    for name, recipe in recipes.items():
        file = workdir / f"{name}.onnx"
        info = quantize_int8(f32, file, calibration=calib, recipe=recipe)
        paths[f"int8 {name}"] = {
            "run": _ort(ort_session(file)), "quantization": info, "bytes": file.stat().st_size,
        }  # fmt: skip
        print(f"quantized {name} ({recipe.label}) in {info['quantize_s']:.0f} s", flush=True)

    def dice(prob: np.ndarray) -> dict[str, float]:
        m = segmentation_metrics(ds.y_test, prob, thresholds=THRESHOLDS)
        return {threshold_key(t): m[threshold_key(t)]["dice_pooled"] for t in THRESHOLDS}

    reference = dice(model.predict(ds.x_test, batch_size=batch, verbose=0))
    for p in paths.values():
        p["dice_pooled"] = dice(hot_paths.predict_all(p["run"], ds.x_test, batch_size=batch))
        p["dice_drop"] = {k: reference[k] - v for k, v in p["dice_pooled"].items()}
        p["dice_max_drop"] = max(p["dice_drop"].values())
    x = np.ascontiguousarray(ds.x_test[:batch], dtype=np.float32)
    for p in paths.values():
        for _ in range(2):  # graph building, allocation
            p["run"](x)
        p["rounds_s"] = []
    for _ in range(rounds):
        for p in paths.values():
            start = time.perf_counter()
            np.asarray(p["run"](x))
            p["rounds_s"].append(time.perf_counter() - start)
    ref_s = float(np.median(paths["keras_predict"]["rounds_s"]))
    for p in paths.values():
        p.pop("run")
        median = float(np.median(p["rounds_s"]))
        p.update(median_s=median, images_per_s=batch / median, speedup=ref_s / median)
    return {
        "weights": str(weights), "width": width, "batch_size": batch, "rounds": rounds,
        "calibration_images": len(calib), "test_slices": len(ds.x_test),
        "keras_float32_dice": reference, "keras_version": keras.__version__, "paths": paths,
    }  # fmt: skip


def table(result: dict) -> list[str]:
    """One line per path: images/s, speed-up, Dice at 0.3, drop at 0.3, largest drop (where)."""
    lines = [
        f"batch {result['batch_size']}, {result['test_slices']} test slices, Keras float32 "
        f"Dice at 0.3 {result['keras_float32_dice']['0.3']:.4f}",
        f"{'path':38s} {'images/s':>9s} {'vs predict':>10s} {'Dice 0.3':>9s} {'drop 0.3':>9s} "
        f"{'largest drop':>16s}",
    ]
    for name, p in result["paths"].items():
        worst = max(p["dice_drop"], key=p["dice_drop"].__getitem__)
        lines.append(
            f"{name:38s} {p['images_per_s']:9.2f} {p['speedup']:9.2f}x "
            f"{p['dice_pooled']['0.3']:9.4f} {p['dice_drop']['0.3']:+9.4f} "
            f"{p['dice_max_drop']:+9.4f} at {worst}"
        )
    return lines


def _ort(session):
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


def main(argv: list[str] | None = None) -> int:
    """CLI: compare the recipes and write ``OUT/int8.json``; one error line and exit 2 for bad
    input."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", type=Path, required=True, help="trained model.weights.h5")
    p.add_argument("--data", type=Path, required=True, help="COVID-SemiSeg root (holds Dataset/)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--width", type=int, default=64, help="n_filters of the weights (paper: 64)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--calibration-images", type=int, default=32)
    p.add_argument("--recipes", nargs="+", choices=sorted(RECIPES), default=list(RECIPES))
    args = p.parse_args(argv)
    problem = (
        f"--weights {args.weights} is not a file" if not args.weights.is_file()
        else f"--data {args.data} holds no Dataset/ folder" if not (args.data / "Dataset").is_dir()
        else "--batch, --rounds and --calibration-images must be >= 1"
        if min(args.batch, args.rounds, args.calibration_images) < 1 else None
    )  # fmt: skip
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        configure_process(device="cpu", backend="tensorflow")
    except (OSError, ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    started = datetime.now(UTC).isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(prefix="int8-") as work:
        try:
            result = compare(
                weights=args.weights, data=args.data, width=args.width, batch=args.batch,
                rounds=args.rounds, calibration_images=args.calibration_images,
                recipes={k: RECIPES[k] for k in args.recipes}, workdir=Path(work),
            )  # fmt: skip
        except ConfigError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    from usecases.measure.environment import capture_environment

    record = {"benchmark": "usecases.bench.int8", "started_at": started,
              "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
              "args": {k: str(v) for k, v in vars(args).items()},
              "environment": capture_environment(), **result}  # fmt: skip
    (args.out / "int8.json").write_text(json.dumps(record, indent=1, default=str))
    print("\n".join(table(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
