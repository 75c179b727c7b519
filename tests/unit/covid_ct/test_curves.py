"""The time-to-quality target: from the published value by default, or as configured."""

from __future__ import annotations

import numpy as np
import pytest

from usecases.covid_ct.curves import LearningCurve
from usecases.covid_ct.evaluate import THRESHOLDS
from usecases.covid_ct.quality import QualityTarget, quality_target
from usecases.errors import ConfigError


def test_the_default_target_is_the_published_dice_minus_its_tolerance():
    target = quality_target({"target_at": 0.3, "target_dice": None}, thresholds=THRESHOLDS)
    assert target == QualityTarget(
        "0.3", 0.743, "tv_unet_dice_pooled_0.3: published 0.773 - tolerance 0.03"
    )


def test_a_configured_target_wins():
    target = quality_target({"target_at": 0.5, "target_dice": 0.7}, thresholds=THRESHOLDS)
    assert (target.at, target.dice) == ("0.5", 0.7)


@pytest.mark.parametrize(
    ("curve", "needle"),
    [
        ({"target_at": 0.35, "target_dice": None}, "target_at=0.35 is not one of"),
        ({"target_at": 0.3, "target_dice": 1.5}, "target_dice=1.5 must be a Dice"),
        ({"target_at": None, "target_dice": None}, "target_at=None"),
    ],
)
def test_bad_targets_are_one_line_config_errors(curve, needle):
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(")):
        quality_target(curve, thresholds=THRESHOLDS)


class _Constant:
    """Stands in for a model: predicts the same probabilities every epoch after the first."""

    def __init__(self, probs):
        self._probs = iter(probs)

    def predict(self, x, batch_size, verbose):
        return next(self._probs)


def test_the_curve_records_each_epoch_and_the_first_epoch_at_target():
    y = np.zeros((2, 4, 4, 2), np.uint8)
    y[..., 0] = 1
    y[:, :2, :2] = (0, 1)
    miss, hit = np.zeros((2, 4, 4, 2), np.float32), y.astype(np.float32)
    curve = LearningCurve(
        np.zeros((2, 4, 4, 1), np.float32), y, thresholds=(0.3, 0.5), batch_size=2,
        target=QualityTarget("0.3", 0.743, "test"),
    )  # fmt: skip
    curve.set_model(_Constant([miss, hit, miss]))
    curve.on_train_begin()
    for epoch in range(3):
        curve.on_epoch_end(epoch)
    out = curve.result()
    assert out["learning_curve"]["epoch"] == [1, 2, 3]
    assert out["learning_curve"]["by_threshold"]["0.3"]["dice_pooled"] == [0.0, 1.0, 0.0]
    ttq = out["time_to_quality"]
    assert ttq["reached"] is True and ttq["epochs"] == 2
    assert ttq["seconds"] == out["learning_curve"]["elapsed_s"][1] > 0
    assert ttq["best_dice"] == 1.0 and ttq["epochs_run"] == 3
