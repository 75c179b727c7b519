"""Device and Keras-backend selection, fixed before TensorFlow, JAX or Keras are imported.

``configure_process`` only sets environment variables, so it must run first; ``resolve_device``
runs after the backend is imported and reports what the run actually used.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys

from usecases.errors import ConfigError

DEVICES = ("auto", "cpu", "gpu")
BACKENDS = ("tensorflow", "jax")
_FRAMEWORKS = ("keras", "tensorflow", "jax")


def configure_process(*, device: str, backend: str) -> None:
    """Fix the Keras backend and the visible devices in the environment (before imports).

    ``device="cpu"`` hides every GPU from TensorFlow and JAX; ``device="gpu"`` fails at once
    (ConfigError, exit 2) when this machine shows no NVIDIA device at all.
    """
    if device not in DEVICES:
        raise ConfigError(f"device={device} is not one of {', '.join(DEVICES)}.")
    if backend not in BACKENDS:
        raise ConfigError(f"backend={backend} is not one of {', '.join(BACKENDS)}.")
    loaded = [m for m in _FRAMEWORKS if m in sys.modules]
    if loaded and os.environ.get("KERAS_BACKEND", "tensorflow") != backend:
        raise ConfigError(
            f"{', '.join(loaded)} already imported with another backend; start a new process."
        )
    os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
        os.environ["JAX_PLATFORMS"] = "cpu"
    if device == "gpu" and not nvidia_present():
        raise ConfigError(
            "device=gpu but this machine has no NVIDIA GPU (no /dev/nvidia* device); "
            "use device=cpu or device=auto, or run on a GPU node."
        )


def nvidia_present() -> bool:
    """True when an NVIDIA device node or nvidia-smi exists (cheap, no framework import)."""
    return bool(glob.glob("/dev/nvidia[0-9]*")) or shutil.which("nvidia-smi") is not None


def resolve_device(*, requested: str, backend: str) -> dict:
    """Ask the imported backend which accelerators it sees; return what the run uses.

    Raises ConfigError (exit 2) for ``requested="gpu"`` when the backend sees no GPU.
    """
    gpus = _backend_gpus(backend)
    if requested == "gpu" and not gpus:
        raise ConfigError(
            f"device=gpu but the {backend} backend sees no usable GPU (driver or CUDA build "
            "missing?); use device=cpu or device=auto."
        )
    used = "gpu" if gpus and requested != "cpu" else "cpu"
    return {"requested": requested, "used": used, "backend": backend, "backend_gpus": gpus}


def _backend_gpus(backend: str) -> list[str]:
    if backend == "jax":
        import jax

        return [str(d.device_kind) for d in jax.devices() if d.platform == "gpu"]
    import tensorflow as tf

    return [d.name for d in tf.config.list_physical_devices("GPU")]


def gpu_info() -> list[dict]:
    """Name, driver, memory and CUDA version of each NVIDIA GPU via nvidia-smi ([] if none).

    ``cuda`` is the CUDA version nvidia-smi reports: the newest the driver supports, which
    bounds (and is not always equal to) the CUDA runtime the framework was built with; the
    pip-installed runtime, cuDNN and cuBLAS are among the record's libraries (environment.py).
    """
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
        header = subprocess.run(
            ["nvidia-smi"], capture_output=True, text=True, timeout=20, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    cuda = next(
        (
            w
            for line in header.splitlines()
            if "CUDA Version" in line
            for w in [line.split("CUDA Version:")[1].split()[0]]
        ),
        None,
    )
    gpus = []
    for line in out.strip().splitlines():
        name, driver, memory = (s.strip() for s in line.split(","))
        gpus.append({"name": name, "driver": driver, "memory": memory, "cuda": cuda})
    return gpus
