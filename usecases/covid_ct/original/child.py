"""The child process of implementation=original: the paper's TV_UNET.py trained under tf-keras.

    TF_USE_LEGACY_KERAS=1 python -m usecases.covid_ct.original.child JOB_DIR

reads ``JOB_DIR/job.json`` and ``data.npz`` (``initial.npz`` for a paired run), makes ``keras``
resolve to ``tf_keras`` (the file's ``from keras import backend as K``), loads the file after
checking its sha256 again, and trains ``get_unet(Input((size, size, 1)), n_filters, dropout,
batchnorm=True)`` with ``Adam(learning_rate)``, ``TV_bin_loss`` and the paper's callbacks:
EarlyStopping, ReduceLROnPlateau and ModelCheckpoint(save_best_only=True, weights only), whose
best weights are loaded back before the test slices are predicted (main_TV_Unet_inf.py).
Writes ``result.json`` and ``test_probabilities.npy``; exit 2 with one ``error:`` line for a
problem the user can fix.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import numpy as np


class JobError(Exception):
    """A problem the user can fix: one ``error:`` line, exit 2."""


def main(argv: list[str] | None = None) -> int:
    """CLI: train the job in ``JOB_DIR``; 0 when result.json is written, 2 for a user problem."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("error: usage: python -m usecases.covid_ct.original.child JOB_DIR", file=sys.stderr)
        return 2
    try:
        _train(Path(args[0]))
    except JobError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        return 2
    return 0


def keras2():
    """tf_keras, installed as ``keras`` for the paper's file and our callbacks."""
    if os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        raise JobError(
            "set TF_USE_LEGACY_KERAS=1: the paper's code needs tensorflow.keras = Keras 2"
        )
    try:
        import tf_keras
    except ImportError:
        raise JobError(
            "implementation=original needs tf-keras: install the project's lock "
            "(bash scripts/bootstrap.sh) or pip install -e '.[original]'"
        ) from None
    sys.modules["keras"] = tf_keras
    return tf_keras


def load_code(code: dict):
    """The paper's TV_UNET.py as a module, after its sha256 is checked once more."""
    from usecases.data.checksums import sha256_file

    file = Path(code["file"])
    if sha256_file(file) != code["sha256"]:
        raise JobError(f"{file} changed after it was verified (sha256); run again")
    spec = importlib.util.spec_from_file_location("tv_unet_original", file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _train(work: Path) -> None:
    keras = keras2()
    import tensorflow as tf

    from usecases.covid_ct.curves import LearningCurve
    from usecases.covid_ct.inference import inference_timings
    from usecases.covid_ct.quality import QualityTarget
    from usecases.covid_ct.train import StepTimer, fit_summary
    from usecases.data.checksums import sha256_arrays

    job = json.loads((work / "job.json").read_text())
    data = np.load(work / "data.npz")
    original = load_code(job["code"])
    m, s = job["model"], job["settings"]

    keras.utils.set_random_seed(job["seed"])
    model = papers_model(
        original, keras, n_filters=m["n_filters"], size=m["size"], dropout=m["dropout"]
    )
    if job["initial_weights"]:
        set_weights(model, load_arrays(work / "initial.npz"))
    initial_sha256 = sha256_arrays(model.get_weights())
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=s["learning_rate"]), loss=original.TV_bin_loss
    )

    best_file = work / "best.weights.h5"
    timer = StepTimer()
    callbacks = [
        keras.callbacks.EarlyStopping(patience=s["early_stopping_patience"]),
        keras.callbacks.ReduceLROnPlateau(
            factor=s["lr_factor"], patience=s["lr_patience"], min_lr=s["min_lr"]
        ),
        keras.callbacks.ModelCheckpoint(
            str(best_file), save_best_only=True, save_weights_only=True
        ),
        timer,
    ]
    curve = None
    if job["curve"] is not None:
        curve = LearningCurve(
            data["x_test"],
            data["y_test"],
            thresholds=job["thresholds"],
            batch_size=job["eval_batch_size"],
            target=QualityTarget(**job["curve"]),
        )
        callbacks.append(curve)
    history = model.fit(
        data["x_train"],
        data["y_train"],
        batch_size=s["batch_size"],
        epochs=s["epochs"],
        validation_data=(data["x_valid"], data["y_valid"]),
        callbacks=callbacks,
        shuffle=True,
        verbose=2,
    ).history
    val = history.get("val_loss") or []
    best_epoch = int(np.argmin(val)) if val else None
    if best_file.exists():
        model.load_weights(str(best_file))
    prob = model.predict(data["x_test"], batch_size=job["eval_batch_size"], verbose=0)
    np.save(work / "test_probabilities.npy", prob.astype(np.float32))
    t = job["timing"]
    result = {
        "fit": fit_summary(
            history,
            timer,
            best_epoch=best_epoch,
            best_val_loss=float(val[best_epoch]) if val else float("nan"),
            batch_size=s["batch_size"],
            n_train=len(data["x_train"]),
        ),
        "curve": curve.result() if curve is not None else {},
        "timings": inference_timings(
            model.predict_on_batch,
            data["x_test"],
            batch_sizes=t["batch_sizes"],
            repeats=t["repeats"],
            warmup=t["warmup"],
            method="tf-keras predict_on_batch, float32",
        ),
        "environment": {
            "tf_keras": keras.__version__,
            "tensorflow": tf.__version__,
            "initial_weights_sha256": initial_sha256,
        },
    }
    (work / "result.json").write_text(json.dumps(result))


def papers_model(original, keras, *, n_filters: int, size: int, dropout: float):
    """The paper's ``get_unet`` for (size, size, 1) slices, BatchNorm on (its script's call)."""
    return original.get_unet(
        keras.Input((size, size, 1)), n_filters=n_filters, dropout=dropout, batchnorm=True
    )


def load_arrays(file: Path) -> list[np.ndarray]:
    """The arrays of ``np.savez(file, *arrays)``, in their order."""
    with np.load(file) as arrays:
        return [arrays[f"arr_{i}"] for i in range(len(arrays.files))]


def set_weights(model, weights: list[np.ndarray]) -> None:
    """Our port's initial weights (``get_weights()`` order) into a model of the same layer order
    and shapes; JobError naming the first shapes when they do not fit."""
    mine = model.get_weights()
    if len(weights) != len(mine) or any(
        a.shape != b.shape for a, b in zip(weights, mine, strict=True)
    ):
        shapes = [tuple(a.shape) for a in weights][:4], [tuple(b.shape) for b in mine][:4]
        raise JobError(f"the port's initial weights do not fit the paper's model ({shapes})")
    model.set_weights(weights)


if __name__ == "__main__":
    sys.exit(main())
