"""The time-to-quality target of covid_ct runs: pooled Dice at one threshold (no framework).

Read from ``usecase.curve`` before any framework is imported (``usecase.validate``), so that
a bad target is one line before TensorFlow starts; ``curves.LearningCurve`` measures it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from usecases.covid_ct.evaluate import threshold_key
from usecases.errors import ConfigError
from usecases.numbers import finite
from usecases.records.references import Reference, load_references


@dataclass(frozen=True)
class QualityTarget:
    """Pooled Dice ``dice`` at threshold ``at`` (key such as "0.3"); ``source`` says whence."""

    at: str
    dice: float
    source: str


def quality_target(curve: Mapping, *, thresholds: Sequence[float]) -> QualityTarget:
    """``usecase.curve`` (target_at, target_dice) as a QualityTarget; ConfigError when invalid.

    ``target_dice`` null takes the published pooled Dice at ``target_at`` minus its tolerance.
    """
    at = curve.get("target_at")
    if finite(at) is None or threshold_key(at) not in {threshold_key(t) for t in thresholds}:
        raise ConfigError(
            f"usecase.curve.target_at={at} is not one of usecase.evaluate.thresholds "
            f"({', '.join(map(str, thresholds))})."
        )
    key = threshold_key(at)
    dice = curve.get("target_dice")
    if dice is not None:
        if finite(dice) is None or not 0 < float(dice) <= 1:
            raise ConfigError(
                f"usecase.curve.target_dice={dice} must be a Dice in (0, 1], e.g. 0.743, "
                "or null for the published value minus its tolerance."
            )
        return QualityTarget(key, float(dice), "usecase.curve.target_dice")
    ref = _published_dice(key)
    if ref is None or ref.tolerance is None:
        raise ConfigError(
            f"no published pooled Dice at {key} to take a quality target from: set "
            "usecase.curve.target_dice, e.g. 0.743, or usecase.curve.target_at=0.3."
        )
    return QualityTarget(
        key,
        round(ref.value - float(ref.tolerance or 0.0), 6),
        f"{ref.id}: published {ref.value:g} - tolerance {ref.tolerance:g}",
    )


def _published_dice(key: str) -> Reference | None:
    refs = load_references()
    return next(
        (
            r
            for r in refs
            if r.usecase == "covid_ct"
            and r.metric == "dice_pooled"
            and r.at == key
            and r.role == "target"
        ),
        None,
    )
