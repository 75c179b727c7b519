"""What the run ran on: Python and library versions, CPU, GPU, git state, and the
environment variables that change kernels, precision or threads."""

from __future__ import annotations

import functools
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from usecases import paths
from usecases.measure.gpus import gpu_info

LIBRARIES = (
    "usecase-bench",
    "numpy",
    "keras",
    "tensorflow-cpu",
    "tensorflow",
    "jax",
    "jaxlib",
    "tf2onnx",
    "onnx",
    "onnxruntime",
    "hydra-core",
    "scikit-image",
    "scikit-learn",
    "h5py",
    "nibabel",
    "colabfold",
    "alphafold-colabfold",
    "dm-haiku",
    "torch",
    "onnxruntime-gpu",
    # the CUDA runtime and libraries a pip-installed framework loads (its build, unlike the
    # driver's newest CUDA that nvidia-smi reports in gpus[].cuda)
    "jax-cuda12-plugin",
    "jax-cuda13-plugin",
    "nvidia-cuda-runtime-cu12",
    "nvidia-cuda-runtime",
    "nvidia-cudnn-cu12",
    "nvidia-cudnn-cu13",
    "nvidia-cublas-cu12",
    "nvidia-cublas",
)

# Variables that change which kernels run, in what precision, on how many threads or on which
# device: a run with TF_ENABLE_ONEDNN_OPTS=0 or OMP_NUM_THREADS=1 measures something else.
VARIABLES = (
    "KERAS_BACKEND",
    "TF_ENABLE_ONEDNN_OPTS",
    "TF_NUM_INTEROP_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_XLA_FLAGS",
    "TF_DETERMINISTIC_OPS",
    "TF_CUDNN_DETERMINISTIC",
    "ONEDNN_MAX_CPU_ISA",
    "ONEDNN_DEFAULT_FPMATH_MODE",
    "ONEDNN_VERBOSE",
    "DNNL_MAX_CPU_ISA",
    "DNNL_DEFAULT_FPMATH_MODE",
    "OMP_NUM_THREADS",
    "KMP_AFFINITY",
    "KMP_BLOCKTIME",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "XLA_FLAGS",
    "JAX_PLATFORMS",
    "JAX_DEFAULT_MATMUL_PRECISION",
    "JAX_ENABLE_X64",
    "XLA_PYTHON_CLIENT_PREALLOCATE",
    "XLA_PYTHON_CLIENT_MEM_FRACTION",
    "XLA_PYTHON_CLIENT_ALLOCATOR",
    "NVIDIA_TF32_OVERRIDE",
    "CUDA_VISIBLE_DEVICES",
)


def capture_environment(*, repo: Path | None = None) -> dict:
    """Python and library versions, CPU model and threads, GPUs, git commit and dirty flag, and
    each of ``VARIABLES`` that is set (name -> value; unset ones are left out).

    In a copy without git history the commit comes from ``USECASE_BENCH_GIT_COMMIT`` (set by
    scripts/device_env.sh from scripts/snapshot_commit.sh's snapshot; dirty unless
    ``USECASE_BENCH_GIT_DIRTY=0``), with ``git.source`` saying so.
    """
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "hostname": platform.node(),
        "libraries": _versions(),
        "cpu": {
            "model": _cpu_model(),
            "logical_cpus": os.cpu_count(),
            "usable_cpus": len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else None,
        },
        "gpus": gpu_info(),
        "git": dict(_git_state(repo or paths.repo())),
        "variables": {name: os.environ[name] for name in VARIABLES if name in os.environ},
    }


def _versions() -> dict[str, str]:
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


@functools.cache
def _git_state(repo: Path) -> dict:
    """The commit and dirty flag when this process first asked: the code it loaded. Later
    jobs of a multirun sweep share the process and its code, also after a commit meanwhile."""

    def git(*args: str) -> str | None:
        try:
            r = subprocess.run(
                ["git", "-C", str(repo), *args],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return r.stdout.strip() if r.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    if commit is None and os.environ.get("USECASE_BENCH_GIT_COMMIT"):
        # a copy without git history (scripts/device_env.sh checked it against the snapshot)
        return {
            "commit": os.environ["USECASE_BENCH_GIT_COMMIT"],
            "dirty": os.environ.get("USECASE_BENCH_GIT_DIRTY") != "0",
            "source": "scripts/snapshot_commit.sh, checked by scripts/device_env.sh",
        }
    return {"commit": commit, "dirty": bool(status) if status is not None else None}
