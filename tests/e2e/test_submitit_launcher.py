"""SLURM's path, run locally: a Hydra multirun through submitit (hydra/launcher=submitit_local).

submitit runs each job in a process of its own, as SLURM would; the records, submitit's logs
and the sweep's exit status must come back as with the basic launcher.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO, needs_module
from usecases.records.record import load_record

SMOKE = ("dataset=phantom", "scale=smoke", "scale.epochs=1", "device=cpu",
         "usecase.export.onnx=false", "report=false", "run_id=s${seed}")  # fmt: skip


@pytest.fixture(autouse=True)
def _submitit() -> None:
    needs_module("hydra_plugins.hydra_submitit_launcher", "the slurm extra is not installed")


def _multirun(tmp_path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(REPO / "run.py"), "-m", "hydra/launcher=submitit_local",
           f"results_dir={tmp_path}", f"cache_dir={tmp_path / 'cache'}", *args]  # fmt: skip
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900, check=False)


def test_two_jobs_through_submitit_write_both_records_and_its_logs(tmp_path):
    proc = _multirun(tmp_path, "seed=1,2", *SMOKE)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [load_record(tmp_path / "covid_ct" / f"s{s}" / "record.json") for s in (1, 2)]
    assert [(r.status, r.config["seed"]) for r in records] == [("ok", 1), ("ok", 2)]
    (sweep,) = (tmp_path / "multirun").iterdir()
    logs = sorted(p.name for p in (sweep / ".submitit").rglob("*_log.out"))
    assert len(logs) == 2, logs  # one log per job, written by submitit
    assert not list(tmp_path.glob(".exit-codes-*"))  # the exit-code folder is cleaned up


def test_a_failed_job_fails_the_sweep_through_submitit(tmp_path):
    proc = _multirun(tmp_path, "seed=1", "scale.epochs=1,0", *SMOKE[:2], *SMOKE[3:])
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert load_record(tmp_path / "covid_ct" / "s1" / "record.json").status == "ok"
