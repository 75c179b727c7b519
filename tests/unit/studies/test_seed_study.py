"""Seed study: a multirun sweep's records grouped by precision, with a confidence interval."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scipy import stats

from tests.conftest import REPO
from usecases.studies import seed_study

# A record made by a real run (scripts/nightly.sh --device cpu --scale smoke --write-baseline).
REAL_RECORD = REPO / "results" / "baselines" / "cpu-smoke" / "covid_ct" / "record.json"


def _record(*, policy: str, seed: int, dice: float, images_per_s: float = 10.0) -> dict:
    data = json.loads(REAL_RECORD.read_text())
    data["run_id"] = f"{policy}-{seed}"
    data["config"]["seed"] = seed
    data["config"]["usecase"]["precision"] = policy
    data["device"]["precision"] = {"policy": policy, "reason": "set by the user"}
    data["metrics"]["0.3"]["dice_pooled"] = dice
    data["timings"]["train_step"]["images_per_s"] = images_per_s
    return data


def _write(folder: Path, records: list[dict]) -> Path:
    for data in records:
        path = folder / data["run_id"] / "record.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(data))
    return folder


def _study(tmp_path: Path, f32: list[float], bf16: list[float], *, bf16_seeds=None) -> list:
    records = [_record(policy="float32", seed=s, dice=d) for s, d in enumerate(f32, 1)]
    seeds = bf16_seeds or range(1, len(bf16) + 1)
    records += [
        _record(policy="mixed_bfloat16", seed=s, dice=d, images_per_s=17.0)
        for s, d in zip(seeds, bf16, strict=True)
    ]
    study = seed_study.load_groups([_write(tmp_path, records)])
    return seed_study.compare(study.groups, reference="float32", margin=0.01)


def test_shared_seeds_give_a_paired_t_interval(tmp_path):
    (d,) = _study(tmp_path, [0.700, 0.720, 0.710], [0.705, 0.726, 0.713])
    diffs = [0.005, 0.006, 0.003]
    mean = sum(diffs) / 3
    half = stats.t.ppf(0.975, 2) * stats.tstd(diffs) / 3**0.5
    assert d.method == "paired t"
    assert d.diff == pytest.approx(mean)
    assert (d.low, d.high) == pytest.approx((mean - half, mean + half))
    assert d.verdict == "within"
    assert d.speedup == pytest.approx(1.7)


def test_a_consistent_large_gain_is_beyond_the_margin(tmp_path):
    (d,) = _study(tmp_path, [0.40, 0.42, 0.41], [0.70, 0.69, 0.71])
    assert d.low > 0.01 and d.verdict == "beyond"


def test_seed_noise_wider_than_the_margin_is_not_established(tmp_path):
    (d,) = _study(tmp_path, [0.60, 0.70, 0.65], [0.70, 0.60, 0.66])
    assert d.low < -0.01 < 0.01 < d.high
    assert d.verdict == "not established"


def test_different_seeds_use_welch(tmp_path):
    (d,) = _study(tmp_path, [0.70, 0.72, 0.71], [0.71, 0.73], bf16_seeds=[7, 8])
    assert d.method == "Welch t"
    assert d.diff == pytest.approx(0.72 - 0.71)
    welch = stats.ttest_ind([0.71, 0.73], [0.70, 0.72, 0.71], equal_var=False)
    ci = welch.confidence_interval(0.95)
    assert (d.low, d.high) == pytest.approx((ci.low, ci.high))


def test_one_run_per_group_gives_no_interval_and_no_verdict(tmp_path):
    (d,) = _study(tmp_path, [0.40], [0.70])
    assert d.low is None and d.verdict == "not established"


def test_runs_with_other_settings_are_refused_by_name(tmp_path, capsys):
    other = _record(policy="mixed_bfloat16", seed=1, dice=0.7)
    other["config"]["scale"]["epochs"] = 99
    folder = _write(tmp_path, [_record(policy="float32", seed=1, dice=0.7), other])
    assert seed_study.main([str(folder)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "differ in scale.epochs" in err[0]


def test_runs_on_other_data_are_refused_wherever_it_lies(tmp_path, capsys):
    moved = _record(policy="float32", seed=2, dice=0.7)
    moved["config"]["dataset"]["root"] = "/elsewhere"
    other = _record(policy="mixed_bfloat16", seed=1, dice=0.7)
    other["dataset"]["checksum"] = "0" * 64
    records = [_record(policy="float32", seed=1, dice=0.7), moved, other]
    for data in records:  # real data (a synthetic phantom's checksum follows the seed)
        data["dataset"]["synthetic"] = False
    folder = _write(tmp_path, records)
    assert seed_study.main([str(folder)]) == 1
    assert "differ in data checksum" in capsys.readouterr().err


def test_groups_without_spread_give_a_point_interval(tmp_path):
    (d,) = _study(tmp_path, [0.5, 0.5], [0.5, 0.5], bf16_seeds=[3, 4])
    assert (d.method, d.low, d.high, d.verdict) == ("Welch t", 0.0, 0.0, "within")


def test_a_failed_run_is_left_out_and_named(tmp_path, capsys):
    records = [
        _record(policy=p, seed=s, dice=0.7) for p in ("float32", "mixed_bfloat16") for s in (1, 2)
    ]
    diverged = _record(policy="mixed_bfloat16", seed=3, dice=0.7)
    diverged.update(status="failed", error="DataError: training loss became NaN")
    folder = _write(tmp_path, [*records, diverged])
    assert seed_study.main([str(folder)]) == 0
    out = capsys.readouterr().out
    assert "mixed_bfloat16 2 1,2" in " ".join(out.split())
    named = "left out, failed: mixed_bfloat16 seed 3 (mixed_bfloat16-3): DataError: training"
    assert named in out


def test_runs_on_another_machine_are_refused(tmp_path, capsys):
    gpu = _record(policy="mixed_bfloat16", seed=1, dice=0.7)
    gpu["device"]["used"] = "gpu"
    folder = _write(tmp_path, [_record(policy="float32", seed=1, dice=0.7), gpu])
    assert seed_study.main([str(folder)]) == 1
    assert "differ in run (usecase/dataset/scale/device/backend)" in capsys.readouterr().err


def _with_onednn(data: dict, value: str) -> dict:
    data["environment"]["variables"] = {"TF_ENABLE_ONEDNN_OPTS": value, "OMP_NUM_THREADS": "2"}
    data["run_id"] += f"-onednn{value}"
    return data


def test_runs_with_another_kernel_setting_are_refused_by_name(tmp_path, capsys):
    records = [
        _with_onednn(_record(policy=p, seed=1, dice=0.7), v)
        for p, v in (("float32", "1"), ("mixed_bfloat16", "0"))
    ]
    assert seed_study.main([str(_write(tmp_path, records))]) == 1
    err = capsys.readouterr().err
    assert "differ in environment.variables.TF_ENABLE_ONEDNN_OPTS ('1' vs '0')" in err


def test_records_from_before_the_variables_were_recorded_still_pool(tmp_path):
    old = _record(policy="float32", seed=1, dice=0.7)
    old["environment"].pop("variables", None)
    new = _with_onednn(_record(policy="mixed_bfloat16", seed=1, dice=0.7), "1")
    study = seed_study.load_groups([_write(tmp_path, [old, new])])
    assert sorted(g.name for g in study.groups) == ["float32", "mixed_bfloat16"]


def test_an_environment_variable_can_be_the_grouping_setting(tmp_path):
    records = [
        _with_onednn(_record(policy="float32", seed=s, dice=d), v)
        for v, dice in (("1", (0.70, 0.72)), ("0", (0.60, 0.75)))
        for s, d in zip((1, 2), dice, strict=True)
    ]
    by = "environment.variables.TF_ENABLE_ONEDNN_OPTS"
    study = seed_study.load_groups([_write(tmp_path, records)], by=by)
    (d,) = seed_study.compare(study.groups, reference="1", margin=0.01)
    assert (d.group, d.method) == ("0", "paired t")
    text = seed_study.format_table(study, [d], threshold=0.3, margin=0.01)
    assert text.splitlines()[0].endswith(f", groups by {by}")
    assert d.diff == pytest.approx((0.60 + 0.75 - 0.70 - 0.72) / 2)


def test_one_group_alone_is_refused(tmp_path, capsys):
    folder = _write(tmp_path, [_record(policy="float32", seed=s, dice=0.7) for s in (1, 2)])
    assert seed_study.main([str(folder)]) == 1
    assert "nothing to compare" in capsys.readouterr().err


def test_a_seed_run_twice_in_one_group_is_refused(tmp_path, capsys):
    twice = _record(policy="float32", seed=1, dice=0.6)
    twice["run_id"] = "again"
    folder = _write(tmp_path, [_record(policy="float32", seed=1, dice=0.7), twice])
    assert seed_study.main([str(folder)]) == 1
    assert "seed 1 twice" in capsys.readouterr().err


def test_bad_options_and_an_unwritable_json_are_one_line(tmp_path, capsys):
    records = [_record(policy=p, seed=1, dice=0.7) for p in ("float32", "mixed_bfloat16")]
    folder = str(_write(tmp_path / "runs", records))
    cases = [
        (["--by", "device.nope"], 1, "no field 'device.nope'"),
        (["--margin", "-1"], 2, "--margin -1 must be >= 0"),
        (["--json", str(tmp_path / "absent" / "s.json")], 2, "cannot write"),
    ]
    for extra, code, says in cases:
        assert seed_study.main([folder, *extra]) == code
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and says in err[0], err


def test_a_missing_folder_is_one_line(tmp_path, capsys):
    assert seed_study.main([str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not exist" in err[0]


def _implementation(seed: int, dice: float, *, label: str, start: str) -> dict:
    """A record of one implementation (port / original) started from weights digest ``start``."""
    data = _record(policy="float32", seed=seed, dice=dice)
    data["run_id"] = f"{label}-{seed}"
    name = "port" if label == "port" else "original"
    data["config"]["usecase"]["implementation"] = name
    data["config"]["usecase"]["original"] = {
        "code": None,
        "initial_weights": "own" if label.endswith("own-weights") else "port",
    }
    data["environment"]["implementation"] = {
        "name": name,
        "label": label,
        "initial_weights_sha256": start,
    }
    for k in range(1, 10):  # a curve: the implementation's offset at every threshold
        data["metrics"][f"0.{k}"]["dice_pooled"] = dice - 0.01 * k
    return data


def test_implementations_pair_by_initial_weights_and_the_curve_is_compared(tmp_path, capsys):
    port = [0.60, 0.70, 0.65, 0.62]
    original = [0.61, 0.705, 0.655, 0.63]  # paired: the port's weights, seed by seed
    own = [0.70, 0.50, 0.66, 0.58]  # tf-keras's own draws: other weights on the same seeds
    records = [_implementation(s, d, label="port", start=f"w{s}") for s, d in enumerate(port, 1)]
    records += [
        _implementation(s, d, label="original", start=f"w{s}") for s, d in enumerate(original, 1)
    ]
    records += [
        _implementation(s, d, label="original-own-weights", start=f"k{s}")
        for s, d in enumerate(own, 1)
    ]
    folder = _write(tmp_path / "runs", records)
    by = "environment.implementation.label"
    study = seed_study.load_groups([folder], by=by)
    diffs = {d.group: d for d in seed_study.compare(study.groups, reference="port", margin=0.01)}
    assert diffs["original"].method == "paired t"
    assert diffs["original"].diff == pytest.approx(0.0075)
    assert diffs["original-own-weights"].method == "Welch t (initial weights differ)"
    # --paired refuses the unpaired group by name, one line
    out = tmp_path / "study.json"
    argv = [str(folder), "--by", by, "--reference", "port", "--paired", "--json", str(out)]
    assert seed_study.main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert "original-own-weights is not paired with port" in err and "\n" not in err
    assert "other initial weights on seed(s) 1, 2, 3, 4" in err and not out.exists()
    # without it, the paired group gets its per-seed and per-threshold lines
    for data in records[-4:]:
        (folder / data["run_id"] / "record.json").unlink()
    assert seed_study.main(argv) == 0
    printed = capsys.readouterr().out
    assert "  seed   2: 0.6750 - 0.6700 = +0.0050" in printed  # Dice@0.3: dice - 0.03
    assert "  Dice@0.9: +0.0075 [" in printed
    (detail,) = json.loads(out.read_text())["paired"]
    assert detail["group"] == "original" and detail["seeds"] == [1, 2, 3, 4]
    assert set(detail["curve"]) == {f"0.{k}" for k in range(1, 10)}
    assert detail["curve"]["0.3"][0] == pytest.approx(0.0075)


BATCHNORM_STUDY = REPO / "results" / "cpu" / "covid_ct-ci-batchnorm-study"


def test_the_committed_batchnorm_study_is_what_its_records_give(tmp_path, capsys):
    """Real records (16 ci runs) grouped by a config field: the committed study is reproduced."""
    argv = [str(BATCHNORM_STUDY), "--by", "config.usecase.train.batchnorm"]
    out = tmp_path / "study.json"
    assert seed_study.main([*argv, "--reference", "keras", "--paired", "--json", str(out)]) == 0
    assert capsys.readouterr().out == (BATCHNORM_STUDY / "study.txt").read_text()
    study = json.loads(out.read_text())
    assert study == json.loads((BATCHNORM_STUDY / "seed_study.json").read_text())
    (diff,) = study["differences"]
    assert diff["group"] == "fused" and diff["method"] == "paired t"
    assert diff["low"] < 0 < diff["high"] and diff["verdict"] == "not established"
