"""Device and Keras-backend selection, fixed before TensorFlow, JAX or Keras are imported.

``configure_process`` only sets environment variables, so it must run first; ``resolve_device``
runs after the backend is imported and reports what the run actually used.
"""

from __future__ import annotations

import glob
import os
import shutil
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
