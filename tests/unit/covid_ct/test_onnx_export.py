"""ONNX export of the TV-UNet: checker, onnxruntime parity on real slices, failures as checks."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import needs_module
from usecases.covid_ct.evaluate import THRESHOLDS, segmentation_metrics, threshold_key
from usecases.covid_ct.onnx import export as onnx_step
from usecases.covid_ct.onnx.child import export_in_fresh_process
from usecases.covid_ct.onnx.export import export_and_check
from usecases.covid_ct.onnx.int8 import spread_subset
from usecases.covid_ct.onnx.parity import check_onnx_parity
from usecases.covid_ct.onnx.runtime import MIN_OPSET, missing_tools, run_onnx
from usecases.covid_ct.onnx.settings import ModelSpec, OnnxSettings
from usecases.data.checksums import sha256_file
from usecases.errors import ConfigError

N_TRAIN, N_TEST = 32, 8  # a handful of real slices keeps this module under a minute
SETTINGS = OnnxSettings.from_config(None)  # the defaults of conf/usecase/covid_ct.yaml


@pytest.fixture(scope="module")
def real_slices(covid_root, prepared_cache):
    """A few real training and test slices of COVID-SemiSeg (skips when ../shared is absent)."""
    from usecases.covid_ct.data.covid_semiseg import load_covid_semiseg

    ds = load_covid_semiseg(root=covid_root, cache_dir=prepared_cache / "prepared")
    return ds.x_train[:N_TRAIN], ds.y_train[:N_TRAIN], ds.x_test[:N_TEST], ds.y_test[:N_TEST]


@pytest.fixture(scope="module")
def trained(real_slices):
    """A width-4 TV-UNet trained two epochs on real slices (TensorFlow backend), its test output."""
    keras = pytest.importorskip("keras")
    needs_module("tf2onnx", "tf2onnx (and TensorFlow) are not installed here")
    if keras.backend.backend() != "tensorflow":
        pytest.skip(f"in-process export needs backend tensorflow, not {keras.backend.backend()}")
    from usecases.covid_ct.model import build_tv_unet, tv_bce_loss

    x_train, y_train, x_test, _ = real_slices
    keras.utils.set_random_seed(7)
    model = build_tv_unet(n_filters=4)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=tv_bce_loss)
    model.fit(x_train, y_train, epochs=2, batch_size=16, verbose=0)
    return model, model.predict(x_test, verbose=0)


@pytest.fixture(scope="module")
def exported(trained, real_slices, tmp_path_factory):
    """export_and_check of the trained model as run() calls it: (outcome, run folder)."""
    model, prob = trained
    _, _, x_test, y_test = real_slices
    run_dir = tmp_path_factory.mktemp("onnx_run")
    outcome = export_and_check(
        model,
        x=x_test,
        y=y_test,
        prob=prob,
        run_dir=run_dir,
        settings=SETTINGS,
        spec=ModelSpec(n_filters=4),
        thresholds=THRESHOLDS,
    )
    return outcome, run_dir


def _warnings(capsys) -> list[str]:
    return [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("warning:")]


def test_model_trained_on_real_slices_exports_a_checked_onnx_file_with_parity(exported):
    import onnx

    outcome, run_dir = exported
    path = run_dir / "model.onnx"
    onnx.checker.check_model(str(path), full_check=True)
    check, m = outcome.check, outcome.metrics
    assert check["name"] == "onnx_parity" and check["passed"] is True, check["detail"]
    assert check["skipped"] is False and "\n" not in check["detail"]
    assert check["max_abs_diff"] <= check["tolerance"] == 1e-4
    assert m["opset"] == 17 >= MIN_OPSET and m["export"]["exporter"].startswith("tf2onnx")
    assert m["n_images"] == N_TEST and m["dice_equal_3dp"] is True
    assert set(m["dice_pooled"]) == {threshold_key(t) for t in THRESHOLDS}
    assert m["sha256"] == check["sha256"] == sha256_file(path)
    assert outcome.artifacts == {"onnx": "model.onnx"}


def test_onnxruntime_and_keras_agree_on_real_slices_within_the_stated_tolerances(
    exported, trained, real_slices
):
    outcome, run_dir = exported
    _, keras_prob = trained
    _, _, x_test, y_test = real_slices
    onnx_prob = run_onnx(run_dir / "model.onnx", x_test)
    assert onnx_prob.shape == keras_prob.shape == (N_TEST, 128, 128, 2)
    # not a vacuous comparison: the probabilities cross the thresholds up to 0.5 (here they
    # reach 0.99). This small model barely segments (Dice near 0); the Dice parity of one that
    # does (ci scale, all 48 test slices) is asserted in test_covid_ct_run.py
    infection = keras_prob[..., 1]
    assert all(0 < int((infection > t).sum()) < infection.size for t in THRESHOLDS if t <= 0.5)
    assert float(np.abs(onnx_prob - keras_prob).max()) < SETTINGS.tolerance
    keras_m = segmentation_metrics(y_test, keras_prob)
    onnx_m = segmentation_metrics(y_test, onnx_prob)
    for t in THRESHOLDS:
        key = threshold_key(t)
        assert abs(onnx_m[key]["dice_pooled"] - keras_m[key]["dice_pooled"]) < 5e-4
        assert outcome.metrics["dice_pooled"][key] == pytest.approx(onnx_m[key]["dice_pooled"])


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _dangling_input(path: Path) -> None:
    import onnx

    proto = onnx.load(str(path))
    proto.graph.node[len(proto.graph.node) // 2].input[0] = "no_such_tensor"
    onnx.save(proto, str(path))


@pytest.mark.parametrize("corrupt", [_truncate, _dangling_input], ids=["truncated", "dangling"])
def test_a_corrupted_onnx_file_is_a_failed_check_with_one_line(
    corrupt, exported, trained, real_slices, tmp_path, capsys
):
    _, run_dir = exported
    _, prob = trained
    _, _, x_test, y_test = real_slices
    bad = tmp_path / "model.onnx"
    shutil.copy(run_dir / "model.onnx", bad)
    corrupt(bad)
    capsys.readouterr()
    check, metrics = check_onnx_parity(
        bad, x=x_test, y=y_test, prob=prob, settings=SETTINGS, thresholds=THRESHOLDS
    )
    assert check["passed"] is False and check["skipped"] is False
    assert check["detail"].startswith("onnx.checker rejected model.onnx:")
    assert "\n" not in check["detail"] and len(check["detail"]) <= 400
    assert metrics["sha256"] == sha256_file(bad)
    assert len(_warnings(capsys)) == 1


def test_a_valid_graph_with_changed_outputs_is_a_parity_miss(
    exported, trained, real_slices, tmp_path, capsys
):
    import onnx

    _, run_dir = exported
    _, prob = trained
    _, _, x_test, y_test = real_slices
    proto = onnx.load(str(run_dir / "model.onnx"))
    sigmoids = [n for n in proto.graph.node if n.op_type == "Sigmoid"]
    assert len(sigmoids) == 1
    sigmoids[0].op_type = "Relu"  # still a valid graph, but no longer probabilities
    bad = tmp_path / "model.onnx"
    onnx.save(proto, str(bad))
    capsys.readouterr()
    check, _ = check_onnx_parity(
        bad, x=x_test, y=y_test, prob=prob, settings=SETTINGS, thresholds=THRESHOLDS
    )
    assert check["passed"] is False
    assert check["max_abs_diff"] > SETTINGS.tolerance
    assert "> 1e-04" in check["detail"] and "\n" not in check["detail"]
    assert len(_warnings(capsys)) == 1


def test_an_exporter_failure_is_a_failed_check_not_a_crash(
    trained, real_slices, tmp_path, monkeypatch, capsys
):
    def broken_export(*args, **kwargs):
        raise RuntimeError("tf2onnx could not convert\nop Foo")

    model, prob = trained
    _, _, x_test, y_test = real_slices
    monkeypatch.setattr(onnx_step, "export_keras", broken_export)
    outcome = export_and_check(
        model,
        x=x_test,
        y=y_test,
        prob=prob,
        run_dir=tmp_path,
        settings=SETTINGS,
        spec=ModelSpec(n_filters=4),
        thresholds=THRESHOLDS,
    )
    assert outcome.check["passed"] is False and outcome.check["skipped"] is False
    assert outcome.check["detail"] == (
        "export failed: RuntimeError: tf2onnx could not convert op Foo"
    )
    assert outcome.metrics == {} and outcome.artifacts == {}
    assert _warnings(capsys) == ["warning: onnx_parity failed: " + outcome.check["detail"]]


def test_without_tensorflow_the_check_is_skipped_with_the_reason(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(onnx_step, "missing_tools", lambda **_: "not installed here: tensorflow")
    outcome = export_and_check(
        object(),  # never touched: nothing is exported
        x=np.zeros((1, 128, 128, 1), np.float32),
        y=np.zeros((1, 128, 128, 2), np.uint8),
        prob=np.zeros((1, 128, 128, 2), np.float32),
        run_dir=tmp_path,
        settings=SETTINGS,
        spec=ModelSpec(n_filters=4),
        thresholds=THRESHOLDS,
    )
    assert outcome.check["passed"] is False and outcome.check["skipped"] is True
    assert "tensorflow" in outcome.check["detail"]
    assert not (tmp_path / "model.onnx").exists() and outcome.artifacts == {}
    assert len(_warnings(capsys)) == 1


def test_export_disabled_in_the_config_is_a_skipped_check_without_a_file(tmp_path):
    outcome = export_and_check(
        object(),
        x=np.zeros((1, 128, 128, 1), np.float32),
        y=np.zeros((1, 128, 128, 2), np.uint8),
        prob=np.zeros((1, 128, 128, 2), np.float32),
        run_dir=tmp_path,
        settings=OnnxSettings.from_config({"onnx": False}),
        spec=ModelSpec(n_filters=4),
        thresholds=THRESHOLDS,
    )
    assert outcome.check == {
        "name": "onnx_parity",
        "passed": False,
        "skipped": True,
        "detail": "disabled by usecase.export.onnx=false",
    }
    assert not list(tmp_path.iterdir())


def test_missing_tools_names_only_the_absent_packages():
    assert missing_tools(tools=("numpy",)) is None
    assert missing_tools(tools=("numpy", "no_such_package_x1")) == (
        "not installed here: no_such_package_x1"
    )


@pytest.mark.parametrize(
    ("export", "words"),
    [
        ({"opset": 13}, "opset=13 must be an integer >= 15"),
        ({"tolerance": 0}, "tolerance=0 must be a positive number"),
        ({"onnx": "yes"}, "onnx=yes must be true or false"),
        ({"opsett": 17}, "unknown key(s) opsett"),
    ],
)
def test_bad_export_settings_are_refused_with_one_line(export, words):
    with pytest.raises(ConfigError) as err:
        OnnxSettings.from_config(export)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_fresh_process_export_reports_the_child_error_in_one_line(tmp_path):
    with pytest.raises(RuntimeError) as err:
        export_in_fresh_process(
            weights=tmp_path / "missing.weights.h5",
            out=tmp_path / "model.onnx",
            spec=ModelSpec(n_filters=4),
            opset=17,
            timeout_s=120,
        )
    assert "does not exist" in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "model.onnx").exists()


def _keras_dice(y, prob) -> dict[str, float]:
    m = segmentation_metrics(y, prob, thresholds=THRESHOLDS)
    return {threshold_key(t): m[threshold_key(t)]["dice_pooled"] for t in THRESHOLDS}


def test_the_int8_check_records_dice_and_files_of_a_quantized_model_on_real_slices(
    exported, trained, real_slices
):
    """The check's bookkeeping on real slices: files, checksums, calibration, the recorded Dice.

    The model here is trained two epochs on a few slices, so its Dice is near 0 and says nothing
    about int8 accuracy; that the int8 model keeps the Dice of a model that segments is checked
    on the ci-scale run (tests/e2e/test_covid_ct_run.py: onnx_int8_dice passed at Dice ~0.6).
    """
    from usecases.covid_ct.onnx.quantize import quantize_and_check

    _, run_dir = exported
    _, keras_prob = trained
    x_train, _, x_test, y_test = real_slices
    check, m, files = quantize_and_check(
        run_dir / "model.onnx",
        x=x_test,
        y=y_test,
        calibration=x_train,
        keras_dice=_keras_dice(y_test, keras_prob),
        settings=SETTINGS,
        thresholds=THRESHOLDS,
    )
    assert check["name"] == "onnx_int8_dice" and check["passed"] is True, check["detail"]
    assert check["dice_drop_at"] <= SETTINGS.int8_dice_drop == 0.01 and check["dice_at"] == "0.3"
    assert files == {"onnx_int8": "model.int8.onnx"}
    path = run_dir / "model.int8.onnx"
    assert m["sha256"] == sha256_file(path) and m["calibration_images"] == min(
        N_TRAIN, SETTINGS.calibration_images
    )
    int8_prob = run_onnx(path, x_test)
    assert (
        0
        < m["max_abs_diff"]
        == pytest.approx(float(np.abs(int8_prob - run_onnx(run_dir / "model.onnx", x_test)).max()))
    )
    assert m["dice_pooled"] == pytest.approx(_keras_dice(y_test, int8_prob))


def test_an_int8_dice_drop_past_the_limit_is_a_failed_check(exported, real_slices, capsys):
    from usecases.covid_ct.onnx.quantize import quantize_and_check

    _, run_dir = exported
    x_train, _, x_test, y_test = real_slices
    higher = {threshold_key(t): 1.0 for t in THRESHOLDS}  # Keras "scored" a perfect Dice
    check, _, _ = quantize_and_check(
        run_dir / "model.onnx",
        x=x_test,
        y=y_test,
        calibration=x_train,
        keras_dice=higher,
        settings=SETTINGS,
        thresholds=THRESHOLDS,
    )
    assert check["passed"] is False and check["dice_drop_at"] > 0.01
    assert check["detail"].startswith("int8 ONNX vs Keras float32 on 8 test slices: Dice drop")
    assert _warnings(capsys) == ["warning: onnx_int8_dice failed: " + check["detail"]]


def test_the_int8_check_judges_the_operating_threshold_and_records_every_drop(
    exported, real_slices
):
    from usecases.covid_ct.onnx.quantize import quantize_and_check

    _, run_dir = exported
    x_train, _, x_test, y_test = real_slices
    kw = dict(x=x_test, y=y_test, calibration=x_train, settings=SETTINGS, thresholds=THRESHOLDS)
    same = {threshold_key(t): 0.0 for t in THRESHOLDS}
    _, m, _ = quantize_and_check(run_dir / "model.onnx", keras_dice=same, **kw)
    keras = {**m["dice_pooled"], "0.9": 1.0}  # Keras far better at 0.9 only
    check, m, _ = quantize_and_check(run_dir / "model.onnx", keras_dice=keras, **kw)
    assert check["passed"] is True and check["dice_drop_at"] == 0.0
    assert m["dice_max_drop"] == m["dice_drop"]["0.9"] == 1.0 - m["dice_pooled"]["0.9"] > 0.01
    assert check["detail"].endswith(f"(largest over thresholds {m['dice_max_drop']:+.4f} at 0.9)")


def test_a_corrupt_onnx_file_fails_the_int8_check_with_one_line(tmp_path, real_slices, capsys):
    from usecases.covid_ct.onnx.quantize import quantize_and_check

    x_train, _, x_test, y_test = real_slices
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"\x08\x07not a protobuf model")
    check, m, files = quantize_and_check(
        bad,
        x=x_test,
        y=y_test,
        calibration=x_train,
        keras_dice={threshold_key(t): 0.5 for t in THRESHOLDS},
        settings=SETTINGS,
        thresholds=THRESHOLDS,
    )
    assert check["passed"] is False and check["skipped"] is False and m == {} and files == {}
    assert check["detail"].startswith("int8 quantization failed: ") and "\n" not in check["detail"]
    assert not (tmp_path / "model.int8.onnx").exists()
    assert len(_warnings(capsys)) == 1


def test_int8_calibration_slices_span_the_whole_validation_set():
    slices = np.arange(165)  # validation slices are sorted by patient
    picked = spread_subset(slices, n=32)
    assert len(picked) == 32 and picked[0] == 0 and picked[-1] == 164
    assert np.all(np.diff(picked) >= 5) and np.all(np.diff(picked) <= 6)
    assert np.array_equal(spread_subset(slices[:10], n=32), slices[:10])
