"""Tests of the phantom, Galaxy HDF5 and MedSeg NIfTI data sources (fast, no TensorFlow)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import binary_dilation

from tests.conftest import SHARED_DATA, require
from usecases.covid_ct.data import CTDataset
from usecases.covid_ct.data.galaxy_h5 import KEYS, load_galaxy_h5
from usecases.covid_ct.data.medseg_nifti import IMAGE_FILE, MASK_FILE, load_medseg_nifti
from usecases.covid_ct.data.phantom import load_phantom
from usecases.covid_ct.data.prepare import binary_mask, one_hot, resize_image
from usecases.covid_ct.data.write_galaxy_h5 import write_galaxy_h5
from usecases.errors import DataError

REAL_TEST_DIR = SHARED_DATA / "covid_semiseg" / "Dataset" / "TestingSet" / "LungInfection-Test"
SPLITS = ("train", "valid", "test")


def _message(info: pytest.ExceptionInfo[DataError]) -> str:
    """The error's message, checked to be one line."""
    message = str(info.value)
    assert message and "\n" not in message
    return message


def _split(ds: CTDataset, split: str) -> tuple[np.ndarray, np.ndarray]:
    return getattr(ds, f"x_{split}"), getattr(ds, f"y_{split}")


def _small_phantom() -> CTDataset:
    return load_phantom(n_train=4, n_valid=2, n_test=3, size=32, seed=3)


# --- phantom -----------------------------------------------------------------------


def test_phantom_is_deterministic_by_seed_and_differs_across_seeds() -> None:
    a = load_phantom(n_train=6, n_valid=2, n_test=2, seed=1)
    b = load_phantom(n_train=6, n_valid=2, n_test=2, seed=1)
    c = load_phantom(n_train=6, n_valid=2, n_test=2, seed=2)
    for split in SPLITS:
        for left, right in zip(_split(a, split), _split(b, split), strict=True):
            assert np.array_equal(left, right)
    assert a.checksum == b.checksum != c.checksum
    assert not np.array_equal(a.x_train, c.x_train)


def test_phantom_test_split_does_not_depend_on_train_size() -> None:
    small = load_phantom(n_train=2, n_valid=1, n_test=4, seed=5)
    large = load_phantom(n_train=9, n_valid=3, n_test=4, seed=5)
    assert np.array_equal(small.x_test, large.x_test)
    assert small.checksum != large.checksum


def test_phantom_has_shapes_dtypes_and_one_hot_masks() -> None:
    ds = load_phantom(n_train=5, n_valid=3, n_test=2, size=64)
    assert ds.counts == {"train": 5, "valid": 3, "test": 2}
    assert ds.name == "phantom" and ds.synthetic
    for split in SPLITS:
        x, y = _split(ds, split)
        assert x.dtype == np.float32 and x.shape[1:] == (64, 64, 1)
        assert y.dtype == np.uint8 and y.shape == (*x.shape[:3], 2)
        assert np.all(y.sum(axis=-1) == 1)
        assert x.min() >= 0.0 and x.max() <= 255.0


def test_phantom_lesions_are_brighter_than_the_lung_around_them() -> None:
    ds = load_phantom(n_train=40, n_valid=1, n_test=1)
    x, lesion = ds.x_train[..., 0], ds.y_train[..., 1].astype(bool)
    ring = np.stack([binary_dilation(m, iterations=3) & ~m for m in lesion])
    assert x[lesion].mean() > x[ring].mean() + 40.0


def test_phantom_has_some_empty_and_some_nonempty_masks() -> None:
    ds = load_phantom(n_train=40, n_valid=1, n_test=1)
    per_slice = ds.y_train[..., 1].sum(axis=(1, 2))
    assert (per_slice == 0).any() and (per_slice > 0).any()


# --- Galaxy HDF5 -------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_test_slices() -> CTDataset:
    """The 48 real LungInfection-Test slices, prepared as the pipeline does, split 32/8/8."""
    require(
        (REAL_TEST_DIR / "Imgs").is_dir() and (REAL_TEST_DIR / "GT").is_dir(),
        f"real test slices not found at {REAL_TEST_DIR} (needs ../shared/data)",
    )
    images = sorted((REAL_TEST_DIR / "Imgs").glob("*.jpg"), key=lambda p: int(p.stem))
    xs, ms = [], []
    for path in images:
        gray = np.asarray(Image.open(path).convert("L"), dtype=np.float32)
        truth = np.asarray(Image.open(REAL_TEST_DIR / "GT" / f"{path.stem}.png").convert("L"))
        xs.append(resize_image(gray))
        ms.append(binary_mask(truth, foreground=255.0))
    assert len(xs) == 48
    x, y = np.stack(xs)[..., None], one_hot(np.stack(ms))
    return CTDataset(
        name="real48",
        x_train=x[:32],
        y_train=y[:32],
        x_valid=x[32:40],
        y_valid=y[32:40],
        x_test=x[40:],
        y_test=y[40:],
        synthetic=False,
        checksum="",
        source=str(REAL_TEST_DIR),
    )


@pytest.mark.shared_data
def test_galaxy_h5_round_trip_of_real_slices(real_test_slices: CTDataset, tmp_path: Path) -> None:
    path = write_galaxy_h5(real_test_slices, tmp_path / "combined_CT_datasets.h5")
    with h5py.File(path, "r") as handle:
        assert set(handle.keys()) == {key for pair in KEYS.values() for key in pair}
        assert all(handle[key].dtype == np.float32 for key in handle)
        assert handle["y"].shape == (8, 128, 128, 1)
        assert handle["label_test"].shape == (8, 128, 128, 2)
    ds = load_galaxy_h5(path)
    assert ds.name == "galaxy_h5" and not ds.synthetic
    assert ds.checksum == hashlib.sha256(path.read_bytes()).hexdigest()
    for split in SPLITS:
        for got, want in zip(_split(ds, split), _split(real_test_slices, split), strict=True):
            assert got.dtype == want.dtype and np.array_equal(got, want)
    assert ds.y_train[..., 1].any()
    assert not path.with_suffix(".h5.part").exists()


def test_galaxy_h5_round_trip_of_phantom_from_a_folder(tmp_path: Path) -> None:
    phantom = _small_phantom()
    write_galaxy_h5(phantom, tmp_path / "combined_CT_datasets.h5")
    ds = load_galaxy_h5(tmp_path)
    for split in SPLITS:
        for got, want in zip(_split(ds, split), _split(phantom, split), strict=True):
            assert np.array_equal(got, want) and got.dtype == want.dtype


def test_galaxy_h5_missing_file_says_how_to_fetch(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        load_galaxy_h5(tmp_path / "nothing.h5")
    message = _message(info)
    assert "usecase-bench-fetch galaxy_h5" in message and "dataset.root=PATH" in message


def test_truncated_galaxy_h5_is_a_data_error(tmp_path: Path) -> None:
    whole = write_galaxy_h5(_small_phantom(), tmp_path / "whole.h5")
    cut = tmp_path / "cut.h5"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(DataError) as info:
        load_galaxy_h5(cut)
    assert "truncated" in _message(info)


def test_non_hdf5_file_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "combined_CT_datasets.h5"
    path.write_bytes(b"<html>not found</html>")
    with pytest.raises(DataError) as info:
        load_galaxy_h5(path)
    assert "not a readable HDF5" in _message(info)


def test_galaxy_h5_without_label_test_names_it(tmp_path: Path) -> None:
    path = write_galaxy_h5(_small_phantom(), tmp_path / "combined_CT_datasets.h5")
    with h5py.File(path, "a") as handle:
        del handle["label_test"]
    with pytest.raises(DataError) as info:
        load_galaxy_h5(path)
    message = _message(info)
    assert "missing dataset(s) label_test" in message and "X_train" in message


def test_galaxy_h5_with_wrong_shapes_is_a_data_error(tmp_path: Path) -> None:
    path = write_galaxy_h5(_small_phantom(), tmp_path / "combined_CT_datasets.h5")
    with h5py.File(path, "a") as handle:
        del handle["X_valid"]
        handle.create_dataset("X_valid", data=np.zeros((2, 32, 32, 3), dtype=np.float32))
    with pytest.raises(DataError) as info:
        load_galaxy_h5(path)
    assert "(2, 32, 32, 3)" in _message(info)


def test_galaxy_h5_masks_that_are_not_one_hot_are_a_data_error(tmp_path: Path) -> None:
    path = write_galaxy_h5(_small_phantom(), tmp_path / "combined_CT_datasets.h5")
    with h5py.File(path, "a") as handle:
        handle["y_train"][0, 0, 0, :] = [0.5, 0.5]
    with pytest.raises(DataError) as info:
        load_galaxy_h5(path)
    assert "one-hot" in _message(info)


def test_write_galaxy_h5_removes_the_part_file_on_error(tmp_path: Path) -> None:
    good = _small_phantom()
    bad_images = np.full(good.x_test.shape, "x", dtype=object)
    bad = CTDataset(**{**good.__dict__, "x_test": bad_images})
    target = tmp_path / "combined_CT_datasets.h5"
    with pytest.raises((ValueError, TypeError)):
        write_galaxy_h5(bad, target)
    assert list(tmp_path.iterdir()) == []


# --- MedSeg NIfTI ------------------------------------------------------------------


def _write_nifti(path: Path, volume: np.ndarray) -> None:
    nib.save(nib.Nifti1Image(volume, affine=np.eye(4)), path)


def _medseg_volumes(n: int = 12, side: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Slice k: constant HU -1000 + 50 k; a 16x16 block labelled k % 4 (0..3)."""
    image = np.empty((side, side, n), dtype=np.float32)
    labels = np.zeros((side, side, n), dtype=np.uint8)
    for k in range(n):
        image[:, :, k] = -1000.0 + 50.0 * k
        labels[8:24, 8:24, k] = k % 4
    return image, labels


@pytest.fixture
def medseg_root(tmp_path: Path) -> Path:
    image, labels = _medseg_volumes()
    _write_nifti(tmp_path / IMAGE_FILE, image)
    _write_nifti(tmp_path / MASK_FILE, labels)
    return tmp_path


def test_medseg_maps_ground_glass_and_consolidation_to_infection(medseg_root: Path) -> None:
    ds = load_medseg_nifti(medseg_root, size=64)
    assert ds.counts == {"train": 9, "valid": 1, "test": 2}
    assert ds.name == "medseg_nifti" and not ds.synthetic
    seen = []
    for split in SPLITS:
        x, y = _split(ds, split)
        assert x.dtype == np.float32 and y.dtype == np.uint8 and y.shape[1:] == (64, 64, 2)
        for image, mask in zip(x, y, strict=True):
            k = round((float(image[0, 0, 0]) + 1000.0) / 50.0)
            assert np.allclose(image, -1000.0 + 50.0 * k)  # HU kept, not normalised
            expected = 256 if k % 4 in (1, 2) else 0  # label 3 (pleural effusion) excluded
            assert int(mask[..., 1].sum()) == expected
            seen.append(k)
    assert sorted(seen) == list(range(12))


def test_medseg_can_count_pleural_effusion_and_resizes(medseg_root: Path) -> None:
    default = load_medseg_nifti(medseg_root, size=32)
    everything = load_medseg_nifti(medseg_root, size=32, infection_labels=(1, 2, 3))
    assert default.x_train.shape[1:] == (32, 32, 1)
    assert everything.y_train[..., 1].sum() > default.y_train[..., 1].sum()
    assert everything.checksum != default.checksum


def test_medseg_image_and_mask_of_different_shapes_name_both(tmp_path: Path) -> None:
    image, labels = _medseg_volumes()
    _write_nifti(tmp_path / IMAGE_FILE, image)
    _write_nifti(tmp_path / MASK_FILE, labels[:, :, :10])
    with pytest.raises(DataError) as info:
        load_medseg_nifti(tmp_path)
    message = _message(info)
    assert "(64, 64, 12)" in message and "(64, 64, 10)" in message


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_medseg_nifti_is_a_data_error(medseg_root: Path, damage: str) -> None:
    path = medseg_root / IMAGE_FILE
    data = b"this is not a nifti file" if damage == "garbage" else path.read_bytes()[:200]
    path.write_bytes(data)
    with pytest.raises(DataError) as info:
        load_medseg_nifti(medseg_root)
    assert IMAGE_FILE in _message(info)


def test_medseg_missing_files_are_named(tmp_path: Path, medseg_root: Path) -> None:
    with pytest.raises(DataError) as info:
        load_medseg_nifti(tmp_path / "absent")
    assert "not found" in _message(info)
    (medseg_root / MASK_FILE).unlink()
    with pytest.raises(DataError) as info:
        load_medseg_nifti(medseg_root)
    assert MASK_FILE in _message(info) and "dataset.root=PATH" in _message(info)


def test_medseg_volume_that_is_not_3d_is_a_data_error(tmp_path: Path) -> None:
    image, labels = _medseg_volumes()
    _write_nifti(tmp_path / IMAGE_FILE, image[..., None].repeat(2, axis=3))
    _write_nifti(tmp_path / MASK_FILE, labels)
    with pytest.raises(DataError) as info:
        load_medseg_nifti(tmp_path)
    assert "3-D" in _message(info)


def test_the_galaxy_h5_command_never_replaces_a_file_without_force(tmp_path: Path, capsys) -> None:
    from usecases.covid_ct.data.write_galaxy_h5 import main

    original = tmp_path / "combined_CT_datasets.h5"
    original.write_bytes(b"the Zenodo file")
    for out, says in ((original, "exists; move it away or pass --force"), (tmp_path, "a folder")):
        assert main(["--root", str(tmp_path / "absent"), "--out", str(out)]) == 1
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert line.startswith("error: ") and says in line
    assert original.read_bytes() == b"the Zenodo file"
    with pytest.raises(DataError, match="pass --force"):
        write_galaxy_h5(_small_phantom(), original)
    write_galaxy_h5(_small_phantom(), original, overwrite=True)
    assert load_galaxy_h5(original).counts == _small_phantom().counts
