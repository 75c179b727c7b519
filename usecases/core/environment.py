"""What the run ran on: Python and library versions, CPU, GPU, git state."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from usecases.core.devices import gpu_info

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
)


def capture_environment(*, repo: Path | None = None) -> dict:
    """Python and library versions, CPU model and threads, GPUs, git commit and dirty flag."""
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
        "git": _git_state(repo or Path(__file__).resolve().parents[2]),
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


def _git_state(repo: Path) -> dict:
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
    return {"commit": commit, "dirty": bool(status) if status is not None else None}
