"""Data manifests: one YAML file per downloadable source (data_manifests/), checksum lists, hashing.

Each manifest says where a source lives, how big it is, which sha256 it has (where known),
how its archive is unpacked, which files it must yield (a ``sha256  path`` list), its license
and its citation. :mod:`usecases.data.fetch` downloads and verifies with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import yaml

from usecases import paths
from usecases.data.checksums import sha256_file
from usecases.errors import ConfigError, DataError

DEFAULT_MANIFEST_DIR = paths.manifest_dir()
"""The repository's data_manifests/ folder."""

ArchiveFormat = Literal["zip", "tar"]

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_REQUIRED = ("name", "url", "filename", "license", "citation", "description")
_OPTIONAL = (
    "size",
    "sha256",
    "archive",
    "member_prefix",
    "strip_components",
    "checksums_file",
    "unpack",
    "notes",
    "local_option",
)


@dataclass(frozen=True)
class Manifest:
    """One downloadable source, as described by ``data_manifests/<name>.yaml``.

    ``url`` is None where the data must be downloaded by hand. ``size`` and ``sha256``
    describe the downloaded file and are None where the source does not publish them.
    Archives are unpacked from the members under ``member_prefix``, dropping the first
    ``strip_components`` path components. ``checksums_file`` (a ``sha256  path`` list,
    resolved to an absolute path) names every file the unpacked data must hold.
    ``local_option`` is the run setting that points at an existing copy instead (named in
    the errors of a failed download).
    """

    name: str
    url: str | None
    filename: str
    size: int | None
    sha256: str | None
    archive: ArchiveFormat | None
    member_prefix: str
    strip_components: int
    checksums_file: Path | None
    license: str
    citation: str
    unpack: str
    description: str
    notes: str = ""
    local_option: str = "dataset.root"


def _manifest_dir(manifest_dir: Path | None) -> Path:
    return DEFAULT_MANIFEST_DIR if manifest_dir is None else Path(manifest_dir)


def available_manifests(*, manifest_dir: Path | None = None) -> list[str]:
    """Return the sorted names of the manifests in ``manifest_dir`` (default: data_manifests/)."""
    folder = _manifest_dir(manifest_dir)
    if not folder.is_dir():
        return []
    return sorted(path.stem for path in folder.glob("*.yaml"))


def _bad(path: Path, what: str) -> ConfigError:
    return ConfigError(f"data manifest {path} is invalid: {what}")


def _opt_str(raw: dict[str, Any], key: str, path: Path) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise _bad(path, f"{key} must be a string or null")
    return value


def _parse(raw: dict[str, Any], path: Path, folder: Path) -> Manifest:
    unknown = sorted(set(raw) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise _bad(path, f"unknown keys {', '.join(unknown)}")
    missing = [key for key in _REQUIRED if key not in raw]
    if missing:
        raise _bad(path, f"missing keys {', '.join(missing)}")
    if raw["name"] != path.stem:
        raise _bad(path, f"name {raw['name']!r} differs from the file name {path.stem!r}")
    for key in ("filename", "license", "citation", "description"):
        if not isinstance(raw[key], str) or not raw[key].strip():
            raise _bad(path, f"{key} must be a non-empty string")
    if "/" in raw["filename"] or raw["filename"] in (".", ".."):
        raise _bad(path, "filename must be a plain file name")
    size = raw.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size <= 0):
        raise _bad(path, "size must be a positive integer or null")
    sha256 = _opt_str(raw, "sha256", path)
    if sha256 is not None and not _HEX64.match(sha256):
        raise _bad(path, "sha256 must be 64 lower-case hex digits or null")
    archive = raw.get("archive")
    if archive not in (None, "zip", "tar"):
        raise _bad(path, "archive must be zip, tar or null")
    strip = raw.get("strip_components", 0)
    if not isinstance(strip, int) or isinstance(strip, bool) or strip < 0:
        raise _bad(path, "strip_components must be an integer >= 0")
    checksums = _opt_str(raw, "checksums_file", path)
    return Manifest(
        name=raw["name"],
        url=_opt_str(raw, "url", path),
        filename=raw["filename"],
        size=size,
        sha256=sha256,
        archive=archive,
        member_prefix=_opt_str(raw, "member_prefix", path) or "",
        strip_components=strip,
        checksums_file=None if checksums is None else (folder / checksums).resolve(),
        license=raw["license"].strip(),
        citation=raw["citation"].strip(),
        unpack=(_opt_str(raw, "unpack", path) or "").strip(),
        description=raw["description"].strip(),
        notes=(_opt_str(raw, "notes", path) or "").strip(),
        local_option=_opt_str(raw, "local_option", path) or "dataset.root",
    )


def load_manifest(name: str, *, manifest_dir: Path | None = None) -> Manifest:
    """Load and check ``<manifest_dir>/<name>.yaml``; unknown name -> ConfigError."""
    folder = _manifest_dir(manifest_dir)
    known = available_manifests(manifest_dir=folder)
    if name not in known:
        names = ", ".join(known) or "none"
        raise ConfigError(f"unknown dataset {name!r}: known datasets are {names} (in {folder})")
    path = folder / f"{name}.yaml"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise _bad(path, str(exc).splitlines()[0]) from exc
    if not isinstance(raw, dict):
        raise _bad(path, "expected a mapping of keys")
    return _parse(raw, path, folder)


def _safe_relpath(rel: str) -> bool:
    parts = PurePosixPath(rel).parts
    return bool(parts) and not rel.startswith("/") and ".." not in parts and "\\" not in rel


def read_checksums(path: Path) -> dict[str, str]:
    """Read a ``sha256sum`` list (``<64 hex>  relative/path`` lines) into {path: sha256}."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DataError(f"cannot read checksum list {path} ({exc.strerror or exc})") from exc
    sums: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.startswith("#"):
            continue
        digest, _, rel = line.partition(" ")
        rel = rel[1:] if rel[:1] in (" ", "*") else rel
        if not _HEX64.match(digest.lower()) or not _safe_relpath(rel):
            raise DataError(f"checksum list {path} line {number} is not '<sha256>  <path>'")
        sums[rel] = digest.lower()
    if not sums:
        raise DataError(f"checksum list {path} is empty")
    return sums


def verify_tree(root: Path, checksums: dict[str, str]) -> None:
    """Check every listed file under ``root``; DataError naming the count and the first bad one."""
    root = Path(root)
    bad: list[str] = []
    for rel, expected in sorted(checksums.items()):
        target = root / rel
        if not target.is_file():
            bad.append(f"{rel} is missing")
        elif (got := sha256_file(target)) != expected:
            bad.append(f"{rel} has sha256 {got}, expected {expected}")
    if bad:
        raise DataError(
            f"{len(bad)} of {len(checksums)} files under {root} are missing or corrupt "
            f"(first: {bad[0]}); delete the folder and fetch it again"
        )
