"""Find and verify the paper's TV_UNET.py: a given folder, or the fetched copy (sha256-checked).

The manifest ``data_manifests/tv_unet_12031fa.yaml`` pins the file to commit 12031fa and its
sha256; any other bytes are refused with one line, so a run of ``implementation=original`` is
always a run of the paper's code as published.
"""

from __future__ import annotations

from pathlib import Path

from usecases import paths
from usecases.data.checksums import sha256_file
from usecases.data.fetch import fetch
from usecases.data.manifests import load_manifest
from usecases.errors import ConfigError, DataError

MANIFEST = "tv_unet_12031fa"
COMMIT = "12031fa5672c3b9671c1a6100958f7a39f46b5da"
REPOSITORY = "https://github.com/anuprulez/COVID-CT-Segmentation"
_HINT = (
    "pass usecase.original.code=DIR (a folder holding TV_UNET.py, e.g. "
    f"../shared/reference/tv_unet_12031fa) or run usecase-bench-fetch {MANIFEST} where "
    "raw.githubusercontent.com is reachable"
)


def locate_code(source: str | Path | None, *, cache_base: Path | None = None) -> dict:
    """The verified TV_UNET.py as ``{"file", "sha256", "commit", "repository", "url"}``.

    ``source``: a folder holding TV_UNET.py or the file itself; None: the fetched copy under the
    cache (``usecase-bench-fetch tv_unet_12031fa``, downloaded now if absent). ConfigError for
    a path without the file, DataError for a failed fetch or a sha256 that is not the pinned one.
    """
    manifest = load_manifest(MANIFEST)
    if source is not None and str(source) != "":
        given = Path(source).expanduser()
        file = given / manifest.filename if given.is_dir() else given
        if not file.is_file():
            raise ConfigError(
                f"usecase.original.code={source}: no {manifest.filename} there; {_HINT}"
            )
    else:
        base = paths.cache_base() if cache_base is None else Path(cache_base)
        try:
            file = fetch(MANIFEST, dest=base / MANIFEST) / manifest.filename
        except DataError as err:
            raise DataError(
                f"the paper's {manifest.filename} is not here: {err} (a verified copy: "
                f"../shared/reference/{MANIFEST}; or run usecase-bench-fetch {MANIFEST} where "
                "raw.githubusercontent.com is reachable)"
            ) from None
    digest = sha256_file(file)
    if digest != manifest.sha256:
        raise DataError(
            f"{file} has sha256 {digest[:16]}..., not {manifest.sha256[:16]}... of "
            f"{manifest.filename} at commit {COMMIT[:7]}: refused (only the paper's unchanged "
            f"file runs as implementation=original); {_HINT}"
        )
    return {
        "file": str(file.resolve()),
        "sha256": digest,
        "commit": COMMIT,
        "repository": REPOSITORY,
        "url": manifest.url,
    }
