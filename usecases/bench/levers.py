"""Levers of the TV-UNet's step on a GPU, each side by side against Keras's own fit and predict.

Keras on JAX, one process per setting (a setting is environment that JAX reads at start-up:
``JAX_DEFAULT_PRNG_IMPL``, ``XLA_FLAGS``); in each, per precision, on the same slices:
- training: ``fit`` (today's path: ``model.fit`` on numpy arrays, batch 32), ``fit_spe`` (the
  same with ``steps_per_execution``), ``scan`` (the training set kept on the device, one
  compiled call per epoch running every step in ``lax.scan``); images/s from the median epoch
  after the first (compilation), no validation;
- inference: ``predict_on_batch`` (today's path) and a jitted ``stateless_call`` on a device
  array, at each batch size; for bf16 also a model whose weights are bfloat16 (no float32
  weights cast every call, a bfloat16 output head);
- where the time goes: a JAX profiler trace of one ``fit`` epoch and one ``scan`` epoch, its
  device kernels summed by kind (``kernel_breakdown``).
Results go to ``OUT/levers.json`` after every path, so a call cut at its limit keeps what
finished; a path or setting that fails is recorded with its error line.

    python -m usecases.bench.levers --device gpu --out OUT
    python -m usecases.bench.levers --dataset phantom --n-filters 4 --device cpu --out /tmp/l
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

SETTINGS = {
    "default": {},
    "prng-rbg": {"JAX_DEFAULT_PRNG_IMPL": "rbg"},
    "xla-autotune-4": {"XLA_FLAGS": "--xla_gpu_autotune_level=4"},
    "no-triton-gemm": {"XLA_FLAGS": "--xla_gpu_enable_triton_gemm=false"},
}
KINDS = (  # kernel-name fragments -> kind, first match wins (lower case)
    ("convolution", ("conv", "xmma", "cudnn", "dgrad", "wgrad", "fprop", "implicit_gemm")),
    ("matmul", ("gemm", "cutlass", "dot", "matmul")),
    ("random numbers", ("rng", "random", "threefry", "philox")),
    ("reduction (BatchNorm moments, loss)", ("reduce", "reduction")),
    ("copies and transposes", ("memcpy", "memset", "copy", "transpose")),
    ("element-wise fusions", ("fusion", "loop", "input", "elementwise")),
)


def kernel_breakdown(trace_dir: Path, *, top: int = 15) -> dict:
    """Device time by kind of kernel in the JAX profiler trace under ``trace_dir`` (seconds).

    Takes the planes of accelerators (``/device:``) where there are any, else the host's XLA
    threads (a CPU run). Returns ``{"plane", "busy_s", "by_kind", "top_kernels"}``.
    """
    from jax.profiler import ProfileData

    files = sorted(Path(trace_dir).rglob("*.xplane.pb"))
    if not files:
        raise FileNotFoundError(f"no profiler trace under {trace_dir}")
    data = ProfileData.from_file(str(files[-1]))
    planes = [p for p in data.planes if p.name.startswith("/device:")]
    host = not planes
    if host:
        planes = [p for p in data.planes if p.name == "/host:CPU"]
    by_kernel: dict[str, float] = {}
    for plane in planes:
        for line in plane.lines:
            if host and not line.name.startswith("tf_XLA"):
                continue
            for event in line.events:
                by_kernel[event.name] = by_kernel.get(event.name, 0.0) + event.duration_ns / 1e9
    by_kind: dict[str, float] = {}
    for name, seconds in by_kernel.items():
        lower = name.lower()
        kind = next((k for k, parts in KINDS if any(p in lower for p in parts)), "other")
        by_kind[kind] = by_kind.get(kind, 0.0) + seconds
    ranked = sorted(by_kernel.items(), key=lambda kv: -kv[1])[:top]
    return {
        "plane": ", ".join(p.name for p in planes),
        "busy_s": sum(by_kernel.values()),
        "by_kind": dict(sorted(by_kind.items(), key=lambda kv: -kv[1])),
        "top_kernels": [{"name": n[:160], "s": s} for n, s in ranked],
    }


def main(argv: list[str] | None = None) -> int:
    """CLI: every setting in its own child process; ``OUT/levers.json`` holds them all."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", choices=("covid_semiseg", "phantom"), default="covid_semiseg")
    p.add_argument("--data-root", type=Path, default=Path("../shared/data/covid_semiseg"))
    p.add_argument("--cache-dir", type=Path, default=Path("/tmp/usecase-bench-cache"))
    p.add_argument("--device", choices=("cpu", "gpu"), default="gpu")
    p.add_argument("--n-filters", type=int, default=64)
    p.add_argument("--epochs", type=int, default=3, help="the first (compilation) is excluded")
    p.add_argument("--steps-per-execution", type=int, default=16)
    p.add_argument("--batches", type=int, nargs="+", default=[32, 128])
    p.add_argument("--gemm-size", type=int, default=8192)
    p.add_argument("--precisions", nargs="+", default=["mixed_bfloat16", "float32"],
                   choices=("float32", "mixed_bfloat16"))  # fmt: skip
    p.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    p.add_argument("--timeout", type=int, default=280, help="seconds per setting's process")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--child", choices=list(SETTINGS), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if min(args.n_filters, args.steps_per_execution, args.gemm_size, *args.batches) < 1 or (
        args.epochs < 2
    ):
        p.error("--n-filters, --steps-per-execution and --batches take >= 1, --epochs >= 2")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        print(f"error: cannot create --out {args.out} ({err.strerror})", file=sys.stderr)
        return 2
    if args.child:
        from usecases.bench.lever_paths import run_setting

        return run_setting(args)
    if args.dataset == "covid_semiseg" and not (args.data_root / "Dataset").is_dir():
        print(f"error: --data-root {args.data_root} holds no Dataset/ folder (COVID-SemiSeg); "
              "pass the folder, or --dataset phantom", file=sys.stderr)  # fmt: skip
        return 2
    results = args.out / "levers.json"
    summary: dict = {"settings": {}}
    for name in args.settings:
        env = {**os.environ, **SETTINGS[name]}
        cmd = [sys.executable, "-m", "usecases.bench.levers", *(argv or sys.argv[1:]),
               "--child", name]  # fmt: skip
        start = time.perf_counter()
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                                  timeout=args.timeout, check=False)  # fmt: skip
            status = f"exit {proc.returncode}"
            (args.out / f"{name}.log").write_text(proc.stdout + proc.stderr)
        except subprocess.TimeoutExpired as err:
            status = f"timed out after {args.timeout} s"
            out = [o.decode(errors="replace") if isinstance(o, bytes) else o or ""
                   for o in (err.stdout, err.stderr)]  # fmt: skip
            (args.out / f"{name}.log").write_text("".join(out) + f"\n{status}\n")
        part = args.out / f"setting-{name}.json"
        summary["settings"][name] = {
            "env": SETTINGS[name], "status": status, "wall_s": time.perf_counter() - start,
            "paths": json.loads(part.read_text()) if part.is_file() else {},
        }  # fmt: skip
        results.write_text(json.dumps(summary, indent=1))
        print(f"{name}: {status}", flush=True)
    from usecases.bench.lever_paths import table

    print("\n".join(table(summary)))
    failed = [n for n, e in summary["settings"].items() if e["status"] != "exit 0"]
    for name in failed:
        lines = (args.out / f"{name}.log").read_text(errors="replace").strip().splitlines()
        print(f"error: setting {name}: {summary['settings'][name]['status']}; "
              f"{lines[-1] if lines else 'no output'} ({args.out / f'{name}.log'})",
              file=sys.stderr)  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
