"""covid_ct end to end: data -> TV-UNet training -> test-set Dice -> timings -> ONNX -> references.

The precision (``usecase.precision``: auto, float32, mixed_bfloat16) is chosen per device by
``usecases.measure.precision`` (recorded under ``device.precision``); ONNX files always come
from a float32 copy of the trained weights.

``validate`` runs cheap checks before anything is written; ``run`` does the work inside the
run folder and returns the use-case part of the result record.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from usecases.covid_ct.data import CTDataset
from usecases.covid_ct.data.load import check_dataset_config, load_dataset
from usecases.covid_ct.flops import annotate_efficiency, forward_flops_per_image
from usecases.covid_ct.fused_batchnorm import check_batchnorm
from usecases.covid_ct.inference import inference_timings, onnx_timings
from usecases.covid_ct.onnx.export import export_and_check
from usecases.covid_ct.onnx.quantize import quantize_and_check, skipped_int8
from usecases.covid_ct.onnx.settings import ModelSpec, OnnxSettings
from usecases.covid_ct.original.train import LOG_NAME, check_original, train_from_config
from usecases.data.checksums import sha256_arrays
from usecases.errors import ConfigError
from usecases.measure.precision import PRECISIONS, choose_precision
from usecases.numbers import check_whole, finite
from usecases.records.identity import run_identity
from usecases.records.record import atomic_file
from usecases.records.references import compare

log = logging.getLogger(__name__)


def validate(cfg: DictConfig) -> None:
    """Reject impossible settings before the run folder exists."""
    check_dataset_config(cfg.dataset)
    uc = cfg.usecase
    for name, value, least in (
        ("scale.n_filters", cfg.scale.get("n_filters"), 1),
        ("scale.epochs", cfg.scale.get("epochs"), 1),
        ("usecase.train.batch_size", uc.train.get("batch_size"), 1),
        ("usecase.evaluate.batch_size", uc.evaluate.get("batch_size"), 1),
        ("usecase.timing.repeats", uc.timing.get("repeats"), 1),
        ("usecase.timing.warmup", uc.timing.get("warmup"), 0),
    ):
        check_whole(name, value, least=least)
    if cfg.scale.get("batch_size") is not None:
        check_whole("scale.batch_size", cfg.scale.batch_size, least=1)
    rate = cfg.scale.get("learning_rate")
    if rate is not None and (finite(rate) is None or rate <= 0):
        raise ConfigError(f"scale.learning_rate={rate} must be a positive number, e.g. 1e-3.")
    sizes = uc.timing.get("inference_batch_sizes")
    if not sizes:
        raise ConfigError("usecase.timing.inference_batch_sizes is empty; e.g. [1,8].")
    for size in sizes:
        check_whole("usecase.timing.inference_batch_sizes", size, least=1)
    thresholds = uc.evaluate.get("thresholds") or []
    if not thresholds or not all(
        isinstance(t, float | int) and not isinstance(t, bool) and 0 < t < 1 for t in thresholds
    ):
        raise ConfigError(
            f"usecase.evaluate.thresholds={thresholds} must be numbers between 0 and 1, "
            "e.g. [0.3,0.5]."
        )
    if not isinstance(uc.train.get("checkpoint", True), bool):
        raise ConfigError(f"usecase.train.checkpoint={uc.train.checkpoint} must be true or false.")
    check_batchnorm(uc.train.get("batchnorm", "keras"), backend=cfg.backend.name)
    if uc.get("precision", "auto") not in PRECISIONS:
        raise ConfigError(
            f"usecase.precision={cfg.usecase.precision} is not one of {', '.join(PRECISIONS)}."
        )
    check_original(cfg, name=implementation(cfg))
    curve = uc.get("curve")
    if curve is not None and curve.get("every_epoch"):
        from usecases.covid_ct.quality import quality_target

        quality_target(curve, thresholds=tuple(thresholds))
    at = _onnx_settings(cfg).int8_dice_at
    if at not in cfg.usecase.evaluate.thresholds:
        raise ConfigError(
            f"usecase.export.int8_dice_at={at} is not one of usecase.evaluate.thresholds "
            f"({', '.join(map(str, cfg.usecase.evaluate.thresholds))})."
        )


def run(cfg: DictConfig, *, run_dir: Path, device: dict) -> dict:
    """Train and evaluate the TV-UNet, export it to ONNX and check parity.

    ``device`` is what app.py resolved (``used``, ``backend``). Returns the record fields device
    (``precision``), dataset, metrics (``onnx``, ``onnx_int8`` when exported), timings,
    references, checks (``onnx_parity``, ``onnx_int8_dice``), artifacts and notes.
    """
    import keras

    uc = cfg.usecase
    ds = load_dataset(cfg.dataset, cache_dir=Path(cfg.cache_dir), size=uc.image_size, seed=cfg.seed)
    log.info("dataset %s: %s (%s)", ds.name, ds.counts, "synthetic" if ds.synthetic else "real")

    if implementation(cfg) == "original":
        precision = {
            "policy": "float32",
            "reason": "implementation=original: the paper's code, float32",
        }
    else:
        precision = choose_precision(requested=uc.get("precision", "auto"), device=device)
    log.info("precision %s (%s)", precision["policy"], precision["reason"])
    previous = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy(precision["policy"])
    try:
        return _run(cfg, ds, run_dir=run_dir, device=device, precision=precision)
    finally:
        keras.mixed_precision.set_dtype_policy(previous)


def _run(cfg: DictConfig, ds: CTDataset, *, run_dir: Path, device: dict, precision: dict) -> dict:
    """run() under the chosen dtype policy: train one implementation, then evaluate the same way."""
    import keras

    from usecases.covid_ct import checkpoint
    from usecases.covid_ct.evaluate import segmentation_metrics
    from usecases.covid_ct.model import build_tv_unet
    from usecases.covid_ct.train import TrainSettings, train

    uc = cfg.usecase
    keras.utils.set_random_seed(cfg.seed)
    spec = ModelSpec(n_filters=cfg.scale.n_filters, dropout=uc.dropout, size=uc.image_size)
    model = build_tv_unet(n_filters=spec.n_filters, dropout=spec.dropout, size=spec.size)
    log.info("TV-UNet n=%d: %d parameters", cfg.scale.n_filters, model.count_params())
    train_options = {**OmegaConf.to_container(uc.train)}
    for key in ("batch_size", "learning_rate"):  # a scale may change them (ci: batch 16)
        if cfg.scale.get(key) is not None:
            train_options[key] = cfg.scale[key]
    settings = TrainSettings(epochs=cfg.scale.epochs, **train_options)
    timing = {"repeats": uc.timing.repeats, "warmup": uc.timing.warmup}
    if implementation(cfg) == "original":
        curve = _test_curve(cfg, ds)
        trained = train_from_config(
            cfg, ds, model, spec=spec, settings=settings, curve=curve, run_dir=run_dir
        )
        fit, prob, curve_metrics = trained["fit"], trained["prob"], trained["curve"]
        inference, environment = trained["timings"], trained["environment"]
        onnx = {"checks": [], "metrics": {}, "artifacts": {"original_log": LOG_NAME}, "timings": {}}
        artifacts = _save_artifacts(None, prob, run_dir=run_dir, save_weights=False)
    else:
        curve = _test_curve(cfg, ds)
        initial_sha256 = sha256_arrays(model.get_weights())
        resume = {"run_dir": run_dir, "resume": checkpoint.resume_point(cfg, run_dir),
                  "identity": run_identity(OmegaConf.to_container(cfg, resolve=True))}  # fmt: skip
        observers = [curve] if curve else []
        fit = train(model, ds, settings=settings, seed=cfg.seed, observers=observers, **resume)
        curve_metrics = curve.result() if curve else {}
        prob = model.predict(ds.x_test, batch_size=uc.evaluate.batch_size, verbose=0)
        artifacts = _save_artifacts(model, prob, run_dir=run_dir, save_weights=uc.save_weights)
        inference = inference_timings(
            model.predict_on_batch,
            ds.x_test,
            batch_sizes=uc.timing.inference_batch_sizes,
            method=f"keras predict_on_batch, {precision['policy']}",
            **timing,
        )
        onnx = _onnx_steps(model, prob, ds=ds, spec=spec, cfg=cfg, run_dir=run_dir, saved=artifacts)
        environment = {
            "implementation": {
                "name": "port",
                "label": "port",
                "initial_weights": "own",
                "initial_weights_sha256": initial_sha256,
                "code": "usecases/covid_ct/model.py",
            }
        }
    checkpoint.remove(run_dir)  # finished: the checkpoints were only for resuming
    metrics = segmentation_metrics(ds.y_test, prob, thresholds=tuple(uc.evaluate.thresholds))
    log.info("test Dice (pooled) at 0.3: %s", metrics.get("0.3", {}).get("dice_pooled"))
    timings = {**fit["timings"], **inference, **onnx["timings"]}
    forward_flops = forward_flops_per_image(model)
    timings["gemm_ceilings"] = annotate_efficiency(
        timings,
        forward_flops=forward_flops,
        policy=precision["policy"],
        backend=device["backend"],
        on_gpu=device["used"] == "gpu",
    )
    settings_for_refs = {"dataset": ds.name, "scale": cfg.scale.name}
    return {
        "environment": environment,
        "device": {"precision": precision},
        "dataset": ds.identity(),
        "metrics": {
            **metrics,
            "parameters": int(model.count_params()),
            "flops_per_image_forward": forward_flops,
            "epochs_run": fit["epochs_run"],
            "best_epoch": fit["best_epoch"],
            "best_val_loss": fit["best_val_loss"],
            "first_step_loss": fit["first_step_loss"],
            "history": fit["history"],
            **curve_metrics,
            **onnx["metrics"],
        },
        "timings": timings,
        "references": compare(
            usecase="covid_ct", metrics=metrics, settings=settings_for_refs, synthetic=ds.synthetic
        ),
        "checks": onnx["checks"],
        "artifacts": {**artifacts, **onnx["artifacts"]},
        "notes": [f"seed {cfg.seed}", f"precision {precision['policy']}"]
        + (["synthetic data: no verdict against published values"] if ds.synthetic else [])
        + ([str(cfg.note)] if cfg.get("note") else []),
    }


def check_resume(cfg: DictConfig, run_dir: Path) -> None:
    """app.py asks before a resume (``checkpoint.check_resume``; Keras loads only then)."""
    from usecases.covid_ct.checkpoint import check_resume as check

    check(cfg, run_dir)


def resumable(run_dir: Path) -> bool:
    """app.py asks at a run's end: whether ``run_dir`` holds a checkpoint."""
    from usecases.covid_ct.checkpoint import resumable as has_checkpoint

    return has_checkpoint(run_dir)


def implementation(cfg: DictConfig) -> str:
    """``usecase.implementation``: port (our Keras 3 model, the default) or original."""
    return str(cfg.usecase.get("implementation", "port"))


def _onnx_steps(model, prob, *, ds, spec: ModelSpec, cfg: DictConfig, run_dir: Path, saved: dict):
    """Export a float32 copy to ONNX, check parity, quantize to int8, time onnxruntime.

    Returns ``{"checks", "metrics", "artifacts", "timings"}`` for the record.
    """
    from usecases.covid_ct.evaluate import segmentation_metrics

    uc, settings = cfg.usecase, _onnx_settings(cfg)
    thresholds = tuple(uc.evaluate.thresholds)
    model32, prob32 = model, prob
    if model.dtype_policy.name != "float32" and settings.onnx:
        model32 = _float32_copy(model, spec)
        prob32 = model32.predict(ds.x_test, batch_size=uc.evaluate.batch_size, verbose=0)
    onnx = export_and_check(
        model32,
        x=ds.x_test,
        y=ds.y_test,
        prob=prob32,
        run_dir=run_dir,
        settings=settings,
        spec=spec,
        weights=run_dir / saved["weights"] if "weights" in saved else None,
        thresholds=thresholds,
        batch_size=uc.evaluate.batch_size,
    )
    log.info("ONNX: %s", onnx.check["detail"])
    out = {
        "checks": [onnx.check],
        "metrics": {"onnx": onnx.metrics} if onnx.metrics else {},
        "artifacts": dict(onnx.artifacts),
    }
    if settings.int8 and not onnx.check["passed"]:
        why = f"needs a passed onnx_parity check ({onnx.check['detail']})"
        out["checks"].append(skipped_int8(why))
    elif settings.int8:
        keras32 = segmentation_metrics(ds.y_test, prob32, thresholds=thresholds)
        check, metrics, files = quantize_and_check(
            run_dir / onnx.artifacts["onnx"],
            x=ds.x_test,
            y=ds.y_test,
            calibration=ds.x_valid,
            keras_dice={k: keras32[k]["dice_pooled"] for k in onnx.metrics["dice_pooled"]},
            settings=settings,
            thresholds=thresholds,
            batch_size=uc.evaluate.batch_size,
        )
        log.info("ONNX int8: %s", check["detail"])
        out["checks"].append(check)
        out["metrics"]["onnx_int8"] = metrics
        out["artifacts"].update(files)
    timed = {k: v for k, v in out["artifacts"].items() if onnx.check["passed"]}
    out["timings"] = onnx_timings(
        timed,
        run_dir,
        ds.x_test,
        batch_sizes=uc.timing.inference_batch_sizes,
        repeats=uc.timing.repeats,
        warmup=uc.timing.warmup,
    )
    return out


def _test_curve(cfg: DictConfig, ds: CTDataset):
    """The per-epoch test evaluation (``usecase.curve``), or None when it is switched off."""
    from usecases.covid_ct.curves import LearningCurve
    from usecases.covid_ct.quality import quality_target

    options = cfg.usecase.get("curve") or {}
    if not options.get("every_epoch", False):
        return None
    thresholds = tuple(cfg.usecase.evaluate.thresholds)
    return LearningCurve(
        ds.x_test,
        ds.y_test,
        thresholds=thresholds,
        batch_size=cfg.usecase.evaluate.batch_size,
        target=quality_target(options, thresholds=thresholds),
    )


def _onnx_settings(cfg: DictConfig) -> OnnxSettings:
    """``usecase.export`` as OnnxSettings (defaults where absent); ConfigError when invalid."""
    export = cfg.usecase.get("export")
    return OnnxSettings.from_config(OmegaConf.to_container(export) if export is not None else None)


def _float32_copy(model, spec: ModelSpec):
    """The same TV-UNet built under the float32 policy, with ``model``'s (float32) weights."""
    import keras

    from usecases.covid_ct.model import build_tv_unet

    policy = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy("float32")
    try:
        copy = build_tv_unet(n_filters=spec.n_filters, dropout=spec.dropout, size=spec.size)
    finally:
        keras.mixed_precision.set_dtype_policy(policy)
    copy.set_weights(model.get_weights())
    return copy


def _save_artifacts(model, prob: np.ndarray, *, run_dir: Path, save_weights: bool) -> dict:
    """Test-set infection probabilities (float16) and, if asked, the trained weights."""
    artifacts = {}
    pred_path = run_dir / "test_probabilities.npz"
    with atomic_file(pred_path, what="test probabilities") as tmp:
        np.savez_compressed(tmp, infection=prob[..., 1].astype(np.float16))
    artifacts["test_probabilities"] = pred_path.name
    if save_weights:
        weights = run_dir / "model.weights.h5"
        with atomic_file(weights, what="trained weights") as tmp:
            model.save_weights(tmp)
        artifacts["weights"] = weights.name
    return artifacts
