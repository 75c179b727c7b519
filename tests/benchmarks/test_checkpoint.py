"""What a training checkpoint costs per epoch: capture + write + fsync + rename, and its size.

The worst case is measured: the best-weights keeper holds weights of an earlier epoch, so the
file carries the model's variables, Adam's two moments and one more copy of the weights (about
4 x the parameters x 4 bytes). Plain ``pytest`` writes one at smoke width and reads it back;
``--benchmark-enable --widths ci,paper`` times it (README, docs/performance.md).
"""

from __future__ import annotations

import numpy as np

from usecases.covid_ct import checkpoint
from usecases.covid_ct.train import KeepBestWeights, StepTimer, compile_model


def _state(width: int):
    import keras

    from usecases.covid_ct.model import build_tv_unet

    keras.utils.set_random_seed(0)
    model = compile_model(build_tv_unet(n_filters=width, dropout=0.2, size=128), learning_rate=1e-3)
    model.optimizer.build(model.trainable_variables)
    best = KeepBestWeights()
    best.best, best.best_epoch, best._weights = 0.5, 0, model.get_weights()
    timer = StepTimer()
    timer.on_train_begin()
    parts = {"lr": keras.callbacks.ReduceLROnPlateau(), "stop": keras.callbacks.EarlyStopping(),
             "best": best, "timer": timer}  # fmt: skip
    for callback in (parts["lr"], parts["stop"]):
        callback.on_train_begin()
    return model, parts


def test_checkpoint_save(benchmark, width, tmp_path):
    from tests.benchmarks.conftest import WIDTHS

    model, parts = _state(WIDTHS[width])

    def save():
        meta, arrays = checkpoint.capture(model, parts, epoch=2)
        return checkpoint.save(tmp_path, meta=meta, arrays=arrays)

    path = benchmark.pedantic(save, rounds=1 if benchmark.disabled else 5, warmup_rounds=0)
    size = path.stat().st_size
    params = model.count_params()
    benchmark.extra_info.update(width=width, n_filters=WIDTHS[width], bytes=size,
                                parameters=params)  # fmt: skip
    assert size > 4 * 4 * params * 0.99  # weights, two Adam moments, the best epoch's weights
    ckpt = checkpoint.load(path)
    assert ckpt.epoch == 2
    assert np.array_equal(ckpt.arrays["model/0000"], np.asarray(model.variables[0]))
