"""ONNX steps inside whole run.py runs: options refused before training, the JAX-backend export."""

from __future__ import annotations

from tests.conftest import needs_module
from usecases.data.checksums import sha256_file
from usecases.records.record import load_record


def test_run_with_an_opset_below_15_stops_before_training(run_cli):
    res = run_cli("dataset=phantom", "scale=smoke", "device=cpu", "usecase.export.opset=13")
    assert res.code == 2 and not res.records()
    assert res.error_lines() == ["error: usecase.export.opset=13 must be an integer >= 15."]


def test_jax_backend_smoke_run_exports_via_a_fresh_tensorflow_process(run_cli):
    import onnx

    needs_module("tf2onnx", "tf2onnx (and TensorFlow) are not installed here")
    res = run_cli("dataset=phantom", "scale=smoke", "device=cpu", "backend=jax", "run_id=jx")
    assert res.code == 0, res.stderr[-3000:]
    path = next(res.results.rglob("record.json"))
    record = load_record(path)
    assert record.status == "ok" and record.device["backend"] == "jax"
    assert record.config["backend"]["name"] == "jax"
    (check,) = [c for c in record.checks if c["name"] == "onnx_parity"]
    assert check["passed"] is True, check["detail"]
    assert check["max_abs_diff"] <= 1e-4 and check["opset"] == 17
    onnx_m = record.metrics["onnx"]
    assert onnx_m["export"]["via"] == "fresh TensorFlow process"
    assert onnx_m["export"]["trained_backend"] == "jax"
    assert len(onnx_m["dice_pooled"]) == 9
    onnx_file = path.parent / record.artifacts["onnx"]
    onnx.checker.check_model(str(onnx_file), full_check=True)
    assert sha256_file(onnx_file) == onnx_m["sha256"]
