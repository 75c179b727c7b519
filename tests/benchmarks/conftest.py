"""Benchmark-suite plumbing: widths, data, GEMM ceilings, machine info and the summary table.

``--widths smoke,paper`` picks the TV-UNet widths (n from conf/scale/smoke.yaml and
paper.yaml); the default, smoke, keeps the plain test run short. The options themselves are
declared in tests/conftest.py, so they work from any pytest invocation. With ``--benchmark-enable``
each benchmark stores images/s, GFLOP/s and its efficiency against the GEMM ceiling of its
precision (measured once per session) in ``extra_info``, and the terminal summary prints a
table with every path's speed-up over the reference way measured in the same run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WIDTHS = {
    name: yaml.safe_load((REPO / "conf" / "scale" / f"{name}.yaml").read_text())["n_filters"]
    for name in ("smoke", "ci", "paper")
}
BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")


def pytest_generate_tests(metafunc):
    if "width" in metafunc.fixturenames:
        chosen = [w.strip() for w in metafunc.config.getoption("--widths").split(",")]
        unknown = sorted(set(chosen) - set(WIDTHS))
        if unknown:
            raise pytest.UsageError(f"--widths: unknown {unknown}; use smoke, ci and/or paper")
        metafunc.parametrize("width", chosen)


def pytest_benchmark_update_machine_info(config, machine_info):
    """Add GPUs (name, driver, CUDA), bf16/AMX CPU flags, usable CPUs and framework versions."""
    from usecases.measure.environment import capture_environment
    from usecases.measure.gpus import gpu_info
    from usecases.measure.precision import cpu_flags

    env = capture_environment(repo=REPO)
    machine_info["gpus"] = gpu_info()
    machine_info["cpu_model"] = env["cpu"]["model"]
    machine_info["usable_cpus"] = env["cpu"]["usable_cpus"]
    machine_info["cpu_flags"] = sorted(
        cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8"}
    )
    machine_info["keras_backend"] = BACKEND
    machine_info["versions"] = env["libraries"]


@dataclass
class Row:
    width: str
    path: object  # usecases.covid_ct.hot_paths.HotPath
    batch_size: int
    info: dict


@dataclass
class Collected:
    rows: list[Row] = field(default_factory=list)
    ceilings: dict = field(default_factory=dict)


_COLLECTED = Collected()


@pytest.fixture(scope="session")
def collected() -> Collected:
    """Where benchmarks leave their numbers for the summary table."""
    return _COLLECTED


@pytest.fixture(scope="session")
def ceiling(collected):
    """``ceiling(precision, cpu=False)`` -> the GEMM ceiling dict, measured once per session.

    ``cpu`` asks for the CPU's ceiling where a GPU is visible (onnxruntime runs on the CPU).
    """
    from usecases.measure.ceilings import gemm_ceiling
    from usecases.runner.devices import resolve_device

    on_gpu = resolve_device(requested="auto", backend=BACKEND)["used"] == "gpu"

    def get(precision: str, *, cpu: bool = False) -> dict:
        cpu = cpu and on_gpu and precision != "int8"
        name = f"{precision} (CPU)" if cpu else precision
        if name not in collected.ceilings:
            collected.ceilings[name] = gemm_ceiling(precision, backend=BACKEND, cpu=cpu)
        return collected.ceilings[name]

    return get


@pytest.fixture(scope="session")
def bench_data(request, prepared_cache):
    """Slices to run on: the real COVID-SemiSeg arrays when ../shared has them, else phantom.

    Returns ``(dataset, source)``; the source is written into every benchmark's extra_info.
    """
    from tests.conftest import COVID_ROOT

    if (COVID_ROOT / "Dataset").is_dir():
        from usecases.covid_ct.data.covid_semiseg import load_covid_semiseg

        cache = Path(request.config.getoption("--bench-cache") or prepared_cache)
        ds = load_covid_semiseg(root=COVID_ROOT, cache_dir=cache / "prepared", size=128)
        return ds, "covid_semiseg (real slices)"
    from usecases.covid_ct.data.phantom import load_phantom

    ds = load_phantom(n_train=64, n_valid=32, n_test=16, size=128, seed=0)
    return ds, "phantom (synthetic: ../shared/data absent)"


def pytest_terminal_summary(terminalreporter, config):
    rows = [r for r in _COLLECTED.rows if "images_per_s" in r.info]
    if not rows:
        return
    from tests.benchmarks.summary import summary_lines

    terminalreporter.section("covid_ct hot paths: speed and efficiency")
    for line in summary_lines(rows, _COLLECTED.ceilings):
        terminalreporter.write_line(line)
