"""Test CT slices of a covid_ct run for the outline figure: re-read from the run's dataset.

Run folders keep only the test probabilities; images and masks come from the dataset named in
the record (``config.dataset`` with its root, ``config.cache_dir``). Nothing is downloaded:
a real dataset is read only from ``dataset.root`` or an already fetched copy in the cache, and
only when its checksum is the one the record names. Otherwise a one-line reason is returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from usecases.reporting.runs import Run


@dataclass(frozen=True)
class CTSlices:
    """Images (N, H, W), true masks (N, H, W) bool, infection probabilities (N, H, W)."""

    images: np.ndarray
    truth: np.ndarray
    prob: np.ndarray
    synthetic: bool


def load_test_slices(run: Run) -> CTSlices | str:
    """The run's test slices with its probabilities, or a sentence saying why not."""
    record = run.record
    name = record.artifacts.get("test_probabilities")
    if not name:
        return "the record names no test_probabilities artifact"
    prob_path = run.run_dir / str(name)
    if not prob_path.is_file():
        return f"{prob_path} is not there (records copied without their run folder)"
    try:
        with np.load(prob_path) as npz:
            prob = np.asarray(npz["infection"], dtype=np.float32)
    except (OSError, KeyError, ValueError) as err:
        return f"{prob_path} is unreadable ({type(err).__name__})"
    reason = _unavailable(record.config)
    if reason:
        return reason
    try:
        ds = _load(record.config)
    except Exception as err:  # any loader failure only costs this figure
        return f"the dataset could not be loaded ({' '.join(str(err).split())[:200]})"
    if record.dataset.get("checksum") and ds.checksum != record.dataset.get("checksum"):
        return "the dataset found here differs from the run's (checksum mismatch)"
    images, truth = ds.x_test[..., 0], ds.y_test[..., 1].astype(bool)
    if prob.shape != truth.shape:
        return f"probabilities {prob.shape} do not match the test masks {truth.shape}"
    return CTSlices(images=images, truth=truth, prob=prob, synthetic=bool(ds.synthetic))


def pick_slices(truth: np.ndarray, *, count: int = 4) -> list[int]:
    """Indices of ``count`` slices spread over lesion size, largest first (empty ones last)."""
    area = truth.reshape(len(truth), -1).sum(axis=1)
    with_lesion = [int(i) for i in np.argsort(-area, kind="stable") if area[i] > 0]
    if len(with_lesion) >= count:
        spots = np.linspace(0, len(with_lesion) - 1, count).round().astype(int)
        return [with_lesion[s] for s in spots]
    rest = [i for i in range(len(truth)) if i not in with_lesion]
    return (with_lesion + rest)[:count]


def _unavailable(config: dict) -> str | None:
    """Why the dataset cannot be read here without a download, or None."""
    dataset = config.get("dataset") or {}
    name = dataset.get("name")
    if not name:
        return "the record's config names no dataset"
    if name == "phantom":
        return None
    root = dataset.get("root")
    if root:
        return None if Path(str(root)).expanduser().exists() else f"dataset.root {root} is absent"
    cache = Path(str(config.get("cache_dir") or "")).expanduser() / str(name)
    if not cache.is_dir() or not any(cache.iterdir()):
        return f"{name} is not at {cache} and the report does not download data"
    return None


def _load(config: dict):
    """Load the record's dataset as the run did (same size and seed)."""
    from omegaconf import OmegaConf

    from usecases.covid_ct.data.load import load_dataset

    cfg = OmegaConf.create(config)
    return load_dataset(
        cfg.dataset,
        cache_dir=Path(str(cfg.cache_dir)).expanduser(),
        size=int(cfg.usecase.image_size),
        seed=int(cfg.seed),
    )
