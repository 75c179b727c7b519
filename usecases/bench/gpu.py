"""GPU measurements of the covid_ct hot paths in one call, with Keras on JAX (no TensorFlow).

For the TV-UNet at a given width (paper: n=64, 128x128) it times, per precision (float32,
mixed_bfloat16): training steps and whole epochs on the real slices (compilation excluded),
and inference at batch 1, 8 and 32; it measures a GEMM ceiling of each precision on the same
device; and it writes one result record (``record.json``) plus a printed table.

    python -m usecases.bench.gpu --data-root ../shared/data/covid_semiseg --device gpu --out OUT
    python -m usecases.bench.gpu --dataset phantom --n-filters 4 --device cpu --out /tmp/b
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from usecases.bench.colabfold import per_model_table
from usecases.errors import UserError
from usecases.runner.devices import configure_process

PRECISIONS = ("float32", "mixed_bfloat16")


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", choices=("covid_semiseg", "phantom"), default="covid_semiseg")
    p.add_argument("--data-root", type=Path, default=Path("../shared/data/covid_semiseg"))
    p.add_argument("--cache-dir", type=Path, default=Path("/tmp/usecase-bench-cache"))
    p.add_argument("--device", choices=("auto", "cpu", "gpu"), default="gpu")
    p.add_argument("--n-filters", type=int, default=64)
    p.add_argument("--epochs", type=int, default=3, help="first one (compilation) is excluded")
    p.add_argument("--repeats", type=int, default=20, help="timed inference calls per batch size")
    p.add_argument("--gemm-size", type=int, default=8192)
    p.add_argument(
        "--colabfold-lengths",
        type=int,
        nargs="*",
        default=[],
        help="also fold the first N spike residues with ColabFold (random weights, single "
        "sequence; usecases.bench.colabfold: cold, then warm per --colabfold-models), e.g. 302",
    )
    p.add_argument("--colabfold-models", type=int, nargs="+", default=[2])
    p.add_argument("--colabfold-recycles", type=int, default=3)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    for name, least in (("n_filters", 1), ("epochs", 2), ("repeats", 1), ("gemm_size", 1)):
        if getattr(args, name) < least:
            p.error(f"--{name.replace('_', '-')} must be at least {least}")
    if args.out.exists() and not args.out.is_dir():
        p.error(f"--out {args.out} is a file; give a folder")
    return args


def gemm_ceiling(*, size: int, dtype: str, highest: bool = False, repeats: int = 10) -> dict:
    """Achieved TFLOP/s of a size^3 matrix product in JAX (warm-up excluded, synchronised).

    ``highest=False`` uses the backend's default precision, the one the model's float32
    convolutions get (TF32 on NVIDIA Ampere and newer); ``highest=True`` forces true float32.
    """
    import jax
    import jax.numpy as jnp

    from usecases.measure.timing import summarize, time_call

    key = jax.random.PRNGKey(0)
    a = jax.random.normal(key, (size, size), dtype=dtype)
    b = jax.random.normal(jax.random.split(key)[0], (size, size), dtype=dtype)
    precision = jax.lax.Precision.HIGHEST if highest else None
    matmul = jax.jit(lambda x, y: jnp.matmul(x, y, precision=precision))
    stats = summarize(
        time_call(lambda: matmul(a, b), repeats=repeats, warmup=3, sync=jax.block_until_ready)
    )
    return {
        **stats,
        "dtype": dtype,
        "size": size,
        "precision": "HIGHEST" if precision else "DEFAULT",
        "tflops": 2 * size**3 / stats["median_s"] / 1e12,
    }


def bench_precision(ds, *, precision: str, n_filters: int, epochs: int, repeats: int) -> dict:
    """Train ``epochs`` epochs and time inference for one Keras dtype policy."""
    import keras
    import numpy as np

    from usecases.covid_ct.model import build_tv_unet
    from usecases.covid_ct.train import StepTimer, compile_model
    from usecases.measure.timing import summarize, time_call

    keras.mixed_precision.set_global_policy(precision)
    keras.utils.set_random_seed(42)
    model = build_tv_unet(n_filters=n_filters)
    compile_model(model, learning_rate=1e-3)
    timer = StepTimer()
    model.fit(
        ds.x_train,
        ds.y_train,
        batch_size=32,
        epochs=epochs,
        callbacks=[timer],
        validation_data=(ds.x_valid, ds.y_valid),
        verbose=0,
    )
    steps = summarize([s for e in timer.steps[1:] for s in e[:-1]])
    epoch = summarize(timer.epochs[1:])
    out = {
        "train_step": {
            **steps,
            "batch_size": 32,
            "images_per_s": 32 / steps["median_s"],
            "excluded": "first epoch (compilation) and each epoch's last batch",
        },
        "epoch": {
            **epoch,
            "train_images": len(ds.x_train),
            "valid_images": len(ds.x_valid),
            "note": "fit on all training slices + validation; first epoch excluded",
        },
        "first_epoch_s": timer.epochs[0],
    }
    for bs in (1, 8, 32):
        batch = np.ascontiguousarray(
            ds.x_test[:bs]
            if len(ds.x_test) >= bs
            else np.resize(ds.x_test, (bs, *ds.x_test.shape[1:]))
        )
        stats = summarize(
            time_call(
                lambda b=batch: model.predict_on_batch(b),
                repeats=repeats,
                warmup=3,
                sync=np.asarray,
            )
        )
        out[f"inference_batch{bs}"] = {
            **stats,
            "batch_size": bs,
            "images_per_s": bs / stats["median_s"],
        }
    keras.mixed_precision.set_global_policy("float32")
    return out


def main(argv: list[str] | None = None) -> int:
    """Run every measurement and write OUT/record.json; return the exit code."""
    args = _args(argv)
    try:  # the folder first: a bad --out must not cost the measurements
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        print(f"error: cannot create --out {args.out} ({err.strerror})", file=sys.stderr)
        return 2
    try:
        configure_process(device=args.device, backend="jax")
        return _run(args)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except Exception as err:  # an internal failure: one line here, the traceback in a file
        log = args.out / "error.log"
        log.write_text(traceback.format_exc())
        print(f"error: internal failure ({type(err).__name__}: {err}); traceback in {log}",
              file=sys.stderr)  # fmt: skip
        return 1


def _run(args: argparse.Namespace) -> int:
    from usecases.covid_ct.flops import TRAIN_FACTOR, forward_flops_per_image
    from usecases.covid_ct.model import build_tv_unet
    from usecases.measure.environment import capture_environment
    from usecases.records.record import ResultRecord, write_record
    from usecases.runner.devices import resolve_device

    device = resolve_device(requested=args.device, backend="jax")
    started = datetime.now(UTC).isoformat(timespec="seconds")
    if args.dataset == "phantom":
        from usecases.covid_ct.data.phantom import load_phantom

        ds = load_phantom(n_train=96, n_valid=16, n_test=32, seed=0)
    else:
        from usecases.covid_ct.data.covid_semiseg import load_covid_semiseg

        ds = load_covid_semiseg(root=args.data_root, cache_dir=args.cache_dir)
    flops = forward_flops_per_image(build_tv_unet(n_filters=args.n_filters))
    ceilings = {
        p: gemm_ceiling(size=args.gemm_size, dtype=d)
        for p, d in (("float32", "float32"), ("mixed_bfloat16", "bfloat16"))
    }
    timings: dict = {
        "gemm_ceiling_float32": ceilings["float32"],
        "gemm_ceiling_float32_highest": gemm_ceiling(
            size=args.gemm_size, dtype="float32", highest=True
        ),
        "gemm_ceiling_bfloat16": ceilings["mixed_bfloat16"],
    }
    t0 = time.perf_counter()
    for precision in PRECISIONS:
        res = bench_precision(
            ds,
            precision=precision,
            n_filters=args.n_filters,
            epochs=args.epochs,
            repeats=args.repeats,
        )
        ceiling = ceilings[precision]["tflops"] * 1e3
        for name, t in res.items():
            if isinstance(t, dict) and "images_per_s" in t:
                factor = TRAIN_FACTOR if name == "train_step" else 1
                t["gflops_per_s"] = t["images_per_s"] * flops * factor / 1e9
                t["efficiency_vs_gemm"] = t["gflops_per_s"] / ceiling
            timings[f"{name}_{precision}"] = t
    if args.colabfold_lengths:
        from usecases.bench.colabfold import fold_sweep

        timings.update(fold_sweep(lengths=args.colabfold_lengths, models=args.colabfold_models,
                                  recycles=args.colabfold_recycles))  # fmt: skip
    gpu = (device.get("backend_gpus") or ["cpu"])[0]
    record = ResultRecord(
        run_id=f"gpu-benchmark-{datetime.now(UTC):%Y%m%d-%H%M%S}",
        usecase="covid_ct",
        status="ok",
        started_at=started,
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        config={
            "benchmark": "usecases.bench.gpu (usecase-bench-gpu)",
            **{k: str(v) for k, v in vars(args).items()},
        },
        environment=capture_environment(),
        device=device,
        dataset=ds.identity(),
        metrics={
            "flops_per_image_forward": flops,
            "train_flops_factor": TRAIN_FACTOR,
            "n_filters": args.n_filters,
        },
        timings=timings,
        notes=[
            f"device: {gpu}",
            "Keras 3 on JAX; float32 convolutions use the backend's "
            "default precision (TF32 on NVIDIA Ampere and newer); float32 efficiencies are "
            "against gemm_ceiling_float32 at that same default precision, and "
            "gemm_ceiling_float32_highest gives true float32 for comparison",
            f"benchmark wall time {time.perf_counter() - t0:.0f} s",
            "anchor: the Galaxy notebook's Tesla T4 took 22-58 s per epoch of 1,309 images",
        ],
    )
    write_record(record, args.out / "record.json")
    _print_table(timings, gpu)
    return 0


def _print_table(timings: dict, device: str) -> None:
    print(f"\ncovid_ct hot paths on {device}")
    print(f"{'path':38s} {'median ms':>10s} {'images/s':>10s} {'GFLOP/s':>10s} {'eff.':>6s}")
    for name, t in timings.items():
        if not isinstance(t, dict):
            print(f"{name:38s} {t * 1e3:10.0f}")
        elif "images_per_s" in t:
            print(
                f"{name:38s} {t['median_s'] * 1e3:10.2f} {t['images_per_s']:10.1f} "
                f"{t['gflops_per_s']:10.0f} {t['efficiency_vs_gemm']:6.1%}"
            )
        elif "tflops" in t:
            print(f"{name:38s} {t['median_s'] * 1e3:10.2f} {'':10s} {t['tflops'] * 1e3:10.0f}")
        elif name.startswith("colabfold"):
            print(per_model_table({name: t})[0])
        elif name.startswith("epoch"):
            print(f"{name:38s} {t['median_s'] * 1e3:10.0f}")


if __name__ == "__main__":
    sys.exit(main())
