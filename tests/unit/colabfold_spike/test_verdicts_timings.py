"""colabfold_spike records without a fold: verdicts against the paper, timings, the cache."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, needs_module
from usecases.colabfold_spike.outputs import FoldResult, ModelResult
from usecases.colabfold_spike.weights import JAX_DEFAULT_ENV
from usecases.records.references import compare

GALAXY_SETTINGS = {
    "weights": "alphafold",
    "sequence": "galaxy_spike_302",
    "msa_mode": "mmseqs2",
    "model_type": "alphafold2_ptm",
    "num_recycles": 3,
    "num_models": 5,
    "use_templates": False,
}


# ---- verdicts and timings ------------------------------------------------------------------


def _metrics(best: float, mean: float) -> dict:
    return {"mean_plddt_best": best, "mean_plddt_mean": mean, "model_1": {"mean_plddt": 81.0}}


def _verdicts(refs: list[dict]) -> dict[str, str]:
    return {r["reference_id"]: r["verdict"] for r in refs}


def test_galaxy_settings_get_pass_or_fail_on_best_and_mean_only():
    refs = compare(
        usecase="colabfold_spike",
        metrics=_metrics(82.0, 80.0),
        settings=GALAXY_SETTINGS,
        synthetic=False,
    )
    verdicts = _verdicts(refs)
    assert verdicts["colabfold_galaxy_mean_plddt_best"] == "pass"  # |82.0 - 83.8| <= 3
    assert verdicts["colabfold_galaxy_mean_plddt_mean"] == "pass"  # |80.0 - 82.44| <= 3
    judged = {k for k, v in verdicts.items() if v != "not comparable"}
    assert judged == {"colabfold_galaxy_mean_plddt_best", "colabfold_galaxy_mean_plddt_mean"}
    low = compare(
        usecase="colabfold_spike",
        metrics=_metrics(70.0, 79.0),
        settings=GALAXY_SETTINGS,
        synthetic=False,
    )
    assert _verdicts(low)["colabfold_galaxy_mean_plddt_best"] == "fail"
    assert _verdicts(low)["colabfold_galaxy_mean_plddt_mean"] == "fail"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"msa_mode": "single_sequence"}, "msa_mode is single_sequence"),
        ({"num_recycles": 1}, "num_recycles is 1"),
        ({"sequence": "other"}, "sequence is other"),
        ({"weights": "random"}, "weights is random"),
    ],
)
def test_other_settings_are_not_comparable_with_the_reason(change, reason):
    refs = compare(
        usecase="colabfold_spike",
        metrics=_metrics(83.8, 82.44),
        settings={**GALAXY_SETTINGS, **change},
        synthetic=False,
    )
    best = next(r for r in refs if r["reference_id"] == "colabfold_galaxy_mean_plddt_best")
    assert best["verdict"] == "not comparable" and reason in best["reason"]


def _model(
    n: int, *, rank: int, time_s: float, forwards: list[float], compile_s: float = 0.0
) -> ModelResult:
    return ModelResult(
        model=f"model_{n}",
        rank=rank,
        tag=f"alphafold2_ptm_model_{n}_seed_000",
        mean_plddt=80.0,
        mean_plddt_residues=80.0,
        ptm=0.7,
        max_pae=30.0,
        plddt_per_residue=[80.0],
        time_s=time_s,
        forwards_s=forwards,
        compile_s=compile_s,
        pdb=Path("x.pdb"),
        scores=Path("x.json"),
    )


def test_first_model_time_holds_compilation_and_is_kept_apart_from_steady_state():
    result = FoldResult(
        jobname="q",
        out_dir=Path("."),
        models=[
            _model(2, rank=1, time_s=8.0, forwards=[4.0, 4.0]),
            _model(1, rank=2, time_s=38.0, forwards=[34.0, 4.0], compile_s=29.5),
            _model(3, rank=3, time_s=8.2, forwards=[4.1, 4.1]),
        ],
        run_s=60.0,
        params_s=5.0,
        compile_s=31.0,
    )
    t = result.timings()
    assert t["first_model_s"] == 38.0 and t["forward_first_s"] == 34.0
    assert t["first_model_compile_s"] == 29.5 and t["first_model_without_compile_s"] == 8.5
    assert t["model_compile_s"] == {"model_1": 29.5, "model_2": 0.0, "model_3": 0.0}
    assert t["steady_model"]["median_s"] == pytest.approx(8.1)
    assert t["forward_steady"]["median_s"] == 4.0 and t["jax_compile_s"] == 31.0
    assert t["forwards_per_model"] == 2
    assert t["outside_prediction_s"] == pytest.approx(60.0 - 54.2 - 5.0)


def test_one_model_without_recycles_has_no_steady_state():
    result = FoldResult(
        jobname="q",
        out_dir=Path("."),
        models=[_model(1, rank=1, time_s=20.0, forwards=[20.0], compile_s=12.0)],
        run_s=30.0,
        params_s=2.0,
        compile_s=12.5,
    )
    t = result.timings()
    assert t["first_model_s"] == 20.0 and t["first_model_without_compile_s"] == 8.0
    assert "steady_model" not in t and "forward_steady" not in t


def test_importing_colabfold_keeps_jax_gpu_memory_defaults():
    needs_module("colabfold", "ColabFold is not installed (colabfold extra)")
    code = (
        "import os\n"
        "from usecases.colabfold_spike.weights import keep_jax_gpu_memory_defaults\n"
        "keep_jax_gpu_memory_defaults()\n"
        "import colabfold.batch\n"
        "print(*(os.environ[k] for k in ('TF_FORCE_UNIFIED_MEMORY',"
        " 'XLA_PYTHON_CLIENT_MEM_FRACTION')))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in JAX_DEFAULT_ENV}
    env["JAX_PLATFORMS"] = "cpu"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=True,
    ).stdout.split()
    assert out == ["0", "0.75"]  # not ColabFold's "1" and "4.0" (4x the GPU, unified memory)


def test_models_are_read_with_colabfolds_own_scores_and_a_differing_rank_stops_the_run(tmp_path):
    from usecases.colabfold_spike.checkpoint import FinishedModel
    from usecases.colabfold_spike.instrument import ModelTiming
    from usecases.colabfold_spike.outputs import read_models

    tag = "alphafold2_ptm_model_1_seed_000"
    timing = ModelTiming(total_s=2.0, forwards_s=[2.0], tag=tag, mean_plddt=84.9)
    done = FinishedModel(model="model_1", tag=tag, started_at="2026-12-04T00:00:00+00:00",
                         ranking_confidence=84.9, mean_plddt=84.9, ptm=0.5,
                         timing=timing)  # fmt: skip
    with pytest.raises(RuntimeError, match="ColabFold ranked model_1 otherwise"):
        read_models([done], out_dir=tmp_path, jobname="job", resumed=False)
    (tmp_path / f"job_scores_rank_001_{tag}.json").write_text('{"plddt": [80.0, 90.0]}')
    (tmp_path / f"job_unrelaxed_rank_001_{tag}.pdb").write_text("")
    (model,) = read_models([done], out_dir=tmp_path, jobname="job", resumed=False)
    # ColabFold's own mean pLDDT (float16 output), not the mean of the rounded residues
    assert model.mean_plddt == 84.9 and model.mean_plddt_residues == 85.0 and model.time_s == 2.0


def test_the_compilation_cache_is_cold_then_warm_and_off_when_not_given(tmp_path):
    jax = pytest.importorskip("jax", reason="JAX is not installed (the colabfold extra)")
    from usecases.colabfold_spike.instrument import compilation_cache

    def step():  # a new function each time: only the persistent cache can skip its compile
        return jax.jit(lambda x: jax.numpy.tanh(x @ x.T) + 1.0)(jax.numpy.ones((32, 32)))

    cold, warm, off = {}, {}, {}
    with compilation_cache(tmp_path / "jax", cold):
        first = step().block_until_ready()
    assert cold["state"] == "cold" and cold["misses"] >= 1 and any((tmp_path / "jax").iterdir())
    with compilation_cache(tmp_path / "jax", warm):
        again = step().block_until_ready()
    assert warm["state"] == "warm" and warm["hits"] >= 1 and warm["misses"] == 0
    assert np.array_equal(np.asarray(first), np.asarray(again))
    with compilation_cache(None, off):
        step().block_until_ready()
    assert off == {"dir": None, "hits": 0, "misses": 0, "saved_s": 0.0, "state": "off"}
    assert jax.config.jax_compilation_cache_dir != str(tmp_path / "jax")  # put back


def test_the_fold_sweep_cli_refuses_a_model_count_colabfold_lacks(tmp_path, capsys):
    from usecases.bench.colabfold import main

    with pytest.raises(SystemExit) as stop:
        main(["--models", "1", "6", "--out", str(tmp_path)])
    assert stop.value.code == 2 and "--models take 1 to 5" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
