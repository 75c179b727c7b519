"""The data registry without a server: every manifest loads, the shipped checksums match the
shared copies, a tree is verified file by file, and an explicit data root is checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import COVID_ROOT, NO_SHARED, SHARED_DATA, require
from usecases.data.fetch import SUMS_NAME, resolve_data_root
from usecases.data.manifests import (
    DEFAULT_MANIFEST_DIR,
    available_manifests,
    load_manifest,
    read_checksums,
    sha256_file,
    verify_tree,
)
from usecases.errors import ConfigError, DataError

SPIKE = SHARED_DATA / "spike" / "P0DTC2_spike_uniprot.fasta"
COVID_PREFIX = "Inf-Net-fb3a03b5b2f70642fbf2a12cde9e5c41b5ebd28e/Dataset/"  # inside the zip


def test_resolve_data_root_explicit(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        resolve_data_root("covid_semiseg", root=tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="is empty"):
        resolve_data_root("covid_semiseg", root=str(tmp_path / "empty"))
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "a").write_text("a")
    assert resolve_data_root("covid_semiseg", root=tmp_path / "full") == tmp_path / "full"


def test_every_manifest_loads() -> None:
    names = available_manifests()
    assert {"covid_semiseg", "galaxy_h5", "medseg_nifti", "spike"} <= set(names)
    for name in names:
        manifest = load_manifest(name)
        assert manifest.name == name and manifest.license and manifest.citation
        if manifest.checksums_file is not None:
            assert manifest.checksums_file.is_file()
    covid = load_manifest("covid_semiseg")
    assert covid.archive == "zip" and covid.member_prefix == COVID_PREFIX and covid.sha256 is None
    assert len(read_checksums(covid.checksums_file or Path())) == 3396
    assert load_manifest("galaxy_h5").size == 295505920
    with pytest.raises(ConfigError, match="known datasets are alphafold_params, covid_semiseg"):
        load_manifest("nope")


def test_spike_manifest_matches_shared_copy() -> None:
    require(SPIKE.is_file(), NO_SHARED)
    manifest = load_manifest("spike")
    assert manifest.sha256 == sha256_file(SPIKE)
    assert manifest.size == SPIKE.stat().st_size


def test_covid_checksums_match_shared_copy() -> None:
    require((COVID_ROOT / SUMS_NAME).is_file(), NO_SHARED)
    listed = DEFAULT_MANIFEST_DIR / "covid_semiseg.sha256"
    assert listed.read_bytes() == (COVID_ROOT / SUMS_NAME).read_bytes()
    verify_tree(COVID_ROOT, read_checksums(listed))


def test_verify_tree_names_count_and_first_bad(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"a")
    sums = {"a": "0" * 64, "b": sha256_file(tmp_path / "a")}
    with pytest.raises(DataError, match=r"2 of 2 files .* \(first: a has sha256"):
        verify_tree(tmp_path, sums)
