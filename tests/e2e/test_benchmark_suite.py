"""The benchmark suite as users run it: the JAX paths in their own process, and the compare
command that fails when a saved run was faster by more than the stated slowdown."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

PREDICT_ON_BATCH = ["-k", "test_inference and keras_predict_on_batch"]


def _child_env(**extra: str) -> dict[str, str]:
    """Environment of a child pytest session: never an xdist worker's (benchmarks stay on)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST_")}
    return {**env, **extra}


def _bench(*args: str, cache: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            "bash",
            "scripts/benchmark.sh",
            *args,
            "--",
            *PREDICT_ON_BATCH,
            "--bench-cache",
            str(cache),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=_child_env(PYTHON=sys.executable, **(env or {})),
        timeout=900,
        check=False,
    )


def _scaled_copy(src: Path, dst: Path, factor: float) -> Path:
    """The saved run with every timing statistic multiplied by ``factor``."""
    data = json.loads(src.read_text())
    for bench in data["benchmarks"]:
        for key in ("min", "max", "mean", "median", "q1", "q3", "iqr", "stddev", "total"):
            bench["stats"][key] *= factor
        bench["stats"]["ops"] /= factor
    dst.write_text(json.dumps(data))
    return dst


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory, prepared_cache) -> Path:
    """A saved smoke-width run of predict_on_batch (batch 1, 8), as scripts/benchmark.sh makes."""
    out = tmp_path_factory.mktemp("bench") / "base"
    res = _bench(
        "--widths", "smoke", "--seconds", "1", "--backends", "tensorflow", "--json", str(out),
        cache=prepared_cache,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "keras_predict_on_batch" in res.stdout and "GEMM ceilings: float32" in res.stdout
    assert "\ndata: " in res.stdout  # real slices or phantom: the summary says which
    saved = Path(f"{out}-tensorflow.json")
    data = json.loads(saved.read_text())
    assert {b["extra_info"]["path"] for b in data["benchmarks"]} == {"keras_predict_on_batch"}
    info = data["benchmarks"][0]["extra_info"]
    assert info["images_per_s"] > 0 and 0 < info["efficiency"] < 2
    assert info["flops_per_image"] > 0 and info["ceiling"].startswith("float32 GEMM")
    assert "gpus" in data["machine_info"] and data["machine_info"]["keras_backend"] == "tensorflow"
    return out


def test_compare_fails_when_the_saved_run_was_much_faster(saved_run, prepared_cache):
    fast = _scaled_copy(
        Path(f"{saved_run}-tensorflow.json"), saved_run.with_name("fast-tensorflow.json"), 0.1
    )
    res = _bench(
        "--widths", "smoke", "--seconds", "1", "--backends", "tensorflow",
        "--compare", str(fast).removesuffix("-tensorflow.json"), "--max-slowdown", "25",
        cache=prepared_cache,
    )  # fmt: skip
    assert res.returncode != 0
    assert "Performance has regressed" in res.stdout + res.stderr


def test_compare_passes_against_a_slower_saved_run_of_its_saved_backends(saved_run, prepared_cache):
    slow = _scaled_copy(
        Path(f"{saved_run}-tensorflow.json"), saved_run.with_name("slow-tensorflow.json"), 10.0
    )
    # no --backends: the saved run has tensorflow only, so only tensorflow runs
    res = _bench(
        "--widths", "smoke", "--seconds", "1",
        "--compare", str(slow).removesuffix("-tensorflow.json"), "--max-slowdown", "25",
        cache=prepared_cache,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "== tensorflow" in res.stdout and "== jax" not in res.stdout


def test_compare_without_a_saved_run_says_how_to_make_one(tmp_path, prepared_cache):
    res = _bench("--compare", str(tmp_path / "none"), cache=prepared_cache)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines()[-1].startswith("error: no saved run ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--max-slowdown", "12.5"), "--max-slowdown 12.5: give a whole percentage"),
        (("--backends", "torch"), "--backends: unknown backend torch"),
        (("--backends", ","), "--backends is empty"),
        (("--widths", "huge"), "--widths: unknown width huge"),
        (("--seconds", "0"), "--seconds 0: give a positive number"),
        (("--backends", "jax", "--compare", "SAVED"), "no saved run SAVED-jax.json"),
    ],
)
def test_a_bad_option_stops_with_one_line_before_anything_runs(
    tmp_path, prepared_cache, args, message
):
    saved = tmp_path / "saved"
    Path(f"{saved}-tensorflow.json").write_text("{}")
    args = tuple(str(saved) if a == "SAVED" else a for a in args)
    res = _bench(*args, cache=prepared_cache)
    assert res.returncode == 2 and res.stdout == ""
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith("error: ") and message.replace("SAVED", str(saved)) in line


def test_jax_paths_run_under_the_jax_backend(prepared_cache):
    pytest.importorskip("jax")
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/benchmarks", "-p", "no:cacheprovider", "-q",
         "-k", "jax", "--bench-cache", str(prepared_cache)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=_child_env(KERAS_BACKEND="jax"),
        timeout=900,
        check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout[-3000:]
    assert "6 passed" in res.stdout and "skipped" not in res.stdout
