"""ColabFold's finished models, kept so that a killed run resumes without refolding them.

ColabFold 1.6.3 does not skip finished models: ``keep_existing_results`` skips only a whole
query (its ``.done.txt`` or result zip), and a query cut short has neither. It does write each
model's unranked ``<job>_unrelaxed_<tag>.pdb`` and ``<job>_scores_<tag>.json`` as that model
ends, and renames them all to their ranks at the end. So as each model ends, ``save`` writes
``<run>/checkpoint/<model>.json`` (ColabFold's scores for it, its timings, the run's identity);
a model counts as finished when that file, its PDB and its complete scores JSON all exist.
A resume passes only the other models to ColabFold (``model_order``), and ``rank_files``
ranks old and new models together as ColabFold does (ranking confidence, highest first) and
renames the files to those ranks.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from usecases.colabfold_spike.instrument import ModelTiming
from usecases.errors import ConfigError, DataError
from usecases.records.identity import check_same_run
from usecases.records.record import atomic_file

FOLDER = "checkpoint"
_FIELDS = ("model", "tag", "started_at", "ranking_confidence", "mean_plddt", "timing")


@dataclass(frozen=True)
class Progress:
    """What ``fold`` needs to checkpoint a run: its folder, identity (``run_identity``), the
    start of this segment (UTC ISO) and the models earlier segments finished."""

    run_dir: Path
    identity: dict
    started_at: str
    earlier: list[FinishedModel]


@dataclass(frozen=True)
class FinishedModel:
    """One model a segment folded: ColabFold's scores (pLDDT 0-100, pTM 0-1), its timing (s),
    and the start (UTC ISO) of the segment that folded it."""

    model: str
    tag: str
    started_at: str
    ranking_confidence: float
    mean_plddt: float
    ptm: float | None
    timing: ModelTiming

    @property
    def number(self) -> int:
        """1-5, from ``model_N``."""
        return int(self.model.split("_")[1])


def folder(run_dir: Path) -> Path:
    """``<run>/checkpoint``: one JSON file per finished model."""
    return Path(run_dir) / FOLDER


def save(run_dir: Path, done: FinishedModel, *, identity: dict) -> None:
    """Write ``done`` (with the run's ``identity``) atomically as ``checkpoint/<model>.json``."""
    folder(run_dir).mkdir(exist_ok=True)
    path = folder(run_dir) / f"{done.model}.json"
    with atomic_file(path, what=f"checkpoint of {done.model}") as tmp:
        tmp.write_text(json.dumps({**asdict(done), "identity": identity}))


def finished(run_dir: Path, *, out_dir: Path, jobname: str) -> list[FinishedModel]:
    """The models whose checkpoint, PDB and scores are complete, in model order.

    DataError naming the file when a checkpoint cannot be read (it is written atomically, so
    that means it was damaged afterwards). A model killed while its files were written has a
    checkpoint but no complete scores: it is not finished and is folded again.
    """
    return [m for m, _ in _entries(run_dir) if _complete(m, out_dir=out_dir, jobname=jobname)]


def check(run_dir: Path, *, out_dir: Path, jobname: str, identity: dict) -> None:
    """Before a resume changes anything: UserError unless ``run_dir`` holds at least one
    finished model, and every checkpoint was written by this code with this config."""
    entries = _entries(run_dir)
    for m, stored in entries:
        check_same_run(stored, identity, source=folder(run_dir) / f"{m.model}.json")
    if not any(_complete(m, out_dir=out_dir, jobname=jobname) for m, _ in entries):
        raise ConfigError(
            f"{run_dir} has no finished ColabFold model (the run stopped before its first "
            "model was written); start it again."
        )


def has_finished(run_dir: Path, *, out_dir: Path, jobname: str) -> bool:
    """Whether a resume of ``run_dir`` would keep at least one model (False when unreadable)."""
    try:
        return bool(finished(run_dir, out_dir=out_dir, jobname=jobname))
    except DataError:
        return False


def remove(run_dir: Path) -> None:
    """Delete the checkpoints once the run's record is complete."""
    shutil.rmtree(folder(run_dir), ignore_errors=True)


def model_file(out_dir: Path, *, jobname: str, kind: str, tag: str) -> Path | None:
    """A model's ``kind`` file (``unrelaxed`` .pdb or ``scores`` .json), unranked or ranked."""
    ext = "pdb" if kind == "unrelaxed" else "json"
    plain = Path(out_dir) / f"{jobname}_{kind}_{tag}.{ext}"
    if plain.is_file():
        return plain
    pattern = f"{jobname}_{kind}_rank_[0-9][0-9][0-9]_{tag}.{ext}"
    ranked = sorted(Path(out_dir).glob(pattern)) or sorted(Path(out_dir).glob(f".{pattern}"))
    return ranked[0] if ranked else None  # a leading dot: renamed by a cut rank_files


def ranking(models: list[FinishedModel]) -> dict[str, int]:
    """model -> rank (1 = best), by ColabFold's rule in ``predict_structure``: ranking
    confidence, highest first (numpy argsort of the models in the order folded, reversed)."""
    ordered = sorted(models, key=lambda m: m.number)
    order = np.array([m.ranking_confidence for m in ordered]).argsort()[::-1]
    return {ordered[key].model: n + 1 for n, key in enumerate(order)}


def rank_files(
    models: list[FinishedModel], *, ranks: dict[str, int], out_dir: Path, jobname: str
) -> None:
    """Rename each model's PDB and scores to ``<job>_<kind>_rank_00K_<tag>`` for its rank K
    (via hidden names, so that no rename lands on another model's current name)."""
    for m in models:
        for kind in ("unrelaxed", "scores"):
            current = model_file(out_dir, jobname=jobname, kind=kind, tag=m.tag)
            if current is None:
                raise DataError(f"{m.model}'s {kind} file is missing in {out_dir}.")
            name = f"{jobname}_{kind}_rank_{ranks[m.model]:03d}_{m.tag}{current.suffix}"
            if current.name != name:
                current.rename(current.with_name(f".{name}"))
    for hidden in Path(out_dir).glob(f".{jobname}_*_rank_*"):
        hidden.rename(hidden.with_name(hidden.name[1:]))


def write_summaries(models: list, *, out_dir: Path, jobname: str, dpi: int = 200) -> None:
    """Rewrite ColabFold's summaries of all ``models`` (``outputs.ModelResult``) as its
    ``run`` does at a query's end: the rank-1 PAE JSON (AlphaFold DB format), and the PAE and
    pLDDT plots of the best five. A resumed segment's ColabFold saw only its own models."""
    from colabfold.colabfold import plot_paes, plot_plddts

    scores = [json.loads(m.scores.read_text()) for m in sorted(models, key=lambda m: m.rank)][:5]
    length = [len(scores[0]["plddt"])]
    if "pae" in scores[0]:
        pae = {
            "predicted_aligned_error": scores[0]["pae"],
            "max_predicted_aligned_error": scores[0]["max_pae"],
        }
        path = Path(out_dir) / f"{jobname}_predicted_aligned_error_v1.json"
        with atomic_file(path, what="PAE summary") as tmp:
            tmp.write_text(json.dumps(pae))
        _save_plot(plot_paes([np.asarray(x["pae"]) for x in scores], Ls=length, dpi=dpi),
                   Path(out_dir) / f"{jobname}_pae.png")  # fmt: skip
    _save_plot(plot_plddts([np.asarray(x["plddt"]) for x in scores], Ls=length, dpi=dpi),
               Path(out_dir) / f"{jobname}_plddt.png")  # fmt: skip


def _save_plot(plot, path: Path) -> None:
    with atomic_file(path, what=path.name) as tmp:
        plot.savefig(str(tmp), bbox_inches="tight", format="png")
    plot.close()


def _entries(run_dir: Path) -> list[tuple[FinishedModel, dict]]:
    out = []
    for path in sorted(folder(run_dir).glob("model_*.json")):
        try:
            stored = json.loads(path.read_text())
            missing = [k for k in (*_FIELDS, "identity") if k not in stored]
            if missing:
                raise ValueError(f"no {', '.join(missing)}")
            done = FinishedModel(
                **{k: stored[k] for k in _FIELDS if k != "timing"},
                ptm=stored.get("ptm"),
                timing=ModelTiming(**stored["timing"]),
            )
        except (OSError, ValueError, TypeError) as err:
            raise DataError(
                f"checkpoint {path} is damaged ({' '.join(str(err).split())[:120]}); "
                "start the run again."
            ) from err
        out.append((done, stored["identity"]))
    return sorted(out, key=lambda e: e[0].number)


def _complete(m: FinishedModel, *, out_dir: Path, jobname: str) -> bool:
    pdb = model_file(out_dir, jobname=jobname, kind="unrelaxed", tag=m.tag)
    scores = model_file(out_dir, jobname=jobname, kind="scores", tag=m.tag)
    if pdb is None or scores is None:
        return False
    try:  # ColabFold writes the scores last and not atomically: a cut one does not parse
        return bool(json.loads(scores.read_text()).get("plddt"))
    except (OSError, ValueError):
        return False
