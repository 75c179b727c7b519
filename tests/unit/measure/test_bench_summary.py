"""The benchmark summary table: ratios to the reference way and to the paper's own code."""

from __future__ import annotations

from tests.benchmarks.conftest import Row
from tests.benchmarks.summary import summary_lines
from usecases.covid_ct.hot_paths import PATHS


def _row(name: str, images_per_s: float) -> Row:
    info = {"images_per_s": images_per_s, "gflops_per_s": images_per_s * 76.2,
            "efficiency": 0.5, "n_filters": 64, "data": "covid_semiseg (real slices)"}  # fmt: skip
    return Row("paper", PATHS[name], 32, info)


def test_training_rows_give_the_speed_up_over_keras_and_over_the_papers_code():
    rows = [_row("tf_mixed_bfloat16", 3.4), _row("tf_keras_original", 2.5), _row("tf_float32", 2.0)]
    ceilings = {"float32": {"gflops": 200.0, "library": "TensorFlow matmul"}}
    lines = summary_lines(rows, ceilings)
    assert lines[0] == "GEMM ceilings: float32 200 GFLOP/s (TensorFlow matmul)"
    header = next(line for line in lines if "vs reference" in line)
    assert header.endswith("vs reference  vs paper's code")
    table = {line.split()[0]: line.split() for line in lines if line.startswith("  tf_")}
    assert table["tf_float32"][-3:] == ["1.00x", "0.80x", "(reference)"]
    assert table["tf_keras_original"][-2:] == ["1.25x", "1.00x"]
    assert table["tf_mixed_bfloat16"][-2:] == ["1.70x", "1.36x"]
    assert "  fastest: tf_mixed_bfloat16, 1.70x tf_float32" in lines


def test_a_block_without_the_papers_code_has_no_such_column():
    lines = summary_lines([_row("tf_float32", 2.0), _row("tf_mixed_bfloat16", 3.0)], {})
    assert not any("paper's code" in line for line in lines)
