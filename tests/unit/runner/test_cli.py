"""run.py's command line: overrides are composed and checked before Hydra runs."""

from __future__ import annotations

import pytest

from usecases.runner.cli import check_overrides


def test_multirun_sweeps_are_checked_value_by_value():
    assert "scale/tiny" in check_overrides(["-m", "seed=range(1,3)", "scale=ci,tiny"])
    assert check_overrides(["-m", "seed=range(1,3)", "scale=ci,galaxy"]) is None
    assert "no values" in check_overrides(["-m", "seed=range(0)"])
    assert check_overrides(["-m", "dataset=glob(*)", "seed=1,2"]) is None  # left to the sweeper
    assert "Ambiguous" in check_overrides(["seed=1,2"])  # a sweep needs -m


def test_a_checkout_without_conf_is_one_line_naming_the_variable(monkeypatch, tmp_path, capsys):
    from usecases.runner.cli import main

    monkeypatch.setenv("USECASE_BENCH_HOME", str(tmp_path / "nowhere"))
    assert main(["dataset=phantom"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: the Hydra config groups (conf/) not found at ")
    assert "USECASE_BENCH_HOME=DIR" in line


def test_paths_follow_the_home_variable(monkeypatch, tmp_path):
    from usecases import paths

    monkeypatch.setenv("USECASE_BENCH_HOME", str(tmp_path))
    monkeypatch.setenv("USECASE_BENCH_CACHE", str(tmp_path / "c"))
    assert paths.conf_dir() == tmp_path / "conf"
    assert paths.gate_rules() == tmp_path / "conf" / "gate" / "default.yaml"
    assert paths.manifest_dir() == tmp_path / "data_manifests"
    assert paths.cache_base() == tmp_path / "c"
    monkeypatch.delenv("USECASE_BENCH_HOME")
    assert (paths.conf_dir() / "config.yaml").is_file()  # this checkout


def test_the_shipped_slurm_gpu_launcher_composes(capsys):
    """conf/hydra/launcher/slurm_gpu.yaml resolves on top of submitit's SLURM launcher."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="slurm extra absent")
    from usecases.runner.cli import main

    assert main(["--cfg", "hydra", "hydra/launcher=slurm_gpu"]) == 0
    out = capsys.readouterr().out
    assert "SlurmLauncher" in out and "partition: gpu" in out and "gpus_per_task: 1" in out
