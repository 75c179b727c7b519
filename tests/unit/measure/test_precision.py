"""Precision choice: auto picks bfloat16 on bf16 GPUs, float32 on CPUs; the user can override."""

from __future__ import annotations

import pytest

from usecases.errors import ConfigError
from usecases.measure import gpus, precision
from usecases.measure.precision import choose_precision

CPU_TF = {"used": "cpu", "backend": "tensorflow"}


@pytest.fixture
def cpu(monkeypatch):
    def set_flags(*flags: str) -> None:
        monkeypatch.setattr(precision, "cpu_flags", lambda: {"fma", "avx2", *flags})

    return set_flags


@pytest.mark.parametrize("flag", ["avx512_bf16", "amx_bf16"])
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_auto_keeps_float32_on_cpus_and_names_their_bf16_flags(cpu, flag, backend):
    cpu(flag)
    choice = choose_precision(requested="auto", device={"used": "cpu", "backend": backend})
    assert choice["policy"] == "float32" and choice["requested"] == "auto"
    assert flag in choice["reason"] and "usecase.precision=mixed_bfloat16" in choice["reason"]


def test_auto_keeps_float32_on_cpus_without_bf16(cpu):
    cpu("avx512f")
    choice = choose_precision(requested="auto", device=CPU_TF)
    assert choice["policy"] == "float32" and "without" in choice["reason"]


@pytest.mark.parametrize(("capability", "policy"), [(9.0, "mixed_bfloat16"), (7.5, "float32")])
def test_auto_on_gpu_follows_compute_capability(monkeypatch, capability, policy):
    monkeypatch.setattr(precision, "gpu_compute_capability", lambda: capability)
    choice = choose_precision(requested="auto", device={"used": "gpu", "backend": "jax"})
    assert choice["policy"] == policy and str(capability) in choice["reason"]


@pytest.mark.parametrize("requested", ["float32", "mixed_bfloat16"])
def test_user_choice_wins_over_the_hardware(cpu, requested):
    cpu("avx512_bf16")
    choice = choose_precision(requested=requested, device=CPU_TF)
    assert choice == {"requested": requested, "policy": requested, "reason": "set by the user"}


def test_unknown_precision_is_a_config_error():
    with pytest.raises(ConfigError, match=r"usecase\.precision=float16 is not one of"):
        choose_precision(requested="float16", device=CPU_TF)


SMI = "0, GPU-aaaa, 8.6\n1, GPU-bbbb, 9.0\n"


@pytest.mark.parametrize(
    ("table", "env", "capability"),
    [
        ("0, GPU-aaaa, 9.0\n1, GPU-bbbb, 9.0\n", {}, 9.0),  # all agree
        (SMI, {"CUDA_VISIBLE_DEVICES": "GPU-bbbb,GPU-aaaa"}, 9.0),  # by UUID
        (SMI, {"CUDA_VISIBLE_DEVICES": "1", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}, 9.0),
        (SMI, {"CUDA_VISIBLE_DEVICES": "1"}, None),  # CUDA's own order: cannot tell
        (SMI, {}, None),
        ("garbage\n", {}, None),
    ],
)
def test_compute_capability_is_that_of_the_gpu_cuda_uses_or_unknown(
    monkeypatch, table, env, capability
):
    import subprocess

    def fake_run(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 0, stdout=table, stderr="")

    for name in ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(gpus.shutil, "which", lambda name: "/usr/bin/nvidia-smi")
    monkeypatch.setattr(gpus.subprocess, "run", fake_run)
    assert precision.gpu_compute_capability() == capability
