"""Reproduction studies end to end: the GPU script on CPU, and the committed ci-scale study."""

from __future__ import annotations

import json

import pytest

from tests.conftest import CI_STUDY_SEEDS, REPO
from usecases.records.record import load_record
from usecases.records.study import load_study
from usecases.studies.reproduction import build_study

COMMITTED = REPO / "results" / "cpu" / "covid_ct-ci-study"


def test_the_gpu_study_script_runs_end_to_end_on_cpu(ci_study):
    assert ci_study.code == 0, ci_study.output[-3000:]
    folder = ci_study.out / "ci"
    records = [load_record(folder / "runs" / "covid_ct" / f"seed{s}" / "record.json")
               for s in CI_STUDY_SEEDS]  # fmt: skip
    for record in records:
        curve = record.metrics["learning_curve"]
        epochs = record.metrics["epochs_run"]
        assert curve["epoch"] == list(range(1, epochs + 1))
        assert len(curve["by_threshold"]["0.3"]["dice_pooled"]) == epochs
        # the model kept is the best-validation epoch's: its curve entry is the final Dice
        best = record.metrics["best_epoch"]
        final = record.metrics["0.3"]["dice_pooled"]
        assert curve["by_threshold"]["0.3"]["dice_pooled"][best - 1] == pytest.approx(final)
        ttq = record.metrics["time_to_quality"]
        assert ttq["target"] == 0.743 and ttq["at"] == "0.3"
        assert ttq["reached"] == (ttq["epochs"] is not None) == (ttq["seconds"] is not None)
        assert ttq["best_dice"] == max(curve["by_threshold"]["0.3"]["dice_pooled"])
    study = load_study(folder / "study.json")
    assert study.seeds == sorted(CI_STUDY_SEEDS) and not study.failed
    assert study.per_threshold["0.3"]["dice_pooled"]["n"] == 2
    assert study.time_to_quality["recorded"] == 2
    # two seeds, and ci scale is not the published setting: no reproduction verdict
    assert {v["verdict"] for v in study.verdicts} == {"not established"}
    assert "tab-study-verdicts-0" in (folder / "report.html").read_text()
    assert "reproduction study of covid_ct/covid_semiseg/ci/cpu/tensorflow" in ci_study.output


def test_the_committed_ci_study_is_what_its_records_give():
    if not (COMMITTED / "study.json").is_file():
        pytest.fail(f"{COMMITTED}/study.json is missing: commit the ci-scale study")
    committed = load_study(COMMITTED / "study.json")
    again = build_study([COMMITTED / "runs"], out_dir=COMMITTED, study_id=committed.study_id)
    assert committed.seeds == again.seeds == [1, 2, 3, 4]
    assert json.dumps(committed.per_threshold) == json.dumps(again.per_threshold)
    assert committed.verdicts == again.verdicts
    assert committed.time_to_quality == again.time_to_quality
    for run in committed.runs:
        assert (COMMITTED / run["record"]).is_file(), run["record"]
