"""Train the paper's TV_UNET.py under tf-keras in a child process, on our data and settings.

The child (``python -m usecases.covid_ct.original.child JOB_DIR``) gets the prepared arrays,
the settings and, for a paired run, the initial weights as files in a temporary folder inside
the run folder; it writes back the history, the step timings, the learning curve, the test
probabilities and its framework versions. Its console output goes to ``original.log``.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from usecases import paths
from usecases.covid_ct.data import CTDataset
from usecases.covid_ct.original import IMPLEMENTATIONS, INITIAL_WEIGHTS
from usecases.covid_ct.original.code import locate_code
from usecases.covid_ct.quality import QualityTarget
from usecases.errors import ConfigError

LOG_NAME = "original.log"
log = logging.getLogger(__name__)


def check_original(cfg: DictConfig, *, name: str) -> None:
    """ConfigError for an implementation (``name``), or an option of the original, that
    cannot run here."""

    if name not in IMPLEMENTATIONS:
        raise ConfigError(
            f"usecase.implementation={name} is not one of {', '.join(IMPLEMENTATIONS)}."
        )
    if name == "port":
        return
    options = cfg.usecase.get("original") or {}
    if options.get("initial_weights", "port") not in INITIAL_WEIGHTS:
        raise ConfigError(
            f"usecase.original.initial_weights={options.get('initial_weights')} is not one of "
            f"{', '.join(INITIAL_WEIGHTS)}."
        )
    if cfg.backend.name != "tensorflow":
        raise ConfigError(
            f"implementation=original runs the paper's code under tf-keras (TensorFlow), not "
            f"backend={cfg.backend.name}; use backend=tensorflow."
        )
    if cfg.usecase.get("precision", "auto") == "mixed_bfloat16":
        raise ConfigError("implementation=original trains in float32; use usecase.precision=auto.")
    if importlib.util.find_spec("tf_keras") is None:
        raise ConfigError(
            "implementation=original needs tf-keras (Keras 2): bash scripts/bootstrap.sh, or "
            "pip install -e '.[original]'."
        )
    locate_code(options.get("code"))  # the pinned file, before any run folder exists


def train_from_config(
    cfg: DictConfig, ds: CTDataset, model, *, spec, settings, curve, run_dir: Path
) -> dict:
    """train_original with the run's config; ``model`` is our port just built from the seed
    (its weights are the paired run's initial weights), ``curve`` the port's LearningCurve
    (only its target is used) or None. Adds ``environment["implementation"]``: its ``label``
    is "original" for a run paired with the port by initial weights, else
    "original-own-weights"; ``initial_weights_sha256`` the digest of the weights it started
    from (``sha256_arrays``), equal to the port's for a paired run."""

    uc = cfg.usecase
    options = uc.get("original") or {}
    code = locate_code(options.get("code"))
    paired = options.get("initial_weights", "port") == "port"
    log.info(
        "original: %s (sha256 %s), initial weights %s",
        code["file"],
        code["sha256"][:12],
        "of the port" if paired else "of tf-keras",
    )
    trained = train_original(
        ds,
        code=code,
        seed=cfg.seed,
        model={"n_filters": spec.n_filters, "dropout": spec.dropout, "size": spec.size},
        settings=asdict(settings),
        initial_weights=model.get_weights() if paired else None,
        curve=None if curve is None else curve.target,
        thresholds=tuple(uc.evaluate.thresholds),
        eval_batch_size=uc.evaluate.batch_size,
        timing={
            "batch_sizes": list(uc.timing.inference_batch_sizes),
            "repeats": uc.timing.repeats,
            "warmup": uc.timing.warmup,
        },
        run_dir=run_dir,
    )
    trained["environment"] = {
        "implementation": {
            "name": "original",
            "label": "original" if paired else "original-own-weights",
            "initial_weights": "port" if paired else "own",
            **code,
            **trained["environment"],
        }
    }
    return trained


def train_original(
    ds: CTDataset,
    *,
    code: dict,
    seed: int,
    model: dict,
    settings: dict,
    initial_weights: Sequence[np.ndarray] | None,
    curve: QualityTarget | None,
    thresholds: Sequence[float],
    eval_batch_size: int,
    timing: dict,
    run_dir: Path,
) -> dict:
    """Fit the paper's ``get_unet`` with ``TV_bin_loss`` and the paper's callbacks.

    ``model``: ``n_filters``, ``dropout``, ``size``; ``settings``: TrainSettings as a dict;
    ``initial_weights``: the arrays of our port's ``get_weights()`` (same order and shapes), or
    None for tf-keras's own draw from ``seed``; ``timing``: ``batch_sizes``, ``repeats``,
    ``warmup`` of the inference timings. Returns ``fit`` (as ``train.fit_summary``), ``prob``
    (N, H, W, 2) test probabilities, ``curve`` (the learning-curve metrics or {}),
    ``timings`` (inference) and ``environment``. RuntimeError with the child's error line
    when it fails.
    """
    job = {
        "code": code,
        "seed": seed,
        "model": model,
        "settings": settings,
        "initial_weights": initial_weights is not None,
        "curve": None if curve is None else asdict(curve),
        "thresholds": list(thresholds),
        "eval_batch_size": eval_batch_size,
        "timing": timing,
    }
    with tempfile.TemporaryDirectory(prefix=".original-", dir=run_dir) as tmp:
        work = Path(tmp)
        np.savez(
            work / "data.npz",
            x_train=ds.x_train,
            y_train=ds.y_train,
            x_valid=ds.x_valid,
            y_valid=ds.y_valid,
            x_test=ds.x_test,
            y_test=ds.y_test,
        )
        if initial_weights is not None:
            np.savez(work / "initial.npz", *initial_weights)
        (work / "job.json").write_text(json.dumps(job))
        _run_child(work, log=run_dir / LOG_NAME)
        result = json.loads((work / "result.json").read_text())
        result["prob"] = np.load(work / "test_probabilities.npy")
    return result


def _run_child(work: Path, *, log: Path) -> None:
    """The child process under Keras 2; RuntimeError naming its last error line."""
    path = os.pathsep.join(p for p in (str(paths.source_root()), os.environ.get("PYTHONPATH")) if p)
    env = {
        **os.environ,
        "TF_USE_LEGACY_KERAS": "1",  # tensorflow.keras is tf_keras (Keras 2) in the child
        "KERAS_BACKEND": "tensorflow",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONPATH": path,
    }
    command = [sys.executable, "-m", "usecases.covid_ct.original.child", str(work)]
    with log.open("a") as out:
        code = subprocess.run(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, check=False
        ).returncode
    if code == 0:
        return
    lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:")]
    if code == 2 and errors:  # the child's own check: a user-facing problem
        raise ConfigError(errors[-1].removeprefix("error: "))
    last = (errors or lines or [f"exit code {code}"])[-1]
    raise RuntimeError(f"the paper's code under tf-keras failed ({last}); see {log}")
