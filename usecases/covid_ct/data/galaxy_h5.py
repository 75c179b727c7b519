"""Load the Galaxy seed's HDF5 (Zenodo record 6091361, ``combined_CT_datasets.h5``).

Layout (all float32): ``X_train``/``y_train``, ``X_valid``/``y_valid`` and, for the test
split, ``y`` (images) with ``label_test`` (masks); images (N, 128, 128, 1) in 0..255,
masks (N, 128, 128, 2) one-hot.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from usecases.covid_ct.data import CTDataset, check_pair_shapes
from usecases.data.checksums import sha256_file
from usecases.errors import DataError

FILENAME = "combined_CT_datasets.h5"
ZENODO_RECORD = "6091361"
EXPECTED_BYTES = 295_505_920
# split -> (image key, mask key), as in the Galaxy notebook.
KEYS: dict[str, tuple[str, str]] = {
    "train": ("X_train", "y_train"),
    "valid": ("X_valid", "y_valid"),
    "test": ("y", "label_test"),
}


def _one_hot_uint8(masks: np.ndarray, *, what: str) -> np.ndarray:
    """Float one-hot masks (N, H, W, 2) -> uint8, after checking they are 0/1 one-hot."""
    if not np.all((masks == 0) | (masks == 1)) or not np.all(masks.sum(axis=-1) == 1):
        values = np.unique(masks)
        shown = ", ".join(f"{v:g}" for v in values[:5]) + (", ..." if len(values) > 5 else "")
        raise DataError(
            f"{what}: masks are not 0/1 one-hot (values {shown}; each pixel's two channels "
            "must sum to 1); the file is not the Galaxy layout or is damaged."
        )
    return masks.astype(np.uint8)


def _read(handle: h5py.File, path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read and check every split: {split: (images float32, masks uint8 one-hot)}."""
    wanted = [key for pair in KEYS.values() for key in pair]
    found = sorted(handle.keys())
    missing = [key for key in wanted if not isinstance(handle.get(key), h5py.Dataset)]
    if missing:
        raise DataError(
            f"{path}: missing dataset(s) {', '.join(missing)} (found: "
            f"{', '.join(found) or 'none'}); expected the Galaxy layout {', '.join(wanted)}."
        )
    splits = {}
    for split, (x_key, y_key) in KEYS.items():
        what = f"{path} {split} ({x_key}/{y_key})"
        x, y = handle[x_key], handle[y_key]
        if x.ndim != 4 or y.ndim != 4:
            raise DataError(
                f"{what}: shapes {x.shape} and {y.shape}, expected (N, 128, 128, 1) images "
                "and (N, 128, 128, 2) masks."
            )
        x, y = np.asarray(x[()], dtype=np.float32), np.asarray(y[()])
        check_pair_shapes(x, y, what=what)
        splits[split] = (x, _one_hot_uint8(y, what=what))
    sizes = {arrays[0].shape[1:3] for arrays in splits.values()}
    if len(sizes) != 1:
        raise DataError(f"{path}: splits have different slice sizes {sorted(sizes)}.")
    return splits


def load_galaxy_h5(path: Path) -> CTDataset:
    """Load ``combined_CT_datasets.h5`` (or a folder holding it) as a CTDataset.

    Images float32 (N, 128, 128, 1) in 0..255; masks uint8 one-hot (N, 128, 128, 2).
    ``checksum`` is the sha256 of the file's bytes. Raises DataError for a missing,
    unreadable, truncated or wrongly laid out file.
    """
    path = Path(path)
    if path.is_dir():
        path = path / FILENAME
    if not path.is_file():
        raise DataError(
            f"Galaxy HDF5 file {path} not found; get it with `usecase-bench-fetch galaxy_h5` "
            f"(Zenodo record {ZENODO_RECORD}, {FILENAME}) or point dataset.root=PATH at it."
        )
    try:
        with h5py.File(path, "r") as handle:
            splits = _read(handle, path)
    except OSError as error:
        reason = " ".join(str(error).split())
        raise DataError(
            f"{path} is not a readable HDF5 file ({reason}); it may be truncated or corrupt: "
            f"delete it and fetch it again ({EXPECTED_BYTES} bytes expected for {FILENAME})."
        ) from error
    return CTDataset.from_splits(
        "galaxy_h5",
        splits,
        synthetic=False,
        checksum=sha256_file(path),
        source=f"{path} (Galaxy seed HDF5, Zenodo record {ZENODO_RECORD})",
        notes={"file_bytes": path.stat().st_size},
    )
