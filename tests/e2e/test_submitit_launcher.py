"""SLURM's path, run locally: a Hydra multirun through submitit (hydra/launcher=submitit_local).

submitit runs each job in a process of its own, as SLURM would; the records, submitit's logs
and the sweep's exit status must come back as with the basic launcher.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def test_a_preempted_job_requeues_itself_and_resumes_its_own_run(tmp_path):
    """SLURM's preemption signal (USR2) reaches the job after its second checkpoint: submitit
    requeues it (its checkpoint protocol), and the new attempt finds the run folder named by
    the job id and resumes it instead of starting again."""
    import os
    import signal
    import time

    cmd = [sys.executable, str(REPO / "run.py"), "-m", "hydra/launcher=submitit_local",
           f"results_dir={tmp_path}", f"cache_dir={tmp_path / 'cache'}", "seed=3",
           *SMOKE[:2], "scale.epochs=4", *SMOKE[3:-1]]  # fmt: skip
    sweep = subprocess.Popen(
        cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 600
    while not (ckpt := list(tmp_path.glob("covid_ct/job-*/checkpoint/epoch-0002.npz"))):
        assert sweep.poll() is None and time.time() < deadline, "no second checkpoint"
        time.sleep(0.1)
    run_dir = ckpt[0].parents[1]
    controller = run_dir.name.removeprefix("job-")  # submitit's local job id: its controller
    children = Path(f"/proc/{controller}/task/{controller}/children")
    (task,) = children.read_text().split()
    os.kill(int(task), signal.SIGUSR2)  # what SLURM sends before a time limit or preemption
    _, stderr = sweep.communicate(timeout=900)
    assert sweep.returncode == 0, stderr[-3000:]
    record = load_record(run_dir / "record.json")
    assert record.status == "ok"
    assert [s["status"] for s in record.segments] == ["terminated", "ok"]
    assert "submitit" in record.segments[0]["why"]
    assert [s["training"]["first_epoch"] for s in record.segments] == [1, 3]
    assert not (run_dir / "checkpoint").exists()
