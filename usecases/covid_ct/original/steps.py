"""One TV-UNet implementation trained step by step on given batches: a child process of bisect.

    python -m usecases.covid_ct.original.steps JOB_DIR PATH

reads ``JOB_DIR/job.json`` (the paths, model, dropout, learning rate, snapshot steps),
``data.npz`` (``x``, ``y``: the training slices; ``order``: (steps, batch) indices into them) and
``initial.npz`` (the port's initial weights), builds the path's implementation (our port under
Keras 3 on the backend its environment names, or the paper's ``get_unet`` and ``TV_bin_loss``
under tf-keras), starts it from those weights (moved by one float32 ulp for a ``perturb: ulp``
path), and runs ``train_on_batch`` on every batch of ``order`` in turn: no shuffling, no
callbacks, Adam with the run's learning rate. Writes ``PATH.json`` (the loss and seconds of
every step) and ``PATH.npz`` (all weights, flattened, after each snapshot step).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from usecases.covid_ct.original.child import JobError, load_arrays, set_weights


def main(argv: list[str] | None = None) -> int:
    """CLI: train one path of the job in ``JOB_DIR``; 0 when its files are written."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print(
            "error: usage: python -m usecases.covid_ct.original.steps JOB_DIR PATH", file=sys.stderr
        )
        return 2
    work, name = Path(args[0]), args[1]
    job = json.loads((work / "job.json").read_text())
    path = job["paths"][name]
    try:
        model, keras = _build(job, implementation=path["implementation"])
    except JobError as err:  # e.g. tf-keras missing: one line for the parent to pass on
        print(f"error: {err}", file=sys.stderr)
        return 2
    weights = load_arrays(work / "initial.npz")
    if path.get("perturb") == "ulp":
        weights = one_ulp(weights, seed=job["seed"])
    set_weights(model, weights)
    data = np.load(work / "data.npz")
    x, y, order = data["x"], data["y"], data["order"]
    snapshots = set(job["snapshots"])
    losses, seconds, flat = [], [], {}
    for step, idx in enumerate(order, start=1):
        t = time.perf_counter()
        out = model.train_on_batch(x[idx], y[idx])
        losses.append(float(out[0] if isinstance(out, list | tuple) else out))  # synchronises
        seconds.append(time.perf_counter() - t)
        if step in snapshots:
            flat[f"step{step}"] = np.concatenate([w.ravel() for w in model.get_weights()])
    np.savez(work / f"{name}.npz", **flat)
    versions = {"keras": keras.__version__, "backend": keras.backend.backend()}
    (work / f"{name}.json").write_text(json.dumps({"loss": losses, "seconds": seconds, **versions}))
    return 0


def one_ulp(weights: list[np.ndarray], *, seed: int) -> list[np.ndarray]:
    """``weights`` with a random half of every array's elements moved one float32 ulp up:
    the smallest change a float32 computation can make to its starting point."""
    rng = np.random.default_rng(seed)
    moved = []
    for w in weights:
        w = np.asarray(w, dtype=np.float32)
        up = np.nextafter(w, np.float32(np.inf), dtype=np.float32)
        moved.append(np.where(rng.random(w.shape) < 0.5, up, w).astype(np.float32))
    return moved


def _build(job: dict, *, implementation: str):
    """The compiled model of ``implementation`` ("port" or "original") and its keras module."""
    m = job["model"]
    if implementation == "original":
        from usecases.covid_ct.original.child import keras2, load_code, papers_model

        keras = keras2()
        original = load_code(job["code"])
        keras.utils.set_random_seed(job["seed"])
        model = papers_model(
            original, keras, n_filters=m["n_filters"], size=m["size"], dropout=job["dropout"]
        )
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=job["learning_rate"]),
            loss=original.TV_bin_loss,
        )
        return model, keras
    import keras

    from usecases.covid_ct.model import build_tv_unet
    from usecases.covid_ct.train import compile_model

    keras.utils.set_random_seed(job["seed"])
    model = build_tv_unet(n_filters=m["n_filters"], dropout=job["dropout"], size=m["size"])
    return compile_model(model, learning_rate=job["learning_rate"]), keras


if __name__ == "__main__":
    sys.exit(main())
