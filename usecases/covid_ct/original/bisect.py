"""Where the port and the paper's code part ways: both trained step by step on the same batches.

    usecase-bench-bisect dataset.root=../shared/data/covid_semiseg scale=ci seed=1 \\
        usecase.original.code=../shared/reference/tv_unet_12031fa --json bisect.json

For one seed: the port's initial weights, one seeded batch order (``numpy`` permutations of the
training slices, one per epoch) and the run's batch size, learning rate and width go to every
path below, each a fresh child process (``steps``) running ``train_on_batch`` on the same
batches; with the configured dropout and again with dropout 0 (no random stream at all):

- ``port``: our Keras 3 TV-UNet, TensorFlow backend (the reference of every comparison);
- ``port-rerun``: the same again (float32 oneDNN kernels are deterministic: 0 difference);
- ``port-1ulp``: the same from weights moved by one float32 ulp (the smallest perturbation);
- ``original``: the paper's ``get_unet`` and ``TV_bin_loss`` under tf-keras (Keras 2);
- ``port-jax``: our port under Keras 3 on the JAX backend.

Per step it reports each path's loss and, at the snapshot steps, its distance from the port's
weights (relative L2 over all weights). A path that stays as close to the port as
``port-1ulp`` differs from it by no more than a rounding error does: training amplifies either
difference at the same rate.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from usecases import paths
from usecases.errors import UserError

PATHS = {
    "port": {"implementation": "port", "backend": "tensorflow"},
    "port-rerun": {"implementation": "port", "backend": "tensorflow"},
    "port-1ulp": {"implementation": "port", "backend": "tensorflow", "perturb": "ulp"},
    "original": {"implementation": "original", "backend": "tensorflow"},
    "port-jax": {"implementation": "port", "backend": "jax"},
}
REFERENCE = "port"


def batch_order(n: int, *, batch_size: int, steps: int, seed: int) -> np.ndarray:
    """(steps, batch_size) indices into n training slices: a fresh permutation per epoch
    (``numpy.random.default_rng(seed)``), each cut into full batches (the rest is dropped)."""
    rng, rows = np.random.default_rng(seed), []
    while len(rows) < steps:
        perm = rng.permutation(n)
        rows += [perm[i : i + batch_size] for i in range(0, n - batch_size + 1, batch_size)]
    return np.stack(rows[:steps])


def snapshot_steps(steps: int) -> list[int]:
    """1, 2, 5, 10, 20, 50, ... up to ``steps``, and ``steps`` itself."""
    marks = [m * 10**k for k in range(6) for m in (1, 2, 5)]
    return sorted({s for s in marks if s <= steps} | {steps})


def bisect(cfg, *, steps: int | None, dropouts: Sequence[float], names: Sequence[str]) -> dict:
    """Run every path in ``names`` for ``steps`` steps (None: one epoch) at each dropout.

    Returns ``{"seed", "batch_size", "learning_rate", "n_filters", "steps", "snapshots",
    "runs": {dropout: {path: {"loss", "seconds", "keras", "backend", "distance",
    "max_abs"}}}}``; ``distance`` and ``max_abs`` (per snapshot step) compare the path's
    weights with the port's.
    """
    import keras

    from usecases.covid_ct.data.load import load_dataset
    from usecases.covid_ct.model import build_tv_unet
    from usecases.covid_ct.original.code import locate_code

    uc = cfg.usecase
    batch = int(cfg.scale.get("batch_size") or uc.train.batch_size)
    lr = float(cfg.scale.get("learning_rate") or uc.train.learning_rate)
    ds = load_dataset(cfg.dataset, cache_dir=Path(cfg.cache_dir), size=uc.image_size, seed=cfg.seed)
    steps = steps or len(ds.x_train) // batch
    code = locate_code((uc.get("original") or {}).get("code")) if "original" in names else None
    keras.utils.set_random_seed(cfg.seed)
    spec = {"n_filters": cfg.scale.n_filters, "dropout": uc.dropout, "size": uc.image_size}
    initial = build_tv_unet(**spec).get_weights()  # as the run draws them
    order = batch_order(len(ds.x_train), batch_size=batch, steps=steps, seed=cfg.seed)
    snapshots = snapshot_steps(steps)
    out = {
        "seed": int(cfg.seed),
        "batch_size": batch,
        "learning_rate": lr,
        "n_filters": int(cfg.scale.n_filters),
        "steps": steps,
        "snapshots": snapshots,
        "runs": {},
    }
    with tempfile.TemporaryDirectory(prefix="usecase-bench-bisect-") as tmp:
        work = Path(tmp)
        np.savez(work / "initial.npz", *initial)
        np.savez(work / "data.npz", x=ds.x_train, y=ds.y_train, order=order)
        for dropout in dropouts:
            job = {
                "seed": int(cfg.seed),
                "dropout": float(dropout),
                "learning_rate": lr,
                "model": {"n_filters": int(cfg.scale.n_filters), "size": int(uc.image_size)},
                "snapshots": snapshots,
                "code": code,
                "paths": {n: PATHS[n] for n in names},
            }
            (work / "job.json").write_text(json.dumps(job))
            runs = {n: _run_path(work, n) for n in names}
            ref = np.load(work / f"{REFERENCE}.npz") if REFERENCE in names else None
            for n in names:
                runs[n] |= _distances(np.load(work / f"{n}.npz"), ref, snapshots)
            out["runs"][f"{dropout:g}"] = runs
    return out


def _run_path(work: Path, name: str) -> dict:
    """One child process; RuntimeError with its last line when it fails."""
    spec = PATHS[name]
    env = {
        **os.environ,
        "KERAS_BACKEND": spec["backend"],
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(paths.source_root()), os.environ.get("PYTHONPATH")) if p
        ),
    }
    if spec["implementation"] == "original":
        env["TF_USE_LEGACY_KERAS"] = "1"
    command = [sys.executable, "-m", "usecases.covid_ct.original.steps", str(work), name]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [ln for ln in (done.stderr or done.stdout).splitlines() if ln.strip()]
        raise RuntimeError(f"path {name} failed: {lines[-1] if lines else done.returncode}")
    return json.loads((work / f"{name}.json").read_text())


def _distances(mine, ref, snapshots: list[int]) -> dict:
    """Relative L2 distance and max |difference| of the weights from the reference's."""
    if ref is None:
        return {}
    distance, max_abs = {}, {}
    for s in snapshots:
        a, b = mine[f"step{s}"].astype(np.float64), ref[f"step{s}"].astype(np.float64)
        distance[str(s)] = float(np.linalg.norm(a - b) / np.linalg.norm(b))
        max_abs[str(s)] = float(np.abs(a - b).max())
    return {"distance": distance, "max_abs": max_abs}


def render(result: dict) -> str:
    """The bisection as text: per dropout, each path's loss and weight distance per snapshot."""
    r = result
    lines = [
        f"seed {r['seed']}, n={r['n_filters']}, batch {r['batch_size']}, lr {r['learning_rate']:g},"
        f" {r['steps']} steps on one shared batch order, every path from the port's weights",
    ]
    for dropout, runs in r["runs"].items():
        lines += [
            "",
            f"dropout {dropout}: loss at step s | relative L2 distance from port's weights",
        ]
        lines.append(f"{'path':12s} " + " ".join(f"{'s=' + str(s):>21s}" for s in r["snapshots"]))
        for name, run in runs.items():
            cells = []
            for s in r["snapshots"]:
                d = run.get("distance", {}).get(str(s))
                cells.append(f"{run['loss'][s - 1]:.6f} | {'-' if d is None else f'{d:.1e}':>7s}")
            lines.append(f"{name:12s} " + " ".join(f"{c:>21s}" for c in cells))
        ms = {
            n: 1e3 * float(np.median(run["seconds"][1:] or run["seconds"]))
            for n, run in runs.items()
        }
        lines.append("median ms/step: " + ", ".join(f"{n} {v:.0f}" for n, v in ms.items()))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: Hydra overrides as run.py takes them, then the bisection; exit 0, or 2 with one line."""
    parser = argparse.ArgumentParser(
        prog="usecase-bench-bisect", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("overrides", nargs="*", help="run.py overrides: dataset, scale, seed, ...")
    parser.add_argument("--steps", type=int, help="training steps (default: one epoch)")
    parser.add_argument(
        "--paths", default=",".join(PATHS), help=f"comma-separated: {', '.join(PATHS)}"
    )
    parser.add_argument(
        "--dropouts", help="comma-separated dropout rates (default: the configured one, and 0)"
    )
    parser.add_argument("--json", type=Path, help="also write the result to this JSON file")
    args = parser.parse_args(argv)
    try:
        names = [n for n in args.paths.split(",") if n]
        unknown = [n for n in names if n not in PATHS]
        if unknown or not names:
            raise UserError(f"--paths {args.paths}: use names from {', '.join(PATHS)}")
        if args.steps is not None and args.steps < 1:
            raise UserError(f"--steps {args.steps}: must be at least 1")
        if args.json is not None and not args.json.parent.is_dir():
            raise UserError(f"--json {args.json}: no folder {args.json.parent}; make it first")
        dropouts = _dropouts(args.dropouts)
        cfg = _config(args.overrides)
        dropouts = dropouts or sorted({float(cfg.usecase.dropout), 0.0}, reverse=True)
        result = bisect(cfg, steps=args.steps, dropouts=dropouts, names=names)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except RuntimeError as err:  # a child process failed: its last line says why
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(render(result))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


def _dropouts(text: str | None) -> list[float]:
    """``--dropouts`` as rates in [0, 1); UserError naming the bad value."""
    if text is None:
        return []
    try:
        rates = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        rates = []
    if not rates or any(not 0 <= r < 1 for r in rates):
        raise UserError(f"--dropouts {text}: give rates in [0, 1), e.g. 0.2,0")
    return rates


def _config(overrides: Sequence[str]):
    """The run's config composed from conf/ with ``overrides``, as run.py composes it."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import errors as oc_errors

    from usecases.errors import ConfigError

    conf = paths.require(paths.conf_dir(), what="the Hydra config groups (conf/)")
    try:
        with initialize_config_dir(config_dir=str(conf), version_base=None):
            cfg = compose(config_name="config", overrides=["usecase=covid_ct", *overrides])
    except (HydraException, oc_errors.OmegaConfBaseException) as err:
        raise ConfigError(
            f"bad option: {str(err).splitlines()[0]} (see conf/ for the options)"
        ) from None
    if cfg.usecase.name != "covid_ct":
        raise ConfigError("usecase-bench-bisect compares covid_ct implementations: drop usecase=")
    return cfg


if __name__ == "__main__":
    sys.exit(main())
