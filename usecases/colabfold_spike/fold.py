"""Run ``colabfold.batch.run`` on one sequence and read back what it wrote, with timings.

The timings come from the patches of ``instrument`` (each model's wall time and forward
passes, JAX compilation, parameter loading). JAX compiles in the first model's first forward;
later models reuse the compiled program (ColabFold swaps parameters without recompiling), so
``first_model_s - first_model_compile_s`` is comparable with the steady-state model time.
``once.fold_once`` is the entry point for benchmark suites.
"""

from __future__ import annotations

import contextlib
import json
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from usecases.colabfold_spike.instrument import (
    ModelTiming,
    checked_params_loader,
    jax_compile_events,
    random_params_loader,
    timed_params_loader,
    timed_predict,
)
from usecases.colabfold_spike.msa import MsaSource
from usecases.colabfold_spike.weights import (
    RandomAlphaFoldParams,
    check_params_dir,
    colabfold_data_dir,
    keep_jax_gpu_memory_defaults,
)
from usecases.errors import DataError, UserError
from usecases.measure.timing import summarize

WEIGHTS = ("alphafold", "random")
USER_AGENT = "usecase-bench/0.1.0 (Galaxy Europe use case benchmark)"
_TAG = re.compile(r"^rank_(\d+)_(.+)_(model_\d+)_seed_(\d+)$")


@dataclass(frozen=True)
class FoldSettings:
    """What ``colabfold.batch.run`` is asked to do (templates and relaxation are always off).

    ``weights``: "alphafold" (files in ``params_dir``) or "random" (exact shapes, drawn
    with ``weights_seed``). ``random_seed`` is ColabFold's seed (0 as in the notebook).
    The values come from ``usecase.*`` of the config; its defaults live in
    conf/usecase/colabfold_spike.yaml only.
    """

    msa: MsaSource
    model_type: str
    num_models: int
    num_recycles: int
    random_seed: int
    weights: str
    params_dir: Path | None
    weights_seed: int
    msa_server: str


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

    def by_model(self) -> list[ModelResult]:
        """The models in model-number order (model_1 first)."""
        return sorted(self.models, key=lambda m: int(m.model.split("_")[1]))

    def timings(self) -> dict:
        """First model (compilation included and measured) vs steady state, forwards, run
        total, all in seconds."""
        ordered = self.by_model()
        forwards = [f for m in ordered for f in m.forwards_s]
        model_times = [m.time_s for m in ordered]
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
            "outside_prediction_s": self.run_s - sum(model_times) - self.params_s,
            "method": (
                "wall time of RunModel.predict per model (all recycles, outputs copied to "
                "numpy); forwards from the recycle callback; compile times are JAX's own "
                "compile-duration events (trace + lower + backend compile) inside each "
                "model's prediction and over the whole run; params_load_s: all five models' "
                "parameters, traced shapes then drawn (weights=random) or checked and read"
            ),
        }
        if len(model_times) > 1:
            out["steady_model"] = summarize(model_times[1:])
        if len(forwards) > 1:
            out["forward_steady"] = summarize(forwards[1:])
        return out


def fold(
    sequence: str,
    *,
    settings: FoldSettings,
    out_dir: Path,
    jobname: str = "query",
    random_params: RandomAlphaFoldParams | None = None,
) -> FoldResult:
    """Fold ``sequence`` with the real ``colabfold.batch.run``; results go to ``out_dir``.

    Raises UserError when ColabFold produced no model (it logs and skips a failed query:
    MSA server, features or memory; run.log holds its message) and DataError when a
    parameter file lacks the AlphaFold2 arrays or cannot be read.
    """
    keep_jax_gpu_memory_defaults()
    from colabfold.batch import run as colabfold_run

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    a3m = None if settings.msa.a3m_path is None else [settings.msa.a3m_path.read_text()]
    queries = [(jobname, sequence, a3m, None)]
    timings: list[ModelTiming] = []

    def on_prediction(protein, lengths, result, features, tag_and_relaxed):
        if timings:
            timings[-1].tag = str(tag_and_relaxed[0])
            timings[-1].mean_plddt = float(result["mean_plddt"])
            timings[-1].ptm = float(result["ptm"]) if "ptm" in result else None

    with contextlib.ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cf-data-")))
        if settings.weights == "random":
            random_params = random_params or RandomAlphaFoldParams(seed=settings.weights_seed)
            stack.enter_context(random_params_loader(random_params))
            data_dir = scratch
        else:
            if settings.params_dir is None:
                raise DataError("weights=alphafold needs usecase.params_dir.")
            folder = check_params_dir(settings.params_dir, model_type=settings.model_type)
            shapes = random_params or RandomAlphaFoldParams(seed=settings.weights_seed)
            stack.enter_context(checked_params_loader(folder, shapes=shapes))
            data_dir = colabfold_data_dir(folder, scratch=scratch)
        load_s: list[float] = []
        compiles: list[tuple[float, float]] = []
        stack.enter_context(timed_params_loader(load_s))
        stack.enter_context(jax_compile_events(compiles))
        stack.enter_context(timed_predict(timings, compiles))
        t0 = time.perf_counter()
        colabfold_run(
            queries=queries,
            result_dir=out_dir,
            num_models=settings.num_models,
            is_complex=False,
            num_recycles=settings.num_recycles,
            model_type=settings.model_type,
            msa_mode=settings.msa.colabfold_mode,
            use_templates=False,
            num_relax=0,
            keep_existing_results=False,
            data_dir=data_dir,
            host_url=settings.msa_server,
            user_agent=USER_AGENT,
            random_seed=settings.random_seed,
            prediction_callback=on_prediction,
        )
        run_s = time.perf_counter() - t0
    models = _read_models(out_dir, jobname=jobname, timings=timings)
    if not models:
        raise UserError(
            f"ColabFold produced no model for {jobname} (the MSA, feature or prediction step "
            "failed; its message is in run.log)."
        )
    return FoldResult(
        jobname=jobname,
        out_dir=out_dir,
        models=models,
        run_s=run_s,
        params_s=sum(load_s),
        compile_s=sum(d for _, d in compiles),
        files=_other_files(out_dir, jobname=jobname),
    )


def _read_models(out_dir: Path, *, jobname: str, timings: list[ModelTiming]) -> list[ModelResult]:
    """Models from ColabFold's ranked scores JSON and PDB files, joined with the timings."""
    by_tag = {t.tag: t for t in timings if t.tag}
    models = []
    for scores_path in sorted(out_dir.glob(f"{jobname}_scores_rank_*.json")):
        rank_tag = scores_path.stem.removeprefix(f"{jobname}_scores_")
        match = _TAG.match(rank_tag)
        if match is None:
            continue
        rank, _, model, _ = match.groups()
        tag = rank_tag.split("_", 2)[2]
        scores = json.loads(scores_path.read_text())
        plddt = [float(x) for x in scores["plddt"]]
        timing = by_tag.get(tag)
        if timing is None or timing.mean_plddt is None:  # never a NaN time or a guessed score
            raise RuntimeError(
                f"ColabFold wrote {scores_path.name}, but no timing and score of its model "
                f"({tag}) were captured from RunModel.predict; this ColabFold version may name "
                "its models differently (see fold.py's prediction callback)"
            )
        pdb = out_dir / f"{jobname}_unrelaxed_{rank_tag}.pdb"
        from_residues = float(np.mean(plddt))
        ptm = timing.ptm if timing.ptm is not None else scores.get("ptm")
        models.append(
            ModelResult(
                model=model,
                rank=int(rank),
                tag=tag,
                mean_plddt=timing.mean_plddt,
                mean_plddt_residues=from_residues,
                ptm=None if ptm is None else float(ptm),
                max_pae=None if scores.get("max_pae") is None else float(scores["max_pae"]),
                plddt_per_residue=plddt,
                time_s=timing.total_s,
                forwards_s=timing.forwards_s,
                compile_s=timing.compile_s,
                pdb=pdb,
                scores=scores_path,
            )
        )
    return sorted(models, key=lambda m: m.rank)


def _other_files(out_dir: Path, *, jobname: str) -> dict[str, Path]:
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
