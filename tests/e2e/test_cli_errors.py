"""Every mistake a user can make ends in one line, a non-zero exit and no traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pytest


def _assert_one_line_failure(res, *, code: int, says: str) -> None:
    assert res.code == code, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    lines = res.error_lines()
    assert len(lines) == 1, res.stderr[-2000:]
    assert says in lines[0], lines[0]


def _assert_nothing_written(res) -> None:
    assert not res.results.exists() or not any(res.results.rglob("*")), list(res.results.rglob("*"))


def test_device_gpu_without_gpu_exits_2_and_writes_nothing(run_cli):
    if Path("/dev/nvidia0").exists() or shutil.which("nvidia-smi"):
        pytest.skip("this machine has an NVIDIA GPU")
    res = run_cli("dataset=phantom", "scale=smoke", "device=gpu")
    _assert_one_line_failure(res, code=2, says="device=gpu")
    _assert_nothing_written(res)


def test_unknown_option_exits_2(run_cli):
    res = run_cli("dataset=phantom", "scale=smoke", "epochz=3")
    _assert_one_line_failure(res, code=2, says="epochz")
    _assert_nothing_written(res)


def test_a_seed_that_is_not_a_whole_number_exits_2_and_writes_nothing(run_cli):
    res = run_cli("dataset=phantom", "scale=smoke", "device=cpu", "seed=x")
    _assert_one_line_failure(res, code=2, says="seed=x is not a whole number")
    _assert_nothing_written(res)


def test_unknown_choice_in_a_group_exits_2(run_cli):
    res = run_cli("dataset=phantom", "scale=smoke", "device=tpu")
    _assert_one_line_failure(res, code=2, says="device")
    _assert_nothing_written(res)


def test_unknown_precision_exits_2_and_writes_nothing(run_cli):
    res = run_cli("dataset=phantom", "scale=smoke", "usecase.precision=float16")
    _assert_one_line_failure(res, code=2, says="usecase.precision=float16 is not one of")
    _assert_nothing_written(res)


def test_an_interpolation_that_does_not_resolve_exits_2_and_writes_nothing(run_cli):
    res = run_cli("dataset=phantom", "scale=smoke", "note=${oc.env:USECASE_BENCH_UNSET_VAR}")
    _assert_one_line_failure(res, code=2, says="the config does not resolve")
    assert "USECASE_BENCH_UNSET_VAR" in res.error_lines()[0]
    _assert_nothing_written(res)


def test_int8_check_threshold_outside_the_evaluated_ones_exits_2(run_cli):
    res = run_cli("dataset=phantom", "scale=smoke", "usecase.export.int8_dice_at=0.35")
    _assert_one_line_failure(
        res, code=2, says="usecase.export.int8_dice_at=0.35 is not one of usecase.evaluate"
    )
    _assert_nothing_written(res)


def test_fused_batchnorm_on_jax_exits_2_before_anything_is_written(run_cli):
    res = run_cli("dataset=phantom", "scale=smoke", "backend=jax", "usecase.train.batchnorm=fused")
    _assert_one_line_failure(res, code=2, says="usecase.train.batchnorm=fused: use keras, or fused")
    _assert_nothing_written(res)


def test_missing_dataset_root_fails_before_anything_is_written(run_cli, tmp_path):
    res = run_cli("scale=smoke", "device=cpu", f"dataset.root={tmp_path / 'nowhere'}")
    _assert_one_line_failure(res, code=1, says="does not exist")
    _assert_nothing_written(res)


def test_empty_dataset_root_fails_before_anything_is_written(run_cli, tmp_path):
    (tmp_path / "empty").mkdir()
    res = run_cli("scale=smoke", "device=cpu", f"dataset.root={tmp_path / 'empty'}")
    _assert_one_line_failure(res, code=1, says="empty")
    _assert_nothing_written(res)


def _small_covid_tree(covid_root: Path, dest: Path, *, per_folder: int = 3) -> Path:
    """A copy of the real layout with a few real slices per folder."""
    for imgs in sorted(covid_root.glob("Dataset/**/Imgs")):
        rel = imgs.parent.relative_to(covid_root)
        for img in sorted(imgs.glob("*.jpg"))[:per_folder]:
            for src in (img, imgs.parent / "GT" / f"{img.stem}.png"):
                out = dest / rel / src.parent.name / src.name
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, out)
    return dest


def test_image_without_mask_fails_with_a_failed_record(run_cli, covid_root, tmp_path):
    root = _small_covid_tree(covid_root, tmp_path / "covid")
    victim = sorted(root.glob("Dataset/TestingSet/*/GT/*.png"))[0]
    victim.unlink()
    res = run_cli("scale=smoke", "device=cpu", f"dataset.root={root}")
    _assert_one_line_failure(res, code=1, says="has no mask")
    [record] = res.records()
    assert record["status"] == "failed"
    assert "has no mask" in record["error"]
    assert not list(res.results.rglob("*.part"))


def _write_h5(path: Path, *, drop: str | None = None) -> Path:
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        for key, n, ch in [
            ("X_train", 8, 1),
            ("y_train", 8, 2),
            ("X_valid", 2, 1),
            ("y_valid", 2, 2),
            ("y", 2, 1),
            ("label_test", 2, 2),
        ]:
            if key == drop:
                continue
            data = rng.random((n, 128, 128, ch), dtype=np.float32)
            if ch == 2:
                m = (data[..., :1] > 0.5).astype(np.float32)
                data = np.concatenate([1 - m, m], axis=-1)
            f.create_dataset(key, data=data)
    return path


def test_truncated_h5_fails_in_one_line(run_cli, tmp_path):
    path = _write_h5(tmp_path / "combined_CT_datasets.h5")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    res = run_cli("dataset=galaxy_h5", "scale=smoke", "device=cpu", f"dataset.root={path}")
    _assert_one_line_failure(res, code=1, says=path.name)
    assert res.records()[0]["status"] == "failed"


def test_wrong_keyed_h5_names_the_missing_key(run_cli, tmp_path):
    path = _write_h5(tmp_path / "combined_CT_datasets.h5", drop="label_test")
    res = run_cli("dataset=galaxy_h5", "scale=smoke", "device=cpu", f"dataset.root={path}")
    _assert_one_line_failure(res, code=1, says="label_test")


def test_nifti_image_and_mask_of_different_shapes_fail(run_cli, tmp_path):
    root = tmp_path / "medseg"
    root.mkdir()
    nib.save(nib.Nifti1Image(np.zeros((64, 64, 6), np.float32), np.eye(4)), root / "tr_im.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros((64, 64, 5), np.uint8), np.eye(4)), root / "tr_mask.nii.gz")
    res = run_cli("dataset=medseg_nifti", "scale=smoke", "device=cpu", f"dataset.root={root}")
    _assert_one_line_failure(res, code=1, says="(64, 64, 5)")
