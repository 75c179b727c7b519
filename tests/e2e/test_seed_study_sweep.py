"""Seed study end to end: a real run.py multirun sweep feeds usecase-bench-seed-study."""

from __future__ import annotations

import json

import pytest

from usecases.studies import seed_study


def test_a_multirun_sweep_feeds_the_study(run_cli, tmp_path, capsys):
    """One ``run.py -m`` call sweeps the precision (a seed sweep works the same way; the
    statistics over several seeds are tested in tests/unit/studies); the study reads
    its records."""
    res = run_cli(
        "-m",
        "dataset=phantom",
        "scale=smoke",
        "scale.epochs=1",
        "device=cpu",
        "seed=7",
        "usecase.precision=float32,mixed_bfloat16",
        "usecase.export.onnx=false",
        "report=false",
    )
    assert res.code == 0, res.stderr[-2000:]
    records = res.records()
    dice = {r["device"]["precision"]["policy"]: r["metrics"]["0.3"]["dice_pooled"] for r in records}
    assert len(records) == 2 and set(dice) == {"float32", "mixed_bfloat16"}
    assert all(r["config"]["seed"] == 7 for r in records)
    assert seed_study.main([str(res.results), "--json", str(tmp_path / "s.json")]) == 0
    assert "(synthetic data)" in capsys.readouterr().out.splitlines()[0]
    study = json.loads((tmp_path / "s.json").read_text())
    assert {g["name"]: g["dice"] for g in study["groups"]} == {k: [v] for k, v in dice.items()}
    (diff,) = study["differences"]
    assert diff["diff"] == pytest.approx(dice["mixed_bfloat16"] - dice["float32"])
    assert diff["verdict"] == "not established"  # one run per group gives no interval


def test_a_bad_sweep_value_is_refused_before_any_run(run_cli):
    res = run_cli("-m", "dataset=phantom", "scale=smoke,tiny", "seed=1,2")
    assert res.code == 2
    lines = res.error_lines()
    assert len(lines) == 1 and "tiny" in lines[0], res.stderr[-2000:]
    assert not res.results.exists() or not any(res.results.rglob("record.json"))
