"""Datasets of the covid_ct use case: every source becomes one ``CTDataset``.

Sources (one module each): ``covid_semiseg`` (Inf-Net JPEG/PNG tree), ``galaxy_h5``
(the Galaxy seed's HDF5), ``medseg_nifti`` (MedSeg NIfTI volumes) and ``phantom``
(synthetic, made on the fly).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from usecases.errors import DataError


@dataclass(frozen=True)
class CTDataset:
    """Prepared slices, ready for the TV-UNet.

    Images ``x_*`` are float32 of shape (N, H, W, 1) in the source's intensity units
    (0..255 for the JPEG sources; no normalisation, as in the paper's pipeline).
    Masks ``y_*`` are uint8 one-hot of shape (N, H, W, 2): channel 0 background,
    channel 1 infection.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_valid: np.ndarray
    y_valid: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    synthetic: bool
    checksum: str
    source: str
    notes: dict = field(default_factory=dict)

    @classmethod
    def from_splits(
        cls,
        name: str,
        splits: dict[str, tuple[np.ndarray, np.ndarray]],
        *,
        synthetic: bool,
        checksum: str,
        source: str,
        notes: dict | None = None,
    ) -> CTDataset:
        """A dataset from ``{"train" | "valid" | "test": (images, masks)}``."""
        return cls(
            name=name,
            x_train=splits["train"][0],
            y_train=splits["train"][1],
            x_valid=splits["valid"][0],
            y_valid=splits["valid"][1],
            x_test=splits["test"][0],
            y_test=splits["test"][1],
            synthetic=synthetic,
            checksum=checksum,
            source=source,
            notes=notes or {},
        )

    @property
    def counts(self) -> dict[str, int]:
        """Number of slices per split."""
        return {
            "train": len(self.x_train),
            "valid": len(self.x_valid),
            "test": len(self.x_test),
        }

    def identity(self) -> dict:
        """Dataset identity for the result record (name, checksum, real or synthetic)."""
        return {
            "name": self.name,
            "checksum": self.checksum,
            "synthetic": self.synthetic,
            "kind": "synthetic" if self.synthetic else "real",
            "source": self.source,
            "counts": self.counts,
            "image_shape": list(self.x_test.shape[1:]),
            **self.notes,
        }


def check_pair_shapes(x: np.ndarray, y: np.ndarray, *, what: str) -> None:
    """Raise DataError unless images (N,H,W,1) and one-hot masks (N,H,W,2) agree."""
    if x.ndim != 4 or x.shape[-1] != 1:
        raise DataError(f"{what}: images have shape {x.shape}, expected (N, H, W, 1).")
    if y.ndim != 4 or y.shape[-1] != 2:
        raise DataError(f"{what}: masks have shape {y.shape}, expected (N, H, W, 2).")
    if x.shape[:3] != y.shape[:3]:
        raise DataError(
            f"{what}: {x.shape[0]} images of {x.shape[1:3]} but {y.shape[0]} masks of "
            f"{y.shape[1:3]}; every image needs a mask of the same size."
        )
    if len(x) == 0:
        raise DataError(f"{what}: no slices.")
