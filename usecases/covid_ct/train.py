"""Training of the TV-UNet as in the paper's code, with hot-path timing.

Adam (lr 1e-3), batch 32, ReduceLROnPlateau(factor 0.1, patience 5, min_lr 1e-5),
EarlyStopping(patience 50) on the validation loss, and the weights of the epoch with the
lowest validation loss kept at the end (the paper's ModelCheckpoint(save_best_only=True)).

The batch order is ours, not Keras's ``shuffle=True``: epoch e visits the training slices in
``numpy.random.default_rng([seed, e]).permutation`` order, so a resumed run (see
``checkpoint``) sees the same batches as an uninterrupted one without any saved shuffle state.

The step timer and ``fit_summary`` use only what Keras 2 and Keras 3 share, so the paper's own
code (``usecases.covid_ct.original``, under tf-keras) is timed by the same code.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import keras
import numpy as np

from usecases.covid_ct.checkpoint import Checkpoint, Checkpointer
from usecases.covid_ct.data import CTDataset
from usecases.measure.timing import summarize

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainSettings:
    """Optimiser and schedule of one training run (values: ``usecase.train`` of the config,
    whose defaults live in conf/usecase/covid_ct.yaml only; the scale sets epochs)."""

    epochs: int
    batch_size: int
    learning_rate: float
    lr_factor: float
    lr_patience: int
    min_lr: float
    early_stopping_patience: int
    checkpoint: bool = True  # write a checkpoint after every epoch (see covid_ct.checkpoint)
    batchnorm: str = "keras"  # "fused": TensorFlow's fused kernel in training (fused_batchnorm)


def epoch_order(n: int, *, seed: int, epoch: int) -> np.ndarray:
    """The order in which epoch ``epoch`` (0-based) visits ``n`` training slices."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def epoch_batches(
    x: np.ndarray, y: np.ndarray, *, batch_size: int, seed: int, first_epoch: int, epochs: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(x, y) batches of epochs ``first_epoch`` .. ``epochs - 1`` in ``epoch_order``; each
    epoch ends with its partial batch, as Keras's own batching does (ceil(n / batch) steps)."""
    for epoch in range(first_epoch, epochs):
        order = epoch_order(len(x), seed=seed, epoch=epoch)
        for start in range(0, len(x), batch_size):
            rows = order[start : start + batch_size]
            yield x[rows], y[rows]


class StepTimer(keras.callbacks.Callback):
    """Wall time of every training step and epoch (the loss is read back to synchronise), the
    epoch logs (``history``) and the training segments (one per ``fit``: a resume adds one)."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[list[float]] = []
        self.epochs: list[float] = []
        self.history: dict[str, list[float]] = {}
        self.segments: list[dict] = []  # started_at, first_epoch (0-based), epochs
        self.first_loss: float | None = None  # the training loss of the very first step
        self._t_step = self._t_epoch = 0.0

    def on_train_begin(self, logs=None):
        started = datetime.now(UTC).isoformat(timespec="seconds")
        self.segments.append({"started_at": started, "first_epoch": len(self.epochs)})

    def state(self) -> dict:
        """What a checkpoint keeps of it (JSON)."""
        keys = ("steps", "epochs", "history", "segments", "first_loss")
        return {k: getattr(self, k) for k in keys}

    def load_state(self, state: dict) -> None:
        """Continue from ``state()`` of an earlier segment (called at this one's start)."""
        current = self.segments[-1]
        for key, value in state.items():
            setattr(self, key, value)
        self.segments.append({**current, "first_epoch": len(self.epochs)})

    def on_epoch_begin(self, epoch, logs=None):
        self.steps.append([])
        self._t_epoch = time.perf_counter()

    def on_train_batch_begin(self, batch, logs=None):
        self._t_step = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if logs and "loss" in logs:
            loss = float(logs["loss"])  # blocks until the step has finished on the device
            if self.first_loss is None:
                self.first_loss = loss
        self.steps[-1].append(time.perf_counter() - self._t_step)

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(time.perf_counter() - self._t_epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))


class KeepBestWeights(keras.callbacks.Callback):
    """Keep the weights of the epoch with the lowest ``val_loss`` and restore them at the end."""

    def __init__(self) -> None:
        super().__init__()
        self.best = np.inf
        self.best_epoch: int | None = None
        self._weights = None

    def on_epoch_end(self, epoch, logs=None):
        val = (logs or {}).get("val_loss")
        if val is not None and float(val) < self.best:
            self.best, self.best_epoch = float(val), epoch
            self._weights = self.model.get_weights()

    def on_train_end(self, logs=None):
        if self._weights is not None:
            self.model.set_weights(self._weights)


def compile_model(
    model: keras.Model, *, learning_rate: float, jit_compile: bool | str = "auto"
) -> keras.Model:
    """Compile with Adam and the BCE + TV loss of the paper (``jit_compile``: Keras's XLA flag)."""
    from usecases.covid_ct.model import tv_bce_loss  # Keras 3 only: not at import time

    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate), loss=tv_bce_loss, jit_compile=jit_compile
    )
    return model


def train(
    model: keras.Model,
    ds: CTDataset,
    *,
    settings: TrainSettings,
    seed: int,
    observers: Sequence[keras.callbacks.Callback] = (),
    run_dir: Path | None = None,
    identity: dict | None = None,
    resume: Checkpoint | None = None,
) -> dict:
    """Fit ``model`` on ds.train with ds.valid for validation; return history and timings.

    Batches come in ``epoch_order`` for ``seed``. With ``run_dir`` and ``settings.checkpoint``
    a checkpoint (``identity``: code and config sha256) is written after every epoch;
    ``resume`` continues from one. Step times exclude the first step of each segment (graph
    tracing and compilation). ``observers`` (e.g. ``curves.LearningCurve``) run after the step
    timer at each epoch's end, so epoch times exclude them; they must not change the training.
    """
    if settings.batchnorm != "keras":
        from usecases.covid_ct.fused_batchnorm import use_batchnorm

        use_batchnorm(model, settings.batchnorm)
    compile_model(model, learning_rate=settings.learning_rate)
    timer, best = StepTimer(), KeepBestWeights()
    lr = keras.callbacks.ReduceLROnPlateau(
        factor=settings.lr_factor, patience=settings.lr_patience, min_lr=settings.min_lr
    )
    stop = keras.callbacks.EarlyStopping(patience=settings.early_stopping_patience)
    parts = {"lr": lr, "stop": stop, "best": best, "timer": timer}
    curves = [o for o in observers if hasattr(o, "load_state")]
    if curves:
        parts["curve"] = curves[0]
    checkpointer = Checkpointer(
        run_dir or Path("."),
        parts=parts,
        identity=identity or {},
        enabled=settings.checkpoint and run_dir is not None,
        resume=resume,
    )
    first = resume.epoch if resume is not None else 0
    batches = epoch_batches(
        ds.x_train,
        ds.y_train,
        batch_size=settings.batch_size,
        seed=seed,
        first_epoch=first,
        epochs=settings.epochs,
    )
    if first < settings.epochs and not (resume and resume.meta["stop"]["stopped_epoch"]):
        model.fit(
            batches,
            steps_per_epoch=-(-len(ds.x_train) // settings.batch_size),
            initial_epoch=first,
            epochs=settings.epochs,
            validation_data=(ds.x_valid, ds.y_valid),
            validation_batch_size=settings.batch_size,
            callbacks=[lr, stop, best, timer, *observers, checkpointer],
            shuffle=False,  # the order is epoch_batches'
            verbose=2,
        )
    else:  # the checkpoint is of the last epoch: only the end of training is left
        checkpointer.on_train_begin()
        best.on_train_end()
    out = fit_summary(
        timer.history,
        timer,
        best_epoch=best.best_epoch,
        best_val_loss=best.best,
        batch_size=settings.batch_size,
        n_train=len(ds.x_train),
    )
    out["timings"]["checkpoint"] = checkpointer.summary()
    return out


def fit_summary(
    history: dict,
    timer: StepTimer,
    *,
    best_epoch: int | None,
    best_val_loss: float,
    batch_size: int,
    n_train: int,
) -> dict:
    """History, epochs, best epoch (``best_epoch`` 0-based in, 1-based out) and the timings.

    Step times exclude the first step of each segment (compilation; a resumed run compiles
    again) and each epoch's last, possibly short, step; epoch times exclude each segment's
    first epoch when there are others.
    """
    starts = {seg["first_epoch"] for seg in timer.segments} or {0}
    steps = [s for e, epoch in enumerate(timer.steps) for s in epoch[e in starts :]]
    full_steps = [s for e, epoch in enumerate(timer.steps) for s in epoch[e in starts : -1]]
    step_stats = summarize(full_steps or steps)
    later = [t for e, t in enumerate(timer.epochs) if e not in starts]
    segments = [
        {
            "started_at": seg.get("started_at"),
            "first_epoch": seg["first_epoch"] + 1,
            "last_epoch": end,
            "train_s": float(sum(timer.epochs[seg["first_epoch"] : end])),
            "first_step_s": timer.steps[seg["first_epoch"]][0]
            if seg["first_epoch"] < len(timer.steps) and timer.steps[seg["first_epoch"]]
            else None,
        }
        for seg, end in zip(
            timer.segments,
            [s["first_epoch"] for s in timer.segments[1:]] + [len(timer.epochs)],
            strict=True,
        )
    ]
    return {
        "history": {k: [float(v) for v in vals] for k, vals in history.items()},
        "epochs_run": len(timer.epochs),
        "best_epoch": None if best_epoch is None else best_epoch + 1,
        "best_val_loss": None if best_epoch is None else float(best_val_loss),
        "first_step_loss": timer.first_loss,
        "timings": {
            "train_step": {
                **step_stats,
                "batch_size": batch_size,
                "images_per_s": batch_size / step_stats["median_s"]
                if step_stats.get("median_s")
                else None,
                "excluded": "first step of each segment (compilation); last partial batch of "
                "each epoch",
            },
            "first_step_s": timer.steps[0][0] if timer.steps and timer.steps[0] else None,
            "epoch": {
                **summarize(later or timer.epochs),
                "train_images": n_train,
                "note": "includes validation, not the per-epoch test evaluation; each "
                "segment's first epoch excluded when there are more",
            },
            "first_epoch_s": timer.epochs[0] if timer.epochs else None,
            "train_total_s": float(sum(timer.epochs)),
            "segments": segments,
        },
    }
