"""Segmentation metrics of the infection channel over a sweep of thresholds (plain numpy).

A pixel is predicted infected when its probability is strictly above the threshold
(``prob > t``, as in the TV-UNet notebook); a true mask pixel is infected when its value
is above 0.5. Two Dice values are reported because the literature uses both:

* ``dice_pooled``: 2|P∩T| / (|P|+|T|) over all test pixels at once (TV-UNet notebook);
* ``dice_mean_per_image``: the mean over images of each image's Dice (Inf-Net).

Empty-mask rule (see ``EMPTY_MASK_RULE``): per image, Dice = 1 if both the true and the
predicted masks are empty and 0 if only one of them is; pooled Dice (and IoU) over a set
whose true and predicted masks are all empty is 1. Sensitivity and specificity are pooled
over pixels and are ``None`` when undefined (no positive, or no negative, true pixels).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from usecases.errors import DataError

THRESHOLDS: tuple[float, ...] = tuple(round(0.1 * k, 1) for k in range(1, 10))

EMPTY_MASK_RULE = (
    "per image: Dice = 1 if both the true and the predicted masks are empty, 0 if only one "
    "is empty; pooled Dice and IoU over an all-empty set are 1 when the prediction is empty too"
)
PREDICTION_RULE = "infected where prob > threshold; truth infected where value > 0.5"

METRIC_KEYS = ("dice_pooled", "dice_mean_per_image", "sensitivity", "specificity", "iou_pooled")

_CHUNK = 256  # images per chunk: 256 x 128 x 128 booleans = 4 MiB per array


def threshold_key(threshold: float) -> str:
    """Dictionary key of a threshold: ``0.3`` -> ``"0.3"``, ``0.25`` -> ``"0.25"``."""
    return f"{round(float(threshold), 6):g}"


def _infection(array: np.ndarray, *, name: str) -> np.ndarray:
    """(N, H, W, 2) one-hot/probabilities -> channel 1; (N, H, W) passes through."""
    array = np.asarray(array)
    if array.ndim == 4 and array.shape[-1] == 2:
        return array[..., 1]
    if array.ndim == 3:
        return array
    raise DataError(
        f"{name} has shape {array.shape}; expected (N, H, W, 2) with channel 1 = infection "
        "or (N, H, W)"
    )


def _ratio(num: int, den: int, *, empty: float | None) -> float | None:
    """num / den as a float, or ``empty`` when den is 0."""
    return float(num) / float(den) if den > 0 else empty


def segmentation_metrics(
    y_true: np.ndarray,
    prob: np.ndarray,
    *,
    thresholds: Sequence[float] = THRESHOLDS,
) -> dict:
    """Dice, IoU, sensitivity and specificity of the infection channel at each threshold.

    Args:
        y_true: ground truth, uint8 one-hot (N, H, W, 2) or binary (N, H, W).
        prob: sigmoid probabilities in [0, 1], (N, H, W, 2) or (N, H, W).
        thresholds: probability thresholds; a pixel is predicted infected if prob > t.

    Returns:
        ``{"0.1": {"dice_pooled", "dice_mean_per_image", "sensitivity", "specificity",
        "iou_pooled"}, ..., "n_images", "n_empty_masks", "n_pixels", "empty_mask_rule",
        "prediction_rule"}``; metric values are floats in [0, 1] (sensitivity or
        specificity ``None`` when undefined). Pixel counts are int64.
    """
    truth = _infection(y_true, name="y_true")
    scores = _infection(prob, name="prob")
    if truth.shape != scores.shape:
        raise DataError(
            f"y_true infection masks {truth.shape} and predictions {scores.shape} differ in "
            "shape; predict on the same test slices as the masks"
        )
    if truth.shape[0] == 0 or truth[0].size == 0:
        raise DataError(f"no test pixels to evaluate (shape {truth.shape}); check the test split")
    if not thresholds:
        raise DataError("no thresholds given; pass at least one, e.g. 0.5")
    n, pixels_per_image = truth.shape[0], truth[0].size
    thr = [float(t) for t in thresholds]
    tp = np.zeros((n, len(thr)), dtype=np.int64)  # per image, per threshold
    pred_pos = np.zeros((n, len(thr)), dtype=np.int64)
    true_pos = np.zeros(n, dtype=np.int64)
    for start in range(0, n, _CHUNK):
        t_chunk = truth[start : start + _CHUNK].reshape(-1, pixels_per_image) > 0.5
        p_chunk = scores[start : start + _CHUNK].reshape(t_chunk.shape)
        stop = start + t_chunk.shape[0]
        true_pos[start:stop] = np.count_nonzero(t_chunk, axis=1)
        for k, t in enumerate(thr):
            pred = p_chunk > t
            pred_pos[start:stop, k] = np.count_nonzero(pred, axis=1)
            tp[start:stop, k] = np.count_nonzero(pred & t_chunk, axis=1)

    n_pixels = int(truth.size)
    pos = int(true_pos.sum())
    neg = n_pixels - pos
    out: dict = {}
    for k, t in enumerate(thr):
        tp_k, pp_k = int(tp[:, k].sum()), int(pred_pos[:, k].sum())
        fp_k = pp_k - tp_k
        per_image_den = pred_pos[:, k] + true_pos
        per_image = np.where(per_image_den > 0, 2.0 * tp[:, k] / np.maximum(per_image_den, 1), 1.0)
        out[threshold_key(t)] = {
            "dice_pooled": _ratio(2 * tp_k, pp_k + pos, empty=1.0),
            "dice_mean_per_image": float(per_image.mean()),
            "sensitivity": _ratio(tp_k, pos, empty=None),
            "specificity": _ratio(neg - fp_k, neg, empty=None),
            "iou_pooled": _ratio(tp_k, pp_k + pos - tp_k, empty=1.0),
        }
    out["n_images"] = int(n)
    out["n_empty_masks"] = int(np.count_nonzero(true_pos == 0))
    out["n_pixels"] = n_pixels
    out["empty_mask_rule"] = EMPTY_MASK_RULE
    out["prediction_rule"] = PREDICTION_RULE
    return out


def best_threshold(metrics: Mapping, *, key: str = "dice_pooled") -> tuple[str, float]:
    """Threshold key with the highest ``key`` in ``segmentation_metrics`` output.

    Returns ``(threshold_key, value)``; ties go to the first (lowest) threshold.
    """
    best: tuple[str, float] | None = None
    for at, row in metrics.items():
        if not isinstance(row, Mapping) or row.get(key) is None:
            continue
        value = float(row[key])
        if best is None or value > best[1]:
            best = (at, value)
    if best is None:
        raise DataError(f"no per-threshold values of {key!r} in the metrics")
    return best
