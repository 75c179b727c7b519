"""Run ``colabfold.batch.run`` on one sequence, with timings and a checkpoint per model.

The timings come from the patches of ``instrument`` (each model's wall time and forward
passes, JAX compilation, parameter loading). JAX compiles in the first model's first forward;
later models reuse the compiled program (ColabFold swaps parameters without recompiling), so
``first_model_s - first_model_compile_s`` is comparable with the steady-state model time.
``once.fold_once`` is the entry point for benchmark suites.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from usecases.colabfold_spike import checkpoint
from usecases.colabfold_spike.instrument import (
    ModelTiming,
    checked_params_loader,
    compilation_cache,
    jax_compile_events,
    random_params_loader,
    timed_params_loader,
    timed_predict,
)
from usecases.colabfold_spike.msa import MsaSource
from usecases.colabfold_spike.outputs import FoldResult, other_files, read_models
from usecases.colabfold_spike.weights import (
    RandomAlphaFoldParams,
    check_params_dir,
    colabfold_data_dir,
    keep_jax_gpu_memory_defaults,
)
from usecases.errors import DataError, UserError

WEIGHTS = ("alphafold", "random")
USER_AGENT = "usecase-bench/0.1.0 (Galaxy Europe use case benchmark)"
_TAG = re.compile(r"(model_\d+)_seed_\d+$")


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
    compilation_cache: Path | None = None  # JAX's persistent compilation cache (None: off)


def fold(
    sequence: str,
    *,
    settings: FoldSettings,
    out_dir: Path,
    jobname: str = "query",
    random_params: RandomAlphaFoldParams | None = None,
    progress: checkpoint.Progress | None = None,
) -> FoldResult:
    """Fold ``sequence`` with the real ``colabfold.batch.run``; results go to ``out_dir``.

    ``progress``: checkpoint each model as it ends, and fold only the models its earlier
    segments did not finish (None: fold all, keep no checkpoint; benchmarks do so).
    Raises UserError when ColabFold produced no model (it logs and skips a failed query:
    MSA server, features or memory; run.log holds its message) and DataError when a
    parameter file lacks the AlphaFold2 arrays or cannot be read.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    earlier = progress.earlier if progress else []
    kept = {m.model for m in earlier}
    remaining = [n for n in range(1, settings.num_models + 1) if f"model_{n}" not in kept]
    started = progress.started_at if progress else datetime.now(UTC).isoformat("T", "seconds")
    timings: list[ModelTiming] = []
    folded: list[checkpoint.FinishedModel] = []

    def on_prediction(protein, lengths, result, features, tag_and_relaxed):
        if not timings:
            return
        timing, tag = timings[-1], str(tag_and_relaxed[0])
        timing.tag, timing.mean_plddt = tag, float(result["mean_plddt"])
        timing.ptm = float(result["ptm"]) if "ptm" in result else None
        done = checkpoint.FinishedModel(
            model=_model_name(tag),
            tag=tag,
            started_at=started,
            ranking_confidence=float(result["ranking_confidence"]),
            mean_plddt=timing.mean_plddt,
            ptm=timing.ptm,
            timing=timing,
        )
        folded.append(done)
        if progress is not None:  # before ColabFold writes its files: see checkpoint.finished
            checkpoint.save(progress.run_dir, done, identity=progress.identity)

    load_s: list[float] = []
    compiles: list[tuple[float, float]] = []
    cache: dict = {}
    t0 = time.perf_counter()
    if remaining:
        _run_colabfold(
            sequence,
            settings=settings,
            out_dir=out_dir,
            jobname=jobname,
            random_params=random_params,
            model_order=remaining,
            callback=on_prediction,
            measured=(timings, load_s, compiles, cache),
        )
    run_s = time.perf_counter() - t0
    missing = sorted(set(remaining) - {m.number for m in folded})
    for n in missing:  # never a NaN time or a guessed score
        for written in out_dir.glob(f"{jobname}_scores_*model_{n}_seed_*.json"):
            raise RuntimeError(
                f"ColabFold wrote {written.name}, but no timing and score of its model were "
                "captured from RunModel.predict; this ColabFold version may name its models "
                "differently (see fold.py's prediction callback)"
            )
    if missing:
        raise UserError(
            f"ColabFold produced no model {', '.join(map(str, missing))} for {jobname} (the "
            "MSA, feature or prediction step failed; its message is in run.log)."
        )
    models = read_models(earlier + folded, out_dir=out_dir, jobname=jobname, resumed=bool(earlier))
    if earlier:  # ColabFold ranked only this segment's models: rewrite its summaries
        checkpoint.write_summaries(models, out_dir=out_dir, jobname=jobname)
    return FoldResult(
        jobname=jobname,
        out_dir=out_dir,
        models=models,
        run_s=run_s,
        params_s=sum(load_s),
        compile_s=sum(d for _, d in compiles),
        files=other_files(out_dir, jobname=jobname),
        resumed=sorted(kept),
        compilation_cache=cache or None,
    )


def _run_colabfold(
    sequence: str,
    *,
    settings: FoldSettings,
    out_dir: Path,
    jobname: str,
    random_params: RandomAlphaFoldParams | None,
    model_order: list[int],
    callback,
    measured: tuple[list[ModelTiming], list[float], list[tuple[float, float]], dict],
) -> None:
    """``colabfold.batch.run`` on the models ``model_order``, with the timing patches."""
    keep_jax_gpu_memory_defaults()
    from colabfold.batch import run as colabfold_run

    timings, load_s, compiles, cache = measured
    a3m = None if settings.msa.a3m_path is None else [settings.msa.a3m_path.read_text()]
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
        stack.enter_context(compilation_cache(settings.compilation_cache, cache))
        stack.enter_context(timed_params_loader(load_s))
        stack.enter_context(jax_compile_events(compiles))
        stack.enter_context(timed_predict(timings, compiles))
        colabfold_run(
            queries=[(jobname, sequence, a3m, None)],
            result_dir=out_dir,
            num_models=len(model_order),
            model_order=list(model_order),  # ColabFold sorts it in place
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
            prediction_callback=callback,
        )


def _model_name(tag: str) -> str:
    match = _TAG.search(tag)
    if match is None:
        raise RuntimeError(f"ColabFold named a model {tag!r}; this version is not supported")
    return match.group(1)
