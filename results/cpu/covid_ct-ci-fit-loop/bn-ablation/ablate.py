"""Where the port's 1.3-1.4x per fit step against the paper's tf-keras comes from (ci width).

One process, one in-memory tf.data pipeline of 320 real slices for every variant, per-step
times read by a callback that synchronises on the loss, variants alternated round by round:
the Keras 3 port (k3), the port with TensorFlow's fused BatchNorm kernel (k3_fusedbn), the port
with SGD instead of Adam (k3_sgd), the paper's TV_UNET.py under tf-keras (k2), the same with
tf-keras's BatchNormalization(fused=False) (k2_unfusedbn) and with SGD (k2_sgd).

    .venv/bin/python results/cpu/covid_ct-ci-fit-loop/bn-ablation/ablate.py ROUNDS STEPS WIDTH BATCH

The run kept here (ablation.log, ablation-n8-b16.json) is ``ablate.py 5 20 8 16`` on the idle
2-core AMD EPYC, commit 9299c60 (median step of each call, steps 2-20; five rounds).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(REPO))


def main(rounds: int, steps: int, width: int, batch: int) -> None:
    import keras
    import numpy as np
    import tensorflow as tf

    from usecases.covid_ct.data.covid_semiseg import load_covid_semiseg
    from usecases.covid_ct.fused_batchnorm import use_batchnorm
    from usecases.covid_ct.model import build_tv_unet, tv_bce_loss
    from usecases.covid_ct.original.code import locate_code
    from usecases.covid_ct.original.inprocess import load_with_tf_keras
    from usecases.paths import cache_base

    root = REPO.parent / "shared" / "data" / "covid_semiseg"
    ds = load_covid_semiseg(root=root, cache_dir=cache_base() / "prepared", size=128)
    data = (
        tf.data.Dataset.from_tensor_slices((ds.x_train[:320], ds.y_train[:320]))
        .batch(batch, drop_remainder=True)
        .repeat()
        .prefetch(2)
    )
    code = locate_code(REPO.parent / "shared" / "reference" / "tv_unet_12031fa")

    def port(bn: str = "keras", opt: str = "adam"):
        model = build_tv_unet(n_filters=width)
        use_batchnorm(model, bn)
        optimizer = keras.optimizers.Adam(1e-3) if opt == "adam" else keras.optimizers.SGD(1e-3)
        model.compile(optimizer=optimizer, loss=tv_bce_loss, jit_compile=False)
        return model, keras

    def original(fused: bool = True, opt: str = "adam"):
        tf_keras, module = load_with_tf_keras(code)
        model = module.get_unet(tf_keras.Input((128, 128, 1)), n_filters=width, dropout=0.2)
        if not fused:  # rebuild each BatchNormalization unfused, same config
            model = tf_keras.models.clone_model(model, clone_function=_unfused(tf_keras))
        optimizers = tf_keras.optimizers
        optimizer = optimizers.Adam(1e-3) if opt == "adam" else optimizers.SGD(1e-3)
        model.compile(optimizer=optimizer, loss=module.TV_bin_loss)
        return model, tf_keras

    variants = {
        "k3": port, "k3_fusedbn": lambda: port(bn="fused"), "k3_sgd": lambda: port(opt="sgd"),
        "k2": original, "k2_unfusedbn": lambda: original(fused=False),
        "k2_sgd": lambda: original(opt="sgd"),
    }  # fmt: skip
    models = {}
    for name, make in variants.items():
        keras.utils.set_random_seed(0)
        models[name] = make()
        models[name][0].fit(data, steps_per_epoch=3, epochs=1, verbose=0)  # trace, compile
    results: dict[str, list[float]] = {name: [] for name in models}
    for r in range(rounds):
        for name, (model, framework) in models.items():
            timer = _timer(framework)
            model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[timer])
            results[name].append(float(np.median(timer.times[1:])))
        print("round", r, {n: round(v[-1], 4) for n, v in results.items()}, flush=True)
    base = float(np.median(results["k2"]))
    for name, values in results.items():
        median = float(np.median(values))
        print(f"{name:14s} median of round medians {median:.4f} s  range {min(values):.4f}-"
              f"{max(values):.4f}  / k2 {median / base:.2f}x")  # fmt: skip
    out = Path(__file__).with_name(f"ablation-n{width}-b{batch}.json")
    out.write_text(json.dumps(results))


def _unfused(tf_keras):
    def clone(layer):
        config = layer.get_config()
        if isinstance(layer, tf_keras.layers.BatchNormalization):
            return tf_keras.layers.BatchNormalization.from_config({**config, "fused": False})
        return layer.__class__.from_config(config)

    return clone


def _timer(framework):
    class StepTimes(framework.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.times: list[float] = []

        def on_train_batch_begin(self, batch, logs=None):
            self._start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            float(logs["loss"])  # waits for the step
            self.times.append(time.perf_counter() - self._start)

    return StepTimes()


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:5]))
