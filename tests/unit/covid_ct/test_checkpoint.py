"""Checkpoints of covid_ct training: the batch order, a resume that equals the uninterrupted
run (callback states included), and files that are complete or absent (a full disk, a
corrupt file)."""

from __future__ import annotations

import errno
import json

import numpy as np
import pytest

from usecases.covid_ct import checkpoint
from usecases.covid_ct.data.phantom import load_phantom
from usecases.covid_ct.train import TrainSettings, epoch_batches, epoch_order, train
from usecases.errors import ConfigError, DataError

# Patience 1 and a learning rate that overshoots: ReduceLROnPlateau acts within a few epochs,
# so a resume that lost its wait counter, its best value or the learning rate would differ.
SETTINGS = dict(batch_size=8, learning_rate=2e-2, lr_factor=0.5, lr_patience=1, min_lr=1e-4,
                early_stopping_patience=3)  # fmt: skip
IDENTITY = {"code_sha256": "c" * 64, "config_sha256": "f" * 64}


def test_each_epoch_visits_every_slice_once_in_its_own_seeded_order():
    x, y = np.arange(20)[:, None], np.arange(20)[:, None]
    batches = list(epoch_batches(x, y, batch_size=8, seed=3, first_epoch=0, epochs=2))
    assert [len(b[0]) for b in batches] == [8, 8, 4, 8, 8, 4]  # the partial batch is kept
    first = np.concatenate([b[0][:, 0] for b in batches[:3]])
    second = np.concatenate([b[0][:, 0] for b in batches[3:]])
    assert sorted(first) == sorted(second) == list(range(20))
    assert not np.array_equal(first, second)
    assert np.array_equal(second, epoch_order(20, seed=3, epoch=1))  # no state: (seed, epoch)
    resumed = list(epoch_batches(x, y, batch_size=8, seed=3, first_epoch=1, epochs=2))
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(resumed, batches[3:], strict=True))


def _model(seed: int = 5):
    import keras

    from usecases.covid_ct.model import build_tv_unet

    keras.utils.set_random_seed(seed)
    return build_tv_unet(n_filters=2, dropout=0.2, size=32)


def _train(tmp_path, *, epochs: int, resume=None, model=None):
    ds = load_phantom(n_train=24, n_valid=8, n_test=8, size=32, seed=1)
    model = model or _model()
    fit = train(model, ds, settings=TrainSettings(epochs=epochs, **SETTINGS), seed=7,
                run_dir=tmp_path, identity=IDENTITY, resume=resume)  # fmt: skip
    return model, fit


def test_a_resumed_training_equals_the_uninterrupted_one_bit_for_bit(tmp_path):
    whole, fit = _train(tmp_path / "whole", epochs=6)
    assert min(fit["history"]["learning_rate"]) < SETTINGS["learning_rate"]  # the LR was cut
    last = fit["epochs_run"]
    assert 3 < last < 6  # EarlyStopping ended it after the resume point: its wait counts too
    _train(tmp_path / "cut", epochs=3)  # "killed" after epoch 3: its checkpoint is kept
    ckpt = checkpoint.load(checkpoint.latest(tmp_path / "cut"))
    assert ckpt.epoch == 3 and ckpt.meta["code_sha256"] == IDENTITY["code_sha256"]
    resumed, fit2 = _train(tmp_path / "cut", epochs=6, resume=ckpt, model=_model(seed=99))
    assert fit2["history"] == fit["history"]  # losses, validation losses, learning rates
    assert fit2["best_epoch"] == fit["best_epoch"]
    for a, b in zip(whole.get_weights(), resumed.get_weights(), strict=True):
        assert np.array_equal(a, b)
    segments = fit2["timings"]["segments"]
    assert [(s["first_epoch"], s["last_epoch"]) for s in segments] == [(1, 3), (4, last)]
    assert fit2["timings"]["checkpoint"]["bytes"] > 0
    # the first segment's saves travel in its checkpoints; the time of its last one cannot
    assert len(fit2["timings"]["checkpoint"]["save_s"]) == last - 1
    files = [p.name for p in (tmp_path / "cut" / "checkpoint").iterdir()]
    assert files == [f"epoch-{last:04d}.npz"]


def test_a_full_disk_keeps_the_previous_checkpoint_and_says_so(tmp_path, monkeypatch):
    arrays = {"model/0000": np.ones(3, np.float32)}
    first = checkpoint.save(tmp_path, meta={"format": 1, "epoch": 1}, arrays=arrays)

    def full(handle, **_):
        handle.write(b"PK\x03\x04partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", full)
    with pytest.raises(DataError, match=r"No space left on device.*previous file") as err:
        checkpoint.save(tmp_path, meta={"format": 1, "epoch": 2}, arrays=arrays)
    assert "\n" not in str(err.value)
    assert sorted(p.name for p in first.parent.iterdir()) == ["epoch-0001.npz"]  # no .part
    assert checkpoint.load(first).epoch == 1


def test_a_corrupt_or_truncated_checkpoint_is_one_line(tmp_path):
    path = checkpoint.save(tmp_path, meta={"format": 1, "epoch": 1},
                           arrays={"model/0000": np.arange(4096, dtype=np.float32)})  # fmt: skip
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte inside the weights
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="corrupt or incomplete"):
        checkpoint.load(path)
    path.write_bytes(bytes(data[: len(data) // 3]))
    with pytest.raises(DataError, match="corrupt or incomplete"):
        checkpoint.load(path)


def test_a_checkpoint_of_other_code_or_config_is_refused(tmp_path):
    path = checkpoint.save(tmp_path, meta={"format": 1, "epoch": 1, **IDENTITY}, arrays={})
    ckpt = checkpoint.load(path)
    checkpoint.check_identity(ckpt, IDENTITY)
    with pytest.raises(ConfigError, match="other code"):
        checkpoint.check_identity(ckpt, {**IDENTITY, "code_sha256": "d" * 64})
    with pytest.raises(ConfigError, match="other config"):
        checkpoint.check_identity(ckpt, {**IDENTITY, "config_sha256": "e" * 64})
    assert json.loads(json.dumps(ckpt.meta))["epoch"] == 1
