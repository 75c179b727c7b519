"""A real ColabFold run killed (SIGKILL) once its first model is written, resumed with
``run.py resume=RUN_DIR``: the finished model is kept, not folded again, and the record equals
an uninterrupted run's (random weights, 24 residues, 3 models, CPU). A resume that cannot be
right ends in one line and leaves the folder as it was."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, needs_module
from usecases.colabfold_spike import checkpoint
from usecases.records.record import load_record

NO_COLABFOLD = "ColabFold is not installed (install the colabfold extra)"
JOB = "galaxy_spike_302_first24"
FOLD3 = ("usecase=colabfold_spike", "weights=random", "msa_mode=single_sequence", "device=cpu",
         "usecase.max_length=24", "usecase.num_models=3", "usecase.num_recycles=0",
         "report=false")  # fmt: skip


def _files(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip


def _resume(run_dir: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(REPO / "run.py"), f"resume={run_dir}", *args]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900, check=False)


@pytest.fixture(scope="module")
def uninterrupted(run_cli_module):
    needs_module("colabfold", NO_COLABFOLD)
    result = run_cli_module(*FOLD3, "run_id=whole")
    assert result.code == 0, result.stderr[-3000:]
    return load_record(result.results / "colabfold_spike" / "whole" / "record.json")


@pytest.fixture(scope="module")
def killed(tmp_path_factory) -> tuple[Path, dict[str, bytes]]:
    """A run folder whose process got SIGKILL as soon as model_1 was complete; and the PDB
    bytes of each model finished by then."""
    needs_module("colabfold", NO_COLABFOLD)
    results = tmp_path_factory.mktemp("killed")
    run_dir = results / "colabfold_spike" / "killed"
    cmd = [sys.executable, str(REPO / "run.py"), f"results_dir={results}",
           f"cache_dir={results / 'cache'}", *FOLD3, "run_id=killed"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
    deadline = time.time() + 600
    while not checkpoint.finished(run_dir, out_dir=run_dir / "colabfold", jobname=JOB):
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        assert time.time() < deadline, "model_1 was never written"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    assert not (run_dir / "record.json").exists()
    done = checkpoint.finished(run_dir, out_dir=run_dir / "colabfold", jobname=JOB)
    pdbs = {m.model: _pdb(run_dir, m.tag).read_bytes() for m in done}
    return run_dir, pdbs


def _pdb(run_dir: Path, tag: str) -> Path:
    found = checkpoint.model_file(run_dir / "colabfold", jobname=JOB, kind="unrelaxed", tag=tag)
    assert found is not None, tag
    return found


@pytest.fixture(scope="module")
def resumed(killed, tmp_path_factory):
    """The killed run, copied and resumed: (record, run folder, the models kept)."""
    run_dir, pdbs = killed
    copy = tmp_path_factory.mktemp("resumed") / "colabfold_spike" / "killed"
    shutil.copytree(run_dir, copy)
    res = _resume(copy)
    assert res.returncode == 0, res.stderr[-3000:]
    return load_record(copy / "record.json"), copy, pdbs


def test_a_resumed_fold_keeps_the_finished_models_and_folds_only_the_rest(resumed):
    record, run_dir, pdbs = resumed
    assert record.status == "ok" and "model_1" in pdbs and len(pdbs) < 3
    first, second = record.timings["segments"]
    assert first["models"] == sorted(pdbs) and first["stage"] == "folding"
    assert second["models"] == [m for m in ("model_1", "model_2", "model_3") if m not in pdbs]
    for model, data in pdbs.items():  # the very file the killed process wrote, renamed to rank
        assert (run_dir / record.artifacts[f"{model}_pdb"]).read_bytes() == data
    assert [s["status"] for s in record.segments] == ["killed", "ok"]
    assert record.segments[1]["folding"]["models"] == second["models"]
    assert any(n.startswith("resumed: model_1") for n in record.notes)
    assert not checkpoint.folder(run_dir).exists()  # finished: nothing left to resume
    # the killed segment left its compiled programs in JAX's cache: the resume loads them
    cache = record.timings["compilation_cache"]
    assert cache["state"] in ("warm", "partly warm") and cache["hits"] > 0, cache


def test_a_resumed_fold_has_the_scores_and_ranks_of_an_uninterrupted_one(resumed, uninterrupted):
    record, run_dir, _ = resumed
    for model in ("model_1", "model_2", "model_3"):
        got, want = record.metrics[model], uninterrupted.metrics[model]
        for key in ("mean_plddt", "ptm", "max_pae", "rank", "plddt_per_residue"):
            assert got[key] == want[key], (model, key)
    assert record.metrics["best_model"] == uninterrupted.metrics["best_model"]
    for n in (1, 2, 3):
        assert record.metrics[f"rank_{n}"] == uninterrupted.metrics[f"rank_{n}"]
    ranked = sorted(p.name for p in (run_dir / "colabfold").glob(f"{JOB}_scores_rank_*.json"))
    assert [n.removeprefix(f"{JOB}_scores_rank_")[:3] for n in ranked] == ["001", "002", "003"]
    best = json.loads((run_dir / record.artifacts["pae"]).read_text())
    assert best["max_predicted_aligned_error"] == uninterrupted.metrics[
        uninterrupted.metrics["best_model"]]["max_pae"]  # fmt: skip
    assert record.checks and all(c["passed"] for c in record.checks)
    # each segment compiles its first model: neither counts as steady state
    times = record.timings["model_times_s"]
    firsts = {s["models"][0] for s in record.timings["segments"]}
    assert record.timings.get("steady_model", {}).get("n", 0) == len(times) - len(firsts)


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        ("no_checkpoint", "has no finished ColabFold model"),
        ("other_code", "was written by other code"),
        ("corrupt", "is damaged"),
    ],
)
def test_a_resume_that_cannot_be_right_is_one_line_and_changes_nothing(
    killed, tmp_path, damage, says
):
    run_dir = tmp_path / "colabfold_spike" / "killed"
    shutil.copytree(killed[0], run_dir)
    saved = checkpoint.folder(run_dir) / "model_1.json"
    if damage == "no_checkpoint":
        shutil.rmtree(checkpoint.folder(run_dir))
    elif damage == "other_code":
        stored = json.loads(saved.read_text())
        stored["identity"]["code_sha256"] = "0" * 64
        saved.write_text(json.dumps(stored))
    else:
        saved.write_text(saved.read_text()[:40])
    before = _files(run_dir)
    res = _resume(run_dir)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert len(lines) == 1 and lines[0].startswith("error:") and says in lines[0], res.stderr
    assert _files(run_dir) == before
