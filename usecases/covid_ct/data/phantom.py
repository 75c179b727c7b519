"""Synthetic CT-like phantom slices with lesion masks, for runs without the real data.

Each slice: dark background, a soft-tissue body ellipse, two dark lung ellipses and
0..4 bright lesion blobs inside the lungs (about a quarter of the slices have none);
intensities in 0..255 like the JPEG sources, plus mild Gaussian noise. Lesions add 120..200
to the dark lung, so they are brighter than the soft tissue (version 2; version 1 added
70..150, and at smoke scale the 4-filter model found the lesions for some seeds only: seed 2
never did, with any batch size or learning rate tried). Same shapes as version 1. Deterministic
by seed; each split has its own child seed, so the test slices do not depend on
``n_train`` or ``n_valid``.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from usecases.covid_ct.data import CTDataset, check_pair_shapes
from usecases.covid_ct.data.prepare import one_hot
from usecases.errors import ConfigError

GENERATOR_VERSION = 2
_MAX_LESIONS = 4
_EMPTY_FRACTION = 0.25
_NOISE_SD = 5.0
_LESION_AXES = (0.04, 0.16)  # lesion semi-axes, in units of the half image width
_LESION_AMPLITUDE = (120.0, 200.0)  # added to the lung's intensity (0..255 units)


def _ellipse_r2(
    xx: np.ndarray, yy: np.ndarray, cx: np.ndarray, cy: np.ndarray, a: np.ndarray, b: np.ndarray
) -> np.ndarray:
    """Normalised squared distance ((x-cx)/a)^2 + ((y-cy)/b)^2; < 1 inside the ellipse."""
    return ((xx - cx) / a) ** 2 + ((yy - cy) / b) ** 2


def _slices(rng: np.random.Generator, n: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Make ``n`` phantom slices: images float32 (n, size, size) in 0..255, masks uint8 0/1."""
    c = ((np.arange(size, dtype=np.float32) + 0.5) / size * 2 - 1).astype(np.float32)
    yy, xx = c[None, :, None], c[None, None, :]

    def col(lo: float, hi: float) -> np.ndarray:
        return rng.uniform(lo, hi, size=(n, 1, 1)).astype(np.float32)

    bx, by, ba, bb = col(-0.04, 0.04), col(-0.04, 0.04), col(0.82, 0.95), col(0.62, 0.78)
    body = _ellipse_r2(xx, yy, bx, by, ba, bb) < 1
    lungs = []
    for side in (-1.0, 1.0):
        cx = bx + side * ba * col(0.38, 0.48)
        cy = by + bb * col(-0.1, 0.1)
        la, lb = ba * col(0.26, 0.34), bb * col(0.55, 0.72)
        lungs.append((cx, cy, la, lb))
    lung = np.zeros((n, size, size), dtype=bool)
    for cx, cy, la, lb in lungs:
        lung |= _ellipse_r2(xx, yy, cx, cy, la, lb) < 1

    n_lesions = np.where(
        rng.random(n) < _EMPTY_FRACTION, 0, rng.integers(1, _MAX_LESIONS + 1, size=n)
    )
    bright = np.zeros((n, size, size), dtype=np.float32)
    lesion = np.zeros((n, size, size), dtype=bool)
    for k in range(_MAX_LESIONS):
        present = (k < n_lesions)[:, None, None]
        left = (rng.random(n) < 0.5)[:, None, None]
        cx, cy, la, lb = (np.where(left, p0, p1) for p0, p1 in zip(*lungs, strict=True))
        radius, theta = np.sqrt(col(0.0, 1.0)) * 0.75, col(0.0, 2 * np.pi)
        lx, ly = cx + radius * np.cos(theta) * la, cy + radius * np.sin(theta) * lb
        # Rotated ellipse as a quadratic form, so only dx * dy is a full (n, size, size) op.
        dx, dy, phi = xx - lx, yy - ly, col(0.0, np.pi)
        ia2, ib2 = col(*_LESION_AXES) ** -2, col(*_LESION_AXES) ** -2
        cos2, sin2, cs = np.cos(phi) ** 2, np.sin(phi) ** 2, np.cos(phi) * np.sin(phi)
        r2 = (cos2 * ia2 + sin2 * ib2) * dx**2 + (sin2 * ia2 + cos2 * ib2) * dy**2
        r2 += (2 * cs * (ia2 - ib2) * dx) * dy
        amplitude = np.where(present, col(*_LESION_AMPLITUDE), 0.0).astype(np.float32)
        np.maximum(bright, np.clip(1.25 - r2, 0.0, 0.5) * (2 * amplitude), out=bright)
        lesion |= r2 < present  # absent lesions compare with 0: never inside

    background, tissue, dark = col(0.0, 8.0), col(100.0, 130.0), col(25.0, 45.0)
    image = background + body * (tissue - background) + lung * (dark - tissue + bright)
    image += _NOISE_SD * rng.standard_normal(size=image.shape, dtype=np.float32)
    return np.clip(image, 0.0, 255.0).astype(np.float32), (lesion & lung).astype(np.uint8)


def load_phantom(
    *, n_train: int, n_valid: int, n_test: int, size: int = 128, seed: int = 0
) -> CTDataset:
    """Synthetic phantom dataset: images float32 (N, size, size, 1) in 0..255, masks one-hot.

    Masks are uint8 (N, size, size, 2), channel 1 = lesion. The same settings always give
    the same slices; ``checksum`` is the sha256 of the settings and ``GENERATOR_VERSION``.
    """
    counts = {"train": n_train, "valid": n_valid, "test": n_test}
    for split, n in counts.items():
        if n < 1:
            raise ConfigError(f"phantom: n_{split}={n}; every split needs at least 1 slice.")
    if size < 16:
        raise ConfigError(f"phantom: size={size} is too small; use at least 16 pixels.")
    settings = {
        "generator": "usecases.covid_ct.data.phantom",
        "version": GENERATOR_VERSION,
        "n_train": n_train,
        "n_valid": n_valid,
        "n_test": n_test,
        "size": size,
        "seed": seed,
    }
    canonical = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    children = np.random.SeedSequence(seed).spawn(len(counts))
    arrays = {}
    for (split, n), child in zip(counts.items(), children, strict=True):
        image, mask = _slices(np.random.default_rng(child), n, size)
        arrays[split] = (image[..., None], one_hot(mask))
        check_pair_shapes(*arrays[split], what=f"phantom {split}")
    return CTDataset.from_splits(
        "phantom",
        arrays,
        synthetic=True,
        checksum=hashlib.sha256(canonical.encode()).hexdigest(),
        source="synthetic (usecases.covid_ct.data.phantom)",
        notes={"generator_version": GENERATOR_VERSION, "seed": seed},
    )
