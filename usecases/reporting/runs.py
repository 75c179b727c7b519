"""Read result records for the report and pull out what it shows, tolerating missing parts.

Every accessor returns an empty value (or None) when the record lacks the part, so that a
failed run, an older record or a use case that fills other fields still renders.

ColabFold records are read from these fields (any may be absent):
per model, ``metrics.<model name>`` = {mean_plddt, ptm, time_s, plddt_per_residue: [...]}
(usecases.colabfold_spike: ``model_1`` ...; entries with a ``model`` field, such as
``rank_1``, are aliases and skipped), or the same dicts under ``metrics.models`` (a mapping,
or a list of dicts with a ``name``); ``metrics.best_model``: a name (else the highest mean
pLDDT); ``metrics.plddt_per_residue_best``: the best model's list. PDB files: artifact
``<model>_pdb``, else any artifact path ending in ``.pdb`` whose file name names the model;
pLDDT per residue falls back to the PDB's CA B-factors.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from usecases.colabfold_spike.pdb import read_ca_trace
from usecases.numbers import finite as number
from usecases.records.record import ResultRecord, load_record
from usecases.records.sets import find_records, run_key

PLDDT_KEY = "plddt_per_residue"  # of each model entry
BEST_PLDDT_KEY = "plddt_per_residue_best"  # of the best model, at the top of the metrics


@dataclass(frozen=True)
class Run:
    """One record and the folder it was read from (where its artifacts lie)."""

    record: ResultRecord
    path: Path

    @property
    def run_dir(self) -> Path:
        """The run folder (the record's parent)."""
        return self.path.parent

    @property
    def key(self) -> str:
        """usecase/dataset/scale/device/backend, as the gate matches runs."""
        return run_key(self.record)

    @property
    def label(self) -> str:
        """Short legend label: dataset, scale, device used, backend and run id."""
        r = self.record
        scale = (r.config.get("scale") or {}).get("name", "?")
        return f"{r.dataset.get('name', '?')}/{scale}/{r.device.get('used', '?')} ({r.run_id})"


@dataclass(frozen=True)
class ModelScore:
    """One ColabFold model: scores, per-residue pLDDT and its PDB file where known."""

    name: str
    mean_plddt: float | None
    ptm: float | None
    time_s: float | None
    plddt: tuple[float, ...]
    pdb: Path | None


def load_runs(paths: list[Path]) -> list[Run]:
    """Load and validate every record (folders are searched for record.json); DataError."""
    return [Run(record=load_record(p), path=Path(p)) for p in find_records(paths)]


def threshold_rows(metrics: Mapping) -> list[tuple[float, Mapping]]:
    """Per-threshold metric rows ("0.1": {...}) sorted by threshold."""
    rows = []
    for key, row in metrics.items():
        try:
            t = float(key)
        except (TypeError, ValueError):
            continue
        if isinstance(row, Mapping):
            rows.append((t, row))
    return sorted(rows, key=lambda kv: kv[0])


def best_threshold(metrics: Mapping, *, metric: str = "dice_pooled") -> float | None:
    """Threshold with the highest ``metric`` (first of equal maxima), None when there is none."""
    rows = [(t, number(row.get(metric))) for t, row in threshold_rows(metrics)]
    rows = [(t, v) for t, v in rows if v is not None]
    return max(rows, key=lambda kv: kv[1])[0] if rows else None


def published_curve(references: list, *, metric: str = "dice_pooled") -> list[tuple[float, float]]:
    """(threshold, published value) of the references for ``metric`` at fixed thresholds."""
    points = []
    for ref in references:
        if not isinstance(ref, Mapping) or ref.get("metric") != metric:
            continue
        value = number(ref.get("published"))
        try:
            at = float(ref.get("at"))
        except (TypeError, ValueError):
            continue
        if value is not None:
            points.append((at, value))
    return sorted(set(points))


def timing_entries(timings: Mapping) -> dict[str, Mapping]:
    """Hot paths: timing entries that are dicts with a median (scalars are kept apart)."""
    return {
        k: v
        for k, v in timings.items()
        if isinstance(v, Mapping) and number(v.get("median_s")) is not None
    }


def throughput(entry: Mapping) -> tuple[str, float] | None:
    """(unit, value) of the entry's rate: images/s, items/s, residues/s or any '*_per_s'."""
    for key, value in entry.items():
        if str(key).endswith("_per_s") and not str(key).startswith("gflop"):
            v = number(value)
            if v is not None:
                return str(key).removesuffix("_per_s").replace("_", " ") + "/s", v
    return None


def efficiency(entry: Mapping) -> float | None:
    """Fraction of a measured ceiling: an ``efficiency*`` field, else achieved / ceiling."""
    for key, value in entry.items():
        if str(key).startswith("efficiency") and number(value) is not None:
            return number(value)
    achieved = number(entry.get("gflops_per_s"))
    ceiling = number(entry.get("ceiling_gflops_per_s"))
    if achieved is not None and ceiling:
        return achieved / ceiling
    return None


def colabfold_models(run: Run) -> list[ModelScore]:
    """Per-model scores of a ColabFold record (empty when the record has none)."""
    metrics = run.record.metrics
    raw = model_entries(metrics)
    pdbs = pdb_artifacts(run)
    best = best_model_name(metrics, raw)
    models = []
    for name, entry in raw.items():
        plddt = _floats(entry.get(PLDDT_KEY))
        if not plddt and name == best:
            plddt = _floats(metrics.get(BEST_PLDDT_KEY))
        pdb = _pdb_for(name, run, pdbs, only=len(raw) == 1)
        if not plddt and pdb is not None:
            plddt = tuple(b for _, b in read_ca_trace(pdb))
        models.append(
            ModelScore(
                name=str(name),
                mean_plddt=number(entry.get("mean_plddt")),
                ptm=number(entry.get("ptm")),
                time_s=number(entry.get("time_s")),
                plddt=plddt,
                pdb=pdb,
            )
        )
    return models


def model_entries(metrics: Mapping) -> dict[str, Mapping]:
    """{model name: its metrics}: the per-model dicts at the top of ``metrics`` (rank entries,
    which name their ``model``, excluded)."""
    return {
        str(k): v
        for k, v in metrics.items()
        if isinstance(v, Mapping) and "mean_plddt" in v and "model" not in v
    }


def best_model_name(metrics: Mapping, models: Mapping) -> str | None:
    """``metrics.best_model`` (a name or a dict with one), else the highest mean pLDDT."""
    best = metrics.get("best_model")
    if isinstance(best, Mapping):
        best = best.get("name") or best.get("model")
    if isinstance(best, str):
        return best
    scored = [
        (number(m.get("mean_plddt")), str(n)) for n, m in models.items() if isinstance(m, Mapping)
    ]
    scored = [(v, n) for v, n in scored if v is not None]
    return max(scored)[1] if scored else None


def pdb_artifacts(run: Run) -> list[Path]:
    """Existing PDB files named anywhere in the record's artifacts (relative to the run folder)."""
    found = []
    for value in _strings(run.record.artifacts):
        if value.lower().endswith(".pdb"):
            path = Path(value) if Path(value).is_absolute() else run.run_dir / value
            if path.is_file() and path not in found:
                found.append(path)
    return found


def _pdb_for(name: str, run: Run, pdbs: list[Path], *, only: bool) -> Path | None:
    named = run.record.artifacts.get(f"{name}_pdb")
    if isinstance(named, str) and (run.run_dir / named).is_file():
        return run.run_dir / named
    pattern = re.compile(rf"(^|[^a-z0-9]){re.escape(name)}([^0-9]|$)")
    matches = [p for p in pdbs if pattern.search(p.name)]
    if matches:
        return sorted(matches)[0]
    return pdbs[0] if only and len(pdbs) == 1 else None


def _floats(values: Any) -> tuple[float, ...]:
    if not isinstance(values, list | tuple):
        return ()
    out = [number(v) for v in values]
    return tuple(v for v in out if v is not None) if None not in out else ()


def _strings(obj: Any) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, Mapping):
        for value in obj.values():
            yield from _strings(value)
    elif isinstance(obj, list | tuple):
        for value in obj:
            yield from _strings(value)


def best_model(run: Run, models: list[ModelScore]) -> ModelScore:
    """The record's best model among ``models``, else the one with the highest mean pLDDT."""
    name = best_model_name(run.record.metrics, model_entries(run.record.metrics))
    named = [m for m in models if m.name == name]
    return named[0] if named else max(models, key=lambda m: m.mean_plddt or -1.0)


def best_with_pdb(run: Run) -> tuple[ModelScore, Path] | None:
    """The best model among those with a PDB file, and that file; None when none has one."""
    models = [m for m in colabfold_models(run) if m.pdb is not None]
    if not models:
        return None
    best = best_model(run, models)
    assert best.pdb is not None  # filtered above
    return best, best.pdb
