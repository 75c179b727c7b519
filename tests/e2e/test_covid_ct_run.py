"""covid_ct end to end through ``python run.py``: records, verdicts, timings, real learning."""

from __future__ import annotations

import pytest

from usecases.records.record import load_record

# scale=ci (n=8, 12 epochs, batch 16) measured 0.634 pooled Dice at threshold 0.3 on the 48
# real test slices (2-core AMD EPYC, TensorFlow 2.21 CPU, seed 42). The floor sits well below
# (thread-order nondeterminism on other CPUs) and well above 0.27, the Dice of marking every
# pixel infected.
CI_SCALE_DICE_FLOOR = 0.45
# The demo (scale=smoke on the phantom, seed 42) measured 0.926 pooled Dice at 0.3 on the 32
# phantom test slices (2-core Intel Xeon, TensorFlow 2.21 CPU, phantom version 2, 2026-12-02;
# 0.953 on the 2-core AMD EPYC, 2026-12-03; 0.940 there with the seeded batch order of the
# checkpoint/resume change);
# seeds 1-7 gave 0.80 to 0.97 (seed 1: 0.971, seed 2: 0.936). The floor leaves room for other
# kernels and sits far above 0.03, the Dice of marking every phantom pixel infected.
SMOKE_DICE_FLOOR = 0.75
STARTUP_NOISE = ("port.cc", "cpu_feature_guard", "cudart_stub", "oneDNN custom operations",
                 "absl::InitializeLog", "tf2onnx")  # fmt: skip


def _one_ok_record(res):
    assert res.code == 0, res.stderr[-3000:]
    paths = sorted(res.results.rglob("record.json"))
    assert len(paths) == 1
    record = load_record(paths[0])  # validates against the schema
    assert record.status == "ok" and record.error is None
    return record, paths[0].parent


def test_smoke_run_on_phantom_writes_a_complete_synthetic_record(run_cli):
    res = run_cli("dataset=phantom", "scale=smoke", "device=cpu", "run_id=smoke1")
    record, run_dir = _one_ok_record(res)
    assert run_dir.name == "smoke1"
    # the demo learns, its console is ours, and it ends with a summary of the record
    assert record.metrics["0.3"]["dice_pooled"] >= SMOKE_DICE_FLOOR
    assert not [ln for ln in res.stderr.splitlines() if any(n in ln for n in STARTUP_NOISE)]
    dice = record.metrics["0.3"]["dice_pooled"]
    assert f"  pooled test Dice at 0.3: {dice:.3f}" in res.stdout.splitlines()
    assert "  synthetic data: no verdict against published values" in res.stdout
    assert "  fastest inference: " in res.stdout and f"  report: {run_dir}" in res.stdout
    assert res.stdout.splitlines()[-1] == f"ok: {run_dir / 'record.json'}"
    for name in ("config.yaml", "run.log", "test_probabilities.npz", "model.weights.h5"):
        assert (run_dir / name).is_file(), name
    assert record.dataset["synthetic"] is True and record.dataset["name"] == "phantom"
    assert record.device["used"] == "cpu" and record.config["scale"]["name"] == "smoke"
    assert record.environment["libraries"]["keras"]
    assert record.environment["git"]["commit"]
    # device=cpu hides the GPUs from the frameworks, and the record says so
    assert record.environment["variables"]["CUDA_VISIBLE_DEVICES"] == ""
    assert record.environment["variables"]["KERAS_BACKEND"] == "tensorflow"
    # synthetic data never gets a verdict against a published value
    assert record.references
    assert {c["verdict"] for c in record.references} == {"not comparable"}
    assert all("synthetic" in c["reason"] for c in record.references)
    dice = [record.metrics[f"0.{k}"]["dice_pooled"] for k in range(1, 10)]
    assert all(0.0 <= d <= 1.0 for d in dice)
    step = record.timings["train_step"]
    assert step["n"] >= 3 and step["median_s"] > 0 and step["images_per_s"] > 0
    assert record.timings["inference_batch8"]["images_per_s"] > 0
    assert record.metrics["epochs_run"] == 16 and len(record.metrics["history"]["loss"]) == 16
    (onnx_check,) = [c for c in record.checks if c["name"] == "onnx_parity"]
    assert onnx_check["passed"] is True, onnx_check["detail"]
    assert (run_dir / record.artifacts["onnx"]).is_file()
    (int8_check,) = [c for c in record.checks if c["name"] == "onnx_int8_dice"]
    assert int8_check["passed"] is True, int8_check["detail"]
    assert (run_dir / record.artifacts["onnx_int8"]).is_file()
    assert record.metrics["onnx_int8"]["dice_drop_at"] == int8_check["dice_drop_at"]
    for key in ("onnx_inference_batch8", "onnx_int8_inference_batch8"):
        assert (
            record.timings[key]["images_per_s"] > 0
            and "onnxruntime" in record.timings[key]["method"]
        )
    for key in ("train_step", "inference_batch8", "onnx_int8_inference_batch8"):
        t = record.timings[key]
        assert t["gflops_per_s"] > 0 and t["ceiling_gflops_per_s"] > 0
        factor = 3 if key == "train_step" else 1  # FLOPs of a training step: 3x forward
        assert t["gflops_per_s"] == pytest.approx(
            t["images_per_s"] * factor * record.metrics["flops_per_image_forward"] / 1e9
        )
    assert record.timings["onnx_int8_inference_batch8"]["ceiling"].startswith("int8 GEMM")
    used = {
        t["ceiling"].split(" GEMM")[0]
        for t in record.timings.values()
        if isinstance(t, dict) and "ceiling" in t
    }
    assert used == set(record.timings["gemm_ceilings"]) and "int8" in used
    precision = record.device["precision"]
    assert precision["requested"] == "auto" and precision["reason"].startswith("auto: ")
    assert precision["policy"] == "float32"  # auto keeps float32 on CPUs (bf16 is opt-in)
    assert precision["reason"].startswith("auto: CPU")
    assert precision["policy"] in record.timings["inference_batch8"]["method"]
    assert (run_dir / "report" / "report.html").is_file()


def test_a_precision_set_by_the_user_is_used_and_recorded(run_cli):
    res = run_cli(
        "dataset=phantom", "scale=smoke", "device=cpu", "usecase.precision=mixed_bfloat16",
        "usecase.export.int8=false", "report=false",
    )  # fmt: skip
    record, _ = _one_ok_record(res)
    assert record.device["precision"] == {
        "requested": "mixed_bfloat16",
        "policy": "mixed_bfloat16",
        "reason": "set by the user",
    }
    assert "precision mixed_bfloat16" in record.notes
    # the ONNX file comes from a float32 copy of the bf16-trained weights, parity intact
    (onnx_check,) = [c for c in record.checks if c["name"] == "onnx_parity"]
    assert onnx_check["passed"] is True and onnx_check["max_abs_diff"] <= 1e-4
    assert [c["name"] for c in record.checks] == ["onnx_parity"]


def test_a_run_id_that_exists_is_refused_and_its_folder_left_untouched(run_cli, tmp_path):
    earlier = tmp_path / "results" / "covid_ct" / "twice"
    earlier.mkdir(parents=True)
    (earlier / "record.json").write_text('{"an": "earlier run"}')
    res = run_cli("dataset=phantom", "scale=smoke", "device=cpu", "run_id=twice")
    assert res.code == 2 and "already exists" in res.error_lines()[0]
    assert [p.name for p in earlier.iterdir()] == ["record.json"]
    assert (earlier / "record.json").read_text() == '{"an": "earlier run"}'


def test_ci_scale_learns_on_the_real_slices(ci_scale_run):
    record, _ = _one_ok_record(ci_scale_run)
    assert record.dataset["synthetic"] is False
    assert record.dataset["counts"] == {"train": 1485, "valid": 165, "test": 48}
    assert record.metrics["n_images"] == 48
    assert record.metrics["0.3"]["dice_pooled"] >= CI_SCALE_DICE_FLOOR
    # the exported model of a model that segments: onnxruntime agrees with Keras on all 48
    # real test slices, probabilities within 1e-4 and the Dice at every threshold to 3 decimals
    # (within half a unit of the third decimal, so that 0.40049 vs 0.40051 counts as equal)
    (parity,) = [c for c in record.checks if c["name"] == "onnx_parity"]
    assert parity["passed"] is True and parity["max_abs_diff"] <= 1e-4, parity["detail"]
    onnx = record.metrics["onnx"]
    assert onnx["n_images"] == 48 and onnx["dice_equal_3dp"] is True
    for key, dice in onnx["dice_pooled"].items():
        assert abs(dice - record.metrics[key]["dice_pooled"]) < 5e-4, key
    (int8,) = [c for c in record.checks if c["name"] == "onnx_int8_dice"]
    assert int8["passed"] is True, int8["detail"]
    # ci scale is not the published setting: shown, but not judged
    tv = [c for c in record.references if c["reference_id"].startswith("tv_unet_dice")]
    assert tv and all(c["verdict"] == "not comparable" for c in tv)
    assert all("scale" in c["reason"] for c in tv)
