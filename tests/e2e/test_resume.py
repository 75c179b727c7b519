"""A real run killed (SIGKILL) or terminated (SIGTERM) after its second checkpoint, resumed with
``run.py resume=RUN_DIR``, ends with the record of an uninterrupted run of the same seed; a
resume that cannot be right ends in one line and leaves the folder as it was."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO
from usecases.covid_ct import checkpoint
from usecases.records.record import load_record

SMOKE = ("dataset=phantom", "scale=smoke", "scale.epochs=4", "device=cpu", "seed=3",
         "usecase.export.onnx=false", "report=false")  # fmt: skip
THRESHOLDS = [f"0.{i}" for i in range(1, 10)]


def _start(results: Path, cache: Path, *args: str) -> subprocess.Popen:
    cmd = [sys.executable, str(REPO / "run.py"), f"results_dir={results}", f"cache_dir={cache}",
           *args]  # fmt: skip
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen(cmd, cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip


def _stop_after_second_checkpoint(proc: subprocess.Popen, run_dir: Path, sig: int) -> None:
    """Send ``sig`` once epoch 2's checkpoint is complete, while epoch 3 trains."""
    second, deadline = run_dir / "checkpoint" / "epoch-0002.npz", time.time() + 600
    while not second.exists():
        assert proc.poll() is None and time.time() < deadline, "no second checkpoint"
        time.sleep(0.1)
    time.sleep(0.5)  # into epoch 3: the checkpoint is all that survives of it
    proc.send_signal(sig)


def _resume(run_dir: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(REPO / "run.py"), f"resume={run_dir}", *args]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900, check=False)


def _same_metrics(a, b) -> None:
    for key in THRESHOLDS:
        assert a.metrics[key] == b.metrics[key], key  # bit for bit: every metric, every threshold
    assert a.metrics["history"] == b.metrics["history"]
    assert a.metrics["best_epoch"] == b.metrics["best_epoch"]


def _files(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip


@pytest.fixture(scope="module")
def uninterrupted(run_cli_module):
    result = run_cli_module(*SMOKE, "run_id=whole")
    assert result.code == 0, result.stderr[-3000:]
    return result.results / "covid_ct" / "whole"


@pytest.fixture(scope="module")
def killed(tmp_path_factory, prepared_cache) -> Path:
    """A run folder whose process got SIGKILL in epoch 3 (no record, a checkpoint of epoch 2)."""
    results = tmp_path_factory.mktemp("killed")
    proc = _start(results, prepared_cache, *SMOKE, "run_id=killed")
    run_dir = results / "covid_ct" / "killed"
    _stop_after_second_checkpoint(proc, run_dir, signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    assert not (run_dir / "record.json").exists()
    return run_dir


def test_a_sigkilled_run_resumes_to_the_uninterrupted_record(killed, uninterrupted, tmp_path):
    run_dir = shutil.copytree(killed, tmp_path / "killed")
    proc = _resume(run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record, whole = load_record(run_dir / "record.json"), load_record(uninterrupted / "record.json")
    assert record.status == "ok" and record.resumable is False
    _same_metrics(record, whole)
    assert [s["status"] for s in record.segments] == ["killed", "ok"]
    assert "SIGKILL" in record.segments[0]["why"]
    trained = [(s["training"]["first_epoch"], s["training"]["last_epoch"]) for s in record.segments]
    assert trained == [(1, 2), (3, 4)]  # epoch 3 of the killed process was redone
    assert record.timings["checkpoint"]["bytes"] > 0
    assert not (run_dir / "checkpoint").exists()  # finished: the checkpoints are gone


def test_sigterm_ends_terminated_resumable_143_and_resumes(uninterrupted, tmp_path, prepared_cache):
    proc = _start(tmp_path, prepared_cache, *SMOKE, "run_id=term")
    run_dir = tmp_path / "covid_ct" / "term"
    _stop_after_second_checkpoint(proc, run_dir, signal.SIGTERM)
    out, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr[-2000:]
    assert "Traceback" not in stderr and f"resume={run_dir}" in out
    record = load_record(run_dir / "record.json")
    assert (record.status, record.resumable) == ("terminated", True)
    assert "SIGTERM" in record.error
    assert checkpoint.load(checkpoint.latest(run_dir)).epoch == 2
    done = _resume(run_dir, "report=true")  # report= may change: it cannot change the result
    assert done.returncode == 0, done.stderr[-3000:]
    record = load_record(run_dir / "record.json")
    _same_metrics(record, load_record(uninterrupted / "record.json"))
    assert [s["status"] for s in record.segments] == ["terminated", "ok"]
    assert (run_dir / "report" / "report.html").is_file()


def _other_code(run_dir: Path) -> None:
    ckpt = checkpoint.load(checkpoint.latest(run_dir))
    checkpoint.save(run_dir, meta={**ckpt.meta, "code_sha256": "0" * 64}, arrays=ckpt.arrays)


def _other_config(run_dir: Path) -> None:
    config = run_dir / "config.yaml"
    config.write_text(config.read_text().replace("epochs: 4", "epochs: 5"))


def _corrupt(run_dir: Path) -> None:
    path = checkpoint.latest(run_dir)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


BAD = {
    "finished": (None, [], "finished (status ok)"),
    "no checkpoint": (lambda d: shutil.rmtree(d / "checkpoint"), [], "has no checkpoint"),
    "other code": (_other_code, [], "written by other code"),
    "other config": (_other_config, [], "written by other config"),
    "corrupt": (_corrupt, [], "corrupt or incomplete"),
    "an override": (None, ["usecase.dropout=0.5"], "takes only device= and report="),
    "a bad device": (None, ["device=tpu"], "bad option"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_resume_that_cannot_be_right_is_one_line_and_changes_nothing(
    case, killed, uninterrupted, tmp_path
):
    change, args, needle = BAD[case]
    run_dir = shutil.copytree(uninterrupted if case == "finished" else killed, tmp_path / "run")
    if change is not None:
        change(run_dir)
    before = _files(run_dir)
    proc = _resume(run_dir, *args)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode != 0 and len(errors) == 1 and needle in errors[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert _files(run_dir) == before


def test_resume_of_a_folder_that_is_no_run_is_one_line(tmp_path):
    proc = _resume(tmp_path)
    assert proc.returncode == 2 and proc.stderr.startswith("error: resume="), proc.stderr
    assert "no config.yaml" in proc.stderr and os.listdir(tmp_path) == []
