"""implementation=original before it trains: the pinned file is found and verified, a changed
copy is refused with one line, and settings it cannot run are refused before the run folder."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import NO_ORIGINAL, ORIGINAL_CODE, require
from usecases.covid_ct.original.code import COMMIT, locate_code
from usecases.data.checksums import sha256_arrays
from usecases.data.manifests import load_manifest
from usecases.errors import ConfigError, DataError


@pytest.fixture
def reference() -> Path:
    require((ORIGINAL_CODE / "TV_UNET.py").is_file(), NO_ORIGINAL)
    return ORIGINAL_CODE


def _composed(*overrides: str):
    from hydra import compose, initialize_config_dir

    from usecases.runner.cli import CONF_DIR

    with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
        return compose(config_name="config", overrides=["dataset=phantom", *overrides])


def test_the_pinned_file_is_found_in_a_folder_or_as_the_file(reference):
    manifest = load_manifest("tv_unet_12031fa")
    for source in (reference, reference / "TV_UNET.py", str(reference)):
        code = locate_code(source)
        assert code["sha256"] == manifest.sha256 and code["commit"] == COMMIT
        assert Path(code["file"]) == (reference / "TV_UNET.py").resolve()
    assert COMMIT in manifest.url and manifest.local_option == "usecase.original.code"


def test_a_changed_copy_is_refused_with_one_line_naming_the_sha256(reference, tmp_path):
    copy = tmp_path / "tv_unet"
    shutil.copytree(reference, copy)
    with (copy / "TV_UNET.py").open("a") as handle:
        handle.write("\n")  # one byte more: the same code to Python, not the paper's file
    with pytest.raises(DataError) as info:
        locate_code(copy)
    message = str(info.value)
    assert "sha256" in message and "refused" in message and "\n" not in message
    assert "../shared/reference/tv_unet_12031fa" in message


def test_a_folder_without_the_file_names_what_to_pass(tmp_path):
    with pytest.raises(ConfigError, match=r"no TV_UNET\.py there.*usecase\.original\.code=DIR"):
        locate_code(tmp_path)


def test_no_copy_and_no_network_is_one_line_naming_the_shared_copy(tmp_path, monkeypatch):
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")  # nothing listens: no download
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    with pytest.raises(DataError) as info:
        locate_code(None, cache_base=tmp_path / "cache")
    message = str(info.value)
    assert "usecase.original.code=PATH" in message and "dataset.root" not in message
    assert "../shared/reference/tv_unet_12031fa" in message and "\n" not in message
    assert not (tmp_path / "cache" / "tv_unet_12031fa").exists()


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        (("usecase.implementation=paper",), "usecase.implementation=paper is not one of port"),
        (
            ("usecase.implementation=original", "usecase.original.initial_weights=keras"),
            "initial_weights=keras is not one of port, own",
        ),
        (("usecase.implementation=original", "backend=jax"), "use backend=tensorflow"),
        (
            ("usecase.implementation=original", "usecase.precision=mixed_bfloat16"),
            "implementation=original trains in float32",
        ),
    ],
)
def test_settings_the_original_cannot_run_are_refused_before_training(overrides, says, reference):
    from usecases.covid_ct.usecase import validate

    validate(_composed("usecase.implementation=original", f"usecase.original.code={reference}"))
    with pytest.raises(ConfigError, match=re.escape(says)):
        validate(_composed(f"usecase.original.code={reference}", *overrides))


def test_the_weights_digest_follows_the_values_not_the_container():
    a = [np.arange(6, dtype=np.float32).reshape(2, 3), np.ones(3, dtype=np.float32)]
    same = [np.array(x, dtype=np.float64, order="F") for x in a]
    assert sha256_arrays(a) == sha256_arrays(same)
    assert sha256_arrays(a) != sha256_arrays([a[0].reshape(3, 2), a[1]])  # shape counts
    changed = [a[0].copy(), a[1].copy()]
    changed[1][0] = np.nextafter(np.float32(1), np.float32(2))
    assert sha256_arrays(a) != sha256_arrays(changed)


def test_the_papers_file_loads_beside_keras_3_and_leaves_its_imports_as_they_were(reference):
    """The benchmark's tf-keras peer path: the paper's model is a tf-keras model built in a
    Keras 3 process, and ``keras`` / ``tensorflow.keras`` are Keras 3's again afterwards."""
    import sys

    from tests.conftest import needs_module

    needs_module("tf_keras", "tf-keras (Keras 2) is not installed here")
    keras = pytest.importorskip("keras")
    from usecases.covid_ct.original import inprocess

    before = {name: sys.modules.get(name) for name in ("keras", "tensorflow.keras")}
    step, model = inprocess.train_step(
        locate_code(reference),
        n_filters=4,
        x=np.random.default_rng(0).random((2, 128, 128, 1), dtype=np.float32),
        y=np.ones((2, 128, 128, 2), np.float32),
    )
    assert type(model).__module__.startswith("tf_keras.")
    assert {name: sys.modules.get(name) for name in before} == before
    assert sys.modules["keras"].__version__ == keras.__version__ and keras.__version__ >= "3"
    losses = [step() for _ in range(3)]
    assert all(np.isfinite(losses)) and losses[2] < losses[0]  # Adam lowers its loss
