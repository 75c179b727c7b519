"""Write a CTDataset in the Galaxy seed's HDF5 layout (``usecase-bench-galaxy-h5``).

Rebuilds ``combined_CT_datasets.h5`` from the covid_semiseg tree when the Zenodo file is
not at hand: float32 everywhere, images (N, H, W, 1), masks (N, H, W, 2) one-hot, keys as
in ``galaxy_h5.KEYS``. The file is written to ``<out>.part`` and renamed when complete.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

import h5py
import numpy as np

from usecases.covid_ct.data import CTDataset, check_pair_shapes
from usecases.covid_ct.data.galaxy_h5 import FILENAME, KEYS
from usecases.data.checksums import sha256_file
from usecases.errors import DataError, UserError


def write_galaxy_h5(ds: CTDataset, path: Path, *, overwrite: bool = False) -> Path:
    """Write ``ds`` to ``path`` in the Galaxy layout (all float32), atomically; return path.

    Images (N, H, W, 1) and one-hot masks (N, H, W, 2) per split. DataError if unwritable,
    or if ``path`` exists and ``overwrite`` is false.
    """
    path = Path(path)
    _check_out(path, overwrite=overwrite)
    arrays = {
        "train": (ds.x_train, ds.y_train),
        "valid": (ds.x_valid, ds.y_valid),
        "test": (ds.x_test, ds.y_test),
    }
    for split, (x, y) in arrays.items():
        check_pair_shapes(x, y, what=f"{ds.name} {split}")
    part = path.with_suffix(".h5.part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(part, "w") as handle:
            for split, (x_key, y_key) in KEYS.items():
                x, y = arrays[split]
                handle.create_dataset(x_key, data=np.asarray(x, dtype=np.float32))
                handle.create_dataset(y_key, data=np.asarray(y, dtype=np.float32))
        os.replace(part, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            part.unlink()
        if isinstance(error, OSError):
            reason = " ".join(str(error).split())
            raise DataError(f"cannot write {path} ({reason}); check the folder.") from error
        raise
    return path


def _check_out(path: Path, *, overwrite: bool) -> None:
    """DataError when ``path`` is a folder, or a file that must not be overwritten."""
    if path.is_dir():
        raise DataError(f"--out {path} is a folder; give a file name, e.g. {path / FILENAME}.")
    if path.exists() and not overwrite:
        raise DataError(f"{path} exists; move it away or pass --force to replace it.")


def main(argv: list[str] | None = None) -> int:
    """CLI: load covid_semiseg from ``--root`` and write the Galaxy HDF5 to ``--out``."""
    parser = argparse.ArgumentParser(
        prog="usecase-bench-galaxy-h5",
        description="Write the covid_semiseg slices in the Galaxy seed's HDF5 layout.",
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=Path("../shared/data/covid_semiseg"),
        help="covid_semiseg folder (default: %(default)s)",
    )
    parser.add_argument("--out", type=Path, required=True, help=f"output file, e.g. {FILENAME}")
    parser.add_argument("--cache-dir", type=Path, default=None, help="prepared-slice cache")
    parser.add_argument("--force", action="store_true", help="replace an existing --out file")
    args = parser.parse_args(argv)
    from usecases.covid_ct.data.covid_semiseg import load_covid_semiseg

    try:
        _check_out(args.out, overwrite=args.force)  # before the slow part
        if args.cache_dir is not None and args.cache_dir.exists() and not args.cache_dir.is_dir():
            raise DataError(f"--cache-dir {args.cache_dir} is a file; give a folder.")
        ds = load_covid_semiseg(root=args.root, cache_dir=args.cache_dir)
        out = write_galaxy_h5(ds, args.out, overwrite=args.force)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    print(f"wrote {out} ({out.stat().st_size} bytes, sha256 {sha256_file(out)}) {ds.counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
