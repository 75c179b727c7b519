"""run.py's command line: overrides are composed and checked before Hydra runs."""

from __future__ import annotations

from usecases.run.cli import check_overrides


def test_multirun_sweeps_are_checked_value_by_value():
    assert "scale/tiny" in check_overrides(["-m", "seed=range(1,3)", "scale=ci,tiny"])
    assert check_overrides(["-m", "seed=range(1,3)", "scale=ci,galaxy"]) is None
    assert "no values" in check_overrides(["-m", "seed=range(0)"])
    assert check_overrides(["-m", "dataset=glob(*)", "seed=1,2"]) is None  # left to the sweeper
    assert "Ambiguous" in check_overrides(["seed=1,2"])  # a sweep needs -m
