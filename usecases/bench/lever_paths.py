"""The paths of ``usecases.bench.levers``, run inside one setting's process (Keras on JAX).

``run_setting`` times today's Keras paths and the faster ones on the same slices and writes
``OUT/setting-NAME.json`` after every path; ``table`` prints all settings side by side.
"""

from __future__ import annotations

import json
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

BATCH = 32


def run_setting(args) -> int:
    """Every path of setting ``args.child``; 0 when the file is written (failures inside)."""
    from usecases.runner.devices import configure_process

    configure_process(device=args.device, backend="jax")
    ds = _data(args)
    out = args.out / f"setting-{args.child}.json"
    results: dict = {}

    def attempt(key: str, fn) -> None:
        try:
            results[key] = fn()
        except Exception as err:  # a lever that does not work here is a result too
            line = " ".join(f"{type(err).__name__}: {err}".split())[:400]
            results[key] = {"error": line, "traceback": traceback.format_exc()[-3000:]}
        out.write_text(json.dumps(results, indent=1, default=str))

    from usecases.bench.gpu import gemm_ceiling

    for dtype in ("float32", "bfloat16"):
        attempt(f"gemm_ceiling_{dtype}", lambda d=dtype: gemm_ceiling(size=args.gemm_size, dtype=d))
    train = ("fit", "fit_spe", "scan") if args.child == "default" else ("scan",)
    for precision in args.precisions:
        for name in train:
            attempt(f"train_{name}_{precision}", lambda n=name, p=precision: _train(n, p, ds, args))
        if args.child == "default":
            attempt(f"inference_{precision}", lambda p=precision: _inference(p, ds, args))
    if args.child == "default":
        attempt("profile", lambda: _profile(args.precisions[0], ds, args))
    return 0


def table(summary: dict) -> list[str]:
    """One line per path and setting: images/s, ratio to today's path, efficiency."""
    default = summary["settings"].get("default", {}).get("paths", {})
    lines = [f"{'setting / path':52s} {'images/s':>10s} {'vs today':>9s} {'eff.':>6s}"]
    for setting, entry in summary["settings"].items():
        lines.append(f"{setting}: {entry['status']}")
        for key, value in entry["paths"].items():
            rows = value.get("batches", {"": value}) if isinstance(value, dict) else {}
            for batch, row in rows.items():
                if "images_per_s" not in row:
                    if "error" in row:
                        lines.append(f"  {key:50s} error: {row['error'][:80]}")
                    continue
                ref = _today(default, key, batch)
                ratio = f"{row['images_per_s'] / ref:.2f}x" if ref else ""
                eff = row.get("efficiency_vs_gemm")
                label = f"{key} {batch}".strip()
                lines.append(f"  {label:50s} {row['images_per_s']:10.1f} {ratio:>9s} "
                             f"{'' if eff is None else f'{eff:.0%}':>6s}")  # fmt: skip
    return lines


def _today(default: dict, key: str, batch: str) -> float | None:
    """images/s of today's path for the row ``key``: ``fit`` of the same precision for a
    training row, ``predict_on_batch`` of the same batch size for an inference row."""
    precision = "mixed_bfloat16" if key.endswith("mixed_bfloat16") else "float32"
    if key.startswith("train_"):
        return default.get(f"train_fit_{precision}", {}).get("images_per_s")
    rows = default.get(key, {}).get("batches", {})
    size = batch.split()[1] if batch.startswith("batch ") else ""
    return rows.get(f"batch {size} predict_on_batch", {}).get("images_per_s")


def _data(args):
    if args.dataset == "phantom":
        from usecases.covid_ct.data.phantom import load_phantom

        return load_phantom(n_train=96, n_valid=16, n_test=32, seed=0)
    from usecases.covid_ct.data.covid_semiseg import load_covid_semiseg

    return load_covid_semiseg(root=args.data_root, cache_dir=args.cache_dir)


def _model(precision: str, n_filters: int):
    import keras

    from usecases.covid_ct.model import build_tv_unet

    keras.mixed_precision.set_global_policy(precision)
    keras.utils.set_random_seed(42)
    try:
        return build_tv_unet(n_filters=n_filters)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def _rate(epoch_s: list[float], images: int, *, flops: int, ceiling: float | None) -> dict:
    from usecases.measure.timing import summarize

    stats = summarize(epoch_s[1:])  # the first epoch compiles
    rate = images / stats["median_s"]
    out = {**stats, "images_per_epoch": images, "images_per_s": rate,
           "gflops_per_s": rate * flops / 1e9}  # fmt: skip
    if ceiling:
        out["efficiency_vs_gemm"] = out["gflops_per_s"] / ceiling
    return out


def _ceiling(args, precision: str) -> float | None:
    """GFLOP/s of the GEMM ceiling of ``precision`` already written by this setting."""
    dtype = "bfloat16" if "bfloat16" in precision else "float32"
    part = args.out / f"setting-{args.child}.json"
    data = json.loads(part.read_text()) if part.is_file() else {}
    tflops = data.get(f"gemm_ceiling_{dtype}", {}).get("tflops")
    return tflops * 1e3 if tflops else None


def _train(name: str, precision: str, ds, args) -> dict:
    """Epoch times of one training path; images/s from the median epoch after the first."""
    import keras

    from usecases.covid_ct.flops import TRAIN_FACTOR, forward_flops_per_image
    from usecases.covid_ct.model import tv_bce_loss

    model = _model(precision, args.n_filters)
    flops = forward_flops_per_image(model) * TRAIN_FACTOR
    ceiling = _ceiling(args, precision)
    if name == "scan":
        epochs, images = _scan_epochs(model, ds, epochs=args.epochs)
        return {**_rate(epochs, images, flops=flops, ceiling=ceiling),
                "path": "training set on the device, one jitted lax.scan per epoch, then the "
                        "validation loss in one jitted call"}  # fmt: skip
    spe = args.steps_per_execution if name == "fit_spe" else 1
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=tv_bce_loss, steps_per_execution=spe)
    times: list[float] = []
    timer = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda e, logs: times.append(-time.perf_counter()),
        on_epoch_end=lambda e, logs: times.__setitem__(-1, times[-1] + time.perf_counter()),
    )
    model.fit(ds.x_train, ds.y_train, batch_size=BATCH, epochs=args.epochs, verbose=0,
              callbacks=[timer], validation_data=(ds.x_valid, ds.y_valid))  # fmt: skip
    return {
        **_rate(times, len(ds.x_train), flops=flops, ceiling=ceiling),
        "path": f"model.fit on numpy arrays (with validation), steps_per_execution={spe}",
    }


def _scan_epochs(model, ds, *, epochs: int, trace: Path | None = None):
    """(epoch seconds, images per epoch) of the device-resident lax.scan loop (Adam 1e-3), each
    epoch ending with the validation loss; the first call (compilation) is left out."""
    import jax
    import jax.numpy as jnp
    import keras

    from usecases.covid_ct.model import tv_bce_loss

    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(model.trainable_variables)
    state = ([v.value for v in model.trainable_variables],
             [v.value for v in model.non_trainable_variables],
             [v.value for v in optimizer.variables])  # fmt: skip

    def loss_fn(tv, ntv, x, y):
        pred, ntv = model.stateless_call(tv, ntv, x, training=True)
        return tv_bce_loss(y, pred), ntv

    grad = jax.value_and_grad(loss_fn, has_aux=True)

    @jax.jit
    def epoch(state, xs, ys, order):
        def step(s, rows):
            tv, ntv, ov = s
            (loss, ntv), grads = grad(tv, ntv, jnp.take(xs, rows, 0), jnp.take(ys, rows, 0))
            tv, ov = optimizer.stateless_apply(ov, grads, tv)
            return (tv, ntv, ov), loss

        return jax.lax.scan(step, state, order)

    @jax.jit
    def validate(tv, ntv, x, y):
        return tv_bce_loss(y, model.stateless_call(tv, ntv, x, training=False)[0])

    xs, ys = jax.device_put(ds.x_train), jax.device_put(ds.y_train.astype(np.float32))
    xv, yv = jax.device_put(ds.x_valid), jax.device_put(ds.y_valid.astype(np.float32))
    steps = len(ds.x_train) // BATCH
    times = []
    for e in range(epochs + 1):  # one more: the second call may trace again (output types)
        order = np.random.default_rng([42, e]).permutation(len(ds.x_train))[: steps * BATCH]
        order = jax.device_put(order.reshape(steps, BATCH).astype(np.int32))
        start = time.perf_counter()
        if trace is not None and e == epochs:
            with jax.profiler.trace(str(trace)):
                state, losses = epoch(state, xs, ys, order)
                validate(state[0], state[1], xv, yv).block_until_ready()
        else:
            state, losses = epoch(state, xs, ys, order)
            validate(state[0], state[1], xv, yv).block_until_ready()
        times.append(time.perf_counter() - start)
        if not np.isfinite(np.asarray(losses)).all():
            raise FloatingPointError(f"non-finite loss in epoch {e + 1} of the scan path")
    return times[1:], steps * BATCH


def _inference(precision: str, ds, args) -> dict:
    """predict_on_batch (host arrays in and out) against a jitted stateless_call on a device
    array, per batch size; for bf16 also a model whose weights are bfloat16."""
    import jax

    from usecases.covid_ct.flops import forward_flops_per_image
    from usecases.measure.timing import summarize, time_call

    model = _model(precision, args.n_filters)
    flops, ceiling = forward_flops_per_image(model), _ceiling(args, precision)
    models = {"": model}
    if precision == "mixed_bfloat16":
        pure = _model("bfloat16", args.n_filters)
        pure.set_weights(model.get_weights())
        models[" bfloat16 weights"] = pure
    rows: dict = {}
    for bs in args.batches:
        x = np.ascontiguousarray(np.resize(ds.x_test, (bs, *ds.x_test.shape[1:])), np.float32)
        calls = {
            f"batch {bs} predict_on_batch": (lambda x=x: model.predict_on_batch(x), np.asarray)
        }
        for label, m in models.items():
            # copies: Keras's own predict function may donate the variables' buffers
            tv = [jax.device_put(np.asarray(v.value)) for v in m.trainable_variables]
            ntv = [jax.device_put(np.asarray(v.value)) for v in m.non_trainable_variables]
            fn = jax.jit(lambda tv, ntv, x, m=m: m.stateless_call(tv, ntv, x, training=False)[0])
            xd = jax.device_put(x)
            call = lambda fn=fn, tv=tv, ntv=ntv, xd=xd: fn(tv, ntv, xd)  # noqa: E731
            calls[f"batch {bs} jit on device{label}"] = (call, lambda o: o.block_until_ready())
        for key, (call, sync) in calls.items():
            stats = summarize(time_call(call, repeats=20, warmup=3, sync=sync))
            rate = bs / stats["median_s"]
            rows[key] = {**stats, "images_per_s": rate, "gflops_per_s": rate * flops / 1e9}
            if ceiling:
                rows[key]["efficiency_vs_gemm"] = rows[key]["gflops_per_s"] / ceiling
    return {"batches": rows, "note": "jit paths keep input and output on the device"}


def _profile(precision: str, ds, args) -> dict:
    """Kernel time by kind in one traced epoch of ``fit`` and of ``scan``, beside its wall time."""
    import jax
    import keras

    from usecases.covid_ct.model import tv_bce_loss

    out = {}
    with tempfile.TemporaryDirectory(prefix="levers-trace-") as tmp:
        model = _model(precision, args.n_filters)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=tv_bce_loss)
        model.fit(ds.x_train, ds.y_train, batch_size=BATCH, epochs=1, verbose=0)  # compile
        start = time.perf_counter()
        with jax.profiler.trace(str(Path(tmp) / "fit")):
            model.fit(ds.x_train, ds.y_train, batch_size=BATCH, epochs=1, verbose=0)
        out["fit"] = {"wall_s": time.perf_counter() - start}
        times, _ = _scan_epochs(_model(precision, args.n_filters), ds, epochs=2,
                                trace=Path(tmp) / "scan")  # fmt: skip
        out["scan"] = {"wall_s": times[-1]}
        from usecases.bench.levers import kernel_breakdown

        for name in ("fit", "scan"):
            out[name].update(kernel_breakdown(Path(tmp) / name))
            out[name]["idle_s"] = max(0.0, out[name]["wall_s"] - out[name]["busy_s"])
    out["precision"] = precision
    return out
