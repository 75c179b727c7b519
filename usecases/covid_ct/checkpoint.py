"""Checkpoints of covid_ct training: after every epoch, one complete file or none.

A checkpoint holds everything that decides the rest of the run: every model variable (the
weights and the dropout layers' seed-generator states, which drive dropout), the optimizer's
variables (its step, the current learning rate, Adam's moments), the state of each callback
that changes the outcome (ReduceLROnPlateau: best, wait, cooldown; EarlyStopping: best, wait,
best epoch; KeepBestWeights: its weights and epoch), and the timings, history and learning
curve so far. The batch order needs no state: epoch e's order is drawn from (seed, e)
(``train.epoch_batches``). It also names what it belongs to: the sha256 of the code
(``usecases/**/*.py``) and of the run's resolved config; a resume with other code or another
config is refused.

File: ``<run>/checkpoint/epoch-NNNN.npz`` (NNNN = epochs completed), written to a temporary
file beside it, flushed to disk, then renamed; the previous one is removed only afterwards, so
at any moment the folder holds one complete checkpoint (two for an instant) and never a partial
one. A write that fails (a full disk) leaves the previous checkpoint and stops the run with one
line. The zip format's CRC-32 catches a corrupt file on load.
"""

from __future__ import annotations

import json
import logging
import time
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import keras
import numpy as np
from omegaconf import DictConfig, OmegaConf

from usecases.errors import ConfigError, DataError
from usecases.records.identity import check_same_run, run_identity
from usecases.records.record import atomic_file

FORMAT = 1
FOLDER = "checkpoint"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: ``meta`` (JSON: epoch, identity, callback states, timings) and
    ``arrays`` (name -> array: ``model/0000``..., ``optimizer/...``, ``best/...``)."""

    path: Path
    meta: dict
    arrays: dict[str, np.ndarray]

    @property
    def epoch(self) -> int:
        """Epochs completed when it was written (training resumes at this 0-based epoch)."""
        return int(self.meta["epoch"])


def latest(run_dir: Path) -> Path | None:
    """The newest complete checkpoint file in ``run_dir`` (None when there is none)."""
    files = sorted((Path(run_dir) / FOLDER).glob("epoch-*.npz"))
    return files[-1] if files else None


def load(path: Path) -> Checkpoint:
    """Read a checkpoint; DataError (one line) when it is truncated, corrupt or not ours."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}  # reading checks each CRC-32
        meta = json.loads(arrays.pop("meta").tobytes().decode())
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, UnicodeDecodeError) as err:
        raise DataError(
            f"checkpoint {path} is corrupt or incomplete ({type(err).__name__}: {err}); the "
            "run cannot continue from it: start it again."
        ) from err
    if meta.get("format") != FORMAT:
        raise DataError(f"checkpoint {path} has format {meta.get('format')!r}, not {FORMAT}.")
    return Checkpoint(Path(path), meta, arrays)


def save(run_dir: Path, *, meta: dict, arrays: dict[str, np.ndarray]) -> Path:
    """Write ``epoch-NNNN.npz`` atomically and remove the older ones; return its path.

    On an OSError (e.g. ENOSPC) the temporary file is removed, the previous checkpoint stays,
    and DataError says what happened (``records.record.atomic_file``).
    """
    folder = Path(run_dir) / FOLDER
    path = folder / f"epoch-{meta['epoch']:04d}.npz"
    payload = {"meta": np.frombuffer(json.dumps(meta, default=_plain).encode(), np.uint8)}
    with atomic_file(path, what="checkpoint") as tmp, tmp.open("wb") as handle:
        np.savez(handle, **payload, **arrays)
    for older in folder.glob("epoch-*.npz"):
        if older != path:
            older.unlink()
    return path


def remove(run_dir: Path) -> None:
    """Delete the checkpoints of a run that finished (they are only for resuming)."""
    folder = Path(run_dir) / FOLDER
    for path in folder.glob("epoch-*.npz"):
        path.unlink()
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


def resume_point(cfg: DictConfig, run_dir: Path) -> Checkpoint | None:
    """The checkpoint to continue from (None for a fresh run folder); UserError (one line)
    when it is corrupt, or of other code or another config, or the run cannot be resumed."""
    path = latest(run_dir)
    if path is None:
        return None
    if cfg.usecase.get("implementation", "port") == "original":
        raise ConfigError(
            "implementation=original runs the paper's code unchanged and has no "
            "checkpoints; start the run again."
        )
    ckpt = load(path)
    check_identity(ckpt, run_identity(OmegaConf.to_container(cfg, resolve=True)))
    return ckpt


def resumable(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a checkpoint to resume from."""
    return latest(run_dir) is not None


def check_resume(cfg: DictConfig, run_dir: Path) -> None:
    """Before a resume changes anything: UserError unless ``run_dir`` holds a checkpoint this
    code can continue with this config."""
    if latest(run_dir) is None:
        raise ConfigError(
            f"{run_dir} has no checkpoint (the run stopped before its first epoch ended, or ran "
            "with usecase.train.checkpoint=false); start it again."
        )
    resume_point(cfg, run_dir)


class Checkpointer(keras.callbacks.Callback):
    """Restore a checkpoint when training begins and write one after every epoch.

    ``parts`` maps names to the callbacks whose state is saved: ``lr`` (ReduceLROnPlateau),
    ``stop`` (EarlyStopping), ``best`` (train.KeepBestWeights), ``timer`` (train.StepTimer),
    and ``curve`` (curves.LearningCurve) when present. Place it after all of them: their own
    ``on_train_begin`` resets them first, then this one restores them.
    ``identity`` ({"code_sha256", "config_sha256"}) is stored and checked on resume.
    """

    def __init__(
        self,
        run_dir: Path,
        *,
        parts: dict,
        identity: dict,
        enabled: bool = True,
        resume: Checkpoint | None = None,
    ) -> None:
        super().__init__()
        self._run_dir, self._parts, self._identity = Path(run_dir), parts, identity
        self.enabled, self.resume = enabled, resume
        self.save_s: list[float] = []
        self.bytes: int | None = None

    def on_train_begin(self, logs=None):
        if self.resume is not None:
            restore(self.model, self._parts, self.resume)
            self.save_s = list(self.resume.meta.get("save_s", []))
            log.info("resumed from %s (epoch %d)", self.resume.path, self.resume.epoch)

    def on_epoch_end(self, epoch, logs=None):
        if not self.enabled:
            return
        start = time.perf_counter()
        meta, arrays = capture(self.model, self._parts, epoch=epoch + 1)
        meta |= {**self._identity, "save_s": self.save_s}  # the earlier saves' times
        path = save(self._run_dir, meta=meta, arrays=arrays)
        self.save_s.append(time.perf_counter() - start)
        self.bytes = path.stat().st_size

    def summary(self) -> dict:
        """What checkpointing cost: seconds per save (median, all), file size in bytes."""
        if not self.enabled:
            return {"enabled": False}
        return {
            "enabled": True,
            "save_s": self.save_s,
            "median_s": float(np.median(self.save_s)) if self.save_s else None,
            "bytes": self.bytes,
            "note": "per epoch: capture + write + fsync + rename; not part of the epoch times; "
            "after a resume the earlier segments' saves are listed too, but for the last one "
            "of each (its time was not yet known when its checkpoint was written)",
        }


def capture(model: keras.Model, parts: dict, *, epoch: int) -> tuple[dict, dict]:
    """(meta, arrays) of the training state after ``epoch`` completed epochs."""
    lr, stop, best, timer = parts["lr"], parts["stop"], parts["best"], parts["timer"]
    arrays = {f"model/{i:04d}": np.asarray(v) for i, v in enumerate(model.variables)}
    optimizer = model.optimizer.variables
    arrays |= {f"optimizer/{i:04d}": np.asarray(v) for i, v in enumerate(optimizer)}
    best_is_now = best.best_epoch == epoch - 1
    if best._weights is not None and not best_is_now:
        arrays |= {f"best/{i:04d}": np.asarray(w) for i, w in enumerate(best._weights)}
    meta = {
        "format": FORMAT,
        "epoch": epoch,
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "lr": {"best": lr.best, "wait": lr.wait, "cooldown_counter": lr.cooldown_counter},
        "stop": {
            "best": stop.best,
            "wait": stop.wait,
            "best_epoch": stop.best_epoch,
            "stopped_epoch": stop.stopped_epoch,
        },
        "best": {"best": best.best, "best_epoch": best.best_epoch, "is_current": best_is_now},
        "timer": timer.state(),
        "curve": parts["curve"].state() if parts.get("curve") else None,
    }
    return meta, arrays


def restore(model: keras.Model, parts: dict, ckpt: Checkpoint) -> None:
    """Put the state of ``ckpt`` into ``model`` and the callbacks in ``parts``."""
    meta = ckpt.meta
    _assign(model.variables, ckpt, "model")
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    _assign(model.optimizer.variables, ckpt, "optimizer")
    lr, stop, best = parts["lr"], parts["stop"], parts["best"]
    for callback, key in ((lr, "lr"), (stop, "stop")):
        for name, value in meta[key].items():
            setattr(callback, name, value)
    best.best, best.best_epoch = meta["best"]["best"], meta["best"]["best_epoch"]
    if meta["best"]["is_current"]:
        best._weights = model.get_weights()
    elif best.best_epoch is not None:
        best._weights = [ckpt.arrays[k] for k in sorted(ckpt.arrays) if k.startswith("best/")]
    parts["timer"].load_state(meta["timer"])
    if parts.get("curve") and meta.get("curve"):
        parts["curve"].load_state(meta["curve"])


def _assign(variables, ckpt: Checkpoint, prefix: str) -> None:
    names = sorted(k for k in ckpt.arrays if k.startswith(prefix + "/"))
    shapes = [tuple(ckpt.arrays[n].shape) for n in names]
    if shapes != [tuple(v.shape) for v in variables]:
        raise DataError(
            f"checkpoint {ckpt.path} does not fit this model ({prefix}: {len(names)} arrays "
            f"for {len(variables)} variables); it belongs to another configuration."
        )
    for name, variable in zip(names, variables, strict=True):
        variable.assign(ckpt.arrays[name])


def _plain(obj):
    """numpy scalars -> JSON numbers."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def check_identity(ckpt: Checkpoint, identity: dict) -> None:
    """ConfigError unless ``ckpt`` was written by this code with this config (``identity``)."""
    check_same_run(ckpt.meta, identity, source=ckpt.path)
