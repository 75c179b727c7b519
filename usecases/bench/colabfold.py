"""ColabFold fold times by model count, with JAX's persistent compilation cache cold then warm.

For each length: one fold of ``models[0]`` models with an empty cache (cold: the first model
compiles), then one fold per entry of ``models`` with the cache that fold filled (warm: the
compiled program is loaded). Random weights, single sequence, so it runs offline; times in s.

    python -m usecases.bench.colabfold --lengths 302 --models 1 3 5 --out OUT
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from usecases.runner.devices import configure_process


def fold_sweep(
    *, lengths: list[int], models: list[int], recycles: int, cache: Path | None = None
) -> dict:
    """``{"colabfold_fold_<L>": cold fold, "colabfold_fold_<L>_<N>models_warm": ...}``.

    Each value is the fold's ``timings`` (``FoldResult.timings``) with its length, recycles,
    model count and weights. ``cache``: the compilation cache folder (default: a fresh
    temporary one, so the first fold of each length is cold).
    """
    from usecases.colabfold_spike.once import fold_once
    from usecases.colabfold_spike.weights import RandomAlphaFoldParams

    out: dict = {}
    params = RandomAlphaFoldParams(seed=0)  # shapes traced once for every fold
    with tempfile.TemporaryDirectory(prefix="jax-cache-") as scratch:
        for length in lengths:
            folder = cache or Path(scratch) / str(length)
            runs = [(f"colabfold_fold_{length}", models[0])]
            runs += [(f"colabfold_fold_{length}_{n}models_warm", n) for n in models]
            for key, n in runs:
                fold = fold_once(length=length, recycles=recycles, num_models=n,
                                 random_params=params, compilation_cache=folder)  # fmt: skip
                out[key] = {**fold["timings"], "length": length, "recycles": recycles,
                            "num_models": n, "weights": "random", "msa": "single_sequence",
                            "device_kind": fold["device"]}  # fmt: skip
    return out


def per_model_table(timings: dict) -> list[str]:
    """One line per fold: models, cache state, first model (compile), steady median, total."""
    lines = []
    for key, t in timings.items():
        if not key.startswith("colabfold_fold_"):
            continue
        steady = t.get("steady_model", {}).get("median_s")
        cache = (t.get("compilation_cache") or {}).get("state", "off")
        lines.append(
            f"{key:38s} {t['num_models']} model(s), cache {cache:11s} first "
            f"{t['first_model_s']:6.1f} s (compile {t['first_model_compile_s']:5.1f} s), steady "
            f"{'-' if steady is None else f'{steady:.2f} s'}, run {t['colabfold_run_s']:.1f} s"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    """CLI: fold the sweep on ``--device`` and write ``OUT/colabfold.json``."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lengths", type=int, nargs="+", default=[302])
    p.add_argument("--models", type=int, nargs="+", default=[1, 3, 5])
    p.add_argument("--recycles", type=int, default=0)
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    if any(not 1 <= n <= 5 for n in args.models) or any(n < 1 for n in args.lengths):
        p.error("--models take 1 to 5, --lengths at least 1")
    configure_process(device=args.device, backend="jax")
    started = datetime.now(UTC).isoformat(timespec="seconds")
    timings = fold_sweep(lengths=args.lengths, models=args.models, recycles=args.recycles)
    from usecases.measure.environment import capture_environment

    args.out.mkdir(parents=True, exist_ok=True)
    record = {"benchmark": "usecases.bench.colabfold", "started_at": started,
              "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
              "args": {k: str(v) for k, v in vars(args).items()},
              "environment": capture_environment(), "timings": timings}  # fmt: skip
    (args.out / "colabfold.json").write_text(json.dumps(record, indent=1, default=str))
    print("\n".join(per_model_table(timings)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
