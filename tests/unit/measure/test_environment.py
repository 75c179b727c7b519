"""The environment part of a record: what a rerun needs to run the same kernels."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from tests.conftest import REPO
from usecases.measure.environment import LIBRARIES, VARIABLES, capture_environment


def test_variables_that_change_the_kernels_are_recorded_and_unset_ones_left_out(monkeypatch):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("SOME_UNRELATED_SECRET", "x")
    env = capture_environment()
    assert env["variables"] == {"TF_ENABLE_ONEDNN_OPTS": "0", "OMP_NUM_THREADS": "1"}


def test_installed_libraries_are_recorded_with_their_versions_and_absent_ones_left_out():
    libraries = capture_environment()["libraries"]
    assert libraries["numpy"] == metadata.version("numpy")
    assert set(libraries) < set(LIBRARIES)  # the CUDA wheels are not installed here


def _git(repo: Path, *args: str) -> str:
    cmd = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()


def _device_git_env(copy: Path) -> dict[str, str]:
    """Source device_env.sh in ``copy`` and return the git variables it exports."""
    show = ". scripts/device_env.sh out; env | grep ^USECASE_BENCH_GIT_ || true"
    env = {k: v for k, v in os.environ.items() if not k.startswith("USECASE_BENCH_GIT_")}
    proc = subprocess.run(
        ["bash", "-c", show],
        cwd=copy,
        env={**env, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return dict(line.split("=", 1) for line in proc.stdout.split())


def test_a_copy_without_git_history_records_the_snapshot_commit(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    for name in ("device_env.sh", "snapshot_commit.sh"):
        shutil.copy(REPO / "scripts" / name, repo / "scripts" / name)
    (repo / "train.py").write_text("print('train')\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "one")
    commit = _git(repo, "rev-parse", "HEAD")
    subprocess.run(["bash", "scripts/snapshot_commit.sh"], cwd=repo, check=True)
    shutil.rmtree(repo / ".git")  # what the lent GPU machine gets: the tree, no history

    assert _device_git_env(repo) == {
        "USECASE_BENCH_GIT_COMMIT": commit,
        "USECASE_BENCH_GIT_DIRTY": "0",
    }
    monkeypatch.setenv("USECASE_BENCH_GIT_COMMIT", commit)
    monkeypatch.setenv("USECASE_BENCH_GIT_DIRTY", "0")
    git = capture_environment(repo=repo)["git"]
    assert (git["commit"], git["dirty"]) == (commit, False)

    (repo / "train.py").write_text("print('changed after the snapshot')\n")
    assert _device_git_env(repo)["USECASE_BENCH_GIT_DIRTY"] == "1"


def test_a_checkout_with_git_ignores_a_stale_snapshot_commit(monkeypatch):
    monkeypatch.setenv("USECASE_BENCH_GIT_COMMIT", "0" * 40)
    git = capture_environment(repo=REPO)["git"]
    assert git["commit"] == _git(REPO, "rev-parse", "HEAD") and "source" not in git


def test_a_commit_made_during_a_sweep_is_not_claimed_by_its_later_runs(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "train.py").write_text("one\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "one")
    first = _git(repo, "rev-parse", "HEAD")
    assert capture_environment(repo=repo)["git"] == {"commit": first, "dirty": False}
    (repo / "train.py").write_text("two\n")  # the process still runs the code it loaded
    _git(repo, "commit", "-qam", "two")
    assert capture_environment(repo=repo)["git"] == {"commit": first, "dirty": False}
