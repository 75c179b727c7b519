"""Download, unpack and verify a dataset described by a data manifest (``usecase-bench-fetch``).

Downloads go through pooch into ``<dest>/.downloads``; archives are unpacked safely into a
temporary folder next to ``<dest>``, verified file by file and only then moved into place, so a
failed fetch leaves nothing half-written. ``<dest>/SHA256SUMS`` lists every file of the copy.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pooch
import requests

from usecases import paths
from usecases.data.manifests import (
    Manifest,
    available_manifests,
    load_manifest,
    read_checksums,
    sha256_file,
    verify_tree,
)
from usecases.data.unpack import reason, unpack
from usecases.errors import DataError, UserError

SUMS_NAME = "SHA256SUMS"
_DOWNLOADS = ".downloads"
_HEX = re.compile(r"\b[0-9a-f]{64}\b")


def _expected_sums(manifest: Manifest, dest: Path) -> dict[str, str] | None:
    """The checksums a copy must match: the manifest's, else those recorded at first fetch."""
    if manifest.checksums_file is not None:
        return read_checksums(manifest.checksums_file)
    if manifest.archive is None and manifest.sha256 is not None:
        return {manifest.filename: manifest.sha256}
    recorded = dest / SUMS_NAME
    return read_checksums(recorded) if recorded.is_file() else None


def _verify(manifest: Manifest, dest: Path) -> None:
    if not dest.is_dir():
        raise DataError(f"{dest} does not exist")
    sums = _expected_sums(manifest, dest)
    if sums is None:
        raise DataError(f"{dest} has no {SUMS_NAME} recorded by a fetch")
    if manifest.archive is None and manifest.size is not None:
        target = dest / manifest.filename
        if target.is_file() and target.stat().st_size != manifest.size:
            got = target.stat().st_size
            raise DataError(f"{target} has {got} bytes, expected {manifest.size}")
    verify_tree(dest, sums)


def _is_verified(manifest: Manifest, dest: Path) -> bool:
    try:
        _verify(manifest, dest)
    except DataError:
        return False
    return True


@contextlib.contextmanager
def _quiet_pooch() -> Iterator[None]:
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _download(manifest: Manifest, url: str, cache: Path, dest: Path) -> Path:
    """Download with pooch into ``cache``; check sha256 and size where the manifest knows them."""
    known = None if manifest.sha256 is None else f"sha256:{manifest.sha256}"
    target = cache / manifest.filename
    print(f"fetching {manifest.name} from {url} ...", file=sys.stderr)
    try:
        with _quiet_pooch():
            path = Path(
                pooch.retrieve(
                    url,
                    known_hash=known,
                    path=cache,
                    fname=manifest.filename,
                    progressbar=False,
                )
            )
    except requests.exceptions.RequestException as exc:
        raise DataError(
            f"could not download {manifest.name} from {url} ({reason(exc)}); "
            f"put a copy at {dest} or pass {manifest.local_option}=PATH"
        ) from exc
    except ValueError as exc:
        target.unlink(missing_ok=True)
        if manifest.sha256 is None or "hash" not in str(exc).lower():
            raise DataError(
                f"could not download {manifest.name} from {url} ({reason(exc)}); "
                f"put a copy at {dest} or pass {manifest.local_option}=PATH"
            ) from exc
        # pooch: the sha256 does not match (it deleted its temporary download)
        hashes = [h for h in _HEX.findall(str(exc)) if h != manifest.sha256]
        got = hashes[0] if hashes else "another value"
        raise DataError(
            f"downloaded {manifest.name} from {url} has sha256 {got}, expected "
            f"{manifest.sha256}; the bad download was deleted"
        ) from exc
    got_size = path.stat().st_size
    if manifest.size is not None and got_size != manifest.size:
        path.unlink(missing_ok=True)
        raise DataError(
            f"downloaded {manifest.name} from {url} has {got_size} bytes, expected "
            f"{manifest.size}; the bad download was deleted"
        )
    return path


def _record_sums(manifest: Manifest, tmp: Path) -> None:
    """Write ``tmp/SHA256SUMS``: the manifest's list, or the sha256 of every file in tmp."""
    if manifest.checksums_file is not None:
        shutil.copyfile(manifest.checksums_file, tmp / SUMS_NAME)
        return
    files = sorted(p for p in tmp.rglob("*") if p.is_file())
    lines = [f"{sha256_file(p)}  {p.relative_to(tmp).as_posix()}\n" for p in files]
    (tmp / SUMS_NAME).write_text("".join(lines), encoding="utf-8")


def _has_content(dest: Path) -> bool:
    return dest.is_dir() and any(p.name != _DOWNLOADS for p in dest.iterdir())


def _cleanup(dest: Path, cache: Path, created: bool) -> None:
    """Remove what a fetch left under ``dest``: its download cache and, if it made it, dest."""
    shutil.rmtree(cache, ignore_errors=True)
    if created and dest.is_dir() and not any(dest.iterdir()):
        dest.rmdir()


def _build(manifest: Manifest, url: str, dest: Path, cache: Path) -> None:
    downloaded = _download(manifest, url, cache, dest)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.part-", dir=dest.parent))
    try:
        sums = None
        if manifest.checksums_file is not None:
            sums = read_checksums(manifest.checksums_file)
        if manifest.archive is None:
            shutil.move(downloaded, tmp / manifest.filename)
        else:
            unpack(manifest, downloaded, tmp, None if sums is None else set(sums))
        if sums is not None:
            verify_tree(tmp, sums)
        _record_sums(manifest, tmp)
        shutil.rmtree(cache, ignore_errors=True)
        if dest.exists():
            dest.rmdir()  # empty: fetch() refuses a dest with other content
        tmp.replace(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def fetch(
    name: str, *, dest: Path, manifest_dir: Path | None = None, url: str | None = None
) -> Path:
    """Download, unpack and verify dataset ``name`` into ``dest``; return ``dest``.

    Returns at once where ``dest`` already holds a verified copy. ``url`` overrides the
    manifest's (a mirror). Any failure raises DataError and leaves no partial data behind.
    """
    manifest = load_manifest(name, manifest_dir=manifest_dir)
    dest = Path(dest).expanduser().absolute()
    if _is_verified(manifest, dest):
        return dest
    source = url or manifest.url
    if source is None:
        raise DataError(
            f"{name} has no download address ({manifest.unpack}); download it by hand, "
            f"put it at {dest} or pass {manifest.local_option}=PATH"
        )
    if _has_content(dest):
        try:
            _verify(manifest, dest)
        except DataError as exc:
            raise DataError(
                f"{dest} exists but is not a verified copy of {name} ({exc}); "
                "delete it or choose another destination"
            ) from exc
    created = not dest.exists()
    cache = dest / _DOWNLOADS
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        _build(manifest, source, dest, cache)
    except OSError as exc:
        _cleanup(dest, cache, created)
        raise DataError(f"cannot write {name} to {dest} ({reason(exc)}); pass --dest DIR") from exc
    except BaseException:
        _cleanup(dest, cache, created)
        raise
    return dest


def resolve_data_root(
    name: str,
    *,
    root: str | Path | None,
    cache_base: Path | None = None,
    manifest_dir: Path | None = None,
) -> Path:
    """Return the data folder: ``root`` if given (must exist, non-empty), else the fetched cache."""
    if root is not None and str(root) != "":
        path = Path(root).expanduser()
        hint = f"pass an existing copy as dataset.root or leave it unset to download {name}"
        if not path.exists():
            raise DataError(f"dataset root {path} does not exist; {hint}")
        empty = not any(path.iterdir()) if path.is_dir() else path.stat().st_size == 0
        if empty:
            raise DataError(f"dataset root {path} is empty; {hint}")
        return path
    base = paths.cache_base() if cache_base is None else Path(cache_base)
    return fetch(name, dest=base / name, manifest_dir=manifest_dir)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``usecase-bench-fetch NAME [--dest DIR] [--url URL]`` or ``--list``."""
    parser = argparse.ArgumentParser(
        prog="usecase-bench-fetch",
        description="Download, unpack and verify a dataset listed in data_manifests/.",
    )
    parser.add_argument("name", nargs="?", help="dataset name (see --list)")
    parser.add_argument(
        "--dest",
        type=Path,
        help=f"destination folder (default: BASE/NAME; BASE: ${paths.CACHE_ENV}, else "
        "~/.cache/usecase-bench)",
    )
    parser.add_argument("--url", help="download from this mirror instead of the manifest's url")
    parser.add_argument("--list", action="store_true", help="list the known datasets and exit")
    args = parser.parse_args(argv)
    try:
        if args.list:
            for known in available_manifests():
                print(f"{known}: {load_manifest(known).description}")
            return 0
        if args.name is None:
            parser.error("give a dataset NAME or --list")
        dest = args.dest if args.dest is not None else paths.cache_base() / args.name
        print(fetch(args.name, dest=dest, url=args.url))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
