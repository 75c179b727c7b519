"""covid_ct end to end: data -> TV-UNet training -> test-set Dice -> timings -> ONNX -> references.

``validate`` runs cheap checks before anything is written; ``run`` does the work inside the
run folder and returns the use-case part of the result record.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from usecases.core.errors import ConfigError
from usecases.core.references import compare
from usecases.core.timing import summarize, time_call
from usecases.covid_ct.data.load import check_dataset_config, load_dataset
from usecases.covid_ct.export import ModelSpec, OnnxSettings, export_and_check

log = logging.getLogger(__name__)


def validate(cfg: DictConfig) -> None:
    """Reject impossible settings before the run folder exists."""
    check_dataset_config(cfg.dataset)
    for key in ("n_filters", "epochs"):
        value = cfg.scale.get(key)
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"scale.{key}={value} must be a positive integer.")
    if cfg.usecase.train.batch_size < 1:
        raise ConfigError(f"usecase.train.batch_size={cfg.usecase.train.batch_size} must be >= 1.")
    _onnx_settings(cfg)


def run(cfg: DictConfig, *, run_dir: Path) -> dict:
    """Train and evaluate the TV-UNet, export it to ONNX and check parity.

    Returns the record fields dataset, metrics (``metrics["onnx"]`` when exported), timings,
    references, checks (``onnx_parity``), artifacts and notes.
    """
    import keras

    from usecases.covid_ct.evaluate import segmentation_metrics
    from usecases.covid_ct.model import build_tv_unet
    from usecases.covid_ct.train import TrainSettings, train

    uc = cfg.usecase
    ds = load_dataset(cfg.dataset, cache_dir=Path(cfg.cache_dir), size=uc.image_size, seed=cfg.seed)
    log.info("dataset %s: %s (%s)", ds.name, ds.counts, "synthetic" if ds.synthetic else "real")

    keras.utils.set_random_seed(cfg.seed)
    model = build_tv_unet(n_filters=cfg.scale.n_filters, dropout=uc.dropout, size=uc.image_size)
    log.info("TV-UNet n=%d: %d parameters", cfg.scale.n_filters, model.count_params())
    train_options = {**OmegaConf.to_container(uc.train)}
    if cfg.scale.get("batch_size"):  # a scale may change the batch size (ci: 16)
        train_options["batch_size"] = cfg.scale.batch_size
    settings = TrainSettings(epochs=cfg.scale.epochs, **train_options)
    fit = train(model, ds, settings=settings)

    prob = model.predict(ds.x_test, batch_size=uc.evaluate.batch_size, verbose=0)
    metrics = segmentation_metrics(ds.y_test, prob, thresholds=tuple(uc.evaluate.thresholds))
    log.info("test Dice (pooled) at 0.3: %s", metrics.get("0.3", {}).get("dice_pooled"))

    timings = {**fit["timings"], **_inference_timings(model, ds.x_test, uc.timing)}
    artifacts = _save_artifacts(model, prob, run_dir=run_dir, save_weights=uc.save_weights)
    onnx = export_and_check(
        model,
        x=ds.x_test,
        y=ds.y_test,
        prob=prob,
        run_dir=run_dir,
        settings=_onnx_settings(cfg),
        spec=ModelSpec(n_filters=cfg.scale.n_filters, dropout=uc.dropout, size=uc.image_size),
        weights=run_dir / artifacts["weights"] if "weights" in artifacts else None,
        thresholds=tuple(uc.evaluate.thresholds),
        batch_size=uc.evaluate.batch_size,
    )
    log.info("ONNX: %s", onnx.check["detail"])
    settings_for_refs = {"dataset": ds.name, "scale": cfg.scale.name}
    return {
        "dataset": ds.identity(),
        "metrics": {
            **metrics,
            "parameters": int(model.count_params()),
            "epochs_run": fit["epochs_run"],
            "best_epoch": fit["best_epoch"],
            "best_val_loss": fit["best_val_loss"],
            "history": fit["history"],
            **({"onnx": onnx.metrics} if onnx.metrics else {}),
        },
        "timings": timings,
        "references": compare(
            usecase="covid_ct", metrics=metrics, settings=settings_for_refs, synthetic=ds.synthetic
        ),
        "checks": [onnx.check],
        "artifacts": {**artifacts, **onnx.artifacts},
        "notes": [f"seed {cfg.seed}"]
        + (["synthetic data: no verdict against published values"] if ds.synthetic else [])
        + ([str(cfg.note)] if cfg.get("note") else []),
    }


def _onnx_settings(cfg: DictConfig) -> OnnxSettings:
    """``usecase.export`` as OnnxSettings (defaults where absent); ConfigError when invalid."""
    export = cfg.usecase.get("export")
    return OnnxSettings.from_config(OmegaConf.to_container(export) if export is not None else None)


def _inference_timings(model, x: np.ndarray, timing: DictConfig) -> dict:
    """Images/s of ``predict_on_batch`` per batch size (warm-up excluded, output synced)."""
    out = {}
    for bs in timing.inference_batch_sizes:
        batch = np.ascontiguousarray(x[:bs]) if len(x) >= bs else np.resize(x, (bs, *x.shape[1:]))
        samples = time_call(
            lambda b=batch: model.predict_on_batch(b),
            repeats=timing.repeats,
            warmup=timing.warmup,
            sync=np.asarray,
        )
        stats = summarize(samples)
        out[f"inference_batch{bs}"] = {
            **stats,
            "batch_size": bs,
            "images_per_s": bs / stats["median_s"],
            "method": "keras predict_on_batch, float32",
        }
    return out


def _save_artifacts(model, prob: np.ndarray, *, run_dir: Path, save_weights: bool) -> dict:
    """Test-set infection probabilities (float16) and, if asked, the trained weights."""
    artifacts = {}
    pred_path = run_dir / "test_probabilities.npz"
    np.savez_compressed(pred_path, infection=prob[..., 1].astype(np.float16))
    artifacts["test_probabilities"] = pred_path.name
    if save_weights:
        weights = run_dir / "model.weights.h5"
        model.save_weights(weights)
        artifacts["weights"] = weights.name
    return artifacts
