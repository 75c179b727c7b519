"""Safe unpacking of a downloaded zip or tar archive into a temporary folder.

Members with absolute or ``..`` paths, links and special files are refused before anything
is written; a compressed tar stream is read to its end first, so a damaged stream's checksum
fails here (tarfile reads members without reaching it). ``manifest.member_prefix`` and
``strip_components`` pick and rename the members; ``wanted`` (relative paths) narrows them.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import re
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import requests

from usecases.data.manifests import Manifest
from usecases.errors import DataError

_ERRNO = re.compile(r"\[Errno -?\d+\][^'\")]*")
# Compressed tar streams by their first bytes: tarfile reads a member without reaching the
# stream's trailer, so a damaged stream's checksum (gzip CRC, xz check) is read separately.
_COMPRESSED = {b"\x1f\x8b": gzip.open, b"BZh": bz2.open, b"\xfd7zXZ\x00": lzma.open}
_BROKEN = (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile,
           lzma.LZMAError)  # fmt: skip


def unpack(manifest: Manifest, archive: Path, tmp: Path, wanted: set[str] | None) -> None:
    """Extract the selected members of ``archive`` into ``tmp``; DataError (one line) if bad."""
    try:
        if manifest.archive == "zip":
            with zipfile.ZipFile(archive) as zf:
                count = _extract(manifest, _zip_members(zf), tmp, wanted)
        else:
            _check_stream(archive)
            with tarfile.open(archive) as tf:
                count = _extract(manifest, _tar_members(tf), tmp, wanted)
    except _BROKEN as exc:  # a corrupt compressed stream: zlib.error, BadGzipFile, LZMAError ...
        raise DataError(
            f"the downloaded {manifest.name} archive is not a valid {manifest.archive} file "
            f"({reason(exc)}); the download was deleted"
        ) from exc
    if count == 0:
        raise DataError(
            f"the downloaded {manifest.name} archive holds no files under "
            f"{manifest.member_prefix!r}; the download was deleted"
        )


def reason(exc: BaseException) -> str:
    """One short line for an I/O, network or archive error (errno text, no URL noise)."""
    requests_error = isinstance(exc, requests.RequestException)
    if isinstance(exc, OSError) and not requests_error and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    text = " ".join(str(exc).split())
    found = _ERRNO.search(text)
    reason = found.group(0).rstrip(" :") if found else text
    return f"{type(exc).__name__}: {reason[:200]}" if reason else type(exc).__name__


# A member as the extraction loop sees it: name, is a folder, what is wrong with it (None:
# a regular file), and how to open it.
_Member = tuple[str, bool, str | None, Callable[[], BinaryIO | None]]


def _zip_members(zf: zipfile.ZipFile) -> list[_Member]:
    return [
        (
            info.filename,
            info.is_dir(),
            "is a symbolic link" if stat.S_ISLNK(info.external_attr >> 16) else None,
            lambda info=info: zf.open(info),
        )
        for info in zf.infolist()
    ]


def _tar_members(tf: tarfile.TarFile) -> list[_Member]:
    return [
        (
            m.name,
            m.isdir(),
            None if m.isfile() or m.isdir() else "is a link or special file",
            lambda m=m: tf.extractfile(m),
        )
        for m in tf.getmembers()
    ]


def _extract(manifest: Manifest, members: Iterable[_Member], tmp: Path, wanted) -> int:
    """Check every member's path first, then write the selected regular files; the count."""
    members = list(members)
    for name, *_ in members:
        if not _member_ok(name):
            raise _unsafe(manifest, name, "has an absolute or '..' path")
    count = 0
    for name, is_dir, problem, open_member in members:
        rel = _select(manifest, name, wanted)
        if rel is None or is_dir:
            continue
        if problem is not None:
            raise _unsafe(manifest, name, problem)
        source = open_member()
        if source is None:
            raise _unsafe(manifest, name, "cannot be read")
        with source:
            _write_member(source, tmp, rel)
        count += 1
    return count


def _member_ok(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return not (
        name.startswith(("/", "\\"))
        or "\\" in name
        or ".." in parts
        or re.match(r"^[A-Za-z]:", name) is not None
    )


def _select(manifest: Manifest, name: str, wanted: set[str] | None) -> str | None:
    """Return the output path of an archive member, or None where it is not extracted."""
    if not name.startswith(manifest.member_prefix):
        return None
    rel = "/".join(PurePosixPath(name).parts[manifest.strip_components :])
    if not rel or (wanted is not None and rel not in wanted):
        return None
    return rel


def _unsafe(manifest: Manifest, member: str, what: str) -> DataError:
    return DataError(
        f"refusing the {manifest.name} archive: member {member!r} {what}; the download was deleted"
    )


def _write_member(source: BinaryIO, tmp: Path, rel: str) -> None:
    target = (tmp / rel).resolve()
    if not target.is_relative_to(tmp.resolve()):
        raise DataError(f"archive member {rel} would be written outside {tmp}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as out:
        shutil.copyfileobj(source, out, 1 << 20)


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
                raise tarfile.ReadError(f"damaged compressed stream: {reason(exc)}") from exc
