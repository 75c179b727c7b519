"""Pick the dataset source named in the config and return a CTDataset."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from usecases.covid_ct.data import CTDataset
from usecases.errors import ConfigError, DataError

DATASETS = ("covid_semiseg", "galaxy_h5", "medseg_nifti", "phantom")
GALAXY_H5_NAME = "combined_CT_datasets.h5"


def check_dataset_config(dataset: DictConfig) -> None:
    """Cheap checks before a run starts: known source, and an explicit root that exists."""
    if dataset.name not in DATASETS:
        raise ConfigError(f"dataset={dataset.name} is not one of {', '.join(DATASETS)}.")
    for key in ("pool_size", "pool_seed"):
        value = dataset.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 0
        ):
            raise ConfigError(f"dataset.{key}={value} must be a whole number >= 0 (or null).")
    root = dataset.get("root")
    if root is None or dataset.name == "phantom":
        return
    path = Path(str(root)).expanduser()
    if not path.exists():
        raise DataError(
            f"dataset.root={root} does not exist; point it at a local copy of {dataset.name} "
            f"or leave it unset to fetch (usecase-bench-fetch {dataset.name})."
        )
    if path.is_dir() and not any(path.iterdir()):
        raise DataError(
            f"dataset.root={root} is an empty folder; put the {dataset.name} files there."
        )


def load_dataset(dataset: DictConfig, *, cache_dir: Path, size: int, seed: int) -> CTDataset:
    """Load the configured source; real sources are fetched and verified when root is unset."""
    name = dataset.name
    if name == "phantom":
        from usecases.covid_ct.data.phantom import load_phantom

        return load_phantom(
            n_train=dataset.n_train,
            n_valid=dataset.n_valid,
            n_test=dataset.n_test,
            size=size,
            seed=seed,
        )
    root = _root(name, dataset.get("root"), cache_dir)
    if name == "covid_semiseg":
        from usecases.covid_ct.data.covid_semiseg import load_covid_semiseg

        return load_covid_semiseg(
            root=root,
            cache_dir=cache_dir / "prepared",
            size=size,
            pool_size=dataset.get("pool_size"),
            pool_seed=dataset.get("pool_seed", 0),
        )
    if name == "galaxy_h5":
        from usecases.covid_ct.data.galaxy_h5 import load_galaxy_h5

        return load_galaxy_h5(root / GALAXY_H5_NAME if root.is_dir() else root)
    if name == "medseg_nifti":
        from usecases.covid_ct.data.medseg_nifti import load_medseg_nifti

        return load_medseg_nifti(
            root, size=size, seed=seed, infection_labels=tuple(dataset.infection_labels)
        )
    raise ConfigError(f"dataset={name} is not one of {', '.join(DATASETS)}.")


def _root(name: str, root: str | None, cache_dir: Path) -> Path:
    from usecases.data.fetch import resolve_data_root

    return resolve_data_root(name, root=root, cache_base=cache_dir)
