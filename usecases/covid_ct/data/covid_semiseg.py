"""COVID-SemiSeg (Inf-Net) slices -> CTDataset, prepared as the Galaxy notebook did, with a cache.

Layout (Inf-Net commit fb3a03b5): ``Dataset/TrainingSet/LungInfection-Train/{Pseudo-label,
Doctor-label}/{Imgs/*.jpg, GT/*.png}`` and ``Dataset/TestingSet/LungInfection-Test/{Imgs,GT}``.
Train pool = Pseudo-label + Doctor-label (file names sorted, in that order), split by
``train_test_split(test_size=0.1, random_state=42)``; test = the 48 LungInfection-Test slices.
``pool_size=N`` keeps every Doctor-label slice and a seeded subset of the Pseudo-label slices
(``numpy.random.default_rng(pool_seed)``, drawn without replacement, in name order) so that the
pool holds N slices before the split: 1,455 is the Galaxy h5's pool (1,309 training images).
Prepared arrays are cached in one compressed ``.npz`` keyed by a hash of the source files'
bytes and the preprocessing settings, so a second run does not decode 1,700 JPEGs again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from sklearn.model_selection import train_test_split

from usecases.covid_ct.data import CTDataset, check_pair_shapes
from usecases.covid_ct.data.prepare import binary_mask, one_hot, resize_image
from usecases.errors import ConfigError, DataError
from usecases.records.record import atomic_file

log = logging.getLogger(__name__)

PREP_VERSION = 1
TRAIN_PARTS = ("Pseudo-label", "Doctor-label")
TRAIN_DIR = Path("Dataset/TrainingSet/LungInfection-Train")
TEST_DIR = Path("Dataset/TestingSet/LungInfection-Test")


def load_covid_semiseg(
    *,
    root: Path,
    cache_dir: Path | None = None,
    size: int = 128,
    test_size: float = 0.1,
    random_state: int = 42,
    pool_size: int | None = None,
    pool_seed: int = 0,
) -> CTDataset:
    """Load the COVID-SemiSeg slices under ``root`` as a CTDataset (images 0..255, float32).

    ``root`` is the folder that holds ``Dataset/`` (or ``Dataset/`` itself). Raises
    DataError with one line when the tree is missing, incomplete or unreadable.
    """
    root = _data_root(Path(root))
    pool = [p for part in TRAIN_PARTS for p in _pairs(root / TRAIN_DIR / part)]
    test = _pairs(root / TEST_DIR)
    settings = {
        "size": size,
        "test_size": test_size,
        "random_state": random_state,
        "prep_version": PREP_VERSION,
        "resize": "skimage resize mode=constant preserve_range=True; masks round(m/255)",
    }
    checksum = _sources_hash(root, pool + test, settings)
    cached = _read_cache(cache_dir, checksum)
    if cached is None:
        x_pool, y_pool = _prepare(pool, size=size)
        x_test, y_test = _prepare(test, size=size)
        arrays = {"x_pool": x_pool, "y_pool": y_pool, "x_test": x_test, "y_test": y_test}
        _write_cache(cache_dir, checksum, arrays)
    else:
        arrays = cached
    doctor = np.array(["Doctor-label" in img.parts for img, _ in pool])
    keep = _pool_subset(doctor, pool_size=pool_size, seed=pool_seed)
    x_train, x_valid, y_train, y_valid = train_test_split(
        arrays["x_pool"][keep],
        arrays["y_pool"][keep],
        test_size=test_size,
        random_state=random_state,
    )
    n_doctor = int(doctor[keep].sum())
    n_pool = len(keep)
    ds = CTDataset(
        name="covid_semiseg",
        x_train=x_train,
        y_train=y_train,
        x_valid=x_valid,
        y_valid=y_valid,
        x_test=arrays["x_test"],
        y_test=arrays["y_test"],
        synthetic=False,
        checksum=checksum,
        source=str(root),
        notes={
            "pool": {"pseudo_label": n_pool - n_doctor, "doctor_label": n_doctor},
            "pool_subset": None
            if pool_size is None
            else {"pool_size": n_pool, "of": len(pool), "pool_seed": pool_seed},
            "galaxy_h5_pool_for_comparison": 1455,
            "split": f"train_test_split(test_size={test_size}, random_state={random_state})",
            "cache": "hit" if cached is not None else "miss",
        },
    )
    check_pair_shapes(ds.x_test, ds.y_test, what="covid_semiseg test set")
    return ds


def _pool_subset(doctor: np.ndarray, *, pool_size: int | None, seed: int) -> np.ndarray:
    """Indices into the pool: all of it, or every Doctor-label slice plus a seeded subset.

    ``doctor`` marks the Doctor-label slices (bool, one per pool slice). The Pseudo-label
    slices kept are drawn without replacement by ``default_rng(seed)`` and stay in name order.
    """
    if pool_size is None:
        return np.arange(len(doctor))
    n_doctor, n_pool = int(doctor.sum()), len(doctor)
    if not n_doctor < pool_size <= n_pool:
        raise ConfigError(
            f"dataset.pool_size={pool_size} must be more than the {n_doctor} Doctor-label "
            f"slices and at most the {n_pool} of the whole pool; e.g. 1455 (the Galaxy h5's)."
        )
    pseudo = np.flatnonzero(~doctor)
    chosen = np.random.default_rng(seed).choice(pseudo, pool_size - n_doctor, replace=False)
    return np.sort(np.concatenate([np.sort(chosen), np.flatnonzero(doctor)]))


def _data_root(root: Path) -> Path:
    """Accept the folder holding ``Dataset/`` or ``Dataset/`` itself."""
    if not root.exists():
        raise DataError(
            f"dataset root {root} does not exist; fetch it with `usecase-bench-fetch "
            "covid_semiseg` or pass dataset.root=PATH to a copy of the Inf-Net data."
        )
    if root.name == "Dataset" and not (root / "Dataset").exists():
        root = root.parent
    for sub in [TRAIN_DIR / p for p in TRAIN_PARTS] + [TEST_DIR]:
        if not (root / sub / "Imgs").is_dir():
            raise DataError(
                f"dataset root {root} has no {sub}/Imgs folder; dataset.root must point at "
                "the folder holding Dataset/ of the Inf-Net COVID-SemiSeg data."
            )
    return root


def _pairs(folder: Path) -> list[tuple[Path, Path]]:
    """(image, mask) pairs of one Imgs/GT folder, sorted by file name."""
    images = sorted(p for p in (folder / "Imgs").iterdir() if p.suffix.lower() == ".jpg")
    if not images:
        raise DataError(f"{folder / 'Imgs'} holds no .jpg images; the dataset copy is empty.")
    pairs = []
    for img in images:
        mask = folder / "GT" / f"{img.stem}.png"
        if not mask.is_file():
            raise DataError(
                f"image {img} has no mask {mask}; restore the missing file "
                "(usecase-bench-fetch covid_semiseg verifies every file)."
            )
        pairs.append((img, mask))
    return pairs


def _sources_hash(root: Path, pairs: list[tuple[Path, Path]], settings: dict) -> str:
    """sha256 over every source file's relative path and bytes, plus the settings."""
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for img, mask in pairs:
        for path in (img, mask):
            h.update(str(path.relative_to(root)).encode())
            h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def _read_image(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("L"))
    except (UnidentifiedImageError, OSError) as err:
        raise DataError(
            f"cannot read {path} ({err}); the file is corrupt, fetch it again."
        ) from err


def _prepare(pairs: list[tuple[Path, Path]], *, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Decode and resize every pair: images (N,size,size,1) float32, masks one-hot uint8."""
    x = np.empty((len(pairs), size, size, 1), dtype=np.float32)
    m = np.empty((len(pairs), size, size), dtype=np.uint8)
    for i, (img, mask) in enumerate(pairs):
        x[i, ..., 0] = resize_image(_read_image(img), size=size)
        m[i] = binary_mask(_read_image(mask), size=size, foreground=255.0)
    return x, one_hot(m)


def _cache_path(cache_dir: Path, checksum: str) -> Path:
    return cache_dir / f"covid_semiseg-{checksum[:16]}.npz"


def _read_cache(cache_dir: Path | None, checksum: str) -> dict[str, np.ndarray] | None:
    if cache_dir is None or not _cache_path(cache_dir, checksum).is_file():
        return None
    try:
        with np.load(_cache_path(cache_dir, checksum)) as z:
            return {k: z[k] for k in ("x_pool", "y_pool", "x_test", "y_test")}
    except (OSError, ValueError, KeyError):
        return None  # unreadable cache: prepare again and overwrite it


def _write_cache(cache_dir: Path | None, checksum: str, arrays: dict[str, np.ndarray]) -> None:
    """Write the cache atomically (``records.record.atomic_file``): two runs preparing it at
    once each rename a complete file, so a reader never sees a partial one. A cache that
    cannot be written (a full disk) only costs the next run the preparation: logged, not fatal.
    """
    if cache_dir is None:
        return
    try:
        with atomic_file(_cache_path(cache_dir, checksum), what="prepared-slice cache") as tmp:
            np.savez_compressed(tmp, **arrays)
    except DataError as err:
        log.warning("%s (the run goes on without the cache)", err)
