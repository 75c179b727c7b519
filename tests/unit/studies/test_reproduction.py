"""Reproduction verdicts from planted seed distributions, and the study built from records."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from scipy import stats

from tests.conftest import REPO
from usecases.errors import DataError
from usecases.records.study import load_study, write_study
from usecases.studies.reproduction import build_study, format_study, reproduction_verdict
from usecases.studies.stats import seed_summary

REAL_RECORD = REPO / "results" / "baselines" / "cpu-smoke" / "covid_ct" / "record.json"
TIGHT = [0.770, 0.775, 0.772, 0.774]
SPREAD = [0.60, 0.75, 0.68, 0.72]


def test_the_intervals_are_students_t():
    s = seed_summary(SPREAD, confidence=0.95)
    t, sd, n = stats.t.ppf(0.975, 3), stats.tstd(SPREAD), 4
    mean = sum(SPREAD) / n
    assert s.ci == pytest.approx((mean - t * sd / n**0.5, mean + t * sd / n**0.5))
    half = t * sd * math.sqrt(1 + 1 / n)
    assert s.pi == pytest.approx((mean - half, mean + half))


def test_a_pinned_mean_inside_the_tolerance_is_reproduced():
    v = reproduction_verdict(TIGHT, published=0.773, tolerance=0.03)
    assert v["verdict"] == "reproduced" and v["side"] is None
    low, high = v["summary"]["ci"]
    assert 0.743 <= low < high <= 0.803 and "CI of the mean" in v["reason"]


def test_a_wide_spread_around_the_published_run_is_consistent():
    v = reproduction_verdict(SPREAD, published=0.773, tolerance=0.03)
    assert v["summary"]["ci"][0] < 0.743  # the mean is not pinned within the tolerance ...
    p_low, p_high = v["summary"]["pi"]
    assert p_low <= 0.773 <= p_high  # ... but the published run could be one of ours
    assert v["verdict"] == "consistent"


@pytest.mark.parametrize(
    ("values", "side"), [([0.85, 0.86, 0.855, 0.858], "above"), ([0.40, 0.41, 0.405], "below")]
)
def test_a_published_value_outside_the_prediction_interval_is_not_reproduced(values, side):
    v = reproduction_verdict(values, published=0.773, tolerance=0.03)
    assert v["verdict"] == "not reproduced" and v["side"] == side
    assert f"lie {side}" in v["reason"]


@pytest.mark.parametrize(
    ("values", "options", "why"),
    [
        ([0.77, 0.78], {}, "2 ok seed(s); a verdict needs 3"),
        (TIGHT, {"unusable": "synthetic data"}, "synthetic data"),
        (TIGHT, {"tolerance": None}, "context only"),
    ],
)
def test_too_few_seeds_or_unusable_runs_are_not_established(values, options, why):
    v = reproduction_verdict(values, **{"published": 0.773, "tolerance": 0.03, **options})
    assert v["verdict"] == "not established" and why in v["reason"]


def test_a_published_value_on_the_prediction_bound_counts_as_inside():
    s = seed_summary(SPREAD, confidence=0.95)
    on = reproduction_verdict(SPREAD, published=s.pi[1], tolerance=0.0)
    assert on["verdict"] == "consistent"
    off = reproduction_verdict(SPREAD, published=s.pi[1] + 1e-6, tolerance=0.0)
    assert off["verdict"] == "not reproduced" and off["side"] == "below"


def test_a_confidence_bound_on_the_tolerance_edge_counts_as_inside():
    s = seed_summary(TIGHT, confidence=0.95)
    half = (s.ci[1] - s.ci[0]) / 2
    assert reproduction_verdict(TIGHT, published=s.mean, tolerance=half)["verdict"] == "reproduced"
    # a hair narrower: the mean is no longer pinned, the published value still a likely run
    narrower = reproduction_verdict(TIGHT, published=s.mean, tolerance=half - 1e-6)
    assert narrower["verdict"] == "consistent"


def _real_record(seed: int, dice: float, *, reached_at: int | None = None) -> dict:
    """A real run's record made to look like a real-data galaxy run of ``seed``."""
    data = json.loads(REAL_RECORD.read_text())
    data["run_id"] = f"seed{seed}"
    data["config"]["seed"] = seed
    data["dataset"]["synthetic"] = False
    data["metrics"]["0.3"]["dice_pooled"] = dice
    for ref in data["references"]:
        ref["verdict"], ref["reason"] = "pass", "planted"
        if ref["reference_id"] == "tv_unet_dice_pooled_0.3":
            ref["measured"] = dice
    data["metrics"]["time_to_quality"] = {
        "metric": "dice_pooled", "at": "0.3", "target": 0.743, "target_from": "planted",
        "reached": reached_at is not None, "epochs": reached_at,
        "seconds": None if reached_at is None else 10.0 * reached_at,
        "best_dice": dice, "epochs_run": 16, "includes": "planted",
    }  # fmt: skip
    return data


def _write(folder: Path, records: list[dict]) -> Path:
    for data in records:
        path = folder / "runs" / data["run_id"] / "record.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(data))
    return folder / "runs"


def test_the_study_judges_each_published_value_over_the_seeds(tmp_path):
    dice = {1: 0.60, 2: 0.75, 3: 0.68, 4: 0.72}
    records = [_real_record(s, d, reached_at=5 if d > 0.743 else None) for s, d in dice.items()]
    failed = _real_record(5, 0.1) | {"status": "failed", "error": "diverged"}
    runs = _write(tmp_path, [*records, failed])
    study = build_study([runs], out_dir=tmp_path, study_id="planted")
    assert study.seeds == [1, 2, 3, 4] and study.failed == ["seed 5 (seed5): diverged"]
    row = study.per_threshold["0.3"]["dice_pooled"]
    assert row["n"] == 4 and row["mean"] == pytest.approx(sum(SPREAD) / 4)
    (v,) = [v for v in study.verdicts if v["reference_id"] == "tv_unet_dice_pooled_0.3"]
    assert v["verdict"] == "consistent" and v["values"] == list(dice.values())
    ttq = study.time_to_quality
    assert (ttq["recorded"], ttq["reached"], ttq["epochs"]) == (4, 1, [5])
    assert {r["record"] for r in study.runs} == {f"runs/seed{s}/record.json" for s in range(1, 6)}
    write_study(study, tmp_path / "study.json")
    assert load_study(tmp_path / "study.json").verdicts == study.verdicts
    assert "tv_unet_dice_pooled_0.3 (dice_pooled@0.3): consistent" in format_study(study)


def test_synthetic_runs_give_no_reproduction_verdict(tmp_path):
    records = [json.loads(REAL_RECORD.read_text()) for _ in range(3)]
    for seed, data in enumerate(records, 1):
        data["run_id"], data["config"]["seed"] = f"seed{seed}", seed
    study = build_study([_write(tmp_path, records)], out_dir=tmp_path, study_id="phantom")
    assert study.synthetic and study.setting.endswith("(synthetic data)")
    assert {v["verdict"] for v in study.verdicts} == {"not established"}
    assert {v["reason"] for v in study.verdicts} == {"synthetic data"}


def test_runs_that_differ_beyond_the_seed_are_refused(tmp_path):
    a, b = _real_record(1, 0.7), _real_record(2, 0.7)
    b["config"]["scale"]["epochs"] = 3
    with pytest.raises(DataError, match=r"differ in scale\.epochs"):
        build_study([_write(tmp_path, [a, b])], out_dir=tmp_path, study_id="x")


def test_a_seed_run_twice_is_refused(tmp_path):
    a, b = _real_record(1, 0.7), _real_record(1, 0.6)
    b["run_id"] = "again"
    with pytest.raises(DataError, match="seed 1 was run twice"):
        build_study([_write(tmp_path, [a, b])], out_dir=tmp_path, study_id="x")


def test_a_study_file_off_its_schema_is_one_clear_error(tmp_path):
    path = tmp_path / "study.json"
    path.write_text(json.dumps({"schema_version": "1.0", "kind": "reproduction_study"}))
    with pytest.raises(DataError, match="does not match the study schema"):
        load_study(path)


def test_a_run_that_lacks_a_value_leaves_the_study_with_fewer_seeds(tmp_path):
    records = [_real_record(s, d) for s, d in {1: 0.77, 2: 0.775, 3: 0.772, 4: 0.774}.items()]
    (ref,) = [r for r in records[3]["references"] if r["reference_id"] == "tv_unet_dice_pooled_0.3"]
    ref.update(verdict="not comparable", reason="no measured dice_pooled at 0.3", measured=None)
    study = build_study([_write(tmp_path, records)], out_dir=tmp_path, study_id="x")
    (v,) = [v for v in study.verdicts if v["reference_id"] == "tv_unet_dice_pooled_0.3"]
    assert v["summary"]["n"] == 3 and v["verdict"] == "reproduced"
