"""Load the MedSeg COVID-19 CT NIfTI volumes (``tr_im.nii.gz``, ``tr_mask.nii.gz``).

The 100 axial slices (512 x 512, Hounsfield units) are resized to the TV-UNet's input
size and split into train/valid/test by slice index.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError
from sklearn.model_selection import train_test_split

from usecases.covid_ct.data import CTDataset, check_pair_shapes
from usecases.covid_ct.data.prepare import binary_mask, one_hot, resize_image
from usecases.errors import DataError

IMAGE_FILE = "tr_im.nii.gz"
MASK_FILE = "tr_mask.nii.gz"
LABELS = {1: "ground-glass", 2: "consolidation", 3: "pleural effusion"}


def _volume(path: Path) -> np.ndarray:
    """Read a 3-D NIfTI volume as float32 (X, Y, slices); DataError if unreadable or not 3-D."""
    try:
        volume = np.asarray(nib.load(path).get_fdata(dtype=np.float32))
    except (ImageFileError, OSError, EOFError, ValueError, zlib.error) as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        raise DataError(
            f"{path} is not a readable NIfTI file ({reason}); it may be truncated or "
            "corrupt: download it again."
        ) from error
    if volume.ndim != 3:
        raise DataError(f"{path}: volume has shape {volume.shape}, expected 3-D (X, Y, slices).")
    return volume


def load_medseg_nifti(
    root: Path, *, size: int = 128, infection_labels: tuple[int, ...] = (1, 2), seed: int = 42
) -> CTDataset:
    """Load MedSeg ``tr_im.nii.gz``/``tr_mask.nii.gz`` from ``root`` as a CTDataset.

    Slice k is ``vol[:, :, k]`` as stored (no reorientation). Images are resized to
    (size, size) with ``prepare.resize_image`` and stay in Hounsfield units (no
    normalisation): float32 (N, size, size, 1). Mask labels are 1 ground-glass,
    2 consolidation, 3 pleural effusion; infection = label in ``infection_labels``
    (default ground-glass + consolidation: pleural effusion is fluid outside the lung,
    not lung infection). The binary mask is resized with ``prepare.binary_mask`` and
    one-hot encoded: uint8 (N, size, size, 2).

    Split: ``train_test_split`` of the slice indices with 10% test
    (``random_state=seed``), then 10% of the rest as validation (``random_state=seed``);
    100 slices give 81/9/10. ``checksum`` is the sha256 over both files' bytes and the
    settings.
    """
    root = Path(root)
    paths = [root / IMAGE_FILE, root / MASK_FILE]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        where = f"{root} not found"
        if root.is_dir():
            where = f"folder {root} lacks {', '.join(missing)}"
        raise DataError(
            f"MedSeg NIfTI: {where}; put {IMAGE_FILE} and {MASK_FILE} (MedSeg COVID-19 CT "
            "segmentation dataset) there or set dataset.root=PATH to their folder."
        )
    image, labels = _volume(paths[0]), _volume(paths[1])
    if image.shape != labels.shape:
        raise DataError(
            f"MedSeg NIfTI: image {paths[0].name} has shape {image.shape} but mask "
            f"{paths[1].name} has shape {labels.shape}; they must match."
        )
    n = image.shape[2]
    if n < 3:
        raise DataError(f"MedSeg NIfTI: {n} slice(s) in {root}; need at least 3 to split.")
    infected = np.isin(np.rint(labels), infection_labels)
    x = np.stack([resize_image(image[:, :, k], size=size) for k in range(n)])[..., None]
    masks = np.stack([binary_mask(infected[:, :, k], size=size, foreground=1.0) for k in range(n)])
    y = one_hot(masks)
    check_pair_shapes(x, y, what=f"MedSeg NIfTI {root}")

    rest, test = train_test_split(np.arange(n), test_size=0.1, random_state=seed)
    train, valid = train_test_split(rest, test_size=0.1, random_state=seed)
    settings = {
        "size": size,
        "infection_labels": sorted(int(v) for v in infection_labels),
        "seed": seed,
    }
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    digest.update(json.dumps(settings, sort_keys=True, separators=(",", ":")).encode())
    return CTDataset(
        name="medseg_nifti",
        x_train=x[train],
        y_train=y[train],
        x_valid=x[valid],
        y_valid=y[valid],
        x_test=x[test],
        y_test=y[test],
        synthetic=False,
        checksum=digest.hexdigest(),
        source=f"{root} (MedSeg COVID-19 CT, {IMAGE_FILE} + {MASK_FILE})",
        notes={
            "units": "Hounsfield units (no normalisation)",
            "infection_labels": [f"{v} {LABELS.get(int(v), '?')}" for v in infection_labels],
            "slice_axis": "vol[:, :, k], as stored",
        },
    )
