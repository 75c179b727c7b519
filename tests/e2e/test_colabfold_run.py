"""colabfold_spike through ``python run.py``: one real ColabFold fold, and every user mistake.

The fold is the real ``colabfold.batch.run`` with random weights of the exact AlphaFold2
shapes on the first 24 spike residues (1 model, 0 recycles, CPU, single sequence): run once
per module and read by several tests. Needs ColabFold (the ``colabfold`` extra); without it
only the "not installed" message is tested.
"""

from __future__ import annotations

import importlib.util
import json
import socket
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import needs_module
from usecases.colabfold_spike.pdb import ca_bfactors
from usecases.records.record import load_record

HAVE_COLABFOLD = importlib.util.find_spec("colabfold") is not None
NO_COLABFOLD = "ColabFold is not installed (install the colabfold extra)"
needs_colabfold = pytest.mark.usefixtures("colabfold_installed")


@pytest.fixture
def colabfold_installed() -> None:
    """Skip (fail under CI=true) where ColabFold is absent; an installed but broken one fails."""
    needs_module("colabfold", NO_COLABFOLD)


LENGTH = 24
FOLD_ARGS = (
    "usecase=colabfold_spike",
    "weights=random",
    "msa_mode=single_sequence",
    "device=cpu",
    f"usecase.max_length={LENGTH}",
    "usecase.num_models=1",
    "usecase.num_recycles=0",
    "run_id=fold24",
)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def folded(run_cli_module):
    """(record, run folder, CliResult) of one short random-weights fold through run.py."""
    needs_module("colabfold", NO_COLABFOLD)
    res = run_cli_module(*FOLD_ARGS)
    assert res.code == 0, res.stderr[-4000:]
    [path] = sorted(res.results.rglob("record.json"))
    return load_record(path), path.parent, res


@needs_colabfold
def test_random_weight_fold_writes_an_ok_record_and_colabfold_outputs(folded):
    record, run_dir, _ = folded
    assert record.status == "ok" and record.error is None and run_dir.name == "fold24"
    assert record.usecase == "colabfold_spike"
    assert record.device["used"] == "cpu" and record.device["backend"] == "jax"
    assert record.config["backend"]["name"] == "jax" and record.config["weights"] == "random"
    assert record.environment["libraries"]["colabfold"] == "1.6.3"
    for key in ("best_pdb", "model_1_pdb", "model_1_scores", "pae", "a3m", "colabfold_config"):
        assert (run_dir / record.artifacts[key]).is_file(), key
    for name in ("record.json", "config.yaml", "run.log"):
        assert (run_dir / name).is_file()
    assert record.dataset["length"] == LENGTH and record.dataset["full_length"] == 302
    assert record.dataset["msa"] == "single_sequence"
    assert record.dataset["name"] == f"galaxy_spike_302[:{LENGTH}]"


@needs_colabfold
def test_mean_plddt_is_the_mean_of_the_pdb_ca_bfactors(folded):
    record, run_dir, _ = folded
    model = record.metrics["model_1"]
    bfactors = ca_bfactors(run_dir / record.artifacts["model_1_pdb"])
    per_residue = np.asarray(model["plddt_per_residue"])
    assert len(bfactors) == len(per_residue) == LENGTH
    assert np.allclose(bfactors, per_residue, atol=0.006)  # PDB keeps 2 decimals
    assert model["mean_plddt_residues"] == pytest.approx(bfactors.mean(), abs=0.01)
    assert model["mean_plddt"] == pytest.approx(bfactors.mean(), abs=0.05)  # float16 output
    assert 0 <= model["mean_plddt"] <= 100 and 0 <= model["ptm"] <= 1
    assert record.metrics["mean_plddt_best"] == model["mean_plddt"]
    assert record.metrics["best_model"] == "model_1" and record.metrics["rank_1"]["model"]
    assert record.checks and all(c["passed"] for c in record.checks)
    pae = json.loads((run_dir / record.artifacts["pae"]).read_text())
    assert np.asarray(pae["predicted_aligned_error"]).shape == (LENGTH, LENGTH)


@needs_colabfold
def test_per_model_and_first_model_times_are_recorded(folded):
    record, _, _ = folded
    t = record.timings
    assert t["first_model_s"] > 0 and t["forward_first_s"] > 0
    assert t["model_times_s"] == {"model_1": t["first_model_s"]}
    assert record.metrics["model_1"]["time_s"] == t["first_model_s"]
    assert t["forwards_per_model"] == 1  # 0 recycles: one forward pass
    assert t["params_load_s"] > 0 and t["colabfold_run_s"] > t["first_model_s"]
    # JAX's own compile events: the model is compiled inside the first (only) forward
    assert 0 < t["first_model_compile_s"] < t["first_model_s"]
    assert t["first_model_without_compile_s"] == pytest.approx(
        t["first_model_s"] - t["first_model_compile_s"]
    )
    assert t["jax_compile_s"] >= t["first_model_compile_s"]
    assert "steady_model" not in t  # one model only
    cache = t["compilation_cache"]  # JAX's persistent cache under cache_dir, cold or warm
    assert cache["state"] in ("cold", "warm", "partly warm") and cache["hits"] + cache["misses"]
    assert Path(cache["dir"]).is_dir() and any(Path(cache["dir"]).iterdir())
    assert t["gpu_memory_env"] == {
        "TF_FORCE_UNIFIED_MEMORY": "0",
        "XLA_PYTHON_CLIENT_MEM_FRACTION": "0.75",
    }


@needs_colabfold
def test_random_weights_are_marked_and_never_judged(folded):
    record, _, _ = folded
    assert record.metrics["weights"] == "random" and record.dataset["weights"] == "random"
    assert record.dataset["synthetic"] is True  # so reports and gates treat it as synthetic
    assert any(n.startswith("random weights") for n in record.notes)
    assert any(f"first {LENGTH} of 302" in n for n in record.notes)
    if record.config.get("dataset") is not None:  # the covid_ct group, unused here
        assert any("ignored: dataset=" in n for n in record.notes)
    assert record.references
    assert {r["verdict"] for r in record.references} == {"not comparable"}
    assert all("random weights" in r["reason"] for r in record.references)


# ---- mistakes: one line, non-zero exit, nothing written -------------------------------------


def _assert_one_line_failure(res, *, code: int, says: str) -> None:
    assert res.code == code, res.stderr[-3000:]
    assert "Traceback" not in res.stderr
    lines = res.error_lines()
    assert len(lines) == 1, res.stderr[-3000:]
    assert says in lines[0], lines[0]
    assert not res.results.exists() or not any(res.results.rglob("*"))


def _params_dir(folder: Path, *, corrupt: str | None = None) -> Path:
    """Five small but well-formed *_ptm files; ``corrupt`` names one to truncate."""
    from usecases.colabfold_spike.weights import PAE_HEAD_KEY

    folder.mkdir(parents=True)
    for n in range(1, 6):
        path = folder / f"params_model_{n}_ptm.npz"
        np.savez(path, **{PAE_HEAD_KEY: np.zeros((2, 2), np.float32)})
    if corrupt is not None:
        victim = folder / corrupt
        victim.write_bytes(victim.read_bytes()[:100])
    return folder


@needs_colabfold
def test_empty_fasta_exits_1(run_cli, tmp_path):
    (tmp_path / "empty.fasta").write_text("")
    res = run_cli(
        "usecase=colabfold_spike",
        "weights=random",
        "msa_mode=single_sequence",
        f"usecase.fasta={tmp_path / 'empty.fasta'}",
    )
    _assert_one_line_failure(res, code=1, says="holds no sequence")


@needs_colabfold
def test_letters_that_are_not_amino_acids_exit_1(run_cli, tmp_path):
    (tmp_path / "dna.fasta").write_text(">x\nMKVLB1Z\n")
    res = run_cli(
        "usecase=colabfold_spike",
        "weights=random",
        "msa_mode=single_sequence",
        f"usecase.fasta={tmp_path / 'dna.fasta'}",
    )
    _assert_one_line_failure(res, code=1, says="letters are not amino acids (first: 'B'")


@needs_colabfold
def test_a_compilation_cache_that_is_a_file_exits_2(run_cli, tmp_path):
    (tmp_path / "cache").write_text("")
    res = run_cli(
        "usecase=colabfold_spike",
        "weights=random",
        "msa_mode=single_sequence",
        f"usecase.compilation_cache={tmp_path / 'cache'}",
    )
    _assert_one_line_failure(res, code=2, says="is not a folder this user can write")


@needs_colabfold
def test_missing_weights_exit_1_and_name_the_fetch_command(run_cli, tmp_path):
    (tmp_path / "params").mkdir()
    res = run_cli(
        "usecase=colabfold_spike",
        "weights=alphafold",
        "msa_mode=single_sequence",
        f"usecase.params_dir={tmp_path / 'params'}",
    )
    _assert_one_line_failure(res, code=1, says="usecase-bench-fetch alphafold_params")


@needs_colabfold
def test_corrupt_params_file_exits_1_and_names_it(run_cli, tmp_path):
    folder = _params_dir(tmp_path / "params", corrupt="params_model_3_ptm.npz")
    res = run_cli(
        "usecase=colabfold_spike",
        "weights=alphafold",
        "msa_mode=single_sequence",
        f"usecase.params_dir={folder}",
    )
    _assert_one_line_failure(res, code=1, says="params_model_3_ptm.npz is corrupt")
    assert "usecase-bench-fetch alphafold_params" in res.error_lines()[0]


@needs_colabfold
def test_params_files_without_the_alphafold_arrays_fail_the_run_with_one_line(run_cli, tmp_path):
    folder = _params_dir(tmp_path / "params")  # well-formed files, but not AlphaFold2's arrays
    res = run_cli(
        "usecase=colabfold_spike",
        "weights=alphafold",
        "msa_mode=single_sequence",
        "device=cpu",
        "usecase.max_length=10",
        "usecase.num_models=1",
        f"usecase.params_dir={folder}",
    )
    assert res.code == 1, res.stderr[-3000:]
    [line] = res.error_lines()
    assert "does not hold AlphaFold2 parameters" in line and "arrays missing" in line
    assert "usecase-bench-fetch alphafold_params" in line
    [record] = res.records()
    assert record["status"] == "failed" and "does not hold AlphaFold2" in record["error"]


@needs_colabfold
def test_mmseqs2_without_network_exits_2_and_suggests_offline_modes(run_cli):
    res = run_cli(
        "usecase=colabfold_spike",
        "weights=random",
        "msa_mode=mmseqs2",
        f"usecase.msa_server=http://127.0.0.1:{_closed_port()}",
        "usecase.msa_server_timeout_s=2",
    )
    _assert_one_line_failure(res, code=2, says="msa_mode=single_sequence")
    assert "not reachable" in res.error_lines()[0]


@needs_colabfold
def test_unknown_weights_and_templates_exit_2(run_cli):
    res = run_cli("usecase=colabfold_spike", "weights=imagined", "msa_mode=single_sequence")
    _assert_one_line_failure(res, code=2, says="weights=imagined")
    res = run_cli(
        "usecase=colabfold_spike",
        "weights=random",
        "msa_mode=single_sequence",
        "usecase.use_templates=true",
    )
    _assert_one_line_failure(res, code=2, says="use_templates")


def test_weights_option_belongs_to_colabfold_only(run_cli):
    res = run_cli("dataset=phantom", "scale=smoke", "weights=random")
    assert res.code == 2 and "weights" in res.error_lines()[0]


@pytest.mark.skipif(HAVE_COLABFOLD, reason="ColabFold is installed here")
def test_without_colabfold_the_error_says_how_to_install_it(run_cli):
    res = run_cli("usecase=colabfold_spike", "weights=random", "msa_mode=single_sequence")
    _assert_one_line_failure(res, code=2, says="colabfold extra")
