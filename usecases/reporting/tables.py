"""The report's tables, built from records as text cells (any missing value shows as "-")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from usecases.reporting.blocks import Note, Table
from usecases.reporting.runs import (
    Run,
    best_model_name,
    colabfold_models,
    efficiency,
    model_entries,
    number,
    threshold_rows,
    throughput,
    timing_entries,
)

DASH = "-"


def fmt(value: Any, *, digits: int = 3) -> str:
    """A number with ``digits`` decimals (integers as such), text as is, None as "-"."""
    if value is None:
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != 0 and (abs(value) < 10 ** (-digits) or abs(value) >= 1e6):
            return f"{value:.{digits}g}"
        return f"{value:.{digits}f}"
    return " ".join(str(value).split())


class Citations:
    """Numbers each distinct citation in order of first use."""

    def __init__(self) -> None:
        self._order: list[str] = []

    def number(self, citation: str | None) -> str:
        """'[n]' for ``citation`` (new ones get the next number); '-' when there is none."""
        if not citation:
            return DASH
        text = " ".join(citation.split())
        if text not in self._order:
            self._order.append(text)
        return f"[{self._order.index(text) + 1}]"

    def table(self) -> Table:
        """The numbered citation list."""
        rows = tuple((f"[{i + 1}]", c) for i, c in enumerate(self._order))
        return Table("tab-citations", "Citations", ("#", "citation"), rows)


def runs_table(runs: list[Run]) -> Table:
    """One row per run: identity, status, data, scale, device, backend, GPU, commit."""
    rows = []
    for run in runs:
        r = run.record
        gpus = r.environment.get("gpus") or []
        git = r.environment.get("git") or {}
        commit = str(git.get("commit") or DASH)[:10] + (" (dirty)" if git.get("dirty") else "")
        data = r.dataset.get("name", DASH) + (" (synthetic)" if r.dataset.get("synthetic") else "")
        rows.append(
            (
                r.run_id,
                r.usecase,
                r.status + (f": {r.error}" if r.error else ""),
                data,
                (r.config.get("scale") or {}).get("name", DASH),
                f"{r.device.get('requested', DASH)} -> {r.device.get('used', DASH)}"
                + _precision(r.device),
                str(r.device.get("backend") or (r.config.get("backend") or {}).get("name", DASH)),
                ", ".join(str(g.get("name")) for g in gpus if isinstance(g, Mapping)) or DASH,
                r.started_at,
                commit,
            )
        )
    columns = ("run", "use case", "status", "dataset", "scale", "device", "backend", "GPU")
    return Table("tab-runs", "Runs", (*columns, "started", "commit"), tuple(rows))


def references_table(run: Run, *, index: int, citations: Citations) -> Table | Note:
    """Published vs measured values of one run, with verdicts, reasons and citations."""
    tid = f"tab-references-{index}"
    refs = [c for c in run.record.references if isinstance(c, Mapping)]
    if not refs:
        return Note(tid, f"Published vs measured for {run.record.run_id}: the record has none.")
    rows = []
    for c in refs:
        at = c.get("measured_at") or c.get("at")
        rows.append(
            (
                str(c.get("reference_id", DASH)),
                str(c.get("metric", DASH)),
                fmt(c.get("at")),
                fmt(c.get("published")),
                fmt(c.get("measured")) + (f" (at {at})" if at and c.get("at") == "best" else ""),
                fmt(c.get("difference")),
                fmt(c.get("tolerance")),
                str(c.get("verdict", DASH)),
                fmt(c.get("reason")),
                citations.number(c.get("citation")),
            )
        )
    columns = ("reference", "metric", "at", "published", "measured", "difference", "tolerance")
    return Table(
        tid,
        f"Published vs measured (one run): {run.label}",
        (*columns, "verdict", "reason", "cite"),
        tuple(rows),
        caption="The verdicts of one training run; one run cannot confirm or refute a "
        "published single run. A reproduction verdict needs a study over seeds "
        "(usecase-bench-study, README: Reproduction studies).",
    )


def threshold_table(run: Run, *, index: int) -> Table | Note:
    """Segmentation metrics per threshold of one covid_ct run."""
    tid = f"tab-metrics-{index}"
    rows = threshold_rows(run.record.metrics)
    if not rows:
        return Note(tid, f"Metrics per threshold of {run.record.run_id}: none in the record.")
    keys = ("dice_pooled", "dice_mean_per_image", "sensitivity", "specificity", "iou_pooled")
    body = tuple((fmt(t, digits=1), *(fmt(number(row.get(k))) for k in keys)) for t, row in rows)
    m = run.record.metrics
    caption = (
        f"{fmt(m.get('n_images'))} test images; parameters {fmt(m.get('parameters'))}; "
        f"epochs run {fmt(m.get('epochs_run'))}, best epoch {fmt(m.get('best_epoch'))}."
    )
    return Table(
        tid, f"Test metrics per threshold: {run.label}", ("threshold", *keys), body, caption
    )


def models_table(run: Run, *, index: int) -> Table | Note:
    """ColabFold models of one run: mean pLDDT, pTM, time, residues, PDB, best marked."""
    tid = f"tab-models-{index}"
    models = colabfold_models(run)
    if not models:
        return Note(tid, f"ColabFold models of {run.record.run_id}: none in the record.")
    best = best_model_name(run.record.metrics, model_entries(run.record.metrics))
    rows = tuple(
        (
            m.name + (" (best)" if m.name == best else ""),
            fmt(m.mean_plddt, digits=1),
            fmt(m.ptm),
            fmt(m.time_s, digits=1),
            fmt(len(m.plddt) or None),
            m.pdb.name if m.pdb else DASH,
        )
        for m in models
    )
    columns = ("model", "mean pLDDT", "pTM", "time s", "residues", "PDB")
    return Table(tid, f"ColabFold models: {run.label}", columns, rows)


def timings_table(runs: list[Run]) -> Table | Note:
    """Every timed hot path of every run: median, spread, rate and efficiency vs a ceiling."""
    rows = []
    for run in runs:
        for path, e in sorted(timing_entries(run.record.timings).items()):
            rate = throughput(e)
            eff = efficiency(e)
            rows.append(
                (
                    path,
                    run.label,
                    fmt(e.get("n")),
                    fmt(number(e.get("median_s")), digits=4),
                    fmt(number(e.get("iqr_s")), digits=4),
                    f"{rate[1]:.1f} {rate[0]}" if rate else DASH,
                    f"{eff:.1%}" if eff is not None else DASH,
                )
            )
        for key, value in sorted(run.record.timings.items()):
            if str(key).endswith("_s") and number(value) is not None:
                rows.append((key, run.label, "1", fmt(number(value), digits=4), DASH, DASH, DASH))
    if not rows:
        return Note("tab-timings", "Timings: no record has any.")
    columns = ("hot path", "run", "n", "median s", "IQR s", "throughput", "efficiency")
    caption = "Efficiency: achieved rate / measured ceiling, where the record has one."
    return Table("tab-timings", "Timings per hot path", columns, tuple(rows), caption)


def cpu_gpu_table(runs: list[Run]) -> Table | Note:
    """CPU median / GPU median per hot path for runs that differ only in the device used."""
    pairs = []
    for gpu in (r for r in runs if r.record.device.get("used") == "gpu"):
        same = _setting(gpu)
        cpus = [r for r in runs if r.record.device.get("used") == "cpu" and _setting(r) == same]
        pairs.extend((c, gpu) for c in cpus)
    rows = []
    for cpu, gpu in pairs:
        t_cpu, t_gpu = timing_entries(cpu.record.timings), timing_entries(gpu.record.timings)
        for path in sorted(set(t_cpu) & set(t_gpu)):
            c, g = number(t_cpu[path]["median_s"]), number(t_gpu[path]["median_s"])
            ratio = f"{c / g:.1f}x" if c and g else DASH
            rows.append(
                (
                    path,
                    cpu.record.run_id,
                    gpu.record.run_id,
                    fmt(c, digits=4),
                    fmt(g, digits=4),
                    ratio,
                )
            )
    if not rows:
        return Note(
            "tab-cpu-gpu",
            "CPU vs GPU: no pair of runs with the same use case, dataset, scale and backend on "
            "both devices among these records.",
        )
    columns = ("hot path", "CPU run", "GPU run", "CPU median s", "GPU median s", "GPU speed-up")
    return Table("tab-cpu-gpu", "CPU vs GPU", columns, tuple(rows))


def environment_table(runs: list[Run]) -> Table:
    """Software and hardware of each run, one column per run."""
    keys: list[str] = []
    values: dict[str, dict[str, str]] = {}
    for run in runs:
        env = run.record.environment
        cpu = env.get("cpu") or {}
        gpus = [g for g in env.get("gpus") or [] if isinstance(g, Mapping)]
        git = env.get("git") or {}
        flat = {
            "python": env.get("python"),
            "platform": env.get("platform"),
            "host": env.get("hostname"),
            "CPU": f"{cpu.get('model', DASH)} ({cpu.get('usable_cpus', DASH)} usable threads)",
            "GPU": "; ".join(_gpu_text(g) for g in gpus) or "none",
            "git": f"{git.get('commit', DASH)}" + (" dirty" if git.get("dirty") else ""),
            **{f"lib {k}": v for k, v in sorted((env.get("libraries") or {}).items())},
            **{f"env {k}": v for k, v in sorted((env.get("variables") or {}).items())},
        }
        values[run.record.run_id] = {k: fmt(v) for k, v in flat.items()}
        keys.extend(k for k in flat if k not in keys)
    ids = [r.record.run_id for r in runs]
    rows = tuple((k, *(values[i].get(k, DASH) for i in ids)) for k in keys)
    return Table("tab-environment", "Environment", ("", *ids), rows)


def notes_table(runs: list[Run]) -> Table:
    """The notes and the error of each run."""
    rows = []
    for run in runs:
        r = run.record
        rows.extend((r.run_id, n) for n in r.notes)
        if r.error:
            rows.append((r.run_id, f"error: {r.error}"))
        rows.extend(
            (r.run_id, f"check {c.get('name')}: {'passed' if c.get('passed') else 'FAILED'}")
            for c in r.checks
            if isinstance(c, Mapping)
        )
    return Table("tab-notes", "Notes", ("run", "note"), tuple(rows) or (("-", "no notes"),))


def _gpu_text(gpu: Mapping) -> str:
    return (
        f"{gpu.get('name')} (driver {gpu.get('driver')}, CUDA {gpu.get('cuda')}, "
        f"{gpu.get('memory')})"
    )


def _setting(run: Run) -> tuple:
    r = run.record
    scale = (r.config.get("scale") or {}).get("name")
    return r.usecase, r.dataset.get("name"), scale, r.device.get("backend")


def _precision(device: Mapping) -> str:
    """ ", mixed_bfloat16" when the record names the run's Keras dtype policy, else ""."""
    precision = device.get("precision")
    return f", {precision.get('policy')}" if isinstance(precision, Mapping) else ""
