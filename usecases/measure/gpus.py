"""What nvidia-smi says about this machine's NVIDIA GPUs (no framework import).

Records name the card, driver, memory and the driver's CUDA version (``gpu_info``); the
precision choice reads compute capabilities through the same query (``nvidia_smi_query``).
"""

from __future__ import annotations

import shutil
import subprocess


def gpu_info() -> list[dict]:
    """Name, driver, memory and CUDA version of each NVIDIA GPU via nvidia-smi ([] if none).

    ``cuda`` is the CUDA version nvidia-smi reports: the newest the driver supports, which
    bounds (and is not always equal to) the CUDA runtime the framework was built with; the
    pip-installed runtime, cuDNN and cuBLAS are among the record's libraries (environment.py).
    """
    rows = nvidia_smi_query("name,driver_version,memory.total")
    if not rows:
        return []
    try:
        header = subprocess.run(
            ["nvidia-smi"], capture_output=True, text=True, timeout=20, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        header = ""
    cuda = next(
        (
            w
            for line in header.splitlines()
            if "CUDA Version" in line
            for w in [line.split("CUDA Version:")[1].split()[0]]
        ),
        None,
    )
    return [
        {"name": name, "driver": driver, "memory": memory, "cuda": cuda}
        for name, driver, memory in rows
    ]


def nvidia_smi_query(fields: str) -> list[list[str]] | None:
    """``nvidia-smi --query-gpu=FIELDS`` as one list of stripped values per GPU.

    None when nvidia-smi is absent or fails (no NVIDIA GPU, driver trouble).
    """
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(
            ["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return [[v.strip() for v in line.split(",")] for line in out.strip().splitlines()]
