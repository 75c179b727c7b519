"""One ColabFold fold of the first N spike residues, for benchmark suites (``usecase-bench-gpu``).

Settings the run.py path takes from the config come from conf/usecase/colabfold_spike.yaml
(model type, MSA server); the rest are this function's options.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import yaml

from usecases import paths
from usecases.colabfold_spike.fasta import galaxy_sequence
from usecases.colabfold_spike.fold import WEIGHTS, FoldSettings, fold
from usecases.colabfold_spike.msa import resolve_msa
from usecases.colabfold_spike.weights import RandomAlphaFoldParams, set_gpu_memory_env


def spike_prefix(length: int) -> str:
    """The first ``length`` residues of the Galaxy spike sequence (repeated beyond 302)."""
    if length < 1:
        raise ValueError(f"length must be >= 1, got {length}")
    seq = galaxy_sequence()
    return (seq * (length // len(seq) + 1))[:length]


def fold_once(
    *,
    length: int,
    recycles: int = 0,
    weights: str = "random",
    num_models: int = 1,
    msa_mode: str = "single_sequence",
    params_dir: Path | None = None,
    seed: int = 0,
    out_dir: Path | None = None,
    random_params: RandomAlphaFoldParams | None = None,
    unified_memory: bool = False,
    compilation_cache: Path | None = None,
) -> dict:
    """Fold the first ``length`` spike residues once with ColabFold; return times and scores.

    For benchmark suites: JAX must already be configured for the wanted device (e.g.
    ``JAX_PLATFORMS=cpu`` before the first JAX import); the GPU memory policy is set here
    (``unified_memory``, see :func:`set_gpu_memory_env`) and applies if JAX has not
    started yet. ``recycles`` recycles means
    ``recycles + 1`` forward passes per model. Pass the same ``random_params`` to
    successive calls to trace the parameter shapes only once. ``compilation_cache``: JAX's
    persistent compilation cache folder (None: off; the timings say cold or warm). Returns a
    dict with ``length, recycles, num_models, weights, device``, ``timings`` (see
    :meth:`FoldResult.timings`, seconds) and ``mean_plddt`` per model.
    """
    memory_env = set_gpu_memory_env(unified_memory=unified_memory)
    import jax

    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {WEIGHTS}, got {weights!r}")
    sequence = spike_prefix(length)
    defaults = yaml.safe_load((paths.conf_dir() / "usecase" / "colabfold_spike.yaml").read_text())
    settings = FoldSettings(
        msa=resolve_msa(msa_mode, sequence=sequence),
        model_type=defaults["usecase"]["model_type"],
        msa_server=defaults["usecase"]["msa_server"],
        num_models=num_models,
        num_recycles=recycles,
        weights=weights,
        params_dir=params_dir,
        weights_seed=seed,
        random_seed=seed,
        compilation_cache=compilation_cache,
    )
    with contextlib.ExitStack() as stack:
        folder = out_dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        result = fold(
            sequence,
            settings=settings,
            out_dir=Path(folder),
            jobname=f"spike_{length}",
            random_params=random_params,
        )
    return {
        "length": length,
        "recycles": recycles,
        "num_models": num_models,
        "weights": weights,
        "device": str(jax.devices()[0].device_kind),
        "gpu_memory_env": memory_env,
        "timings": result.timings(),
        "mean_plddt": {m.model: m.mean_plddt for m in result.by_model()},
    }
