"""The report's study section: verdict table, Dice band over seeds, learning curves, time to target.

Reads study records (``usecases.records.study``) only; the per-seed records the study names
are rendered by the rest of the report as ordinary runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure as MplFigure
from matplotlib.ticker import MaxNLocator

from usecases.records.study import StudyRecord
from usecases.reporting.blocks import Block, Figure, Note, Paragraph, Section, Table
from usecases.reporting.figures import to_png
from usecases.reporting.tables import fmt


def study_section(study: StudyRecord, *, index: int) -> Section:
    """One section per study: what was run, the verdicts, the figures and the intervals."""
    blocks: list[Block] = [
        Paragraph(
            f"Reproduction study {study.study_id} of {study.setting}: seeds "
            f"{', '.join(map(str, study.seeds)) or 'none ok'}"
            + (f"; failed and left out: {'; '.join(study.failed)}" if study.failed else "")
            + f". Rule: {study.verdict_rule}"
        ),
        verdict_table(study, index=index),
        dice_band(study, index=index),
        learning_curves(study, index=index),
        interval_table(study, index=index),
        time_to_quality_table(study, index=index),
    ]
    return Section(f"sec-study-{index}", f"Reproduction study: {study.study_id}", tuple(blocks))


def verdict_table(study: StudyRecord, *, index: int) -> Table:
    """Each published value against the seeds' distribution, with the numbers that decided."""
    rows = []
    for v in study.verdicts:
        s = v["summary"]
        rows.append(
            (
                str(v["reference_id"]),
                f"{v['metric']}" + ("" if v["at"] is None else f" at {v['at']}"),
                f"{fmt(v['published'])} +- {fmt(v['tolerance'])}",
                str(s["n"]),
                fmt(s["mean"]),
                _pair(s["ci"]),
                _pair(s["pi"]),
                str(v["verdict"]),
                str(v["reason"]),
            )
        )
    pct = f"{study.confidence:.0%}"
    return Table(
        f"tab-study-verdicts-{index}",
        f"Reproduction verdicts over {len(study.seeds)} seeds",
        (
            "reference",
            "metric",
            "published",
            "n",
            "mean",
            f"{pct} CI",
            f"{pct} PI (one run)",
            "verdict",
            "reason",
        ),
        tuple(rows),
        caption="CI: t interval of the mean over seeds; PI: t prediction interval of one more "
        "run, the range a single published run of the same setting would fall in.",
    )


def dice_band(study: StudyRecord, *, index: int) -> Figure | Note:
    """Per-seed pooled Dice over thresholds, the mean with its CI and PI bands, the paper."""
    fid = f"fig-study-band-{index}"
    keys = [k for k, row in study.per_threshold.items() if row.get("dice_pooled")]
    if not keys:
        return Note(fid, "Dice band: skipped, the study has no per-threshold Dice.")
    t = np.array([float(k) for k in keys])
    fig = MplFigure(figsize=(7.0, 4.2))
    ax = fig.add_subplot()
    for run in study.runs:
        pts = [(float(k), v) for k, v in (run.get("dice_pooled") or {}).items() if v is not None]
        if pts and run.get("status") == "ok":
            ax.plot(*zip(*sorted(pts), strict=True), "-", color="C0", alpha=0.35, lw=1)
    rows = [study.per_threshold[k]["dice_pooled"] for k in keys]
    ax.plot(t, [r["mean"] for r in rows], "-o", color="C0", ms=4, label="mean over seeds")
    for band, alpha, label in (("pi", 0.15, "95 % PI of one run"), ("ci", 0.35, "95 % CI")):
        if all(r[band] for r in rows):
            low, high = zip(*(r[band] for r in rows), strict=True)
            ax.fill_between(t, low, high, color="C0", alpha=alpha, lw=0, label=label)
    published = _published_curve(study.verdicts)
    if published:
        ax.plot(*zip(*published, strict=True), "s--", color="black", ms=5, label="published")
    ax.set(xlabel="threshold on infection probability", ylabel="pooled Dice", ylim=(0, 1))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    caption = (
        f"Thin lines: the {len(study.seeds)} seeds; bands: the 95 % confidence interval of the "
        "mean (dark) and the prediction interval of one run (light). Black: the published "
        "TV-UNet curve (one run)."
    )
    unusable = [v for v in study.verdicts if v.get("metric") == "dice_pooled"]
    if unusable and all(v["verdict"] == "not established" for v in unusable):
        caption += f" Shown for orientation only, no verdict: {unusable[0]['reason']}."
    caption += " The t intervals are not clipped to [0, 1]."
    return Figure(fid, "Pooled Dice over seeds vs the published curve", caption, to_png(fig))


def learning_curves(study: StudyRecord, *, index: int) -> Figure | Note:
    """Pooled test Dice at 0.3 after every epoch, one line per seed, the target dashed."""
    fid = f"fig-study-curves-{index}"
    runs = [r for r in study.runs if r.get("curve_dice_pooled")]
    if not runs:
        return Note(fid, "Learning curves: skipped, no run of the study recorded one.")
    fig = MplFigure(figsize=(7.0, 3.8))
    ax = fig.add_subplot()
    for i, run in enumerate(runs):
        dice = [np.nan if v is None else v for v in run["curve_dice_pooled"]]
        label, colour = f"seed {run['seed']}", f"C{i % 10}"
        ax.plot(range(1, len(dice) + 1), dice, "-o", ms=3, color=colour, label=label)
    target = study.time_to_quality.get("target")
    if target is not None:
        ax.axhline(target, color="black", ls="--", lw=1, label=f"target {target:g}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    at = runs[0].get("curve_dice_pooled_at", "0.3")
    ax.set(xlabel="epoch", ylabel=f"pooled test Dice at {at}", ylim=(0, 1))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    caption = (
        f"Test-set pooled Dice at {at} after each epoch (observed only; the model kept is the "
        "one with the lowest validation loss)."
    )
    return Figure(fid, "Learning curves per seed", caption, to_png(fig))


def interval_table(study: StudyRecord, *, index: int) -> Table:
    """Per threshold: n, mean, sd, CI and PI of the pooled and per-image Dice."""
    rows = []
    for key, row in study.per_threshold.items():
        for metric in ("dice_pooled", "dice_mean_per_image"):
            s = row.get(metric)
            if s:
                rows.append(
                    (
                        key,
                        metric,
                        str(s["n"]),
                        fmt(s["mean"]),
                        fmt(s["sd"]),
                        _pair(s["ci"]),
                        _pair(s["pi"]),
                    )
                )
    return Table(
        f"tab-study-intervals-{index}",
        "Dice per threshold over seeds",
        ("threshold", "metric", "n", "mean", "sd", "95 % CI", "95 % PI (one run)"),
        tuple(rows),
    )


def time_to_quality_table(study: StudyRecord, *, index: int) -> Table | Note:
    """How many seeds reached the quality target, and after how many epochs and seconds."""
    tid = f"tab-study-ttq-{index}"
    ttq = study.time_to_quality
    if not ttq.get("recorded"):
        return Note(tid, "Time to quality: no run of the study recorded a learning curve.")
    rows = tuple(
        (
            str(run.get("seed")),
            "yes" if t.get("reached") else "no",
            fmt(t.get("epochs")),
            fmt(t.get("seconds"), digits=1),
            fmt(t.get("best_dice")),
            fmt(t.get("epochs_run")),
        )
        for run in study.runs
        if isinstance(t := run.get("time_to_quality"), Mapping)
    )
    return Table(
        tid,
        f"Time to quality: {ttq['metric']} at {ttq['at']} >= {fmt(ttq['target'])} "
        f"({ttq['reached']} of {ttq['recorded']} seeds)",
        ("seed", "reached", "epochs", "seconds", "best Dice", "epochs run"),
        rows,
        caption=f"Target from {ttq.get('target_from')}. Seconds: {ttq.get('includes')}.",
    )


def _published_curve(verdicts: Sequence[Mapping]) -> list[tuple[float, float]]:
    points = []
    for v in verdicts:
        if v.get("metric") != "dice_pooled":
            continue
        try:
            points.append((float(v["at"]), float(v["published"])))
        except (TypeError, ValueError):
            continue
    return sorted(points)


def _pair(pair: Sequence[float] | None) -> str:
    return "-" if not pair else f"[{pair[0]:.3f}, {pair[1]:.3f}]"
