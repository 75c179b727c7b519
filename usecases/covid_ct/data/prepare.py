"""Slice preprocessing of the paper's pipeline: resize to 128x128 and one-hot masks.

As in the Galaxy Europe notebook: ``skimage.transform.resize(..., mode="constant",
preserve_range=True)`` for images and masks (no intensity normalisation); masks are
then divided by their foreground value, rounded, and one-hot encoded in 2 channels.
"""

from __future__ import annotations

import numpy as np
from skimage.transform import resize


def resize_image(image: np.ndarray, *, size: int = 128) -> np.ndarray:
    """Resize a 2-D slice to (size, size), keeping its intensity range; float32."""
    out = resize(image, (size, size), mode="constant", preserve_range=True)
    return out.astype(np.float32)


def binary_mask(mask: np.ndarray, *, size: int = 128, foreground: float = 255.0) -> np.ndarray:
    """Resize a 2-D mask, divide by ``foreground`` and round: uint8 0/1 of (size, size)."""
    out = resize(mask.astype(np.float64), (size, size), mode="constant", preserve_range=True)
    return np.clip(np.round(out / foreground), 0, 1).astype(np.uint8)


def one_hot(masks: np.ndarray) -> np.ndarray:
    """(N, H, W) 0/1 masks -> (N, H, W, 2) uint8 one-hot (background, infection)."""
    masks = masks.astype(np.uint8)
    return np.stack([1 - masks, masks], axis=-1).astype(np.uint8)
