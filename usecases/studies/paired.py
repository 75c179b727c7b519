"""A paired seed study's detail: per-seed Dice differences and the difference along the curve.

Used by ``usecase-bench-seed-study --paired``: every group must have run the reference's seeds
from the reference's initial weights (``is_paired``), so a seed's difference is the
setting's effect on that seed alone, and the curve (pooled Dice at each threshold) is compared
threshold by threshold with the same paired t interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from usecases.errors import DataError
from usecases.studies.stats import paired_interval


@dataclass(frozen=True)
class PairedDetail:
    """One group against the reference: per seed (Dice, reference Dice) and per threshold
    (mean difference, CI low, CI high), Dice in 0-1."""

    group: str
    reference: str
    threshold: str  # the study's threshold key, e.g. "0.3"
    seeds: tuple[int, ...]
    dice: tuple[float, ...]
    reference_dice: tuple[float, ...]
    curve: dict[str, tuple[float, float, float]]


def is_paired(group, ref) -> bool:
    """Same seeds (two or more), and per seed the same initial weights where both recorded them
    (``Group.initial_weights``: digests, None where a record has none)."""
    if group.seeds != ref.seeds or len(group.seeds) < 2:
        return False
    starts = zip(group.initial_weights, ref.initial_weights, strict=False)
    return all(a is None or b is None or a == b for a, b in starts)


def paired_details(groups: Sequence, *, reference: str, threshold: str, confidence: float):
    """PairedDetail of each group against ``reference``; DataError naming the first group that
    is not paired with it (other seeds, or other initial weights on a seed)."""
    by_name = {g.name: g for g in groups}
    ref = by_name[reference]
    out = []
    for group in groups:
        if group.name == reference:
            continue
        if not is_paired(group, ref):
            raise DataError(
                f"--paired: {group.name} is not paired with {reference} ({_why(group, ref)}); "
                "run both on the same seeds, the original with usecase.original.initial_weights"
                "=port, or drop --paired for an unpaired (Welch) comparison"
            )
        curve = {
            key: paired_interval(values, ref.curve[key], confidence=confidence)
            for key, values in group.curve.items()
            if key in ref.curve
        }
        out.append(
            PairedDetail(group.name, reference, threshold, group.seeds, group.dice, ref.dice, curve)
        )
    return out


def format_details(details: Sequence[PairedDetail], *, confidence: float) -> str:
    """Per-seed and per-threshold lines for the printed study."""
    lines = []
    for d in details:
        lines.append(f"paired per seed, Dice@{d.threshold}: {d.group} - {d.reference}")
        lines += [
            f"  seed {s:3d}: {a:.4f} - {b:.4f} = {a - b:+.4f}"
            for s, a, b in zip(d.seeds, d.dice, d.reference_dice, strict=True)
        ]
        lines.append(f"paired along the curve ({confidence:.0%} CI): {d.group} - {d.reference}")
        lines += [
            f"  Dice@{key}: {diff:+.4f} [{low:+.4f}, {high:+.4f}]"
            for key, (diff, low, high) in d.curve.items()
        ]
    return "\n".join(lines)


def _why(group, ref) -> str:
    if group.seeds != ref.seeds:
        return f"seeds {list(group.seeds)} vs {list(ref.seeds)}"
    if len(group.seeds) < 2:
        return "one seed: no interval"
    differ = [
        s
        for s, a, b in zip(group.seeds, group.initial_weights, ref.initial_weights, strict=False)
        if a is not None and b is not None and a != b
    ]
    return f"other initial weights on seed(s) {', '.join(map(str, differ))}"
