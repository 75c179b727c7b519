"""The one-call GPU measurements (gpu_measure.sh, usecases.bench.gpu) run end to end on CPU."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tarfile

import pytest

from tests.conftest import REPO
from usecases.records.record import load_record


def test_gpu_benchmark_runs_on_cpu_and_records_every_hot_path(tmp_path):
    with_colabfold = importlib.util.find_spec("colabfold") is not None
    cmd = [  # through the one-call wrapper, as on the GPU machine
        "bash",
        str(REPO / "scripts" / "gpu_measure.sh"),
        str(tmp_path),
        "--dataset",
        "phantom",
        "--n-filters",
        "4",
        "--device",
        "cpu",
        "--epochs",
        "2",
        "--repeats",
        "2",
        "--gemm-size",
        "256",
    ]
    if with_colabfold:
        cmd += ["--colabfold-lengths", "16", "--colabfold-recycles", "0"]
    env = {**os.environ, "PYTHON": sys.executable}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = load_record(tmp_path / "record.json")
    t = record.timings
    for precision in ("float32", "mixed_bfloat16"):
        assert t[f"train_step_{precision}"]["images_per_s"] > 0
        assert t[f"epoch_{precision}"]["n"] == 1
        for bs in (1, 8, 32):
            assert t[f"inference_batch{bs}_{precision}"]["efficiency_vs_gemm"] > 0
    assert t["gemm_ceiling_bfloat16"]["tflops"] > 0
    assert record.metrics["flops_per_image_forward"] == 100_532_224  # n=4, counted from layers
    assert record.device["used"] == "cpu"
    if with_colabfold:
        fold, warm = t["colabfold_fold_16"], t["colabfold_fold_16_2models_warm"]
        assert fold["first_model_s"] > fold["steady_model"]["median_s"] > 0
        assert fold["compilation_cache"]["state"] == "cold"  # a fresh cache per benchmark
        assert warm["compilation_cache"]["state"] == "warm" and warm["num_models"] == 2
        assert warm["first_model_compile_s"] < fold["first_model_compile_s"]
    assert "covid_ct hot paths on cpu" in proc.stdout


def _script():
    from usecases.bench import gpu

    return gpu


def test_a_bad_argument_is_refused_before_anything_runs(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "usecases.bench.gpu", "--epochs", "1",
         "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].endswith("--epochs must be at least 2")
    assert not (tmp_path / "out").exists()


def test_an_internal_failure_is_one_line_with_the_traceback_in_a_file(
    tmp_path, monkeypatch, capsys
):
    script = _script()

    def broken(args):
        raise RuntimeError("cuDNN exploded")

    monkeypatch.setattr(script, "configure_process", lambda **kw: None)
    monkeypatch.setattr(script, "_run", broken)
    assert script.main(["--device", "cpu", "--out", str(tmp_path)]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "internal failure (RuntimeError: cuDNN exploded)" in line
    assert "Traceback" in (tmp_path / "error.log").read_text()


def test_the_carried_data_file_is_unpacked_once_and_used(tmp_path):
    tree = tmp_path / "src" / "covid_semiseg" / "Dataset"
    tree.mkdir(parents=True)
    (tree / "slice.txt").write_text("a slice")
    tarball = tmp_path / "covid_semiseg.tar"
    with tarfile.open(tarball, "w") as tf:
        tf.add(tmp_path / "src" / "covid_semiseg", arcname="covid_semiseg")
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "DEVICE_DATA_TAR": str(tarball),
        "DEVICE_DATA_DIR": str(tmp_path / "unpacked"),
    }
    out = tmp_path / "out"
    show = f'set -e; . scripts/device_env.sh {out}; echo "$DATA"; cat "$DATA/Dataset/slice.txt"'

    def source():
        return subprocess.run(
            ["bash", "-c", show], cwd=REPO, env=env, capture_output=True, text=True, check=False
        )

    proc = source()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(tmp_path / "unpacked" / "covid_semiseg"), "a", "slice"]
    assert sorted(p.name for p in (tmp_path / "unpacked").iterdir()) == ["covid_semiseg"]
    tarball.write_bytes(b"not a tar")  # damaged now: the second call must not unpack again
    proc = source()
    assert proc.returncode == 0 and proc.stdout.split()[1:] == ["a", "slice"], proc.stderr
    env["DEVICE_DATA_DIR"] = str(tmp_path / "elsewhere")  # nothing unpacked there yet
    proc = source()
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: ") and "did not unpack" in line
    assert list((tmp_path / "elsewhere").iterdir()) == []  # no partial copy left


def test_the_lever_sweep_runs_on_cpu_and_keeps_each_settings_paths(tmp_path):
    """usecases.bench.levers end to end at a tiny width on CPU: today's fit against the
    steps_per_execution and device-resident scan paths, the inference paths, a profile whose
    kernels add up, and a second setting in its own process (its result or its error line)."""
    cmd = [sys.executable, "-m", "usecases.bench.levers", "--dataset", "phantom",
           "--n-filters", "2", "--device", "cpu", "--epochs", "2", "--batches", "4",
           "--gemm-size", "128", "--precisions", "mixed_bfloat16",
           "--settings", "default", "prng-rbg", "--timeout", "800",
           "--out", str(tmp_path)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1500, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    import json

    summary = json.loads((tmp_path / "levers.json").read_text())["settings"]
    assert summary["default"]["status"] == "exit 0", (tmp_path / "default.log").read_text()[-3000:]
    paths = summary["default"]["paths"]
    for name in ("fit", "fit_spe", "scan"):
        row = paths[f"train_{name}_mixed_bfloat16"]
        assert row["images_per_s"] > 0 and row["efficiency_vs_gemm"] > 0, row
    batches = paths["inference_mixed_bfloat16"]["batches"]
    jit = "batch 4 jit on device"
    assert set(batches) == {"batch 4 predict_on_batch", jit, f"{jit} bfloat16 weights"}
    profile = paths["profile"]
    for name in ("fit", "scan"):
        assert profile[name]["busy_s"] > 0 and profile[name]["top_kernels"], profile[name]
        assert sum(profile[name]["by_kind"].values()) == pytest.approx(profile[name]["busy_s"])
    rbg = summary["prng-rbg"]["paths"]["train_scan_mixed_bfloat16"]
    assert rbg.get("images_per_s", 0) > 0 or rbg["error"]  # measured, or why not, in one line
    assert "vs today" in proc.stdout and "prng-rbg: exit 0" in proc.stdout
