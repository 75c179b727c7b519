"""The real COVID-SemiSeg slices are prepared as the paper's pipeline did, and cached."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from usecases.covid_ct.data.covid_semiseg import TEST_DIR, load_covid_semiseg


@pytest.fixture(scope="module")
def real(covid_root, prepared_cache):
    return load_covid_semiseg(root=covid_root, cache_dir=prepared_cache / "prepared")


def test_real_split_counts_follow_the_paper(real):
    assert real.counts == {"train": 1485, "valid": 165, "test": 48}
    assert real.notes["pool"] == {"pseudo_label": 1600, "doctor_label": 50}
    assert real.synthetic is False and len(real.checksum) == 64


def test_real_test_slices_have_paper_shapes_ranges_and_one_hot_masks(real):
    assert real.x_test.shape == (48, 128, 128, 1) and real.x_test.dtype == np.float32
    assert real.y_test.shape == (48, 128, 128, 2) and real.y_test.dtype == np.uint8
    assert real.x_test.min() >= 0 and real.x_test.max() <= 255  # no normalisation
    assert real.x_test.max() > 200  # intensities were kept in 0..255, not scaled to 0..1
    assert np.all(real.y_test.sum(axis=-1) == 1)


def test_each_real_test_slice_matches_its_source_files(real, covid_root):
    images = sorted((covid_root / TEST_DIR / "Imgs").glob("*.jpg"))
    assert len(images) == 48
    for i, img in enumerate(images):
        src = np.asarray(Image.open(img).convert("L"), dtype=np.float64)
        gt = np.asarray(Image.open(covid_root / TEST_DIR / "GT" / f"{img.stem}.png"))
        assert set(np.unique(gt)) <= {0, 255}
        # a resize keeps the mean intensity and the infected fraction of the slice
        assert abs(real.x_test[i].mean() - src.mean()) < 3.0, img.name
        assert abs(real.y_test[i, ..., 1].mean() - (gt > 127).mean()) < 0.01, img.name


def test_second_load_comes_from_the_cache_with_identical_arrays(real, covid_root, prepared_cache):
    again = load_covid_semiseg(root=covid_root, cache_dir=prepared_cache / "prepared")
    assert again.notes["cache"] == "hit"
    assert again.checksum == real.checksum
    np.testing.assert_array_equal(again.x_train, real.x_train)
    np.testing.assert_array_equal(again.y_test, real.y_test)


def test_pool_size_keeps_every_doctor_label_and_a_seeded_pseudo_label_subset(
    real, covid_root, prepared_cache
):
    def load(**kw):
        return load_covid_semiseg(root=covid_root, cache_dir=prepared_cache / "prepared", **kw)

    galaxy = load(pool_size=1455)
    # the Galaxy notebook's counts: 1,455 pool slices, 1,309 of them for training
    assert galaxy.counts == {"train": 1309, "valid": 146, "test": 48}
    assert galaxy.notes["pool"] == {"pseudo_label": 1405, "doctor_label": 50}
    assert galaxy.notes["pool_subset"] == {"pool_size": 1455, "of": 1650, "pool_seed": 0}
    np.testing.assert_array_equal(galaxy.x_test, real.x_test)  # the test set never changes
    again, other = load(pool_size=1455), load(pool_size=1455, pool_seed=1)
    np.testing.assert_array_equal(again.x_train, galaxy.x_train)
    assert not np.array_equal(other.x_train, galaxy.x_train)
    # every kept training/validation slice is one of the full pool's
    full = {s.tobytes() for s in np.concatenate([real.x_train, real.x_valid])}
    assert all(s.tobytes() in full for s in galaxy.x_train[:50])
    assert real.notes["pool_subset"] is None


@pytest.mark.parametrize("size", [50, 1651])
def test_a_pool_size_outside_the_pool_is_a_one_line_config_error(covid_root, prepared_cache, size):
    from usecases.errors import ConfigError

    with pytest.raises(ConfigError, match=f"dataset.pool_size={size} must be more than the 50"):
        load_covid_semiseg(root=covid_root, cache_dir=prepared_cache / "prepared", pool_size=size)


def test_two_runs_preparing_one_cache_at_once_both_get_complete_arrays(covid_root, tmp_path):
    import subprocess
    import sys

    from tests.conftest import REPO

    code = (
        "import sys; from pathlib import Path; from usecases.data.checksums import sha256_arrays;"
        "from usecases.covid_ct.data.covid_semiseg import load_covid_semiseg as load;"
        "ds = load(root=Path(sys.argv[1]), cache_dir=Path(sys.argv[2]), size=64);"
        "print(sha256_arrays([ds.x_train, ds.y_train, ds.x_test, ds.y_test]))"
    )
    cmd = [sys.executable, "-c", code, str(covid_root), str(tmp_path)]
    runs = [subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    digests = [run.communicate(timeout=600)[0].strip() for run in runs]
    assert [run.returncode for run in runs] == [0, 0]
    assert digests[0] == digests[1] and len(digests[0]) == 64
    (cache,) = tmp_path.iterdir()  # one complete file, no temporary one left behind
    assert cache.suffix == ".npz" and not cache.name.startswith(".")
    again = load_covid_semiseg(root=covid_root, cache_dir=tmp_path, size=64)
    assert again.x_train.shape == (1485, 64, 64, 1)


def test_a_cache_that_cannot_be_written_only_costs_the_next_run(tmp_path, monkeypatch, caplog):
    import errno

    from usecases.covid_ct.data import covid_semiseg

    def full(path, **_):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez_compressed", full)
    covid_semiseg._write_cache(tmp_path, "0" * 64, {"x_pool": np.zeros(3)})
    assert "No space left on device" in caplog.text and list(tmp_path.iterdir()) == []
