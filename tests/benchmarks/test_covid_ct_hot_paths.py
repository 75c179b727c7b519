"""Benchmarks of the covid_ct hot paths: training steps, inference, data preparation.

Plain ``pytest`` runs each path once at smoke width (the suite's addopts disable timing) and
checks its output; ``scripts/benchmark.sh`` times them at smoke and paper width (README,
docs/performance.md). Paths of the other Keras backend skip: run the suite again with
``KERAS_BACKEND=jax`` for the JAX paths.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.benchmarks.conftest import BACKEND, REPO, WIDTHS, Row
from usecases.covid_ct import hot_paths
from usecases.covid_ct.hot_paths import PATHS
from usecases.covid_ct.onnx.int8 import spread_subset

USECASE = yaml.safe_load((REPO / "conf" / "usecase" / "covid_ct.yaml").read_text())
TRAIN_BATCH = USECASE["train"]["batch_size"]
INFERENCE_BATCHES = USECASE["timing"]["inference_batch_sizes"]
TRAIN = [p.name for p in PATHS.values() if p.kind == "train"]
INFERENCE = [p.name for p in PATHS.values() if p.kind == "inference"]
# Agreement with the float32 Keras output of the same weights (probabilities, 0..1).
MAX_ABS_FLOAT32 = 1e-4
MEAN_ABS_REDUCED = 0.02  # bfloat16 and int8 paths


def _path(name: str):
    path = PATHS[name]
    if path.backend != BACKEND:
        pytest.skip(f"{name} needs KERAS_BACKEND={path.backend}; this run is {BACKEND}")
    return path


def _original(name: str) -> dict | None:
    """The verified paper's code for the tf-keras paths (../shared/reference), else None."""
    if not name.startswith("tf_keras_original"):
        return None
    from tests.conftest import NO_ORIGINAL, ORIGINAL_CODE, needs_module, require
    from usecases.covid_ct.original.code import locate_code

    needs_module("tf_keras", "tf-keras (Keras 2) is not installed here")
    require((ORIGINAL_CODE / "TV_UNET.py").is_file(), NO_ORIGINAL)
    return locate_code(ORIGINAL_CODE)


def _measure(benchmark, fn, *, seconds: float):
    """One call when timing is disabled; else 2 untimed calls, then rounds filling ``seconds``."""
    if benchmark.disabled:
        return benchmark(fn)
    fn()  # compilation
    start = time.perf_counter()
    fn()
    one = time.perf_counter() - start
    rounds = int(min(50, max(3, seconds / max(one, 1e-6))))
    return benchmark.pedantic(fn, rounds=rounds, warmup_rounds=0, iterations=1)


def _record(benchmark, collected, ceiling, *, width, path, batch_size, flops, source) -> None:
    """extra_info (FLOPs, images/s, GFLOP/s, ceiling, efficiency) + a row for the summary."""
    info = {
        "path": path.name,
        "description": path.description,
        "kind": path.kind,
        "precision": path.precision,
        "backend": path.backend,
        "width": width,
        "n_filters": WIDTHS[width],
        "batch_size": batch_size,
        "flops_per_image": flops,
        "flops_counted": "Conv2D/Conv2DTranspose of the built model (x3 for a training step)",
        "data": source,
    }
    if not benchmark.disabled and benchmark.stats is not None:
        median = benchmark.stats.stats.median
        ceil = ceiling(path.precision, cpu=path.name.startswith("onnxruntime"))
        info["images_per_s"] = batch_size / median
        info["gflops_per_s"] = info["images_per_s"] * flops / 1e9
        info["ceiling_gflops_per_s"] = ceil["gflops"]
        info["ceiling"] = f"{ceil['precision']} GEMM, {ceil['library']}, n={ceil['matrix_size']}"
        info["efficiency"] = info["gflops_per_s"] / ceil["gflops"]
    benchmark.extra_info.update(info)
    collected.rows.append(Row(width, path, batch_size, dict(benchmark.extra_info)))


@pytest.fixture(scope="session")
def float32_models(request):
    """``get(width)`` -> (float32 TV-UNet, weights label), one per width, shared.

    With ``--weights WIDTH=W`` that width's model loads W (trained); otherwise weights are the
    he_normal initialisation and no Dice is reported.
    """
    models: dict[str, tuple] = {}
    option = request.config.getoption("--weights")
    trained_width, _, weights = option.partition("=") if option else ("", "", "")
    if option and (trained_width not in WIDTHS or not Path(weights).is_file()):
        raise pytest.UsageError(f"--weights {option}: expected WIDTH=FILE with an existing FILE")

    def get(width: str):
        if width not in models:
            model = hot_paths.build(WIDTHS[width])
            label = "random (he_normal initialisation)"
            if width == trained_width:
                model.load_weights(weights)
                label = f"trained: {weights}"
            models[width] = (model, label)
        return models[width]

    return get


@pytest.fixture(scope="session")
def float32_dice(bench_data, float32_models):
    """``get(width)`` -> pooled Dice per threshold of float32 Keras on all test slices."""
    from usecases.covid_ct.evaluate import segmentation_metrics

    cache: dict[str, dict] = {}

    def get(width: str) -> dict:
        if width not in cache:
            ds, _ = bench_data
            model, _ = float32_models(width)
            cache[width] = _dice(
                segmentation_metrics, ds.y_test, model.predict(ds.x_test, verbose=0)
            )
        return cache[width]

    return get


def _dice(segmentation_metrics, y, prob) -> dict[str, float]:
    from usecases.covid_ct.evaluate import THRESHOLDS, threshold_key

    m = segmentation_metrics(y, prob, thresholds=THRESHOLDS)
    return {threshold_key(t): m[threshold_key(t)]["dice_pooled"] for t in THRESHOLDS}


@pytest.mark.parametrize("name", TRAIN)
def test_training_step(benchmark, request, width, name, bench_data, collected, ceiling):
    path = _path(name)
    ds, source = bench_data
    x, y = ds.x_train[:TRAIN_BATCH], ds.y_train[:TRAIN_BATCH]
    step, model = hot_paths.train_step(
        path, n_filters=WIDTHS[width], x=x, y=y, original=_original(name)
    )
    benchmark.group = f"train {width} batch {TRAIN_BATCH}"
    loss = _measure(benchmark, step, seconds=request.config.getoption("--bench-seconds"))
    assert np.isfinite(loss) and loss > 0
    assert model.dtype_policy.name == (  # tf-keras models have one too
        "float32" if path.precision == "float32" else "mixed_bfloat16"
    )
    flops = hot_paths.flops_per_image(model, "train")
    _record(benchmark, collected, ceiling, width=width, path=path, batch_size=TRAIN_BATCH,
            flops=flops, source=source)  # fmt: skip


@pytest.mark.parametrize("batch_size", INFERENCE_BATCHES)
@pytest.mark.parametrize("name", INFERENCE)
def test_inference(
    benchmark, request, width, name, batch_size, bench_data, float32_models, float32_dice,
    collected, ceiling, tmp_path_factory,
):  # fmt: skip
    path = _path(name)
    ds, source = bench_data
    model, weights = float32_models(width)
    x = np.ascontiguousarray(ds.x_test[:batch_size], dtype=np.float32)
    workdir = Path(tmp_path_factory.getbasetemp()) / f"onnx_n{WIDTHS[width]}"
    workdir.mkdir(exist_ok=True)
    calibration = spread_subset(ds.x_valid, n=32)
    predict = hot_paths.inference(
        path, model=model, workdir=workdir, calibration=calibration, original=_original(name)
    )
    benchmark.group = f"inference {width} batch {batch_size}"
    seconds = request.config.getoption("--bench-seconds")
    prob = _measure(benchmark, lambda: predict(x), seconds=seconds)
    # the reference is Keras's plain call, not predict_on_batch: the keras_predict_on_batch
    # path compared with itself would agree by construction
    expected = np.asarray(model(x, training=False))
    assert prob.shape == expected.shape == (batch_size, 128, 128, 2)
    diff = np.abs(np.asarray(prob, dtype=np.float32) - expected)
    if path.precision == "float32":
        assert diff.max() <= MAX_ABS_FLOAT32, f"{name}: max |dp| {diff.max():.2e}"
    else:
        assert diff.mean() <= MEAN_ABS_REDUCED, f"{name}: mean |dp| {diff.mean():.3f}"
    benchmark.extra_info["weights"] = weights
    if weights.startswith("trained") and batch_size == max(INFERENCE_BATCHES):
        from usecases.covid_ct.evaluate import segmentation_metrics

        reference = float32_dice(width)
        all_prob = hot_paths.predict_all(predict, ds.x_test, batch_size=batch_size)
        dice = _dice(segmentation_metrics, ds.y_test, all_prob)
        benchmark.extra_info["dice_pooled"] = dice
        drops = {k: reference[k] - dice[k] for k in dice}
        benchmark.extra_info["dice_drop_vs_float32"] = drops
        benchmark.extra_info["dice_max_drop_vs_float32"] = max(drops.values())
    flops = hot_paths.flops_per_image(model, "inference")
    _record(benchmark, collected, ceiling, width=width, path=path, batch_size=batch_size,
            flops=flops, source=source)  # fmt: skip


def test_data_preparation_from_cache(benchmark, request, covid_root, prepared_cache):
    """Loading the prepared real arrays (npz cache, already written) into a CTDataset."""
    from usecases.covid_ct.data.covid_semiseg import load_covid_semiseg

    def load():
        return load_covid_semiseg(root=covid_root, cache_dir=prepared_cache / "prepared", size=128)

    load()  # writes the cache when this session has not yet
    benchmark.group = "data preparation"
    ds = _measure(benchmark, load, seconds=request.config.getoption("--bench-seconds"))
    n = sum(ds.counts.values())
    assert ds.counts == {"train": 1485, "valid": 165, "test": 48}
    benchmark.extra_info.update(images=n, source="covid_semiseg npz cache")
    if not benchmark.disabled and benchmark.stats is not None:
        benchmark.extra_info["images_per_s"] = n / benchmark.stats.stats.median
