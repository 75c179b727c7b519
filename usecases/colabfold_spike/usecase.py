"""colabfold_spike end to end: FASTA -> ColabFold (AlphaFold2) -> pLDDT, pTM, times -> references.

``validate`` checks everything cheap before the run folder exists (ColabFold installed,
options, FASTA, MSA source and server, parameter files); ``run`` folds inside the run folder
(ColabFold's outputs go to ``<run>/colabfold/``) and returns the use-case part of the record.
ColabFold is JAX: the ``backend`` group is set to jax here, and the covid_ct groups
``dataset`` and ``scale`` are ignored (the record notes both).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf, open_dict

from usecases.colabfold_spike import checkpoint
from usecases.colabfold_spike.fasta import GALAXY_NAME, ProteinSequence, galaxy_sequence
from usecases.colabfold_spike.fasta import load_sequence as _load_sequence
from usecases.colabfold_spike.fold import WEIGHTS, FoldSettings, fold
from usecases.colabfold_spike.msa import check_msa_server, resolve_msa
from usecases.colabfold_spike.outputs import FoldResult, artifacts, plddt_checks
from usecases.colabfold_spike.weights import (
    JAX_DEFAULT_ENV,
    MODEL_TYPES,
    check_params_dir,
    set_gpu_memory_env,
)
from usecases.errors import ConfigError
from usecases.records.identity import run_identity
from usecases.records.references import compare

log = logging.getLogger(__name__)
NAME = "colabfold_spike"


def validate(cfg: DictConfig) -> None:
    """Reject impossible settings before the run folder exists; set backend to jax."""
    if importlib.util.find_spec("colabfold") is None:
        raise ConfigError(
            "usecase=colabfold_spike needs ColabFold, which is not installed here; install "
            "the colabfold extra: uv pip install -r requirements-colabfold.lock"
        )
    if cfg.backend.name != "jax":
        with open_dict(cfg):
            cfg.backend.name = "jax"  # resolve_device must ask JAX, which ColabFold runs on
    unified = cfg.usecase.unified_memory
    if not isinstance(unified, bool):
        raise ConfigError(f"usecase.unified_memory={unified} must be true or false.")
    set_gpu_memory_env(unified_memory=unified)  # before JAX starts
    settings = fold_settings(cfg, sequence=load_sequence(cfg).sequence)
    if settings.weights == "alphafold":
        check_params_dir(Path(str(cfg.usecase.params_dir)), model_type=settings.model_type)
    if settings.msa.uses_server:
        check_msa_server(settings.msa_server, timeout_s=float(cfg.usecase.msa_server_timeout_s))


def load_sequence(cfg: DictConfig) -> ProteinSequence:
    """The configured FASTA (default: the Galaxy 302-residue sequence), cut to max_length."""
    fasta = cfg.usecase.get("fasta")
    return _load_sequence(
        None if fasta in (None, "") else Path(str(fasta)),
        max_length=cfg.usecase.get("max_length"),
    )


def fold_settings(cfg: DictConfig, *, sequence: str) -> FoldSettings:
    """Check the ColabFold options of ``cfg`` and return them as :class:`FoldSettings`."""
    uc = cfg.usecase
    weights = str(cfg.get("weights"))
    if weights not in WEIGHTS:
        raise ConfigError(f"weights={weights} is not one of {', '.join(WEIGHTS)}.")
    if uc.model_type not in MODEL_TYPES:
        raise ConfigError(
            f"usecase.model_type={uc.model_type} is not one of {', '.join(MODEL_TYPES)}."
        )
    _int_in(uc.num_models, "usecase.num_models", low=1, high=5)
    _int_in(uc.num_recycles, "usecase.num_recycles", low=0, high=48)
    _int_in(uc.random_seed, "usecase.random_seed", low=0, high=2**31 - 1)
    if uc.use_templates:
        raise ConfigError(
            "usecase.use_templates=true is not supported: templates need the ColabFold server "
            "and HH-suite; this benchmark folds without templates, as the Galaxy notebook did."
        )
    if uc.num_relax != 0:
        raise ConfigError(
            "usecase.num_relax must be 0: Amber relaxation needs OpenMM, which is not "
            "installed, and does not change pLDDT."
        )
    return FoldSettings(
        msa=resolve_msa(str(cfg.get("msa_mode")), sequence=sequence),
        model_type=str(uc.model_type),
        num_models=int(uc.num_models),
        num_recycles=int(uc.num_recycles),
        random_seed=int(uc.random_seed),
        weights=weights,
        params_dir=Path(str(uc.params_dir)).expanduser() if weights == "alphafold" else None,
        weights_seed=int(cfg.seed),
        msa_server=str(uc.msa_server),
        compilation_cache=_cache_dir(uc.get("compilation_cache")),
    )


def _cache_dir(value) -> Path | None:
    if value in (None, "", False):
        return None
    folder = Path(str(value)).expanduser()
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(
            f"usecase.compilation_cache={value}: {existing} is not a folder this user can "
            "write; give another folder, or null to turn JAX's compilation cache off."
        )
    return folder


def _int_in(value, name: str, *, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{name}={value} must be an integer from {low} to {high}.")


def run(cfg: DictConfig, *, run_dir: Path, device: dict | None = None) -> dict:
    """Fold with ColabFold; return dataset, metrics, timings, references, artifacts, checks.

    ``device`` (what app.py resolved) is not needed: ColabFold's JAX picks the device itself.
    """
    seq = load_sequence(cfg)
    settings = fold_settings(cfg, sequence=seq.sequence)
    log.info(
        "ColabFold %s: %d residues%s, msa %s, %d model(s), %d recycles, weights %s",
        settings.model_type,
        seq.length,
        f" (first {seq.length} of {seq.full_length})" if seq.truncated else "",
        settings.msa.mode,
        settings.num_models,
        settings.num_recycles,
        settings.weights,
    )
    out_dir, jobname = run_dir / "colabfold", _jobname(seq)
    progress = checkpoint.Progress(
        run_dir=run_dir,
        identity=run_identity(OmegaConf.to_container(cfg, resolve=True)),
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        earlier=checkpoint.finished(run_dir, out_dir=out_dir, jobname=jobname),
    )
    if progress.earlier:
        kept = ", ".join(m.model for m in progress.earlier)
        log.info("resuming: %s kept, not folded again", kept)
    result = fold(
        seq.sequence, settings=settings, out_dir=out_dir, jobname=jobname, progress=progress
    )
    checkpoint.remove(run_dir)  # every model is written: the checkpoints were for resuming
    random_weights = settings.weights == "random"
    metrics = fold_metrics(result, weights=settings.weights)
    sequence_id = _sequence_id(seq)
    ref_settings = {
        "weights": settings.weights,
        "sequence": sequence_id,
        "msa_mode": settings.msa.mode,
        "model_type": settings.model_type,
        "num_recycles": settings.num_recycles,
        "num_models": settings.num_models,
        "use_templates": False,
    }
    references = compare(
        usecase=NAME, metrics=metrics, settings=ref_settings, synthetic=random_weights
    )
    if random_weights:
        for ref in references:
            ref["reason"] = "random weights (weights=random): pLDDT and pTM mean nothing"
    return {
        "dataset": {
            "name": sequence_id,
            "checksum": f"sha256:{seq.sha256}",
            "synthetic": random_weights,  # real sequence, but random weights: no real result
            "weights": settings.weights,
            "source": str(seq.source),
            "description": seq.description,
            "length": seq.length,
            "full_length": seq.full_length,
            "max_length": cfg.usecase.get("max_length"),
            "sequence": seq.sequence,
            "msa": settings.msa.mode
            + (f" ({settings.msa.a3m_path})" if settings.msa.a3m_path else ""),
        },
        "metrics": metrics,
        "timings": {
            **result.timings(),
            "gpu_memory_env": {k: os.environ.get(k) for k in JAX_DEFAULT_ENV},
        },
        "references": references,
        "checks": plddt_checks(result),
        "artifacts": artifacts(result, run_dir=run_dir),
        "notes": _notes(cfg, seq=seq, settings=settings) + _resume_notes(result),
    }


def check_resume(cfg: DictConfig, run_dir: Path) -> None:
    """app.py asks before a resume: UserError unless ``run_dir`` holds a finished model that
    this code wrote with this config (``checkpoint.check``)."""
    checkpoint.check(
        run_dir,
        out_dir=run_dir / "colabfold",
        jobname=_jobname(load_sequence(cfg)),
        identity=run_identity(OmegaConf.to_container(cfg, resolve=True)),
    )


def resumable(run_dir: Path) -> bool:
    """app.py asks at a run's end: whether a resume would keep at least one folded model
    (False when the run's config.yaml or sequence cannot be read: a resume would fail)."""
    try:
        jobname = _jobname(load_sequence(OmegaConf.load(Path(run_dir) / "config.yaml")))
    except Exception:  # the resume itself says what is wrong
        return False
    return checkpoint.has_finished(run_dir, out_dir=Path(run_dir) / "colabfold", jobname=jobname)


def _resume_notes(result: FoldResult) -> list[str]:
    if not result.resumed:
        return []
    folded = [m.model for m in result.by_model() if m.model not in result.resumed]
    return [
        f"resumed: {', '.join(result.resumed)} kept from earlier segments and not folded again; "
        f"this segment folded {', '.join(folded) or 'nothing'}. ColabFold 1.6.3 itself refolds "
        "every model it is given (keep_existing_results skips only a whole finished query), so "
        "only the unfinished models were passed to it (model_order); all models were ranked "
        "together by ColabFold's rule, and the PAE JSON and plots redrawn from all of them. "
        "colabfold/config.json is ColabFold's record of the last segment's call."
    ]


def _sequence_id(seq: ProteinSequence) -> str:
    """``galaxy_spike_302`` for the notebook's sequence, ``galaxy_spike_302[:N]`` for its
    first N residues, else the FASTA record name (what references check)."""
    galaxy = galaxy_sequence()
    if seq.sequence == galaxy:
        return GALAXY_NAME
    if galaxy.startswith(seq.sequence):
        return f"{GALAXY_NAME}[:{seq.length}]"
    return seq.name


def _jobname(seq: ProteinSequence) -> str:
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in seq.name)[:40] or "query"
    return f"{safe}_first{seq.length}" if seq.truncated else safe


def fold_metrics(result: FoldResult, *, weights: str) -> dict:
    """Record metrics: per model, per rank, best, mean over models, time range (s).

    ``model_N`` -> mean pLDDT (ColabFold's value), mean of the per-residue pLDDT, pTM, max
    PAE, rank, time (s) and per-residue pLDDT; ``rank_K`` -> model, mean pLDDT, pTM.
    """
    models = result.by_model()
    best = min(models, key=lambda m: m.rank)
    out: dict = {"weights": weights, "best_model": best.model}
    for m in models:
        out[m.model] = {
            "mean_plddt": m.mean_plddt,
            "mean_plddt_residues": m.mean_plddt_residues,
            "ptm": m.ptm,
            "max_pae": m.max_pae,
            "rank": m.rank,
            "time_s": m.time_s,
            "plddt_per_residue": m.plddt_per_residue,
        }
    for m in sorted(models, key=lambda m: m.rank):
        out[f"rank_{m.rank}"] = {"model": m.model, "mean_plddt": m.mean_plddt, "ptm": m.ptm}
    plddts = [m.mean_plddt for m in models]
    times = [m.time_s for m in models]
    out.update(
        {
            "mean_plddt_best": best.mean_plddt,
            "ptm_best": best.ptm,
            "mean_plddt_mean": float(np.mean(plddts)),
            "num_models_run": len(models),
            "model_time_min_s": float(min(times)),
            "model_time_max_s": float(max(times)),
            "plddt_per_residue_best": best.plddt_per_residue,
        }
    )
    return out


def _notes(cfg: DictConfig, *, seq: ProteinSequence, settings: FoldSettings) -> list[str]:
    notes = [
        f"ColabFold {settings.model_type}, msa {settings.msa.mode}, {settings.num_models} "
        f"model(s), {settings.num_recycles} recycles, no templates, no relaxation, "
        f"ColabFold seed {settings.random_seed}",
        "backend: ColabFold runs on JAX (backend group set to jax)",
        "GPU memory: "
        + (
            "ColabFold's unified memory (4x the GPU)"
            if cfg.usecase.unified_memory
            else "JAX defaults (ColabFold's unified memory off: usecase.unified_memory=false)"
        ),
    ]
    if settings.compilation_cache is not None:
        notes.append(
            f"JAX compilation cache {settings.compilation_cache} (timings.compilation_cache "
            "says whether it was warm: a warm first model loads its program, not compiles it)"
        )
    if settings.weights == "random":
        notes.append(
            "random weights: random parameters of the exact AlphaFold2 shapes (weights seed "
            f"{settings.weights_seed}); timings are real, pLDDT/pTM are meaningless and never "
            "judged"
        )
    if seq.truncated:
        notes.append(
            f"sequence shortened: first {seq.length} of {seq.full_length} residues "
            f"(usecase.max_length={seq.length})"
        )
    ignored = [f"{g}={cfg[g].get('name')}" for g in ("dataset", "scale") if cfg.get(g) is not None]
    if ignored:
        notes.append(f"ignored: {', '.join(ignored)} (covid_ct options, not used by ColabFold)")
    if cfg.get("note"):
        notes.append(str(cfg.note))
    return notes
