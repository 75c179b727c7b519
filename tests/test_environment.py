"""The environment part of a record: what a rerun needs to run the same kernels."""

from __future__ import annotations

from usecases.core.environment import VARIABLES, capture_environment


def test_variables_that_change_the_kernels_are_recorded_and_unset_ones_left_out(monkeypatch):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("SOME_UNRELATED_SECRET", "x")
    env = capture_environment()
    assert env["variables"] == {"TF_ENABLE_ONEDNN_OPTS": "0", "OMP_NUM_THREADS": "1"}
