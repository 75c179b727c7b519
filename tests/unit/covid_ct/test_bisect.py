"""The step-by-step bisection's pieces: the shared batch order, the snapshot steps, the one-ulp
perturbation, and the one-line errors of its CLI."""

from __future__ import annotations

import numpy as np
import pytest

from usecases.covid_ct.original.bisect import batch_order, main, snapshot_steps
from usecases.covid_ct.original.steps import one_ulp


def test_the_batch_order_is_one_seeded_permutation_per_epoch_in_full_batches():
    order = batch_order(10, batch_size=3, steps=7, seed=1)
    assert order.shape == (7, 3)
    for epoch in (order[0:3], order[3:6]):  # 3 full batches per epoch, the 10th slice left out
        assert len(set(epoch.ravel())) == 9 and set(epoch.ravel()) <= set(range(10))
    assert not np.array_equal(order[0:3], order[3:6])  # a new permutation each epoch
    assert np.array_equal(order, batch_order(10, batch_size=3, steps=7, seed=1))
    assert not np.array_equal(order, batch_order(10, batch_size=3, steps=7, seed=2))


def test_snapshots_are_1_2_5_decades_and_the_last_step():
    assert snapshot_steps(93) == [1, 2, 5, 10, 20, 50, 93]
    assert snapshot_steps(1) == [1]
    assert snapshot_steps(20) == [1, 2, 5, 10, 20]


def test_one_ulp_moves_about_half_of_the_elements_by_exactly_one_ulp():
    w = np.random.default_rng(0).normal(size=(1000,)).astype(np.float32)
    (moved,) = one_ulp([w], seed=1)
    changed = moved != w
    assert 0.4 < changed.mean() < 0.6
    assert np.array_equal(moved[changed], np.nextafter(w[changed], np.float32(np.inf)))
    assert moved.dtype == np.float32


@pytest.mark.parametrize(
    "args, says",
    [
        (["--paths", "port,nope"], "--paths port,nope"),
        (["--steps", "0"], "--steps 0"),
        (["--dropouts", "1.5"], "--dropouts 1.5"),
        (["dataset=nosuch"], "bad option"),
        (["--json", "/nonexistent-folder/out.json"], "no folder /nonexistent-folder"),
    ],
)
def test_bad_options_end_in_one_line_and_exit_2(args, says, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and says in err[0]
