"""Numeric precision of a Keras run: the user's choice, or one picked per device where safe.

``choose_precision`` turns ``requested`` ("auto", "float32" or "mixed_bfloat16") into a Keras
dtype policy plus the reason, for the record. ``auto`` picks mixed_bfloat16 on NVIDIA GPUs of
compute capability 8.0 or newer (bf16 tensor cores: 2.06x float32 training images/s on an
H100, results/gpu/; weights and loss stay float32; our ci-scale seed study saw no sign of a
Dice loss, +0.020 with 95 % CI [-0.065, +0.104], results/cpu/). On CPUs it stays float32:
mixed_bfloat16 there is opt-in, because its speed-up is smaller than on GPUs and one pair of
ci-scale runs moved the Dice at 0.3 by +0.028 (docs/performance.md); the reason names the
CPU's bf16 flags when it has them.
"""

from __future__ import annotations

import os
from pathlib import Path

from usecases.errors import ConfigError
from usecases.measure.gpus import nvidia_smi_query

PRECISIONS = ("auto", "float32", "mixed_bfloat16")
CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")
MIN_GPU_CAPABILITY = 8.0


def choose_precision(*, requested: str, device: dict) -> dict:
    """The Keras dtype policy for this run and why.

    ``device`` is what ``resolve_device`` returned (``used``: "cpu" or "gpu", ``backend``).
    Returns ``{"requested", "policy", "reason"}``; ConfigError for an unknown ``requested``.
    """
    if requested not in PRECISIONS:
        raise ConfigError(f"usecase.precision={requested} is not one of {', '.join(PRECISIONS)}.")
    if requested != "auto":
        return {"requested": requested, "policy": requested, "reason": "set by the user"}
    if device.get("used") == "gpu":
        capability = gpu_compute_capability()
        if capability is not None and capability >= MIN_GPU_CAPABILITY:
            return _auto("mixed_bfloat16", f"GPU compute capability {capability} has bf16 units")
        return _auto("float32", f"GPU compute capability {capability} (< 8.0 or unknown)")
    flags = sorted(set(CPU_BF16_FLAGS) & cpu_flags())
    if not flags:
        return _auto("float32", "CPU without AMX-BF16 / AVX512-BF16")
    return _auto(
        "float32",
        f"CPU ({', '.join(flags)}): mixed_bfloat16 is opt-in on CPUs "
        "(usecase.precision=mixed_bfloat16)",
    )


def cpu_flags() -> set[str]:
    """The feature flags of the first CPU in /proc/cpuinfo (empty set where unreadable)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def gpu_compute_capability() -> float | None:
    """Compute capability of the GPU the run uses via nvidia-smi, e.g. 9.0 (None if unknown).

    All GPUs agreeing settle it. Otherwise it is the GPU that CUDA_VISIBLE_DEVICES names first:
    by UUID, or by index where CUDA_DEVICE_ORDER=PCI_BUS_ID makes CUDA count as nvidia-smi
    does (CUDA's default order is fastest first); without those it is unknown.
    """
    rows = nvidia_smi_query("index,uuid,compute_cap")
    if not rows:
        return None
    try:
        gpus = [(index, uuid, float(cap)) for index, uuid, cap in rows]
    except ValueError:
        return None
    capabilities = {cap for _, _, cap in gpus}
    if len(capabilities) == 1:
        return capabilities.pop()
    first = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
    by_index = os.environ.get("CUDA_DEVICE_ORDER") == "PCI_BUS_ID"
    for index, uuid, cap in gpus:
        if (first and first == uuid) or (by_index and first == index):
            return cap
    return None


def _auto(policy: str, reason: str) -> dict:
    return {"requested": "auto", "policy": policy, "reason": f"auto: {reason}"}
