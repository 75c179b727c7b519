"""The console's closing lines come from the record: metric, verdicts, fastest path, paths."""

from __future__ import annotations

import json

from tests.conftest import REPO
from usecases.runner.summary import summary_lines

BASELINE = REPO / "results" / "baselines" / "cpu-smoke"
GALAXY_CPU = REPO / "results" / "reproductions" / "covid_ct-galaxy-cpu" / "record.json"


def _covid(**changes) -> dict:
    record = {
        "usecase": "covid_ct",
        "status": "ok",
        "dataset": {"synthetic": True},
        "metrics": {"0.3": {"dice_pooled": 0.6789}},
        "references": [{"verdict": "not comparable", "reason": "synthetic data"}],
        "timings": {
            "train_step": {"images_per_s": 5000.0},  # training: never the inference path
            "inference_batch8": {"images_per_s": 440.0},
            "onnx_inference_batch1": {"images_per_s": 687.0},
            "onnx_int8_inference_batch8": {"images_per_s": 912.5},
        },
    }
    record.update(changes)
    return record


def test_a_synthetic_run_shows_its_dice_no_verdict_and_the_fastest_path(tmp_path):
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "report.html").write_text("<html></html>")
    lines = summary_lines(_covid(), run_dir=tmp_path)
    assert lines == [
        "summary: covid_ct ok",
        "  pooled test Dice at 0.3: 0.679",
        "  synthetic data: no verdict against published values",
        "  fastest inference: onnxruntime int8 at batch 8, 912 images/s",
        f"  record: {tmp_path / 'record.json'}",
        f"  report: {tmp_path / 'report' / 'report.html'}",
    ]


def test_a_real_run_counts_its_verdicts(tmp_path):
    refs = [{"verdict": "pass"}, {"verdict": "fail"}, {"verdict": "fail"},
            {"verdict": "not comparable", "reason": "context only"}]  # fmt: skip
    lines = summary_lines(_covid(references=refs, dataset={"synthetic": False}), run_dir=tmp_path)
    assert (
        "  verdicts against published values: 1 pass, 2 fail (of 4 references; one run: a "
        "reproduction verdict needs a study, usecase-bench-study)"
    ) in lines
    assert not any(line.startswith("  report:") for line in lines)  # none written


def test_a_committed_real_record_reads_as_it_should():
    record = json.loads(GALAXY_CPU.read_text())
    lines = summary_lines(record, run_dir=GALAXY_CPU.parent)
    assert lines[1] == f"  pooled test Dice at 0.3: {record['metrics']['0.3']['dice_pooled']:.3f}"
    assert lines[2].startswith("  verdicts against published values: ")


def test_colabfold_shows_the_best_models_plddt_and_why_there_is_no_verdict():
    path = BASELINE / "colabfold_spike" / "record.json"
    record = json.loads(path.read_text())
    lines = summary_lines(record, run_dir=path.parent)
    plddt = record["metrics"]["mean_plddt_best"]
    assert (
        lines[1]
        == f"  mean pLDDT of the best model ({record['metrics']['best_model']}): {plddt:.1f}"
    )
    assert lines[2].startswith("  no verdict against published values: random weights")


def test_a_failed_run_says_so_with_its_error(tmp_path):
    record = _covid(status="failed", error="DataError: test slices missing", metrics={})
    assert summary_lines(record, run_dir=tmp_path)[:2] == [
        "summary: covid_ct failed",
        "  error: DataError: test slices missing",
    ]


def test_the_time_to_quality_is_one_line_reached_or_not(tmp_path):
    ttq = {"at": "0.3", "target": 0.743, "reached": True, "epochs": 13, "seconds": 41.09,
           "epochs_run": 16}  # fmt: skip
    metrics = {"0.3": {"dice_pooled": 0.9}, "time_to_quality": ttq}
    lines = summary_lines(_covid(metrics=metrics), run_dir=tmp_path)
    assert "  time to quality (Dice@0.3 >= 0.743): epoch 13, 41.1 s" in lines
    never = {**ttq, "reached": False, "epochs": None, "seconds": None}
    lines = summary_lines(_covid(metrics={**metrics, "time_to_quality": never}), run_dir=tmp_path)
    assert "  time to quality (Dice@0.3 >= 0.743): not reached in 16 epochs" in lines
