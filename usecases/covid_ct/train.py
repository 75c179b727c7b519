"""Training of the TV-UNet as in the paper's code, with hot-path timing.

Adam (lr 1e-3), batch 32, ReduceLROnPlateau(factor 0.1, patience 5, min_lr 1e-5),
EarlyStopping(patience 50) on the validation loss, and the weights of the epoch with the
lowest validation loss kept at the end (the paper's ModelCheckpoint(save_best_only=True)).

The step timer and ``fit_summary`` use only what Keras 2 and Keras 3 share, so the paper's own
code (``usecases.covid_ct.original``, under tf-keras) is timed by the same code.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np

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


class StepTimer(keras.callbacks.Callback):
    """Wall time of every training step and epoch; the loss is read back to synchronise."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[list[float]] = []
        self.epochs: list[float] = []
        self.first_loss: float | None = None  # the training loss of the very first step
        self._t_step = self._t_epoch = 0.0

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
    observers: Sequence[keras.callbacks.Callback] = (),
) -> dict:
    """Fit ``model`` on ds.train with ds.valid for validation; return history and timings.

    Step times exclude the first step of the first epoch (graph tracing and compilation).
    ``observers`` (e.g. ``curves.LearningCurve``) run after the step timer at each epoch's end, so
    epoch times exclude them; they must not change the training.
    """
    compile_model(model, learning_rate=settings.learning_rate)
    timer, best = StepTimer(), KeepBestWeights()
    callbacks = [
        keras.callbacks.ReduceLROnPlateau(
            factor=settings.lr_factor, patience=settings.lr_patience, min_lr=settings.min_lr
        ),
        keras.callbacks.EarlyStopping(patience=settings.early_stopping_patience),
        best,
        timer,
        *observers,
    ]
    history = model.fit(
        ds.x_train,
        ds.y_train,
        batch_size=settings.batch_size,
        epochs=settings.epochs,
        validation_data=(ds.x_valid, ds.y_valid),
        callbacks=callbacks,
        shuffle=True,
        verbose=2,
    )
    return fit_summary(
        history.history,
        timer,
        best_epoch=best.best_epoch,
        best_val_loss=best.best,
        batch_size=settings.batch_size,
        n_train=len(ds.x_train),
    )


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

    Step times exclude the first step (compilation) and each epoch's last, possibly short, step.
    """
    steps = [s for epoch in timer.steps for s in epoch][1:]
    full_steps = [s for epoch in timer.steps for s in epoch[:-1]][1:]  # last step may be short
    step_stats = summarize(full_steps or steps)
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
                "excluded": "first step (compilation); last partial batch of each epoch",
            },
            "first_step_s": timer.steps[0][0] if timer.steps and timer.steps[0] else None,
            "epoch": {
                **summarize(timer.epochs[1:] or timer.epochs),
                "train_images": n_train,
                "note": "includes validation, not the per-epoch test evaluation; first epoch "
                "excluded when there are more",
            },
            "first_epoch_s": timer.epochs[0] if timer.epochs else None,
            "train_total_s": float(sum(timer.epochs)),
        },
    }
