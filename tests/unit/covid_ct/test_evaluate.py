"""Cross-checks of usecases.covid_ct.evaluate against scikit-learn and plain loops."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, jaccard_score, recall_score

from usecases.covid_ct.evaluate import (
    EMPTY_MASK_RULE,
    METRIC_KEYS,
    THRESHOLDS,
    best_threshold,
    segmentation_metrics,
)
from usecases.errors import DataError


def _case(*, n: int = 12, size: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Binary masks (n, size, size) with two empty ones, and noisy probabilities."""
    rng = np.random.default_rng(seed)
    truth = (rng.random((n, size, size)) < 0.25).astype(np.uint8)
    truth[0] = 0
    truth[5] = 0
    prob = np.clip(0.6 * truth + 0.5 * rng.random(truth.shape), 0.0, 1.0).astype(np.float32)
    return truth, prob


def _one_hot(masks: np.ndarray) -> np.ndarray:
    return np.stack([1 - masks, masks], axis=-1).astype(np.uint8)


def _two_channel(prob: np.ndarray) -> np.ndarray:
    return np.stack([1.0 - prob, prob], axis=-1).astype(np.float32)


def test_thresholds_are_rounded_tenths() -> None:
    assert THRESHOLDS == (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def test_pooled_metrics_match_sklearn() -> None:
    truth, prob = _case()
    out = segmentation_metrics(_one_hot(truth), _two_channel(prob))
    flat_true = truth.ravel()
    for t in THRESHOLDS:
        row = out[f"{t:g}"]
        flat_pred = (prob.ravel() > t).astype(np.uint8)
        assert row["dice_pooled"] == pytest.approx(f1_score(flat_true, flat_pred), abs=1e-12)
        assert row["iou_pooled"] == pytest.approx(jaccard_score(flat_true, flat_pred), abs=1e-12)
        sens = recall_score(flat_true, flat_pred, pos_label=1)
        spec = recall_score(flat_true, flat_pred, pos_label=0)
        assert row["sensitivity"] == pytest.approx(sens, abs=1e-12)
        assert row["specificity"] == pytest.approx(spec, abs=1e-12)


def test_mean_per_image_dice_matches_loop() -> None:
    truth, prob = _case(seed=1)
    prob[0] = 0.0  # empty truth, empty prediction -> 1
    prob[5] = 0.95  # empty truth, full prediction -> 0
    out = segmentation_metrics(truth, prob)
    for t in THRESHOLDS:
        dices = []
        for i in range(truth.shape[0]):
            y, p = truth[i].ravel(), (prob[i].ravel() > t).astype(np.uint8)
            dices.append(f1_score(y, p, zero_division=1.0))  # both empty -> 1
        expected = float(np.mean(dices))
        assert out[f"{t:g}"]["dice_mean_per_image"] == pytest.approx(expected, abs=1e-12)
    assert out["n_images"] == 12
    assert out["n_empty_masks"] == 2


def test_empty_mask_rule() -> None:
    empty = np.zeros((2, 8, 8), dtype=np.uint8)
    both_empty = segmentation_metrics(empty, np.zeros((2, 8, 8)), thresholds=(0.5,))["0.5"]
    assert both_empty["dice_pooled"] == 1.0
    assert both_empty["dice_mean_per_image"] == 1.0
    assert both_empty["iou_pooled"] == 1.0
    assert both_empty["sensitivity"] is None  # no infected pixel: undefined

    pred_only = segmentation_metrics(empty, np.ones((2, 8, 8)), thresholds=(0.5,))["0.5"]
    assert pred_only["dice_pooled"] == 0.0
    assert pred_only["dice_mean_per_image"] == 0.0

    truth = np.zeros((2, 8, 8), dtype=np.uint8)
    truth[0, 2:4, 2:4] = 1  # image 0: truth only (Dice 0); image 1: both empty (Dice 1)
    mixed = segmentation_metrics(truth, np.zeros((2, 8, 8)), thresholds=(0.5,))
    assert mixed["0.5"]["dice_mean_per_image"] == 0.5
    assert mixed["0.5"]["dice_pooled"] == 0.0
    assert mixed["n_empty_masks"] == 1
    assert mixed["empty_mask_rule"] == EMPTY_MASK_RULE


def test_one_hot_and_plain_inputs_agree() -> None:
    truth, prob = _case(seed=2)
    plain = segmentation_metrics(truth, prob)
    assert segmentation_metrics(_one_hot(truth), _two_channel(prob)) == plain
    assert segmentation_metrics(_one_hot(truth), prob) == plain


def test_perfect_prediction_scores_one() -> None:
    truth, _ = _case(seed=3)
    out = segmentation_metrics(truth, truth.astype(np.float32))
    for t in THRESHOLDS:
        assert all(out[f"{t:g}"][key] == 1.0 for key in METRIC_KEYS)


def test_chunks_give_the_same_counts() -> None:
    truth, prob = _case(n=600, size=8, seed=4)  # more than one chunk of 256 images
    out = segmentation_metrics(truth, prob, thresholds=(0.5,))
    expected = f1_score(truth.ravel(), (prob.ravel() > 0.5).astype(np.uint8))
    assert out["0.5"]["dice_pooled"] == pytest.approx(expected, abs=1e-12)
    assert out["n_pixels"] == 600 * 64


def test_threshold_is_strict() -> None:
    truth = np.ones((1, 2, 2), dtype=np.uint8)
    out = segmentation_metrics(truth, np.full((1, 2, 2), 0.5), thresholds=(0.5,))
    assert out["0.5"]["dice_pooled"] == 0.0  # prob == threshold is not infected


def test_best_threshold() -> None:
    truth, prob = _case(seed=5)
    out = segmentation_metrics(truth, prob)
    key, value = best_threshold(out)
    assert value == max(out[f"{t:g}"]["dice_pooled"] for t in THRESHOLDS)
    assert out[key]["dice_pooled"] == value
    key_mean, _ = best_threshold(out, key="dice_mean_per_image")
    assert key_mean in {f"{t:g}" for t in THRESHOLDS}
    with pytest.raises(DataError):
        best_threshold(out, key="no_such_metric")


def test_bad_shapes_raise() -> None:
    with pytest.raises(DataError):
        segmentation_metrics(np.zeros((2, 8, 8)), np.zeros((2, 8, 9)))
    with pytest.raises(DataError):
        segmentation_metrics(np.zeros((2, 8, 8, 3)), np.zeros((2, 8, 8, 3)))
