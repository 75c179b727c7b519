"""Download, unpack and verify a dataset described by a data manifest (``usecase-bench-fetch``).

Downloads go through pooch into ``<dest>/.downloads``; archives are unpacked safely into a
temporary folder next to ``<dest>``, verified file by file and only then moved into place, so a
failed fetch leaves nothing half-written. ``<dest>/SHA256SUMS`` lists every file of the copy.
"""

from __future__ import annotations

import argparse
import bz2
import contextlib
import gzip
import logging
import lzma
import re
import shutil
import stat
import sys
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import BinaryIO

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
from usecases.errors import DataError, UserError

SUMS_NAME = "SHA256SUMS"
_DOWNLOADS = ".downloads"
_ERRNO = re.compile(r"\[Errno -?\d+\][^'\")]*")
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


def _reason(exc: BaseException) -> str:
    requests_error = isinstance(exc, requests.RequestException)
    if isinstance(exc, OSError) and not requests_error and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    text = " ".join(str(exc).split())
    found = _ERRNO.search(text)
    reason = found.group(0).rstrip(" :") if found else text
    return f"{type(exc).__name__}: {reason[:200]}" if reason else type(exc).__name__


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
            f"could not download {manifest.name} from {url} ({_reason(exc)}); "
            f"put a copy at {dest} or pass dataset.root=PATH"
        ) from exc
    except ValueError as exc:
        target.unlink(missing_ok=True)
        if manifest.sha256 is None or "hash" not in str(exc).lower():
            raise DataError(
                f"could not download {manifest.name} from {url} ({_reason(exc)}); "
                f"put a copy at {dest} or pass dataset.root=PATH"
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


def _member_ok(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return not (
        name.startswith(("/", "\\"))
        or "\\" in name
        or ".." in parts
        or re.match(r"^[A-Za-z]:", name) is not None
    )


def _strip(name: str, components: int) -> str:
    return "/".join(PurePosixPath(name).parts[components:])


def _write_member(source: BinaryIO, tmp: Path, rel: str) -> None:
    target = (tmp / rel).resolve()
    if not target.is_relative_to(tmp.resolve()):
        raise DataError(f"archive member {rel} would be written outside {tmp}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as out:
        shutil.copyfileobj(source, out, 1 << 20)


def _select(manifest: Manifest, name: str, wanted: set[str] | None) -> str | None:
    """Return the output path of an archive member, or None where it is not extracted."""
    if not name.startswith(manifest.member_prefix):
        return None
    rel = _strip(name, manifest.strip_components)
    if not rel or (wanted is not None and rel not in wanted):
        return None
    return rel


def _unsafe(manifest: Manifest, member: str, what: str) -> DataError:
    return DataError(
        f"refusing the {manifest.name} archive: member {member!r} {what}; the download was deleted"
    )


def _extract_zip(manifest: Manifest, archive: Path, tmp: Path, wanted: set[str] | None) -> int:
    count = 0
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        for info in infos:
            if not _member_ok(info.filename):
                raise _unsafe(manifest, info.filename, "has an absolute or '..' path")
        for info in infos:
            rel = _select(manifest, info.filename, wanted)
            if rel is None or info.is_dir():
                continue
            if stat.S_ISLNK(info.external_attr >> 16):
                raise _unsafe(manifest, info.filename, "is a symbolic link")
            with zf.open(info) as source:
                _write_member(source, tmp, rel)
            count += 1
    return count


# Compressed tar streams by their first bytes: tarfile reads a member without reaching the
# stream's trailer, so a damaged stream's checksum (gzip CRC, xz check) is read separately.
_COMPRESSED = {b"\x1f\x8b": gzip.open, b"BZh": bz2.open, b"\xfd7zXZ\x00": lzma.open}


def _check_stream(archive: Path) -> None:
    """Decompress ``archive`` to its end (gzip/bz2/xz); the decompressor raises if damaged."""
    with archive.open("rb") as f:
        head = f.read(6)
    for magic, opener in _COMPRESSED.items():
        if head.startswith(magic):
            try:
                with opener(archive, "rb") as stream:
                    while stream.read(1 << 20):
                        pass
            except (OSError, EOFError, zlib.error, lzma.LZMAError) as exc:  # bz2: OSError
                raise tarfile.ReadError(f"damaged compressed stream: {_reason(exc)}") from exc


def _extract_tar(manifest: Manifest, archive: Path, tmp: Path, wanted: set[str] | None) -> int:
    count = 0
    _check_stream(archive)
    with tarfile.open(archive) as tf:
        members = tf.getmembers()
        for member in members:
            if not _member_ok(member.name):
                raise _unsafe(manifest, member.name, "has an absolute or '..' path")
        for member in members:
            rel = _select(manifest, member.name, wanted)
            if rel is None or member.isdir():
                continue
            if not member.isfile():
                raise _unsafe(manifest, member.name, "is a link or special file")
            source = tf.extractfile(member)
            if source is None:
                raise _unsafe(manifest, member.name, "cannot be read")
            with source:
                _write_member(source, tmp, rel)
            count += 1
    return count


def _unpack(manifest: Manifest, archive: Path, tmp: Path, wanted: set[str] | None) -> None:
    try:
        if manifest.archive == "zip":
            count = _extract_zip(manifest, archive, tmp, wanted)
        else:
            count = _extract_tar(manifest, archive, tmp, wanted)
    except (
        zipfile.BadZipFile,
        tarfile.TarError,
        EOFError,
        zlib.error,
        gzip.BadGzipFile,
        lzma.LZMAError,
    ) as exc:
        # a corrupt compressed stream: zlib.error, BadGzipFile, LZMAError or EOFError
        raise DataError(
            f"the downloaded {manifest.name} archive is not a valid {manifest.archive} file "
            f"({_reason(exc)}); the download was deleted"
        ) from exc
    if count == 0:
        raise DataError(
            f"the downloaded {manifest.name} archive holds no files under "
            f"{manifest.member_prefix!r}; the download was deleted"
        )


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
            _unpack(manifest, downloaded, tmp, None if sums is None else set(sums))
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
            f"put it at {dest} or pass dataset.root=PATH"
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
        raise DataError(f"cannot write {name} to {dest} ({_reason(exc)}); pass --dest DIR") from exc
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
