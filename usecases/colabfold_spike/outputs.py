"""What one ColabFold run wrote, read back: each model's scores, PDB and timings, and the
run's other files.

``read_models`` ranks the models with ColabFold's own rule (``checkpoint.ranking``): in a run
of one segment that must equal the ranks ColabFold gave them; in a resumed run it ranks the
models of all segments together and renames their files to those ranks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from usecases.colabfold_spike import checkpoint
from usecases.colabfold_spike.pdb import ca_bfactors
from usecases.measure.timing import summarize
from usecases.records.checks import check_result

PLDDT_TOLERANCE = 0.05
"""|mean pLDDT - mean of the PDB CA B-factors| allowed by the consistency check (float16)."""


@dataclass
class ModelResult:
    """One model's prediction as ColabFold wrote it (pLDDT 0-100, pTM 0-1, times in s).

    ``mean_plddt`` and ``ptm`` are ColabFold's own values (what its log prints, float16 model
    outputs); ``mean_plddt_residues`` is the mean of the per-residue pLDDT it wrote.
    """

    model: str
    rank: int
    tag: str
    mean_plddt: float
    mean_plddt_residues: float
    ptm: float | None
    max_pae: float | None
    plddt_per_residue: list[float]
    time_s: float
    forwards_s: list[float]
    compile_s: float
    pdb: Path
    scores: Path
    started_at: str = ""  # the segment (process) that folded it, UTC ISO


@dataclass
class FoldResult:
    """Everything one ColabFold run produced: models by rank, files and timings (s)."""

    jobname: str
    out_dir: Path
    models: list[ModelResult]
    run_s: float
    params_s: float
    compile_s: float
    files: dict[str, Path] = field(default_factory=dict)
    resumed: list[str] = field(default_factory=list)  # models kept from earlier segments
    compilation_cache: dict | None = None  # instrument.compilation_cache's stats (None: no run)

    def by_model(self) -> list[ModelResult]:
        """The models in model-number order (model_1 first)."""
        return sorted(self.models, key=lambda m: int(m.model.split("_")[1]))

    def timings(self) -> dict:
        """First model (compilation included and measured) vs steady state, forwards, run
        total, all in seconds."""
        ordered = self.by_model()
        forwards = [f for m in ordered for f in m.forwards_s]
        starts = sorted({m.started_at for m in ordered})
        firsts = {next(m.model for m in ordered if m.started_at == at) for at in starts}
        this_segment = [m.time_s for m in ordered if m.model not in self.resumed]
        first = ordered[0]
        out: dict = {
            "first_model_s": first.time_s,
            "first_model_compile_s": first.compile_s,
            "first_model_without_compile_s": first.time_s - first.compile_s,
            "model_times_s": {m.model: m.time_s for m in ordered},
            "model_compile_s": {m.model: m.compile_s for m in ordered},
            "forward_first_s": forwards[0],
            "forwards_per_model": len(first.forwards_s),
            "jax_compile_s": self.compile_s,
            "colabfold_run_s": self.run_s,
            "params_load_s": self.params_s,
            "outside_prediction_s": self.run_s - sum(this_segment) - self.params_s,
            "method": (
                "wall time of RunModel.predict per model (all recycles, outputs copied to "
                "numpy); forwards from the recycle callback; compile times are JAX's own "
                "compile-duration events (trace + lower + backend compile) inside each "
                "model's prediction and over the whole run; params_load_s: all five models' "
                "parameters, traced shapes then drawn (weights=random) or checked and read"
            ),
        }
        steady = [m.time_s for m in ordered if m.model not in firsts]  # each segment compiles
        if steady:
            out["steady_model"] = summarize(steady)
        later = [
            f for m in ordered for i, f in enumerate(m.forwards_s) if i or m.model not in firsts
        ]
        if later:
            out["forward_steady"] = summarize(later)
        if self.compilation_cache is not None:
            out["compilation_cache"] = self.compilation_cache
        if self.resumed:
            out["segments"] = [
                _segment(at, [m for m in ordered if m.started_at == at]) for at in starts
            ]
            out["run_totals"] = (
                "colabfold_run_s, params_load_s, jax_compile_s and outside_prediction_s are of "
                "the last segment only; each segment compiles its first model again"
            )
        return out


def _segment(started_at: str, models: list[ModelResult]) -> dict:
    """One segment's share of a resumed fold, as app.py attaches it to the segment log."""
    return {
        "stage": "folding",
        "started_at": started_at,
        "models": [m.model for m in models],
        "fold_s": sum(m.time_s for m in models),
        "compile_s": sum(m.compile_s for m in models),
    }


def read_models(
    done: list[checkpoint.FinishedModel], *, out_dir: Path, jobname: str, resumed: bool
) -> list[ModelResult]:
    """Each folded model's scores JSON and PDB, ranked with ColabFold's rule across segments.

    In a run of one segment ColabFold has ranked them already; a differing rank there is an
    internal error, never renamed over.
    """
    ranks = checkpoint.ranking(done)
    if resumed:
        checkpoint.rank_files(done, ranks=ranks, out_dir=out_dir, jobname=jobname)
    models = []
    for m in done:
        rank_tag = f"rank_{ranks[m.model]:03d}_{m.tag}"
        scores_path = out_dir / f"{jobname}_scores_{rank_tag}.json"
        pdb = out_dir / f"{jobname}_unrelaxed_{rank_tag}.pdb"
        if not scores_path.is_file() or not pdb.is_file():
            raise RuntimeError(
                f"{scores_path.name} or {pdb.name} is missing: ColabFold ranked {m.model} "
                "otherwise than its ranking confidence says (see checkpoint.ranking)"
            )
        scores = json.loads(scores_path.read_text())
        plddt = [float(x) for x in scores["plddt"]]
        ptm = m.ptm if m.ptm is not None else scores.get("ptm")
        models.append(
            ModelResult(
                model=m.model,
                rank=ranks[m.model],
                tag=m.tag,
                mean_plddt=m.mean_plddt,
                mean_plddt_residues=float(np.mean(plddt)),
                ptm=None if ptm is None else float(ptm),
                max_pae=None if scores.get("max_pae") is None else float(scores["max_pae"]),
                plddt_per_residue=plddt,
                time_s=m.timing.total_s,
                forwards_s=m.timing.forwards_s,
                compile_s=m.timing.compile_s,
                pdb=pdb,
                scores=scores_path,
                started_at=m.started_at,
            )
        )
    return sorted(models, key=lambda m: m.rank)


def other_files(out_dir: Path, *, jobname: str) -> dict[str, Path]:
    """ColabFold's non-model outputs that exist: PAE, MSA, config, citations, plots."""
    names = {
        "pae": f"{jobname}_predicted_aligned_error_v1.json",
        "a3m": f"{jobname}.a3m",
        "colabfold_config": "config.json",
        "citations": "cite.bibtex",
        "plddt_plot": f"{jobname}_plddt.png",
        "pae_plot": f"{jobname}_pae.png",
        "coverage_plot": f"{jobname}_coverage.png",
    }
    return {key: out_dir / name for key, name in names.items() if (out_dir / name).is_file()}


def plddt_checks(result: FoldResult) -> list[dict]:
    """Per model: mean pLDDT agrees with the mean CA B-factor of its PDB (within 0.05)."""
    checks = []
    for m in result.by_model():
        bfactors = ca_bfactors(m.pdb)
        ok = len(bfactors) == len(m.plddt_per_residue) and bool(
            abs(float(bfactors.mean()) - m.mean_plddt) <= PLDDT_TOLERANCE
        )
        mean_b = float(bfactors.mean()) if len(bfactors) else None
        checks.append(
            check_result(
                f"{m.model}: mean pLDDT = mean PDB CA B-factor",
                passed=ok,
                detail=f"mean pLDDT {m.mean_plddt:.2f}, mean CA B-factor "
                f"{'-' if mean_b is None else f'{mean_b:.2f}'} over {len(bfactors)} of "
                f"{len(m.plddt_per_residue)} residues (tolerance {PLDDT_TOLERANCE})",
                mean_plddt=m.mean_plddt,
                mean_ca_bfactor=mean_b,
                residues_in_pdb=len(bfactors),
            )
        )
    return checks


def artifacts(result: FoldResult, *, run_dir: Path) -> dict:
    """The record's artifacts: ColabFold's folder, each model's PDB and scores, the best PDB
    and the other files, as paths relative to ``run_dir``."""

    def rel(path: Path) -> str:
        return str(Path(path).relative_to(run_dir))

    out = {"colabfold_dir": rel(result.out_dir)}
    for m in result.by_model():
        out[f"{m.model}_pdb"] = rel(m.pdb)
        out[f"{m.model}_scores"] = rel(m.scores)
    best = min(result.models, key=lambda m: m.rank)
    out["best_pdb"] = rel(best.pdb)
    out.update({key: rel(path) for key, path in result.files.items()})
    return out
