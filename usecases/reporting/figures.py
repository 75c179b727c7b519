"""The report's figures, drawn with matplotlib's object API (Agg, no pyplot state) as PNG bytes.

Each function returns a ``Figure`` block, or a ``Note`` saying why the figure was skipped.
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure as MplFigure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from usecases.colabfold_spike.pdb import read_ca_trace
from usecases.reporting.blocks import Figure, Note
from usecases.reporting.runs import (
    Run,
    best_model,
    best_threshold,
    best_with_pdb,
    colabfold_models,
    number,
    published_curve,
    threshold_rows,
    timing_entries,
)
from usecases.reporting.slices import load_test_slices, pick_slices

# AlphaFold/ColabFold pLDDT bands: (low, high, label, colour).
PLDDT_BANDS = (
    (90.0, 100.0, "very high (>90)", "#0053D6"),
    (70.0, 90.0, "confident (70-90)", "#65CBF3"),
    (50.0, 70.0, "low (50-70)", "#FFDB13"),
    (0.0, 50.0, "very low (<50)", "#FF7D45"),
)
_PLDDT_CMAP = ListedColormap([b[3] for b in reversed(PLDDT_BANDS)])
_PLDDT_NORM = BoundaryNorm([0, 50, 70, 90, 100], _PLDDT_CMAP.N)
_PRED_CMAP = ListedColormap(["#ff2020"])
DPI = 100


def to_png(fig: MplFigure) -> bytes:
    """Render a matplotlib figure to PNG bytes (no file, no display)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def dice_curve(runs: list[Run]) -> Figure | Note:
    """Pooled (and mean per-image) Dice against threshold per run, the published curve on top."""
    fid = "fig-dice-threshold"
    runs = [r for r in runs if threshold_rows(r.record.metrics)]
    if not runs:
        return Note(fid, "Dice vs threshold: skipped, no record has per-threshold metrics.")
    fig = MplFigure(figsize=(7.0, 4.2))
    ax = fig.add_subplot()
    published: list[tuple[float, float]] = []
    for i, run in enumerate(runs):
        rows = threshold_rows(run.record.metrics)
        colour = f"C{i % 10}"
        for metric, style, what in (
            ("dice_pooled", "-o", "pooled"),
            ("dice_mean_per_image", ":", "mean/image"),
        ):
            pts = [(t, number(row.get(metric))) for t, row in rows]
            pts = [(t, v) for t, v in pts if v is not None]
            if pts:
                ax.plot(
                    *zip(*pts, strict=True), style, color=colour, ms=4, label=f"{run.label}: {what}"
                )
        published = published or published_curve(run.record.references)
    if published:
        ax.plot(
            *zip(*published, strict=True),
            "s--",
            color="black",
            ms=5,
            label="published TV-UNet (pooled)",
        )
    ax.set(xlabel="threshold on infection probability", ylabel="Dice", ylim=(0, 1), xlim=(0, 1))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    caption = "Test-set Dice per threshold (solid: pooled over all pixels; dotted: mean per image)."
    caption += (
        " Black: the published TV-UNet curve (Saeedizadeh et al. 2021)."
        if published
        else " No published curve in these records."
    )
    if any(r.record.dataset.get("synthetic") for r in runs):
        caption += " Synthetic-data runs are not comparable with the published curve."
    return Figure(fid, "Dice vs threshold", caption, to_png(fig))


def training_curves(runs: list[Run]) -> Figure | Note:
    """Training and validation loss per epoch (and the learning rate) of each run."""
    fid = "fig-training"
    runs = [r for r in runs if isinstance(r.record.metrics.get("history"), dict)]
    runs = [r for r in runs if r.record.metrics["history"].get("loss")]
    if not runs:
        return Note(fid, "Training curves: skipped, no record has a training history.")
    fig = MplFigure(figsize=(9.0, 3.6), layout="constrained")
    ax, ax_lr = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2, 1]})
    for i, run in enumerate(runs):
        hist, colour = run.record.metrics["history"], f"C{i % 10}"
        for key, style in (("loss", "-o"), ("val_loss", "--s")):
            values = [number(v) for v in hist.get(key) or []]
            if values:
                epochs = np.arange(1, len(values) + 1)
                ax.plot(epochs, values, style, color=colour, ms=3, label=f"{run.label}: {key}")
        lr = [number(v) for v in hist.get("learning_rate") or []]
        if lr and all(v is not None and v > 0 for v in lr):
            ax_lr.plot(np.arange(1, len(lr) + 1), lr, "-", color=colour)
    ax.set(xlabel="epoch", ylabel="loss (BCE + TV)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax_lr.set(xlabel="epoch", ylabel="learning rate", yscale="log")
    for a in (ax, ax_lr):
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_lr.grid(alpha=0.3)
    caption = "Loss per epoch (solid: training, dashed: validation) and the learning rate."
    return Figure(fid, "Training curves", caption, to_png(fig))


def ct_slices(run: Run, *, index: int = 0) -> Figure | Note:
    """A few test slices: true infection outlined in green, predicted infection shaded red."""
    fid = f"fig-ct-slices-{index}"
    data = load_test_slices(run)
    if isinstance(data, str):
        return Note(fid, f"CT slices of {run.record.run_id}: skipped, {data}.")
    threshold = best_threshold(run.record.metrics) or 0.5
    picks = pick_slices(data.truth)
    fig = MplFigure(figsize=(2.6 * len(picks), 2.9))
    axes = np.atleast_1d(fig.subplots(1, len(picks)))
    for ax, i in zip(axes, picks, strict=True):
        pred = data.prob[i] > threshold
        truth = data.truth[i]
        ax.imshow(data.images[i], cmap="gray")
        if pred.any():
            shade = np.ma.masked_where(~pred, pred.astype(float))
            ax.imshow(shade, cmap=_PRED_CMAP, vmin=0, vmax=1, alpha=0.45, interpolation="nearest")
        if truth.any():
            ax.contour(truth, levels=[0.5], colors=["#00e000"], linewidths=1.4)
        denom = truth.sum() + pred.sum()
        dice = 1.0 if denom == 0 else 2 * np.logical_and(truth, pred).sum() / denom
        ax.set_title(f"test slice {i}: Dice {dice:.2f}", fontsize=8)
        ax.set_axis_off()
    kind = "synthetic phantom" if data.synthetic else "real CT"
    caption = (
        f"{kind} test slices of {run.label}, spread over lesion size: true infection outlined "
        f"in green, predicted infection (probability > {threshold:g}, the best pooled-Dice "
        "threshold) shaded red."
    )
    return Figure(fid, f"CT slices ({run.record.run_id})", caption, to_png(fig))


def plddt_profile(run: Run, *, index: int = 0) -> Figure | Note:
    """Per-residue pLDDT of each ColabFold model over the confidence bands."""
    fid = f"fig-plddt-{index}"
    models = [m for m in colabfold_models(run) if m.plddt]
    if not models:
        return Note(
            fid, f"pLDDT per residue of {run.record.run_id}: skipped, no per-residue pLDDT."
        )
    fig = MplFigure(figsize=(9.0, 3.6))
    ax = fig.add_subplot()
    for low, high, label, colour in PLDDT_BANDS:
        ax.axhspan(low, high, color=colour, alpha=0.18, lw=0, label=label)
    best = best_model(run, models)
    for i, model in enumerate(models):
        residues = np.arange(1, len(model.plddt) + 1)
        width = 1.8 if model is best else 0.9
        ax.plot(residues, model.plddt, color=f"C{i % 10}", lw=width, label=model.name)
    ax.set(
        xlabel="residue", ylabel="pLDDT", ylim=(0, 100), xlim=(1, max(len(m.plddt) for m in models))
    )
    ax.legend(fontsize=7, ncol=2, loc="lower right")
    caption = (
        f"Per-residue pLDDT of {run.label} (thicker line: best model {best.name}); bands: "
        ">90 very high, 70-90 confident, 50-70 low, <50 very low."
    )
    return Figure(fid, f"pLDDT per residue ({run.record.run_id})", caption, to_png(fig))


def structure_view(run: Run, *, index: int = 0) -> Figure | Note:
    """Two 3-D views of the best model's CA trace, coloured by pLDDT (from the PDB B-factors)."""
    fid = f"fig-structure-{index}"
    found = best_with_pdb(run)
    if found is None:
        return Note(fid, f"3-D structure of {run.record.run_id}: skipped, no PDB file found.")
    best, pdb = found
    trace = read_ca_trace(pdb)
    if len(trace) < 2:
        return Note(fid, f"3-D structure of {run.record.run_id}: skipped, {pdb} has < 2 CA atoms.")
    xyz = np.array([p for p, _ in trace], dtype=float)
    xyz -= xyz.mean(axis=0)
    # principal axes: the longest extent horizontal, the second vertical, the third in depth
    axes = np.linalg.svd(xyz, full_matrices=False)[2]
    xyz = (xyz @ axes.T)[:, [0, 2, 1]]
    bfac = np.array([b for _, b in trace], dtype=float)
    if bfac.max() <= 1.0:  # some writers store pLDDT as 0..1
        bfac = bfac * 100.0
    import mpl_toolkits.mplot3d  # noqa: F401  (registers the 3-D projection)
    from mpl_toolkits.mplot3d.art3d import Line3DCollection

    fig = MplFigure(figsize=(9.0, 4.4))
    segments = np.stack([xyz[:-1], xyz[1:]], axis=1)
    colour_of = (bfac[:-1] + bfac[1:]) / 2
    for k, azim in enumerate((-75, 15)):
        ax = fig.add_subplot(1, 2, k + 1, projection="3d")
        lines = Line3DCollection(segments, cmap=_PLDDT_CMAP, norm=_PLDDT_NORM, linewidths=2.0)
        lines.set_array(colour_of)
        ax.add_collection3d(lines)
        ax.scatter(*xyz.T, c=bfac, cmap=_PLDDT_CMAP, norm=_PLDDT_NORM, s=6, depthshade=False)
        span = np.abs(xyz).max() or 1.0
        ax.set(xlim=(-span, span), ylim=(-span, span), zlim=(-span, span))
        ax.view_init(elev=12, azim=azim)
        ax.set_title(f"azimuth {azim}°", fontsize=8)
        ax.set_axis_off()
    handles = [Patch(color=c, label=label) for _, _, label, c in PLDDT_BANDS]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=8, frameon=False)
    caption = (
        f"CA trace of {best.name} ({pdb.name}, {len(trace)} residues) of {run.label}, "
        "two views, coloured by pLDDT from the PDB B-factor column."
    )
    return Figure(fid, f"Predicted structure ({run.record.run_id})", caption, to_png(fig))


def timing_bars(runs: list[Run]) -> Figure | Note:
    """Median time per hot path of each run (log scale), whiskers from min to max."""
    fid = "fig-timings"
    per_run = [(r, timing_entries(r.record.timings)) for r in runs]
    per_run = [(r, t) for r, t in per_run if t]
    if not per_run:
        return Note(fid, "Timings: skipped, no record has timed hot paths.")
    paths = sorted({p for _, t in per_run for p in t})
    fig = MplFigure(figsize=(8.0, 0.45 * len(paths) * len(per_run) + 1.4))
    ax = fig.add_subplot()
    height = 0.8 / len(per_run)
    y = np.arange(len(paths))
    for i, (run, entries) in enumerate(per_run):
        med = np.array([number(entries[p]["median_s"]) if p in entries else np.nan for p in paths])
        lo = np.array([number(entries.get(p, {}).get("min_s")) or np.nan for p in paths])
        hi = np.array([number(entries.get(p, {}).get("max_s")) or np.nan for p in paths])
        err = np.nan_to_num(np.vstack([med - lo, hi - med]), nan=0.0).clip(min=0)
        ax.barh(
            y + i * height, med, height, xerr=err, color=f"C{i % 10}", label=run.label, capsize=2
        )
    ax.set_yticks(y + height * (len(per_run) - 1) / 2, paths, fontsize=8)
    ax.set(xscale="log", xlabel="median seconds per call (whiskers: min to max)")
    ax.grid(alpha=0.3, axis="x")
    ax.legend(fontsize=7)
    caption = "Median time of each timed hot path per run (compilation and warm-up excluded)."
    return Figure(fid, "Median time per hot path", caption, to_png(fig))
