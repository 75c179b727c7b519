"""GEMM ceilings are measured, positive and labelled with the library that reached them."""

from __future__ import annotations

import pytest

from usecases.measure.ceilings import gemm_ceiling


@pytest.mark.parametrize("precision", ["float32", "bfloat16", "int8"])
def test_gemm_ceiling_measures_each_precision(precision):
    c = gemm_ceiling(precision, backend="tensorflow", n=256, repeats=3)
    assert c["precision"] == precision and c["matrix_size"] == 256 and c["n"] == 3
    assert c["gflops"] == pytest.approx(2 * 256**3 / c["median_s"] / 1e9)
    assert c["gflops"] > 0.1
    assert ("onnxruntime" if precision == "int8" else "tensorflow") in c["library"]


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="float16"):
        gemm_ceiling("float16", backend="tensorflow")
