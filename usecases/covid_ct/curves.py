"""Learning curve and time-to-quality: the test slices evaluated after every training epoch.

MLPerf-style time-to-quality: the epochs and the wall time until the pooled Dice at one
threshold (default 0.3) first reaches a quality target (default: the published value there
minus its tolerance, 0.773 - 0.03 = 0.743, from usecases/records/published.yaml). The wall time
runs from the start of training (the first epoch, its compilation included) to the end of the
test evaluation of that epoch: training, validation and the per-epoch evaluations, never data
download or preparation. The curve is only observed: model selection stays on the validation
loss (``train.KeepBestWeights``), so the final metrics are the curve's entry at the best epoch.
The evaluation runs after the step timer's epoch end, so step and epoch timings exclude it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import keras
import numpy as np

from usecases.covid_ct.evaluate import segmentation_metrics, threshold_key
from usecases.covid_ct.quality import QualityTarget

CURVE_RULE = "test slices evaluated after each epoch; model selection uses the validation loss only"
TTQ_INCLUDES = (
    "training (compilation included), validation and the per-epoch test evaluations since the "
    "first epoch began; not data download or preparation"
)
CURVE_METRICS = ("dice_pooled", "dice_mean_per_image")


class LearningCurve(keras.callbacks.Callback):
    """After each epoch: test-set Dice at every threshold and the time since training began.

    ``x`` (N, H, W, 1) float32 slices and ``y`` (N, H, W, 2) one-hot masks; ``batch_size`` is
    the evaluation batch. Place it after the step timer in the callback list.
    """

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        *,
        thresholds: Sequence[float],
        batch_size: int,
        target: QualityTarget,
    ) -> None:
        super().__init__()
        self._x, self._y, self._batch = x, y, batch_size
        self._thresholds = tuple(float(t) for t in thresholds)
        self.target = target
        self.rows: list[dict] = []
        self.elapsed_s: list[float] = []
        self.eval_s: list[float] = []
        self._t0 = 0.0

    def on_train_begin(self, logs=None):
        self._t0 = time.perf_counter()

    def state(self) -> dict:
        """What a checkpoint keeps of it (JSON)."""
        return {"rows": self.rows, "elapsed_s": self.elapsed_s, "eval_s": self.eval_s}

    def load_state(self, state: dict) -> None:
        """Continue an earlier segment's curve; its clock goes on from the last elapsed time
        (the time between the segments, stopped and waiting, is not counted)."""
        self.rows, self.elapsed_s, self.eval_s = state["rows"], state["elapsed_s"], state["eval_s"]
        self._t0 = time.perf_counter() - (self.elapsed_s[-1] if self.elapsed_s else 0.0)

    def on_epoch_end(self, epoch, logs=None):
        start = time.perf_counter()
        prob = self.model.predict(self._x, batch_size=self._batch, verbose=0)
        self.rows.append(segmentation_metrics(self._y, prob, thresholds=self._thresholds))
        end = time.perf_counter()
        self.eval_s.append(end - start)
        self.elapsed_s.append(end - self._t0)

    def result(self) -> dict:
        """``{"learning_curve": ..., "time_to_quality": ...}`` for the record's metrics."""
        keys = [threshold_key(t) for t in self._thresholds]
        curve = {
            "rule": CURVE_RULE,
            "epoch": list(range(1, len(self.rows) + 1)),
            "by_threshold": {
                k: {m: [row[k][m] for row in self.rows] for m in CURVE_METRICS} for k in keys
            },
            "elapsed_s": self.elapsed_s,
            "eval_s": self.eval_s,
        }
        return {"learning_curve": curve, "time_to_quality": self._time_to_quality()}

    def _time_to_quality(self) -> dict:
        target = self.target
        dice = [row[target.at]["dice_pooled"] for row in self.rows]
        first = next((i for i, d in enumerate(dice) if d >= target.dice), None)
        return {
            "metric": "dice_pooled",
            "at": target.at,
            "target": target.dice,
            "target_from": target.source,
            "reached": first is not None,
            "epochs": None if first is None else first + 1,
            "seconds": None if first is None else self.elapsed_s[first],
            "best_dice": max(dice) if dice else None,
            "epochs_run": len(dice),
            "includes": TTQ_INCLUDES,
        }
