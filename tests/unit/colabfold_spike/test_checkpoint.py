"""colabfold_spike's per-model checkpoints: what counts as finished, ColabFold's ranking rule
across segments, the renames, and the refusals of a resume (ColabFold itself is not run)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from usecases.colabfold_spike import checkpoint
from usecases.colabfold_spike.checkpoint import FinishedModel
from usecases.colabfold_spike.instrument import ModelTiming
from usecases.colabfold_spike.outputs import FoldResult, read_models
from usecases.errors import ConfigError, DataError

JOB = "job"
IDENTITY = {"code_sha256": "c" * 64, "config_sha256": "f" * 64}
SEGMENT_1, SEGMENT_2 = "2026-12-04T01:00:00+00:00", "2026-12-04T02:00:00+00:00"


def _done(n: int, confidence: float, *, started_at: str = SEGMENT_1) -> FinishedModel:
    tag = f"alphafold2_ptm_model_{n}_seed_000"
    timing = ModelTiming(total_s=10.0 + n, forwards_s=[10.0 + n], compile_s=0.0, tag=tag)
    return FinishedModel(model=f"model_{n}", tag=tag, started_at=started_at,
                         ranking_confidence=confidence, mean_plddt=confidence, ptm=0.5,
                         timing=timing)  # fmt: skip


def _write(out_dir: Path, m: FinishedModel, *, rank: int | None = None, cut: bool = False):
    """The PDB and scores ColabFold writes for ``m`` (unranked, or already at ``rank``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tag = m.tag if rank is None else f"rank_{rank:03d}_{m.tag}"
    (out_dir / f"{JOB}_unrelaxed_{tag}.pdb").write_text(f"MODEL {m.model}\n")
    scores = json.dumps({"plddt": [m.mean_plddt] * 4, "max_pae": 30.0, "pae": [[1.0] * 4] * 4})
    (out_dir / f"{JOB}_scores_{tag}.json").write_text(scores[:10] if cut else scores)


def test_ranking_is_colabfolds_rule_whatever_order_the_models_come_in():
    models = [_done(3, 70.0), _done(1, 60.0), _done(2, 80.0)]
    ranks = checkpoint.ranking(models)
    assert ranks == {"model_2": 1, "model_3": 2, "model_1": 3}
    confidences = [60.0, 80.0, 70.0]  # predict_structure: argsort of the folded order, reversed
    colabfold = {f"model_{k + 1}": n + 1 for n, k in enumerate(np.argsort(confidences)[::-1])}
    assert ranks == colabfold


def test_a_model_counts_as_finished_only_with_its_checkpoint_pdb_and_whole_scores(tmp_path):
    out = tmp_path / "colabfold"
    one, two, three = _done(1, 60.0), _done(2, 80.0), _done(3, 70.0)
    for m in (one, two):
        checkpoint.save(tmp_path, m, identity=IDENTITY)
    _write(out, one)
    _write(out, two, cut=True)  # killed while ColabFold wrote its scores
    _write(out, three)  # written, but its checkpoint was not: cannot be trusted
    assert [m.model for m in checkpoint.finished(tmp_path, out_dir=out, jobname=JOB)] == ["model_1"]
    kept = checkpoint.finished(tmp_path, out_dir=out, jobname=JOB)[0]
    assert kept == one  # every field, the timing included, as saved


def test_models_of_two_segments_are_ranked_together_and_renamed_without_a_clash(tmp_path):
    out = tmp_path / "colabfold"
    one = _done(1, 60.0)  # segment 1, killed before ColabFold ranked it
    two, three = _done(2, 80.0, started_at=SEGMENT_2), _done(3, 90.0, started_at=SEGMENT_2)
    _write(out, one)
    _write(out, three, rank=1)  # ColabFold ranked only segment 2's two models
    _write(out, two, rank=2)
    models = read_models([one, two, three], out_dir=out, jobname=JOB, resumed=True)
    assert [(m.model, m.rank) for m in models] == [("model_3", 1), ("model_2", 2), ("model_1", 3)]
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        f"{JOB}_{kind}_rank_{r:03d}_alphafold2_ptm_model_{n}_seed_000.{ext}"
        for n, r in ((3, 1), (2, 2), (1, 3))
        for kind, ext in (("scores", "json"), ("unrelaxed", "pdb"))
    )
    assert models[2].pdb.read_text() == "MODEL model_1\n"


def test_a_resumed_folds_steady_state_leaves_out_each_segments_first_model(tmp_path):
    out = tmp_path / "colabfold"
    done = [
        _done(1, 60.0),
        _done(2, 80.0, started_at=SEGMENT_2),
        _done(3, 70.0, started_at=SEGMENT_2),
    ]
    for m in done:
        _write(out, m)
    models = read_models(done, out_dir=out, jobname=JOB, resumed=True)
    result = FoldResult(jobname=JOB, out_dir=out, models=models, run_s=40.0, params_s=5.0,
                        compile_s=9.0, resumed=["model_1"])  # fmt: skip
    t = result.timings()
    assert t["steady_model"]["n"] == 1 and t["steady_model"]["median_s"] == 13.0  # model_3
    assert [s["models"] for s in t["segments"]] == [["model_1"], ["model_2", "model_3"]]
    assert t["outside_prediction_s"] == pytest.approx(40.0 - (12.0 + 13.0) - 5.0)


def test_check_refuses_no_finished_model_other_code_and_a_damaged_checkpoint(tmp_path):
    out = tmp_path / "colabfold"
    one = _done(1, 60.0)
    with pytest.raises(ConfigError, match="has no finished ColabFold model"):
        checkpoint.check(tmp_path, out_dir=out, jobname=JOB, identity=IDENTITY)
    checkpoint.save(tmp_path, one, identity=IDENTITY)
    _write(out, one)
    checkpoint.check(tmp_path, out_dir=out, jobname=JOB, identity=IDENTITY)  # fine
    other = {**IDENTITY, "config_sha256": "0" * 64}
    with pytest.raises(ConfigError, match="written by other config"):
        checkpoint.check(tmp_path, out_dir=out, jobname=JOB, identity=other)
    saved = checkpoint.folder(tmp_path) / "model_1.json"
    saved.write_text(saved.read_text()[:30])
    with pytest.raises(DataError, match=r"model_1\.json is damaged"):
        checkpoint.check(tmp_path, out_dir=out, jobname=JOB, identity=IDENTITY)
    assert not checkpoint.has_finished(tmp_path, out_dir=out, jobname=JOB)


def test_the_usecase_says_a_folder_is_resumable_only_with_a_finished_model(tmp_path):
    from omegaconf import OmegaConf

    from usecases.colabfold_spike.usecase import resumable

    cfg = {"usecase": {"name": "colabfold_spike", "fasta": None, "max_length": 24}}
    (tmp_path / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    one, out = _done(1, 60.0), tmp_path / "colabfold"
    assert not resumable(tmp_path)
    checkpoint.save(tmp_path, one, identity=IDENTITY)
    _write(out, one)
    assert not resumable(tmp_path)  # files named for another job: not this run's model
    (out / f"{JOB}_scores_{one.tag}.json").rename(
        out / f"galaxy_spike_302_first24_scores_{one.tag}.json"
    )
    (out / f"{JOB}_unrelaxed_{one.tag}.pdb").rename(
        out / f"galaxy_spike_302_first24_unrelaxed_{one.tag}.pdb"
    )
    assert resumable(tmp_path)
    checkpoint.remove(tmp_path)
    assert not resumable(tmp_path)
